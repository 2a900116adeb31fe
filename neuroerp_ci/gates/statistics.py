"""Two-sample statistics for regression conditions: a rank test and a shift with its interval.

:func:`compare_samples` answers "is this run worse than the baseline, and by how much?":

- the **p-value** of a one-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``; exact
  for small samples without ties, else the normal approximation with tie and continuity
  corrections), in the direction that is worse for the metric;
- the **Hodges-Lehmann shift**: the median of all pairwise differences ``current - baseline``,
  a robust estimate of how far the current distribution moved (one slow outlier moves it
  by at most one rank, unlike a mean or a p95);
- its **confidence interval** obtained by inverting the Mann-Whitney test (Hollander & Wolfe,
  *Nonparametric Statistical Methods*, 3.3): the ``k``-th smallest and largest pairwise
  differences, ``k`` from the U statistic's normal approximation with the tie-corrected
  variance. It is distribution-free and agrees with the test: the two-sided
  ``1 - 2 * alpha`` interval excludes 0 exactly when the one-sided test rejects at ``alpha``.

With more than :data:`MAX_PAIRS` pairs (a load test's thousands of samples) the pairwise
differences are a uniform random subsample of pairs drawn with a fixed seed, so the same
inputs always give the same answer; the interval's ends are then read at the same ranks as
fractions of all pairs.

Example::

    >>> result = compare_samples([11, 12, 13, 14, 15], [10, 11, 12, 13, 14],
    ...                          worse="greater", alpha=0.05)
    >>> result.shift
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

MAX_PAIRS = 2_000_000  # pairwise differences held in memory at once (16 MB of float64)
SEED = 20_240_917  # fixed: the subsample of pairs, and so the verdict, is reproducible

Worse = Literal["greater", "less"]  # which way of the current samples is bad for the metric

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ShiftComparison:
    """How the current samples compare with the baseline samples (in the samples' unit)."""

    p_value: float  # one-sided Mann-Whitney, alternative: current is worse
    shift: float  # Hodges-Lehmann estimate of current - baseline
    low: float  # confidence interval of the shift
    high: float
    confidence: float  # of the two-sided interval, 1 - 2 * alpha
    current_n: int
    baseline_n: int
    baseline_median: float


def compare_samples(
    current: Sequence[float],
    baseline: Sequence[float],
    *,
    worse: Worse,
    alpha: float,
    max_pairs: int = MAX_PAIRS,
) -> ShiftComparison:
    """Test whether ``current`` is worse than ``baseline`` and estimate the shift.

    ``worse="greater"`` for a metric where lower is better (latency), ``"less"`` where
    higher is better (throughput). Non-finite samples are dropped. Raises ValueError when
    either side has no finite sample or ``alpha`` is not in (0, 0.5).
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    x, y = _finite(current, "current"), _finite(baseline, "baseline")
    from scipy import stats  # imported here: 1.2 s that runs without regression conditions skip

    test = stats.mannwhitneyu(x, y, alternative=worse, method="auto")
    p_value = float(test.pvalue)
    k = _interval_rank(x, y, alpha)
    shift, low, high = _pairwise_quantiles(x, y, k, max_pairs)
    return ShiftComparison(
        p_value=p_value,
        shift=shift,
        low=low,
        high=high,
        confidence=1 - 2 * alpha,
        current_n=len(x),
        baseline_n=len(y),
        baseline_median=float(np.median(y)),
    )


def hodges_lehmann(current: Sequence[float], baseline: Sequence[float]) -> float:
    """The median of all pairwise differences ``current - baseline`` (small inputs)."""
    x, y = _finite(current, "current"), _finite(baseline, "baseline")
    return float(np.median(np.subtract.outer(x, y)))


def _finite(values: Sequence[float], what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise ValueError(f"no finite {what} sample")
    return array


def _interval_rank(x: FloatArray, y: FloatArray, alpha: float) -> int:
    """``k``: the interval is the k-th smallest .. k-th largest pairwise difference.

    Normal approximation of U with the tie-corrected variance; floor() keeps the interval
    on the wide (conservative) side; at least 1, so the interval always exists.
    """
    n, m = len(x), len(y)
    pairs = n * m
    _, counts = np.unique(np.concatenate([x, y]), return_counts=True)
    total = n + m
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    variance = pairs / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha))
    k = math.floor(pairs / 2 - z * math.sqrt(max(variance, 0.0)))
    return max(1, min(k, (pairs + 1) // 2))


def _pairwise_quantiles(
    x: FloatArray, y: FloatArray, k: int, max_pairs: int
) -> tuple[float, float, float]:
    """(median, k-th smallest, k-th largest) of the differences ``x_i - y_j``."""
    pairs = len(x) * len(y)
    if pairs <= max_pairs:
        diffs = np.subtract.outer(x, y).ravel()
        lo_i, hi_i = k - 1, pairs - k
        ordered = np.partition(diffs, [lo_i, hi_i])
        return float(np.median(diffs)), float(ordered[lo_i]), float(ordered[hi_i])
    rng = np.random.default_rng(SEED)
    diffs = x[rng.integers(0, len(x), max_pairs)] - y[rng.integers(0, len(y), max_pairs)]
    # The same ranks, as fractions of all pairs, read from the subsample.
    lo_q, hi_q = (k - 1) / (pairs - 1), (pairs - k) / (pairs - 1)
    med, low, high = np.quantile(diffs, [0.5, lo_q, hi_q])
    return float(med), float(low), float(high)
