"""Where gate conditions get their baselines from: a small protocol the store implements.

The runner passes the history store's provider to :func:`~neuroerp_ci.gates.evaluate_stage`;
runs without a store use :data:`NO_BASELINES`, so every baseline condition reports
"no baseline yet" instead of passing silently.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Protocol

from neuroerp_ci.model import Baseline, FindingsBaseline


class BaselineProvider(Protocol):
    def baseline(self, check: str, metric: str) -> Baseline | None:
        """The baseline of ``metric`` of ``check``, or None when there is none yet."""

    def findings(self, check: str) -> FindingsBaseline | None:
        """The findings of ``check`` in the baseline run, or None without such a run."""


class NoBaselines:
    """For runs without a history store: every baseline condition reports 'no baseline'."""

    def baseline(self, check: str, metric: str) -> Baseline | None:
        return None

    def findings(self, check: str) -> FindingsBaseline | None:
        return None


NO_BASELINES: BaselineProvider = NoBaselines()


def usable(baseline: Baseline | None) -> Baseline | None:
    """The baseline with non-finite values and samples dropped; None if no value is left.

    Values and runs are paired (newest first) when there are as many of each; a run whose
    value is NaN is then dropped with it.
    """
    if baseline is None:
        return None
    values, runs = baseline.values, baseline.runs
    if len(values) == len(runs):
        kept = [(v, r) for v, r in zip(values, runs, strict=True) if math.isfinite(v)]
        values, runs = tuple(v for v, _ in kept), tuple(r for _, r in kept)
    else:
        values = tuple(v for v in values if math.isfinite(v))
    if not values:
        return None
    samples = tuple(s for s in baseline.samples if math.isfinite(s))
    return replace(baseline, values=values, runs=runs, samples=samples)


def runs_text(baseline: Baseline) -> str:
    """Which runs formed the baseline, for a reason: ``"5 runs"``, ``"pinned run <id>"``."""
    if baseline.pinned:
        return "pinned run " + ", ".join(baseline.runs)
    count = len(baseline.runs)
    return f"{count} run" if count == 1 else f"{count} runs"


def change_pct(value: float, base: float) -> float | None:
    """``(value - base) / |base| * 100``; None when the baseline is 0 (no relative change)."""
    if base == 0:
        return None
    return (value - base) / abs(base) * 100.0
