"""Small, pure evaluation metrics for the demo tasks: captioning, short VQA and visual grounding.

Text answers are compared after SQuAD-style normalisation; grounding answers are parsed from the paper's
``[x1,y1,x2,y2]`` box format and scored by intersection-over-union.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

__all__ = [
    "SCORED_TASKS",
    "box_iou",
    "exact_match",
    "grounding_accuracy",
    "normalize_answer",
    "parse_box",
    "score_task",
    "token_f1",
]

SCORED_TASKS: tuple[str, ...] = ("caption", "vqa", "grounding")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
# Four comma-separated numbers in square brackets, tolerating whitespace anywhere between the tokens.
_BOX = re.compile(r"\[\s*" + r"\s*,\s*".join([f"({_NUMBER})"] * 4) + r"\s*\]")

Box = tuple[float, float, float, float]


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation and articles (a/an/the) and collapse whitespace."""
    # Punctuation goes first, as in the SQuAD script, so "the," still counts as an article.
    s = s.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(pred: str, refs: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference, else 0.0."""
    refs = [refs] if isinstance(refs, str) else refs
    norm = normalize_answer(pred)
    return float(any(norm == normalize_answer(ref) for ref in refs))


def token_f1(pred: str, ref: str) -> float:
    """SQuAD-style bag-of-tokens F1 between normalised prediction and reference."""
    pred_tokens, ref_tokens = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not pred_tokens or not ref_tokens:
        # Both empty is a perfect match; exactly one empty cannot share any token.
        return float(pred_tokens == ref_tokens)
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


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


def _ious(preds: Sequence[str], boxes: Sequence[Sequence[float]]) -> list[float]:
    """IoU of each parsed prediction with its reference box; unparsable predictions score 0.0."""
    if len(preds) != len(boxes):
        raise ValueError(f"got {len(preds)} predictions but {len(boxes)} reference boxes")
    ious = []
    for pred, ref in zip(preds, boxes, strict=True):
        box = parse_box(pred)
        ious.append(0.0 if box is None else box_iou(box, ref))
    return ious


def grounding_accuracy(preds: Sequence[str], boxes: Sequence[Sequence[float]], threshold: float = 0.5) -> float:
    """Fraction of predictions whose parsed box has IoU > ``threshold`` with the reference (0.0 if empty)."""
    ious = _ious(preds, boxes)
    return sum(iou > threshold for iou in ious) / len(ious) if ious else 0.0


def _mean(values: Sequence[float]) -> float:
    """Arithmetic mean, 0.0 for an empty sequence."""
    return sum(values) / len(values) if values else 0.0


def score_task(task: str, preds: Sequence[str], refs_or_boxes: Sequence) -> dict[str, float]:
    """Aggregate metrics for one task: caption, vqa (text references) or grounding (reference boxes)."""
    if task not in SCORED_TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(SCORED_TASKS)}")
    if len(preds) != len(refs_or_boxes):
        raise ValueError(f"got {len(preds)} predictions but {len(refs_or_boxes)} references")
    if task == "grounding":
        ious = _ious(preds, refs_or_boxes)
        return {"accuracy": grounding_accuracy(preds, refs_or_boxes), "mean_iou": _mean(ious)}
    # A reference may be a single string or several acceptable strings; the best match counts.
    refs = [[r] if isinstance(r, str) else list(r) for r in refs_or_boxes]
    em = [exact_match(p, r) for p, r in zip(preds, refs, strict=True)]
    if task == "vqa":
        return {"accuracy": _mean(em)}
    f1 = [max((token_f1(p, ref) for ref in r), default=0.0) for p, r in zip(preds, refs, strict=True)]
    return {"exact_match": _mean(em), "token_f1": _mean(f1)}
