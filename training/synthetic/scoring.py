"""Scores of the synthetic tasks: one scorer for all seven, per-task scores of a dataset, the image-blind baseline.

Captions get SQuAD-style exact match and token F1, short answers exact match, grounding accuracy at IoU > 0.5 and
mean IoU (metrics from :mod:`training.eval.metrics`); reading is a case-sensitive exact match, counting compares the
first number, multiple choice the option letter (or, where the gold answer is the option itself, the first line, as
retrieval). :func:`image_blind_answers` gives the floor a model that ignores the image reaches, scored like a model's
predictions.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

import datasets

from modeling_vlm import VLForConditionalGeneration, VLProcessor

from ..eval.generation import generate_answers
from ..eval.metrics import (
    box_ious,
    clean_prediction,
    exact_match,
    parse_choice,
    token_f1,
)
from ..templates import OPTION_LETTERS, multiple_choice_options
from . import shapes, tasks

__all__ = [
    "ALL_TASKS",
    "evaluate_dataset",
    "example_scores",
    "image_blind_answers",
    "parse_count",
    "predictions_by_task",
    "score_predictions",
    "score_task",
]

ALL_TASKS: tuple[str, ...] = (*shapes.TASKS, *tasks.TASKS)
"""Every synthetic task, in the order the demo reports them."""

Scorer = Callable[[str, Sequence[Any], Sequence[Any]], dict[str, float]]

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_INTEGER = re.compile(r"\b(\d+)\b")


def _mean(values: Sequence[float]) -> float:
    """Arithmetic mean, 0.0 for an empty sequence."""
    return sum(values) / len(values) if values else 0.0


def _references(refs: Sequence[Any]) -> list[list[str]]:
    """Each reference as a list of acceptable strings (a reference may be one string or several)."""
    return [[r] if isinstance(r, str) else list(r) for r in refs]


def _caption_examples(preds: Sequence[Any], refs: Sequence[Any]) -> dict[str, list[float]]:
    """Exact match and token F1 against the best of each sample's references."""
    refs = _references(refs)
    return {
        "exact_match": [exact_match(p, r) for p, r in zip(preds, refs, strict=True)],
        "token_f1": [max((token_f1(p, ref) for ref in r), default=0.0) for p, r in zip(preds, refs, strict=True)],
    }


def _vqa_examples(preds: Sequence[Any], refs: Sequence[Any]) -> dict[str, list[float]]:
    """Exact match against any of each sample's references."""
    return {"accuracy": [exact_match(p, r) for p, r in zip(preds, _references(refs), strict=True)]}


def _grounding_examples(preds: Sequence[Any], boxes: Sequence[Any]) -> dict[str, list[float]]:
    """IoU > 0.5 (accuracy) and the IoU itself against the reference boxes."""
    ious = box_ious(preds, boxes)
    return {"accuracy": [float(iou > 0.5) for iou in ious], "mean_iou": ious}


def parse_count(prediction: object) -> int | None:
    """The first integer (digits or a number word up to ten) in a prediction; None when there is none."""
    text = clean_prediction(prediction)
    if text is None:
        return None
    match = _INTEGER.search(text)
    if match:
        return int(match.group(1))
    words = re.findall(r"[a-z]+", text.lower())
    return next((_NUMBER_WORDS.index(w) for w in words if w in _NUMBER_WORDS), None)


def _reading_correct(prediction: object, reference: str) -> float:
    """Case-sensitive exact match after stripping whitespace (case matters when reading)."""
    text = clean_prediction(prediction)
    return float(text is not None and text.split("\n", 1)[0].strip() == reference.strip())


def _first_line_matches(prediction: object, reference: str) -> float:
    """Exact match of the first line, ignoring case and surrounding whitespace ("Row 2, column 3" counts)."""
    text = clean_prediction(prediction)
    return float(text is not None and text.split("\n", 1)[0].strip().lower() == reference.strip().lower())


def _choice_correct(prediction: object, reference: str) -> float:
    """Whether the prediction names the gold option: its letter where the gold answer is a letter (the paper's
    template), else the option itself, as the first line (no option of the synthetic tasks is a capital letter)."""
    gold = reference.strip()
    if len(gold) != 1 or gold not in OPTION_LETTERS:
        return _first_line_matches(prediction, gold)
    index = parse_choice(prediction, len(OPTION_LETTERS))
    return float(index is not None and OPTION_LETTERS[index] == gold)


_PER_SAMPLE: MappingProxyType[str, Callable[[object, str], float]] = MappingProxyType(
    {
        "reading": _reading_correct,
        "counting": lambda p, ref: float(parse_count(p) == int(ref)),
        "multiple_choice": _choice_correct,
        "retrieval": _first_line_matches,
    }
)
_PER_METRIC: MappingProxyType[str, Callable[[Sequence[Any], Sequence[Any]], dict[str, list[float]]]] = (
    MappingProxyType({"caption": _caption_examples, "vqa": _vqa_examples, "grounding": _grounding_examples})
)


def example_scores(task: str, preds: Sequence[Any], refs_or_boxes: Sequence[Any]) -> dict[str, list[float]]:
    """Per-example values of each metric of one task (a task's score is their mean; intervals resample them)."""
    if task not in ALL_TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(ALL_TASKS)}")
    if len(preds) != len(refs_or_boxes):
        raise ValueError(f"got {len(preds)} predictions but {len(refs_or_boxes)} references")
    if task in _PER_METRIC:
        return _PER_METRIC[task](preds, refs_or_boxes)
    return {"accuracy": [_PER_SAMPLE[task](p, str(r)) for p, r in zip(preds, refs_or_boxes, strict=True)]}


def score_task(task: str, preds: Sequence[Any], refs_or_boxes: Sequence[Any]) -> dict[str, float]:
    """Metrics of one synthetic task (grounding against reference boxes, the others against reference answers)."""
    return {metric: _mean(values) for metric, values in example_scores(task, preds, refs_or_boxes).items()}


def predictions_by_task(
    dataset: datasets.Dataset, predictions: Sequence[str]
) -> dict[str, tuple[list[str], list[Any]]]:
    """``{task: (predictions, references)}`` in row order (grounding references are the ``box`` column)."""
    if len(predictions) != len(dataset):
        raise ValueError(f"got {len(predictions)} predictions for {len(dataset)} rows")
    grouped: dict[str, tuple[list[str], list[Any]]] = {}
    for task, answer, box, prediction in zip(
        dataset["task"], dataset["answer"], dataset["box"], predictions, strict=True
    ):
        preds, refs = grouped.setdefault(task, ([], []))
        preds.append(prediction)
        refs.append(box if task == "grounding" else answer)
    return grouped


def score_predictions(
    dataset: datasets.Dataset,
    predictions: Sequence[str],
    scorer: Scorer = score_task,
) -> dict[str, dict[str, float]]:
    """Score one prediction per row of `dataset`, per task, with `scorer` (grounding against ``box``)."""
    if len(predictions) != len(dataset):
        raise ValueError(f"got {len(predictions)} predictions for {len(dataset)} rows")
    by_task: dict[str, list[int]] = defaultdict(list)
    for index, task in enumerate(dataset["task"]):
        by_task[task].append(index)
    answers, boxes = dataset["answer"], dataset["box"]
    scores = {}
    for task, indices in by_task.items():
        refs = [boxes[i] if task == "grounding" else answers[i] for i in indices]
        scores[task] = scorer(task, [predictions[i] for i in indices], refs)
    return scores


def evaluate_dataset(
    model: VLForConditionalGeneration,
    processor: VLProcessor,
    dataset: datasets.Dataset,
    batch_size: int = 16,
    max_new_tokens: int = 32,
    show_progress: bool = True,
    scorer: Scorer = score_task,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Score greedy answers per task with `scorer`; return ``({task: metrics}, predictions)``."""
    predictions = generate_answers(
        model,
        processor,
        dataset["image"],
        dataset["prompt"],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        show_progress=show_progress,
    )
    records = [
        {"task": task, "prompt": prompt, "answer": answer, "prediction": prediction}
        for task, prompt, answer, prediction in zip(
            dataset["task"], dataset["prompt"], dataset["answer"], predictions, strict=True
        )
    ]
    return score_predictions(dataset, predictions, scorer), records


def image_blind_answers(train_set: datasets.Dataset, eval_set: datasets.Dataset) -> list[str]:
    """The best answers that ignore the image: each evaluation prompt's most frequent training answer in its task.

    Scored like a model's predictions, they give the floor that a model which does not look at the image reaches
    (the prompt alone can reveal the answer's form and prior, e.g. "yes" or the commonest count). A prompt never seen
    in training gets its task's most frequent answer among the prompt's options (a multiple-choice guess, with the
    letters or the options as answers), else the task's most frequent answer. Ties go to the answer seen first.
    """
    by_prompt: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_task: dict[str, Counter[str]] = defaultdict(Counter)
    for task, prompt, answer in zip(train_set["task"], train_set["prompt"], train_set["answer"], strict=True):
        by_prompt[task, prompt][answer] += 1
        by_task[task][answer] += 1
    answers = []
    for task, prompt in zip(eval_set["task"], eval_set["prompt"], strict=True):
        counts = by_prompt.get((task, prompt))
        if not counts:
            counts = by_task.get(task, Counter())
            options = {part for item in multiple_choice_options(prompt).items() for part in item}  # letters, texts
            counts = Counter({answer: n for answer, n in counts.items() if answer in options}) or counts
        answers.append(counts.most_common(1)[0][0] if counts else "")
    return answers
