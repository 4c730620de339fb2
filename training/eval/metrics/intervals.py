"""Confidence intervals of scores that are means over examples: the percentile bootstrap, alone and paired.

A score such as accuracy or token F1 is the mean of per-example values; :func:`bootstrap_interval` resamples the
examples with replacement and takes the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
resampled means (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13). Two models scored on the
same examples are compared with :func:`paired_difference_interval`: the per-example differences are resampled
together, which accounts for the examples both find easy or hard. Both are deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_interval", "paired_difference_interval"]

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    confidence: float

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval (e.g. 0 for a difference that is resolved)."""
        return value < self.low or value > self.high

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "confidence": self.confidence}


def _check(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty sequence of numbers, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds a non-finite value at index {int(np.flatnonzero(~np.isfinite(array))[0])}")
    return array


def bootstrap_interval(
    values: Sequence[float],
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """The mean of ``values`` with its percentile-bootstrap interval over the examples."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    array = _check(values, "values")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, array.size, size=(resamples, array.size))
    means = array[indices].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(array.mean()), float(low), float(high), confidence)


def paired_difference_interval(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """``mean(b) - mean(a)`` with the bootstrap interval of the per-example differences (same examples, same order)."""
    first, second = _check(a, "a"), _check(b, "b")
    if first.size != second.size:
        raise ValueError(f"paired scores need the same examples: {first.size} values against {second.size}")
    return bootstrap_interval(second - first, confidence, resamples, seed)
