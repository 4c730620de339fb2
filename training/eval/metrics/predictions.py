"""Raw model outputs before scoring: what counts as a usable prediction, and the shared length check."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MAX_PREDICTION_CHARS", "check_lengths", "clean_prediction", "mean"]

MAX_PREDICTION_CHARS = 2048
"""Predictions longer than this (degenerate repetitions) are scored as wrong rather than parsed."""


def clean_prediction(prediction: object, max_chars: int = MAX_PREDICTION_CHARS) -> str | None:
    """The stripped prediction, or None when it is not a string, empty or longer than ``max_chars``."""
    if not isinstance(prediction, str) or len(prediction) > max_chars:
        return None
    prediction = prediction.strip()
    return prediction or None


def check_lengths(predictions: Sequence[object], references: Sequence[object], what: str = "references") -> None:
    """Raise ValueError when predictions and references differ in number."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} {what}")


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean, 0.0 for an empty sequence."""
    return sum(values) / len(values) if values else 0.0
