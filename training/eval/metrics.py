"""The paper's evaluation metrics: CIDEr, VQA accuracy, exact match, POPE, grounding and Visual7W pointing.

Every scorer takes raw model outputs. A prediction that is not a string, is empty, is longer than ``max_chars``
characters or cannot be parsed is scored as wrong; no prediction makes a scorer raise. Reference data that is
malformed (an empty reference list, mismatched lengths) raises ``ValueError`` naming the offending index.

- CIDEr (CIDEr-D as in the COCO caption evaluation): ``pycocoevalcap.cider.cider.Cider`` on captions tokenised by the
  Stanford PTB tokenizer when Java is installed, else by :func:`ptb_like_tokenize`, a pure-Python imitation of it.
  :class:`CiderResult` records which tokenizer was used.
- VQA accuracy (VQAv2, TextVQA): the answer normalisation of the official ``vqaEval.py`` (punctuation, period
  stripping, number words, articles, contractions) and ``min(1, matches / 3)`` averaged over the leave-one-annotator-
  out subsets of the (usually 10) human answers.
- Exact match (GQA), option letters (multiple choice), True/False (VSR), yes/no (POPE) with robust answer parsers.
- Grounding accuracy: IoU > 0.5 between the parsed ``[x1,y1,x2,y2]`` box and the reference box.
- Visual7W pointing: the predicted box (or option letter) picks the candidate box with the highest IoU.
"""

from __future__ import annotations

import math
import re
import shutil
import string
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from pycocoevalcap.cider.cider import Cider

from training.metrics import box_iou, parse_box

__all__ = [
    "MAX_PREDICTION_CHARS",
    "OPTION_LETTERS",
    "VQA_ARTICLES",
    "VQA_CONTRACTIONS",
    "VQA_MANUAL_MAP",
    "VQA_PUNCTUATION",
    "CiderResult",
    "box_iou",
    "choose_candidate",
    "cider",
    "clean_prediction",
    "exact_match_accuracy",
    "exact_match_score",
    "grounding_accuracy",
    "grounding_score",
    "java_available",
    "multiple_choice_accuracy",
    "normalize_short_answer",
    "parse_box",
    "parse_choice",
    "parse_true_false",
    "parse_yes_no",
    "pointing_accuracy",
    "pope_metrics",
    "ptb_like_tokenize",
    "true_false_accuracy",
    "vqa_accuracy",
    "vqa_normalize",
    "vqa_process_digit_article",
    "vqa_process_punctuation",
    "vqa_score",
]

MAX_PREDICTION_CHARS = 2048
"""Predictions longer than this (degenerate repetitions) are scored as wrong rather than parsed."""

Tokenizer = Literal["auto", "ptb", "python"]
Box = Sequence[float]
OPTION_LETTERS = string.ascii_uppercase


def clean_prediction(prediction: object, max_chars: int = MAX_PREDICTION_CHARS) -> str | None:
    """The stripped prediction, or None when it is not a string, empty or longer than ``max_chars``."""
    if not isinstance(prediction, str) or len(prediction) > max_chars:
        return None
    prediction = prediction.strip()
    return prediction or None


def _check_lengths(predictions: Sequence[object], references: Sequence[object], what: str = "references") -> None:
    """Raise ValueError when predictions and references differ in number."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} {what}")


def _mean(values: Sequence[float]) -> float:
    """Arithmetic mean, 0.0 for an empty sequence."""
    return sum(values) / len(values) if values else 0.0


# ------------------------------------------------------------------------------------------------------------
# CIDEr
# ------------------------------------------------------------------------------------------------------------

# Tokens the COCO caption evaluation drops after PTB tokenisation (pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS).
_PTB_DROPPED = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# PTB escapes brackets; with -lowerCase the escapes come out lower-cased and so survive the filter above.
_PTB_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}
_PTB_ABBREVIATIONS = frozenset(["mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "etc.", "inc.", "ltd."])
_PTB_INITIALISM = re.compile(r"^(?:[a-z]\.){2,}$")  # u.s.a., a.m.
_PTB_SPLIT_WORDS = {"gonna": ["gon", "na"], "wanna": ["wan", "na"], "gotta": ["got", "ta"], "cannot": ["can", "not"]}
_PTB_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_PTB_LEADING = "'`$<"
_PTB_TRAILING = "'`.,;:!?%>"


def _ptb_split_token(token: str) -> list[str]:
    """Split one whitespace-delimited, lower-cased token the way the PTB tokenizer would (approximately)."""
    head: list[str] = []
    tail: list[str] = []
    while token and token[0] in _PTB_LEADING:
        head.append(token[0])
        token = token[1:]
    while token and token[-1] in _PTB_TRAILING:
        if token.endswith("...") and len(token) > 3:
            tail.insert(0, "...")
            token = token[:-3]
            continue
        if token[-1] == "." and (token in _PTB_ABBREVIATIONS or _PTB_INITIALISM.match(token)):
            break
        tail.insert(0, token[-1])
        token = token[:-1]
    middle: list[str] = []
    if token:
        # Commas and colons inside a token split it unless they sit between digits (1,000 and 9:30 stay whole).
        parts = re.split(r"(?<!\d)([,;])|([,;])(?!\d)", token)
        for part in (p for p in parts if p):
            clitic = _PTB_CLITIC.match(part)
            if part in _PTB_SPLIT_WORDS:
                middle.extend(_PTB_SPLIT_WORDS[part])
            elif clitic and part not in ("'s", "n't"):
                stem, suffix = clitic.groups()
                middle.extend([stem, suffix])
            else:
                middle.append(part)
    return head + middle + tail


def ptb_like_tokenize(text: str) -> str:
    """Pure-Python stand-in for pycocoevalcap's Stanford PTB tokenisation: lower-cased, punctuation dropped."""
    text = text.lower().replace('"', " ")  # PTB turns double quotes into `` and '', which are dropped
    for bracket, escape in _PTB_BRACKETS.items():
        text = text.replace(bracket, f" {escape} ")
    text = re.sub(r"\.\.\.+", " ... ", text)
    text = re.sub(r"--+", " -- ", text)
    text = re.sub(r"([!?;&])", r" \1 ", text)
    tokens = [piece for token in text.split() for piece in _ptb_split_token(token)]
    return " ".join(t for t in tokens if t not in _PTB_DROPPED)


def java_available() -> bool:
    """Whether a ``java`` executable is on PATH (the PTB tokenizer of pycocoevalcap needs one)."""
    return shutil.which("java") is not None


def _tokenize_ptb(captions: Mapping[int, list[str]]) -> dict[int, list[str]]:
    """Tokenise with pycocoevalcap's Java PTB tokenizer; raises RuntimeError if its output does not line up."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # The tokenizer reads one caption per line, so no caption may contain a line break of any kind.
    flat = {key: [{"caption": " ".join(c.split())} for c in caps] for key, caps in captions.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        out = PTBTokenizer().tokenize(flat)
    if any(len(out.get(key, [])) != len(caps) for key, caps in captions.items()):
        raise RuntimeError("the PTB tokenizer returned a different number of captions than it was given")
    return out


@dataclass(frozen=True)
class CiderResult:
    """Corpus CIDEr (pycocoevalcap scale: 1.0 = 100 in papers), per-sample scores and the tokenizer used."""

    score: float
    per_sample: tuple[float, ...]
    tokenizer: Literal["ptb", "python"]


def cider(
    predictions: Sequence[object],
    references: Sequence[Sequence[str]],
    tokenizer: Tokenizer = "auto",
    max_chars: int = MAX_PREDICTION_CHARS,
) -> CiderResult:
    """CIDEr-D of one caption per sample against its references, via ``pycocoevalcap.cider.cider.Cider``.

    ``tokenizer="auto"`` uses the Java PTB tokenizer when ``java`` is on PATH and falls back to
    :func:`ptb_like_tokenize` otherwise (or if the Java run fails); ``"ptb"`` requires Java; ``"python"`` never
    uses it.
    Empty, non-string and overlong predictions are scored as the empty caption (0.0).
    """
    _check_lengths(predictions, references)
    if tokenizer not in ("auto", "ptb", "python"):
        raise ValueError(f"tokenizer must be 'auto', 'ptb' or 'python', got {tokenizer!r}")
    refs: dict[int, list[str]] = {}
    for i, sample_refs in enumerate(references):
        if isinstance(sample_refs, str) or not sample_refs or not all(isinstance(r, str) for r in sample_refs):
            raise ValueError(f"references[{i}] must be a non-empty list of strings, got {sample_refs!r}")
        refs[i] = list(sample_refs)
    hyps = {i: [clean_prediction(p, max_chars) or ""] for i, p in enumerate(predictions)}
    use_ptb = tokenizer == "ptb" or (tokenizer == "auto" and java_available())
    if tokenizer == "ptb" and not java_available():
        raise RuntimeError("tokenizer='ptb' needs Java ('java' is not on PATH); use tokenizer='python' or 'auto'")
    if not refs:
        return CiderResult(0.0, (), "ptb" if use_ptb else "python")
    used: Literal["ptb", "python"] = "python"
    if use_ptb:
        try:
            tok_refs, tok_hyps = _tokenize_ptb(refs), _tokenize_ptb(hyps)
            used = "ptb"
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            if tokenizer == "ptb":
                raise RuntimeError(f"the Java PTB tokenizer failed: {err}") from err
            warnings.warn(f"the Java PTB tokenizer failed ({err}); tokenising in Python instead", stacklevel=2)
    if used == "python":
        tok_refs = {k: [ptb_like_tokenize(c) for c in v] for k, v in refs.items()}
        tok_hyps = {k: [ptb_like_tokenize(c) for c in v] for k, v in hyps.items()}
    score, scores = Cider().compute_score(tok_refs, tok_hyps)
    return CiderResult(float(score), tuple(float(s) for s in scores), used)


# ------------------------------------------------------------------------------------------------------------
# VQA accuracy (official VQAv2 vqaEval.py normalisation)
# ------------------------------------------------------------------------------------------------------------

# Verbatim from the official VQA evaluation (vqaEval.py), quirks included (e.g. the capitalised keys never match
# after lower-casing, and "somebody'd" maps to "somebodyd").
VQA_CONTRACTIONS: Mapping[str, str] = MappingProxyType(
    {
        "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
        "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
        "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
        "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
        "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
        "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
        "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
        "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
        "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
        "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
        "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
        "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
        "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
        "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
        "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
        "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
        "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
        "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
        "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
        "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
        "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
        "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
        "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
        "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
        "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
        "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
        "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
        "youve": "you've",
    }
)  # fmt: skip
VQA_MANUAL_MAP: Mapping[str, str] = MappingProxyType(
    {
        "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
        "seven": "7", "eight": "8", "nine": "9", "ten": "10",
    }
)  # fmt: skip
VQA_ARTICLES: tuple[str, ...] = ("a", "an", "the")
VQA_PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip
# Verbatim, including the official script's malformed look-behind "(?!<=\d)" (a negative look-ahead in effect).
_VQA_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_VQA_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")


def vqa_process_punctuation(text: str) -> str:
    """``processPunctuation`` of the official VQA evaluation, character for character."""
    out = text
    for p in VQA_PUNCTUATION:
        if (p + " " in text or " " + p in text) or _VQA_COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # The official call passes re.UNICODE (32) positionally, i.e. as `count`: at most 32 periods are stripped.
    return _VQA_PERIOD_STRIP.sub("", out, count=int(re.UNICODE))


def vqa_process_digit_article(text: str) -> str:
    """``processDigitArticle`` of the official VQA evaluation: lower-case, number words to digits, no articles."""
    words = [VQA_MANUAL_MAP.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in VQA_ARTICLES]
    return " ".join(VQA_CONTRACTIONS.get(w, w) for w in words)


def vqa_normalize(text: str) -> str:
    """Full official answer normalisation: whitespace cleanup, punctuation, then digits/articles/contractions."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return vqa_process_digit_article(vqa_process_punctuation(text))


def vqa_score(
    prediction: object, answers: Sequence[str], always_normalize: bool = True, max_chars: int = MAX_PREDICTION_CHARS
) -> float:
    """VQA accuracy of one answer: mean over leave-one-annotator-out subsets of ``min(1, matches / 3)``.

    With 10 answers of which k equal the prediction this is ``(k * min(1, (k-1)/3) + (10-k) * min(1, k/3)) / 10``
    (k=2 -> 0.6, k=3 -> 0.9). ``always_normalize=False`` reproduces vqaEval.py's branch that normalises only when the
    annotators disagree; the default normalises the prediction always, as the EvalAI server and LLaVA-style
    evaluations do. A single reference answer is scored by exact match after normalisation.
    """
    if isinstance(answers, str) or not answers:
        raise ValueError(f"answers must be a non-empty list of strings, got {answers!r}")
    pred = clean_prediction(prediction, max_chars)
    if pred is None:
        return 0.0
    gts = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    pred = pred.replace("\n", " ").replace("\t", " ").strip()
    if always_normalize or len(set(gts)) > 1:
        gts = [vqa_normalize(a) for a in gts]
        pred = vqa_normalize(pred)
    if not pred:
        return 0.0
    if len(gts) == 1:
        return float(gts[0] == pred)
    matches = [gt == pred for gt in gts]
    total = sum(matches)
    # Leaving annotator i out, the other annotators agree with the prediction (total - matches[i]) times.
    return sum(min(1.0, (total - m) / 3) for m in matches) / len(gts)


def vqa_accuracy(
    predictions: Sequence[object], answers: Sequence[Sequence[str]], always_normalize: bool = True
) -> float:
    """Mean :func:`vqa_score` over samples (0.0 for none)."""
    _check_lengths(predictions, answers, "answer lists")
    return _mean([vqa_score(p, a, always_normalize) for p, a in zip(predictions, answers, strict=True)])


# ------------------------------------------------------------------------------------------------------------
# Exact match, multiple choice, True/False, yes/no
# ------------------------------------------------------------------------------------------------------------


def normalize_short_answer(text: str) -> str:
    """First line, lower-cased, whitespace collapsed, trailing periods and surrounding quotes removed."""
    first_line = text.strip().split("\n", 1)[0]
    return " ".join(first_line.lower().split()).strip("\"'").rstrip(".").strip()


def exact_match_score(
    prediction: object, references: str | Sequence[str], max_chars: int = MAX_PREDICTION_CHARS
) -> float:
    """1.0 if the normalised prediction equals any normalised reference (GQA-style exact match), else 0.0."""
    refs = [references] if isinstance(references, str) else list(references)
    pred = clean_prediction(prediction, max_chars)
    if pred is None:
        return 0.0
    norm = normalize_short_answer(pred)
    return float(bool(norm) and any(norm == normalize_short_answer(r) for r in refs))


def exact_match_accuracy(predictions: Sequence[object], references: Sequence[str | Sequence[str]]) -> float:
    """Mean :func:`exact_match_score` over samples (0.0 for none)."""
    _check_lengths(predictions, references)
    return _mean([exact_match_score(p, r) for p, r in zip(predictions, references, strict=True)])


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
    _check_lengths(predictions, gold_letters, "gold letters")
    counts = [num_choices] * len(predictions) if isinstance(num_choices, int) else list(num_choices)
    _check_lengths(predictions, counts, "option counts")
    gold = []
    for i, (letter, n) in enumerate(zip(gold_letters, counts, strict=True)):
        if not (isinstance(letter, str) and len(letter.strip()) == 1 and letter.strip().upper() in OPTION_LETTERS[:n]):
            raise ValueError(f"gold_letters[{i}]={letter!r} is not one of the first {n} option letters")
        gold.append(OPTION_LETTERS.index(letter.strip().upper()))
    return _mean([float(parse_choice(p, n) == g) for p, g, n in zip(predictions, gold, counts, strict=True)])


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
    _check_lengths(predictions, labels, "labels")
    gold = [_as_bool(label, f"labels[{i}]") for i, label in enumerate(labels)]
    return _mean([float(parse_true_false(p) is g) for p, g in zip(predictions, gold, strict=True)])


def pope_metrics(predictions: Sequence[object], labels: Sequence[object]) -> dict[str, float]:
    """POPE accuracy, precision, recall, F1 and yes-ratio ("yes" is the positive class), with the raw counts.

    A prediction that parses to neither yes nor no (see :func:`parse_yes_no`) is wrong: it counts as a false negative
    for a "yes" question and as a false positive for a "no" question, is reported under ``invalid``, and is not a
    "yes" for ``yes_ratio`` (the fraction of predictions parsed as yes).
    """
    _check_lengths(predictions, labels, "labels")
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


# ------------------------------------------------------------------------------------------------------------
# Grounding and Visual7W pointing
# ------------------------------------------------------------------------------------------------------------


def _parse_box_safe(prediction: object, max_chars: int) -> tuple[float, float, float, float] | None:
    """:func:`parse_box` on a cleaned prediction; None for unusable or degenerate (zero-area) boxes."""
    text = clean_prediction(prediction, max_chars)
    box = parse_box(text) if text is not None else None
    if box is None or box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def _check_box(box: object, where: str) -> tuple[float, float, float, float]:
    """A reference box as four finite floats, or ValueError naming ``where``."""
    try:
        values = tuple(float(v) for v in box)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where}: expected a box [x1, y1, x2, y2] of 4 finite numbers, got {box!r}")
    return values  # type: ignore[return-value]


def grounding_score(
    prediction: object, box: Box, threshold: float = 0.5, max_chars: int = MAX_PREDICTION_CHARS
) -> float:
    """1.0 if the first ``[x1,y1,x2,y2]`` in the prediction has IoU > ``threshold`` with ``box``, else 0.0."""
    ref = _check_box(box, "reference box")
    pred = _parse_box_safe(prediction, max_chars)
    return float(pred is not None and box_iou(pred, ref) > threshold)


def grounding_accuracy(predictions: Sequence[object], boxes: Sequence[Box], threshold: float = 0.5) -> float:
    """Fraction of predictions whose parsed box overlaps the reference with IoU > ``threshold`` (malformed: wrong)."""
    _check_lengths(predictions, boxes, "reference boxes")
    for i, box in enumerate(boxes):
        _check_box(box, f"boxes[{i}]")
    return _mean([grounding_score(p, b, threshold) for p, b in zip(predictions, boxes, strict=True)])


def choose_candidate(
    prediction: object, candidates: Sequence[Box], max_chars: int = MAX_PREDICTION_CHARS
) -> int | None:
    """Index of the candidate box a prediction points at, or None.

    A predicted ``[x1,y1,x2,y2]`` picks the candidate with the highest IoU (None when it overlaps none, or when the
    best IoU is shared: ambiguous); otherwise an option letter (``"B"``) picks that candidate directly.
    """
    refs = [_check_box(c, f"candidates[{i}]") for i, c in enumerate(candidates)]
    box = _parse_box_safe(prediction, max_chars)
    if box is None:
        return parse_choice(prediction, len(refs), max_chars=max_chars)
    ious = [box_iou(box, c) for c in refs]
    best = max(ious, default=0.0)
    if best <= 0.0 or ious.count(best) > 1:
        return None
    return ious.index(best)


def pointing_accuracy(
    predictions: Sequence[object], candidates: Sequence[Sequence[Box]], gold_indices: Sequence[int]
) -> float:
    """Visual7W pointing accuracy: fraction whose chosen candidate (:func:`choose_candidate`) is the gold one."""
    _check_lengths(predictions, candidates, "candidate lists")
    _check_lengths(predictions, gold_indices, "gold indices")
    for i, (cands, gold) in enumerate(zip(candidates, gold_indices, strict=True)):
        if not 0 <= gold < len(cands):
            raise ValueError(f"gold_indices[{i}]={gold} is out of range for {len(cands)} candidates")
    return _mean(
        [float(choose_candidate(p, c) == g) for p, c, g in zip(predictions, candidates, gold_indices, strict=True)]
    )
