"""Closed answers: option letters (multiple choice), True/False (VSR) and yes/no (POPE), with robust parsers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from ...templates import OPTION_LETTERS
from .answers import normalize_short_answer
from .predictions import MAX_PREDICTION_CHARS, check_lengths, clean_prediction, mean

__all__ = [
    "multiple_choice_accuracy",
    "parse_choice",
    "parse_true_false",
    "parse_yes_no",
    "pope_metrics",
    "pope_official_answer",
    "true_false_accuracy",
]

_CHOICE_PATTERNS = (
    # "B", "B.", "(B)", "[B]", "B: a cat", "B) a cat", "B. a cat"; not "A cat ..." (free text starting with "A").
    re.compile(r"^[(\[]?([A-Z])(?:[)\]]?[.:)]?$|[)\]]?[.:)]\s)"),
    # "The answer is B", "Answer: (C)", "option D"; the letter itself must be upper-case ("the answer is a cat").
    re.compile(r"(?i:\b(?:answer|option|choice))\s*(?i:is|:)?\s*[(\[]?([A-Z])(?![A-Za-z])"),
)


def parse_choice(
    prediction: object, num_choices: int, options: Sequence[str] | None = None, max_chars: int = MAX_PREDICTION_CHARS
) -> int | None:
    """Index of the option a prediction names, or None if it names none or one beyond ``num_choices``.

    Accepted: ``"B"``, ``"(B)"``, ``"B."``, ``"B: text"``, ``"The answer is B"``, or an option's text when ``options``
    are given. Free text that merely starts with the article "A" is not option A.
    """
    text = clean_prediction(prediction, max_chars)
    if text is None:
        return None
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match:
            index = OPTION_LETTERS.index(match.group(1))
            return index if index < num_choices else None
    if options is not None:
        norm = normalize_short_answer(text)
        hits = [i for i, option in enumerate(options) if normalize_short_answer(str(option)) == norm]
        if len(hits) == 1:
            return hits[0]
    return None


def multiple_choice_accuracy(
    predictions: Sequence[object], gold_letters: Sequence[str], num_choices: int | Sequence[int]
) -> float:
    """Fraction of predictions whose parsed option letter equals the gold letter."""
    check_lengths(predictions, gold_letters, "gold letters")
    counts = [num_choices] * len(predictions) if isinstance(num_choices, int) else list(num_choices)
    check_lengths(predictions, counts, "option counts")
    gold = []
    for i, (letter, n) in enumerate(zip(gold_letters, counts, strict=True)):
        if not (isinstance(letter, str) and len(letter.strip()) == 1 and letter.strip().upper() in OPTION_LETTERS[:n]):
            raise ValueError(f"gold_letters[{i}]={letter!r} is not one of the first {n} option letters")
        gold.append(OPTION_LETTERS.index(letter.strip().upper()))
    return mean([float(parse_choice(p, n) == g) for p, g, n in zip(predictions, gold, counts, strict=True)])


def _first_words(prediction: object, max_chars: int) -> list[str]:
    """Lower-cased words of the first sentence of a prediction, punctuation removed; [] if unusable."""
    text = clean_prediction(prediction, max_chars)
    if text is None:
        return []
    first = re.split(r"[.\n]", text, maxsplit=1)[0]
    return re.sub(r"[^\w\s']", " ", first.lower()).split()


def parse_yes_no(prediction: object, max_chars: int = MAX_PREDICTION_CHARS) -> Literal["yes", "no"] | None:
    """``"yes"``/``"no"`` from a free-form answer, or None when it gives neither or both.

    The first word decides when it is yes/no; otherwise the first sentence must hold only yes-cues or only no-cues
    (``no``, ``not``, ``none``, ``...n't``).
    """
    words = _first_words(prediction, max_chars)
    if not words:
        return None
    if words[0] in ("yes", "no"):
        return words[0]  # type: ignore[return-value]
    says_no = any(w in ("no", "not", "none", "nope") or w.endswith("n't") for w in words)
    says_yes = any(w in ("yes", "yeah", "yep") for w in words)
    if says_no == says_yes:
        return None
    return "no" if says_no else "yes"


def parse_true_false(prediction: object, max_chars: int = MAX_PREDICTION_CHARS) -> bool | None:
    """True/False from a VSR answer (``true``/``false``, also ``yes``/``no``) by its first word; None otherwise."""
    words = _first_words(prediction, max_chars)
    if not words:
        return None
    return {"true": True, "yes": True, "false": False, "no": False}.get(words[0])


def _as_bool(label: object, where: str) -> bool:
    """A gold label given as bool, 0/1, "true"/"false" or "yes"/"no" as a bool."""
    if isinstance(label, bool):
        return label
    if isinstance(label, int) and label in (0, 1):
        return bool(label)
    if isinstance(label, str) and label.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return label.strip().lower() in ("true", "yes", "1")
    raise ValueError(f"{where}: expected a true/false or yes/no label, got {label!r}")


def true_false_accuracy(predictions: Sequence[object], labels: Sequence[object]) -> float:
    """VSR accuracy: fraction of predictions whose parsed True/False equals the gold label."""
    check_lengths(predictions, labels, "labels")
    gold = [_as_bool(label, f"labels[{i}]") for i, label in enumerate(labels)]
    return mean([float(parse_true_false(p) is g) for p, g in zip(predictions, gold, strict=True)])


def pope_official_answer(prediction: object) -> Literal["yes", "no"]:
    """POPE's official answer rule (AoiDragon/POPE ``evaluate.py``): the first sentence, commas removed, split on
    spaces; ``"no"`` if a word is exactly ``No``, ``no`` or ``not``, else ``"yes"`` (even for an empty answer)."""
    text = prediction if isinstance(prediction, str) else ""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if "No" in words or "not" in words or "no" in words else "yes"


def pope_metrics(predictions: Sequence[object], labels: Sequence[object]) -> dict[str, float]:
    """POPE accuracy, precision, recall, F1 and yes-ratio ("yes" is the positive class), with the raw counts.

    A prediction that parses to neither yes nor no (see :func:`parse_yes_no`) is wrong: it counts as a false negative
    for a "yes" question and as a false positive for a "no" question, is reported under ``invalid``, and is not a
    "yes" for ``yes_ratio`` (the fraction of predictions parsed as yes).
    """
    check_lengths(predictions, labels, "labels")
    tp = fp = tn = fn = invalid = yes = 0
    for i, (prediction, label) in enumerate(zip(predictions, labels, strict=True)):
        gold = _as_bool(label, f"labels[{i}]")
        answer = parse_yes_no(prediction)
        if answer is None:
            invalid += 1
            fn, fp = (fn + 1, fp) if gold else (fn, fp + 1)
            continue
        yes += answer == "yes"
        if answer == "yes":
            tp, fp = (tp + 1, fp) if gold else (tp, fp + 1)
        else:
            fn, tn = (fn + 1, tn) if gold else (fn, tn + 1)
    n = len(predictions)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": yes / n if n else 0.0,
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
        "invalid": float(invalid),
    }
