"""The statistical regression condition: this run's samples against the baseline's samples.

``regression = { alpha = 0.01, min_effect_pct = 5, min_samples = 20 }`` flags a regression
when BOTH hold:

1. the one-sided Mann-Whitney test says the run is worse than the pooled baseline samples
   (``p < alpha``), and
2. the Hodges-Lehmann shift's two-sided ``1 - 2 * alpha`` confidence interval lies wholly
   beyond ``min_effect_pct`` of the baseline median in the bad direction (for latency: the
   interval's LOWER end is above +5 %).

Why both, and why the interval rather than the estimate: samples pooled from several runs
are not one homogeneous population; the machine drifts between runs by a few percent. With
hundreds of samples the rank test alone calls such drift "significant" (p tiny, effect
+2 %), and a floor on the point estimate alone still fires whenever noise pushes the
estimate just over the floor. Requiring the whole interval beyond the floor means "we are
confident the run is worse by more than the tolerated drift". A real slowdown well above
the floor clears it easily; noise and small drifts do not. Too few samples on either side
is missing data (``on_missing``), never a pass or a fail by accident.

Why this beats a fixed "+10 % on p95 vs the mean of the last 5 runs' p95" (Keptn): a p95 of
60 requests is decided by its 3 slowest, so it jumps by 10 % from run to run with no change
at all, and one slow baseline run drags the mean; the rule has no notion of how noisy the
metric is. The rank test and the Hodges-Lehmann shift use every request, one slow request
moves them by one rank, and the interval says how sure the estimate is.
``benchmarks/regression_detection.py`` measures both against the demo service.

Honest uncertainty: the interval also says how large a shift these samples could detect. The
**minimum detectable effect** (MDE) is the shift the test finds with 80 % power at this run's
sample sizes and spread: ``(z(1 - alpha) + z(0.8)) * SE``, the standard error read from the
interval's width. When the run did not regress, its interval reaches past ``min_effect_pct``
and the MDE exceeds ``min_effect_pct``, the samples cannot tell "no regression" from a
regression that matters: the outcome is INCONCLUSIVE ("cannot detect shifts below 38 % with
n=30; about n=120 would"), never PASS. An interval wholly below the floor is a confident pass
whatever the MDE. With ``min_effect_pct = 0`` the MDE is reported but decides nothing.

Alternatives measured and rejected on the benchmark's data: the rank test alone (Kayenta
style) flags run-to-run drift as significant; a floor on the point estimate (``> 10 %``)
or on the interval raised to 7.5-10 % costs detection at +10-20 %; a floor adapted to the
spread of the baseline runs' values (1-3 x their relative spread) cut detection at +20 % to
25-60 %, because a p95 per run is itself too noisy to measure that spread.
"""

from __future__ import annotations

import math

from pydantic import Field

from neuroerp_ci.gates.baselines import change_pct, runs_text
from neuroerp_ci.gates.conditions.interface import ConditionForm, Evidence, FormParams
from neuroerp_ci.gates.conditions.judgement import Judgement, Resolution
from neuroerp_ci.gates.statistics import compare_samples
from neuroerp_ci.model import Direction
from neuroerp_ci.support.formatting import format_value


class RegressionSpec(FormParams):
    """The statistical regression test of a condition (``regression = { ... }``).

    A regression is a one-sided Mann-Whitney test with ``p < alpha`` AND a Hodges-Lehmann
    shift whose whole confidence interval lies beyond ``min_effect_pct`` of the baseline
    median in the bad direction.
    """

    alpha: float = Field(default=0.01, gt=0, lt=0.5)  # the rank test's significance level
    # the shift's confidence interval must lie wholly beyond this % of the baseline median
    min_effect_pct: float = Field(default=5.0, ge=0)
    # the fewest samples in the run and in the baseline, each (fewer: on_missing decides)
    min_samples: int = Field(default=20, ge=5)


class RegressionParams(FormParams):
    """The ``regression`` table of a condition; ``regression = {}`` takes every default."""

    regression: RegressionSpec  # this run's samples against the baseline runs' samples


class RegressionTest(ConditionForm[RegressionParams]):
    """This run's samples of the metric against the baseline's pooled samples."""

    name = "regression"
    keys = ("regression",)
    params_model = RegressionParams
    needs_baseline = True

    def describe(self, params: RegressionParams, metric: str | None) -> tuple[str, str]:
        """``p95_ms no regression (alpha 0.01, min effect 5 %)`` and its target."""
        spec = params.regression
        limits = f"alpha {spec.alpha:g}, min effect {format_value(spec.min_effect_pct)} %"
        return f"{metric} no regression ({limits})", f"no shift beyond {_floor(spec, None)}"

    def judge(self, params: RegressionParams, evidence: Evidence) -> Judgement:
        """Test the run's samples against the baseline's pooled samples."""
        assert evidence.metric is not None and evidence.baseline is not None  # the dispatcher's
        metric, base, spec = evidence.metric, evidence.baseline, params.regression
        check_id = evidence.check_id
        current = [s for s in metric.samples if math.isfinite(s)]
        _, static_target = self.describe(params, metric.name)
        change = change_pct(metric.value, base.value)

        def missing(reason: str) -> Judgement:
            return Judgement(
                "missing",
                metric.value,
                static_target,
                reason,
                baseline=base.value,
                change_pct=change,
                baseline_runs=base.runs,
            )

        if len(current) < spec.min_samples or len(base.samples) < spec.min_samples:
            reason = (
                f"{check_id}: {metric.name} has too few samples for the regression test:"
                f" {len(current)} in this run, {len(base.samples)} in the baseline"
                f" ({runs_text(base)}); need at least {spec.min_samples} each"
            )
            return missing(reason)
        lower_is_better = metric.direction is Direction.LOWER
        comparison = compare_samples(
            current, base.samples, worse="greater" if lower_is_better else "less", alpha=spec.alpha
        )
        scale = abs(comparison.baseline_median)
        if scale == 0:
            reason = (
                f"{check_id}: {metric.name} baseline median is 0, so a shift cannot be expressed"
                f" in % ({runs_text(base)})"
            )
            return missing(reason)
        effect = comparison.shift / scale * 100.0
        low, high = comparison.low / scale * 100.0, comparison.high / scale * 100.0
        significant = comparison.p_value < spec.alpha
        beyond = low > spec.min_effect_pct if lower_is_better else high < -spec.min_effect_pct
        regressed = significant and beyond
        mde = _mde_pct(low, high, spec.alpha)
        # How far the interval reaches in the bad direction: below the floor, a confident pass.
        reach = high if lower_is_better else -low
        undecided = (
            not regressed
            and spec.min_effect_pct > 0
            and reach >= spec.min_effect_pct
            and mde > spec.min_effect_pct
        )
        needed = _needed_n(comparison.current_n, mde, spec.min_effect_pct) if undecided else None
        stats_text = (
            f"{effect:+.1f} % [{comparison.confidence * 100:g} % CI {low:+.1f}, {high:+.1f}]"
            f" {_p_text(comparison.p_value)} vs {runs_text(base)}"
            f" (min effect {format_value(spec.min_effect_pct)} %,"
            f" n={comparison.current_n} vs {comparison.baseline_n})"
        )
        resolution: Resolution = "breached" if regressed else "met"
        if regressed:
            verdict = "regressed: shift"
        elif undecided:
            resolution = "inconclusive"
            verdict = (
                f"inconclusive: cannot detect shifts below {mde:.0f} %"
                f" with n={comparison.current_n}; about n={needed} would; shift"
            )
        elif significant:
            verdict = "no regression beyond the min effect: shift"
        else:
            verdict = "no significant regression: shift"
        return Judgement(
            resolution,
            metric.value,
            f"no shift beyond {_floor(spec, lower_is_better)}",
            f"{check_id}: {metric.name} {verdict} {stats_text}",
            baseline=base.value,
            change_pct=change,
            p_value=comparison.p_value,
            effect=effect,
            effect_ci=(low, high),
            baseline_runs=base.runs,
            mde_pct=mde,
            needed_n=needed,
        )


POWER_Z = 0.8416  # z(0.8): the MDE is the shift detected in 80 % of runs


def _mde_pct(low: float, high: float, alpha: float) -> float:
    """The minimum detectable effect in %, from the ``1 - 2 * alpha`` interval's width."""
    from scipy import stats  # as statistics.py: only runs with regression conditions pay it

    z = float(stats.norm.ppf(1 - alpha))
    standard_error = (high - low) / 2.0 / z
    return (z + POWER_Z) * standard_error


def _needed_n(current_n: int, mde: float, floor: float) -> int:
    """About how many samples per run (the baseline growing alike) bring the MDE down to
    ``floor``: the standard error shrinks with the square root of the sample size."""
    return math.ceil(current_n * (mde / floor) ** 2)


def _floor(spec: RegressionSpec, lower_is_better: bool | None) -> str:
    floor = format_value(spec.min_effect_pct)
    if lower_is_better is None:
        return f"±{floor} % (alpha {spec.alpha:g})"
    sign = "+" if lower_is_better else "-"
    return f"{sign}{floor} % (alpha {spec.alpha:g})"


def _p_text(p_value: float) -> str:
    return "p<0.0001" if p_value < 1e-4 else f"p={p_value:.2g}"
