from __future__ import annotations

import random
import statistics

import pytest

from neuroerp_ci.percentiles import median, percentile, summary


def test_known_values_match_numpy_linear() -> None:
    # Reference values computed by hand with numpy's "linear" rule: pos = (n-1)*q/100.
    data = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(data, 0) == 15.0
    assert percentile(data, 100) == 50.0
    assert percentile(data, 50) == 35.0
    assert percentile(data, 40) == pytest.approx(29.0)  # pos 1.6: 20 + 0.6 * 15
    assert percentile(data, 95) == pytest.approx(48.0)  # pos 3.8: 40 + 0.8 * 10
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0


def test_order_of_input_does_not_matter() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert median([9.0, 1.0, 5.0, 3.0]) == 4.0


def test_single_value_is_every_percentile() -> None:
    assert percentile([7.5], 0) == percentile([7.5], 99) == 7.5


@pytest.mark.parametrize("seed", range(5))
def test_equals_statistics_quantiles_inclusive(seed: int) -> None:
    rng = random.Random(seed)
    data = [rng.expovariate(0.1) for _ in range(rng.randint(2, 300))]
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    for q, expected in enumerate(cuts, start=1):
        assert percentile(data, q) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_summary() -> None:
    data = [float(v) for v in range(1, 101)]  # 1..100
    s = summary(data)
    assert (s.count, s.min, s.max) == (100, 1.0, 100.0)
    assert s.mean == pytest.approx(50.5)
    assert s.p50 == pytest.approx(50.5)
    assert s.p95 == pytest.approx(95.05)
    assert s.p99 == pytest.approx(99.01)


@pytest.mark.parametrize(
    ("values", "q"),
    [([], 50), ([1.0], -1), ([1.0], 100.5), ([1.0, float("nan")], 50), ([float("inf")], 50)],
)
def test_invalid_input_is_refused(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_summary_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        summary([])
