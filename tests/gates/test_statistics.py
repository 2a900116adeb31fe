from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest

from neuroerp_ci.gates.statistics import compare_samples, hodges_lehmann


def test_hodges_lehmann_is_the_median_of_pairwise_differences() -> None:
    current, baseline = [3.0, 7.0, 8.0, 15.0], [1.0, 2.0, 4.0]
    brute = statistics.median(c - b for c, b in itertools.product(current, baseline))
    assert hodges_lehmann(current, baseline) == brute
    result = compare_samples(current, baseline, worse="greater", alpha=0.05)
    assert result.shift == brute


def test_known_shift_is_estimated_and_covered() -> None:
    rng = np.random.default_rng(11)
    baseline = rng.normal(100, 5, 600)
    current = rng.normal(110, 5, 120)
    result = compare_samples(list(current), list(baseline), worse="greater", alpha=0.01)
    assert 9 < result.shift < 11
    assert result.low < 10 < result.high
    assert result.high - result.low < 4
    assert result.p_value < 1e-20
    assert result.confidence == pytest.approx(0.98)
    assert (result.current_n, result.baseline_n) == (120, 600)
    assert result.baseline_median == pytest.approx(float(np.median(baseline)))


def test_direction_of_the_alternative() -> None:
    rng = np.random.default_rng(12)
    baseline, current = list(rng.normal(100, 5, 200)), list(rng.normal(90, 5, 100))
    assert compare_samples(current, baseline, worse="less", alpha=0.01).p_value < 1e-6
    assert compare_samples(current, baseline, worse="greater", alpha=0.01).p_value > 0.99


def test_interval_covers_the_true_shift_at_its_level() -> None:
    rng = np.random.default_rng(13)
    covered = 0
    trials = 300
    for _ in range(trials):
        baseline = rng.lognormal(3, 0.3, 150)
        current = rng.lognormal(3, 0.3, 50) + 2.0
        result = compare_samples(list(current), list(baseline), worse="greater", alpha=0.05)
        covered += result.low <= 2.0 <= result.high
    # nominal 90 %; the floor()ed rank makes it slightly conservative
    assert 0.86 <= covered / trials <= 0.97


def test_subsampled_pairs_agree_with_all_pairs_and_are_reproducible() -> None:
    rng = np.random.default_rng(14)
    baseline, current = list(rng.normal(50, 4, 400)), list(rng.normal(53, 4, 100))
    full = compare_samples(current, baseline, worse="greater", alpha=0.01)
    sub = compare_samples(current, baseline, worse="greater", alpha=0.01, max_pairs=20_000)
    again = compare_samples(current, baseline, worse="greater", alpha=0.01, max_pairs=20_000)
    assert sub == again
    assert abs(sub.shift - full.shift) < 0.15
    assert abs(sub.low - full.low) < 0.3 and abs(sub.high - full.high) < 0.3
    assert sub.p_value == full.p_value  # the test always sees every sample


def test_heavy_ties_still_give_an_interval() -> None:
    baseline = [1.0] * 40 + [2.0] * 40 + [3.0] * 20
    current = [2.0] * 30 + [3.0] * 30 + [4.0] * 10
    result = compare_samples(current, baseline, worse="greater", alpha=0.01)
    assert result.shift == 1.0
    assert result.low <= result.shift <= result.high
    assert result.p_value < 0.01


def test_non_finite_samples_are_dropped() -> None:
    result = compare_samples([1.0, math.nan, 2.0, math.inf], [1.0, 2.0], worse="greater", alpha=0.1)
    assert (result.current_n, result.baseline_n) == (2, 2)


@pytest.mark.parametrize(
    ("current", "baseline", "alpha", "message"),
    [
        ([], [1.0], 0.01, "no finite current sample"),
        ([1.0], [math.nan], 0.01, "no finite baseline sample"),
        ([1.0], [1.0], 0.5, "alpha"),
        ([1.0], [1.0], 0.0, "alpha"),
    ],
)
def test_bad_inputs(
    current: list[float], baseline: list[float], alpha: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compare_samples(current, baseline, worse="greater", alpha=alpha)
