"""Bootstrap intervals on hand-made cases whose answer is known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.eval.metrics import bootstrap_interval, paired_difference_interval


def test_constant_scores_have_a_zero_width_interval() -> None:
    interval = bootstrap_interval([0.7] * 50)
    assert (interval.mean, interval.low, interval.high) == pytest.approx((0.7, 0.7, 0.7))


def test_two_examples_span_the_whole_range() -> None:
    # Resampled means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5% quantiles are 0, 1.
    interval = bootstrap_interval([0.0, 1.0], resamples=4000)
    assert (interval.mean, interval.low, interval.high) == (0.5, 0.0, 1.0)


def test_bernoulli_interval_matches_the_normal_approximation() -> None:
    # 200 of 400 correct: the mean's standard error is sqrt(0.25 / 400) = 0.025, so the 95% interval is +-1.96 * 0.025.
    values = [1.0] * 200 + [0.0] * 200
    interval = bootstrap_interval(values, resamples=20000, seed=3)
    half = 1.959964 * math.sqrt(0.25 / 400)
    assert interval.low == pytest.approx(0.5 - half, abs=0.006)
    assert interval.high == pytest.approx(0.5 + half, abs=0.006)
    assert interval.excludes(0.4) and not interval.excludes(0.5)


def test_paired_difference_cancels_what_both_share() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(300)
    shifted = paired_difference_interval(a, a + 0.1)
    assert (shifted.mean, shifted.low, shifted.high) == pytest.approx((0.1, 0.1, 0.1))
    same = paired_difference_interval(a, a)
    assert (same.low, same.high) == (0.0, 0.0) and not same.excludes(0.0)
    # independent scores: the difference's interval is wider than either mean's and holds their difference
    b = rng.random(300)
    diff = paired_difference_interval(a, b)
    assert diff.mean == pytest.approx(b.mean() - a.mean())
    assert diff.high - diff.low > bootstrap_interval(a).high - bootstrap_interval(a).low


def test_same_seed_same_interval_other_seed_other_draws() -> None:
    values = np.random.default_rng(1).random(100)
    assert bootstrap_interval(values, seed=5) == bootstrap_interval(values, seed=5)
    assert bootstrap_interval(values, seed=5) != bootstrap_interval(values, seed=6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_interval([]), "non-empty"),
        (lambda: bootstrap_interval([0.5, float("nan")]), "index 1"),
        (lambda: bootstrap_interval([0.5], confidence=1.0), "confidence"),
        (lambda: paired_difference_interval([0.1, 0.2], [0.3]), "same examples"),
    ],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
