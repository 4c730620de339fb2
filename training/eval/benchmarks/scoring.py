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
    """CIDEr over the corpus, and over each domain's samples when they carry one (NoCaps: in/near/out-domain)."""
    result = metrics.cider(predictions, [s.references for s in samples])
    scores = {"cider": result.score}
    for domain in sorted({s.extra["domain"] for s in samples if "domain" in s.extra}):
        chosen = [i for i, s in enumerate(samples) if s.extra.get("domain") == domain]
        subset = metrics.cider([predictions[i] for i in chosen], [samples[i].references for i in chosen])
        scores[f"cider_{domain}"] = subset.score  # CIDEr-D's document frequencies come from that domain alone
    return scores, list(result.per_sample), {"tokenizer": result.tokenizer}


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
    """POPE accuracy / precision / recall / F1 / yes-ratio by the official rule, and by our strict parser beside it."""
    labels = [s.references[0] for s in samples]
    official = [metrics.pope_official_answer(p) for p in predictions]
    per = [float(answer == label) for answer, label in zip(official, labels, strict=True)]
    strict = metrics.pope_metrics(predictions, labels)
    scores = {**metrics.pope_metrics(official, labels), **{f"strict_{k}": v for k, v in strict.items()}}
    scores.pop("invalid")  # the official rule answers every prediction
    note = "official POPE rule (no 'no'/'not'/'No' in the first sentence: yes); strict_*: our parser"
    return scores, per, {"pope": note}


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
