from __future__ import annotations

import math
import random
import statistics

import pytest

from neuroerp_ci.checks._percentiles import median, percentile, summary, weighted_percentile


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


# --- weighted_percentile: histograms such as locust's {bucketed_ms: count} ---------------


@pytest.mark.parametrize("seed", range(8))
def test_weighted_equals_percentile_of_expanded_list(seed: int) -> None:
    rng = random.Random(seed)
    histogram = {float(rng.randint(1, 500)): rng.randint(0, 40) for _ in range(rng.randint(1, 60))}
    histogram[float(rng.randint(1, 500))] = 1  # at least one counted value
    expanded = [value for value, count in histogram.items() for _ in range(count)]
    for q in (0, 1, 10, 25, 50, 66.6, 90, 95, 99, 99.9, 100):
        assert weighted_percentile(histogram, q) == pytest.approx(
            percentile(expanded, q), rel=1e-12, abs=1e-12
        )


def test_weighted_known_values_and_pair_input() -> None:
    assert weighted_percentile({10.0: 1, 20.0: 3}, 50) == 20.0
    # expanded [10, 20, 20, 20]: pos 0.6 of 3 -> 10 + 0.6 * 10
    assert weighted_percentile([(20.0, 3), (10.0, 1)], 20) == pytest.approx(16.0)
    assert weighted_percentile({5.0: 0, 7.0: 2}, 0) == 7.0  # zero counts are ignored


@pytest.mark.parametrize(
    ("histogram", "q"),
    [({}, 50), ({1.0: 0}, 50), ({1.0: -1}, 50), ({1.0: 1.5}, 50), ({math.nan: 1}, 50),
     ({1.0: 1}, 101), ({1.0: 1}, -1)],
)
def test_weighted_rejects_bad_input(histogram: dict[float, float], q: float) -> None:
    with pytest.raises(ValueError):
        weighted_percentile(histogram, q)  # type: ignore[arg-type]
