"""Boxes in the paper's ``[x1,y1,x2,y2]`` text form: parsing, IoU, grounding accuracy and Visual7W pointing.

- Grounding accuracy: IoU > 0.5 between the parsed box and the reference box (the paper's RefCOCO metric).
- Visual7W pointing: the predicted box (or option letter) picks the candidate box with the highest IoU.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .choices import parse_choice
from .predictions import MAX_PREDICTION_CHARS, check_lengths, clean_prediction, mean

__all__ = [
    "box_iou",
    "box_ious",
    "choose_candidate",
    "grounding_accuracy",
    "grounding_score",
    "mean_iou",
    "parse_box",
    "pointing_accuracy",
]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
# Four comma-separated numbers in square brackets, tolerating whitespace anywhere between the tokens.
_BOX = re.compile(r"\[\s*" + r"\s*,\s*".join([f"({_NUMBER})"] * 4) + r"\s*\]")

Box = Sequence[float]


def parse_box(text: str) -> Box | None:
    """First ``[x1,y1,x2,y2]`` in ``text`` as floats, or None if absent, malformed or inverted."""
    if not isinstance(text, str):
        return None
    match = _BOX.search(text)
    if match is None:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in match.groups())
    except ValueError:  # pragma: no cover - the regex only admits valid float literals
        return None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 < x1 or y2 < y1:
        return None
    return x1, y1, x2, y2


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection-over-union of two ``(x1, y1, x2, y2)`` boxes; 0.0 when the union has no area."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    # Inverted boxes are treated as empty rather than as having negative area.
    area_a = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1)
    area_b = max(0.0, bx2 - bx1) * max(0.0, by2 - by1)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


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
    check_lengths(predictions, boxes, "reference boxes")
    for i, box in enumerate(boxes):
        _check_box(box, f"boxes[{i}]")
    return mean([grounding_score(p, b, threshold) for p, b in zip(predictions, boxes, strict=True)])


def box_ious(predictions: Sequence[object], boxes: Sequence[Box]) -> list[float]:
    """IoU of each prediction's parsed box with its reference box; 0.0 where a prediction holds no usable box."""
    check_lengths(predictions, boxes, "reference boxes")
    refs = [_check_box(box, f"boxes[{i}]") for i, box in enumerate(boxes)]
    parsed = [_parse_box_safe(p, MAX_PREDICTION_CHARS) for p in predictions]
    return [0.0 if box is None else box_iou(box, ref) for box, ref in zip(parsed, refs, strict=True)]


def mean_iou(predictions: Sequence[object], boxes: Sequence[Box]) -> float:
    """Mean :func:`box_ious` (0.0 for none): a graded view of grounding, below the accuracy threshold too."""
    return mean(box_ious(predictions, boxes))


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
    check_lengths(predictions, candidates, "candidate lists")
    check_lengths(predictions, gold_indices, "gold indices")
    for i, (cands, gold) in enumerate(zip(candidates, gold_indices, strict=True)):
        if not 0 <= gold < len(cands):
            raise ValueError(f"gold_indices[{i}]={gold} is out of range for {len(cands)} candidates")
    return mean(
        [float(choose_candidate(p, c) == g) for p, c, g in zip(predictions, candidates, gold_indices, strict=True)]
    )
