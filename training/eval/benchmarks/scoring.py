"""Scoring by task: one scorer per kind of sample, each giving the scores, per-sample scores and notes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from .. import metrics
from ..metrics.predictions import mean
from .samples import EvalSample

__all__ = ["PRIMARY_METRIC", "SCORERS"]

_Scored = tuple[dict[str, float], list[float], dict[str, str]]


def _score_caption(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """CIDEr over the corpus."""
    result = metrics.cider(predictions, [s.references for s in samples])
    return {"cider": result.score}, list(result.per_sample), {"tokenizer": result.tokenizer}


def _score_vqa(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """VQA accuracy against the human answers."""
    per = [metrics.vqa_score(p, s.references) for p, s in zip(predictions, samples, strict=True)]
    return {"vqa_accuracy": mean(per)}, per, {}


def _score_short_answer(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Exact match against the gold answer."""
    per = [metrics.exact_match_score(p, s.references) for p, s in zip(predictions, samples, strict=True)]
    return {"accuracy": mean(per)}, per, {}


def _score_multiple_choice(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy of the parsed option (letter, or the option's exact text)."""
    per = [
        float(metrics.parse_choice(p, len(s.extra["options"]), s.extra["options"]) == s.extra["answer_index"])
        for p, s in zip(predictions, samples, strict=True)
    ]
    return {"accuracy": mean(per)}, per, {}


def _score_pointing(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy of the candidate box picked by IoU with the predicted box (or by the predicted letter)."""
    per = [
        float(metrics.choose_candidate(p, s.extra["candidate_boxes"]) == s.extra["answer_index"])
        for p, s in zip(predictions, samples, strict=True)
    ]
    return {"accuracy": mean(per)}, per, {}


def _score_vsr(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy of the parsed True/False."""
    per = [
        float(metrics.parse_true_false(p) is (s.references[0] == "True"))
        for p, s in zip(predictions, samples, strict=True)
    ]
    return {"accuracy": mean(per)}, per, {}


def _score_pope(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """POPE accuracy / precision / recall / F1 / yes-ratio."""
    labels = [s.references[0] for s in samples]
    per = [float(metrics.parse_yes_no(p) == label) for p, label in zip(predictions, labels, strict=True)]
    return metrics.pope_metrics(predictions, labels), per, {}


def _score_grounding(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy at IoU > 0.5 with the reference box."""
    per = [metrics.grounding_score(p, s.references[0]) for p, s in zip(predictions, samples, strict=True)]
    return {"accuracy": mean(per)}, per, {}


SCORERS: Mapping[str, Callable[[Sequence[object], Sequence[EvalSample]], _Scored]] = MappingProxyType(
    {
        "caption": _score_caption,
        "vqa": _score_vqa,
        "short_answer": _score_short_answer,
        "multiple_choice": _score_multiple_choice,
        "pointing": _score_pointing,
        "vsr": _score_vsr,
        "pope": _score_pope,
        "grounding": _score_grounding,
    }
)


PRIMARY_METRIC: Mapping[str, str] = MappingProxyType(
    {
        "caption": "cider",
        "vqa": "vqa_accuracy",
        "short_answer": "accuracy",
        "multiple_choice": "accuracy",
        "pointing": "accuracy",
        "vsr": "accuracy",
        "pope": "f1",
        "grounding": "accuracy",
    }
)
