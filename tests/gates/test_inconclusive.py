"""INCONCLUSIVE: a busy machine, or samples that cannot detect the effect that matters."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from baseline_fakes import DictBaselines, cond, make_baseline, make_check

from neuroerp_ci.gates import evaluate
from neuroerp_ci.gates.verdict import decide, summarize
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Metric,
    NoiseReading,
    OutcomeStatus,
    Verdict,
)

BUSY = NoiseReading(
    noisy=True,
    reason="machine busy: other processes used 48 % of 2 CPUs",
    allowance_pct=100.0,
)
QUIET = NoiseReading(noisy=False, reason="quiet: other processes used 1 % of 2 CPUs")


def timed(
    value: float,
    samples: list[float] | None = None,
    unit: str = "ms",
    noise: NoiseReading | None = BUSY,
) -> CheckResult:
    result = CheckResult("api", "http", CheckStatus.OK, duration_s=1.0, noise=noise)
    result.add_metric(Metric("p95_ms", value, unit, samples=tuple(samples or ())))
    return result


def lognormal(seed: int, n: int, sigma: float, scale: float = 1.0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(v) for v in rng.lognormal(math.log(20.0), sigma, n) * scale]


def test_a_breach_the_busy_machine_explains_is_inconclusive_and_counts_as_warn() -> None:
    outcome = evaluate(cond(metric="p95_ms", max=25), make_check(), timed(30.0))
    assert outcome.status is OutcomeStatus.INCONCLUSIVE
    assert outcome.breached and outcome.weight is OutcomeStatus.WARN
    assert "api: p95_ms 30 > 25; inconclusive: machine busy" in outcome.reason
    assert "up to 100 %" in outcome.reason
    assert decide([outcome]) is Verdict.WARN
    assert summarize("staging", Verdict.WARN, [outcome]).deciding == 1


def test_on_inconclusive_fail_makes_it_count_as_a_fail() -> None:
    condition = cond(metric="p95_ms", max=25, on_inconclusive="fail")
    outcome = evaluate(condition, make_check(), timed(30.0))
    assert outcome.status is OutcomeStatus.INCONCLUSIVE
    assert outcome.weight is OutcomeStatus.FAIL and decide([outcome]) is Verdict.FAIL


def test_a_breach_beyond_the_allowance_still_fails_on_a_busy_machine() -> None:
    outcome = evaluate(cond(metric="p95_ms", max=25), make_check(), timed(300.0))
    assert outcome.status is OutcomeStatus.FAIL
    assert "beyond what the busy machine explains (1100 % > 100 %" in outcome.reason


@pytest.mark.parametrize(
    ("unit", "noise"), [("ms", QUIET), ("ms", None), ("count", BUSY), ("bytes", BUSY)]
)
def test_quiet_machines_and_non_timing_metrics_breach_as_usual(
    unit: str, noise: NoiseReading | None
) -> None:
    outcome = evaluate(
        cond(metric="p95_ms", max=25), make_check(), timed(30.0, unit=unit, noise=noise)
    )
    assert outcome.status is OutcomeStatus.FAIL and outcome.counts_as is None


def test_a_met_condition_passes_on_a_busy_machine() -> None:
    outcome = evaluate(cond(metric="p95_ms", max=25), make_check(), timed(20.0))
    assert outcome.status is OutcomeStatus.PASS and not outcome.breached


def test_a_relative_breach_within_the_allowance_is_inconclusive() -> None:
    base = make_baseline("p95_ms", [20.0, 20.0, 20.0])
    condition = cond(metric="p95_ms", max_increase_pct=10)
    outcome = evaluate(condition, make_check(), timed(30.0), DictBaselines(base))
    assert outcome.status is OutcomeStatus.INCONCLUSIVE  # +50 % < the 100 % allowance
    far = evaluate(condition, make_check(), timed(60.0), DictBaselines(base))
    assert far.status is OutcomeStatus.FAIL  # +200 %


def test_too_few_samples_for_the_min_effect_is_inconclusive_naming_the_sample_size() -> None:
    base_samples = [s for i in range(5) for s in lognormal(100 + i, 30, 0.6)]
    base = make_baseline("p95_ms", [40.0] * 5, base_samples)
    samples = lognormal(1, 30, 0.6)
    condition = cond(metric="p95_ms", regression={"min_effect_pct": 5, "min_samples": 20})
    outcome = evaluate(
        condition, make_check(), timed(40.0, samples, noise=None), DictBaselines(base)
    )
    assert outcome.status is OutcomeStatus.INCONCLUSIVE and not outcome.breached
    assert outcome.mde_pct is not None and outcome.mde_pct > 5
    assert outcome.needed_n is not None and outcome.needed_n > 30
    expected = (
        f"inconclusive: cannot detect shifts below {outcome.mde_pct:.0f} % with n=30;"
        f" about n={outcome.needed_n} would"
    )
    assert expected in outcome.reason
    # The sample size it names would decide: the same spread with that many samples.
    more = lognormal(2, outcome.needed_n, 0.6)
    base_more = replace(
        base, samples=tuple(s for i in range(5) for s in lognormal(200 + i, outcome.needed_n, 0.6))
    )
    decided = evaluate(
        condition, make_check(), timed(40.0, more, noise=None), DictBaselines(base_more)
    )
    assert decided.status is OutcomeStatus.PASS
    assert decided.mde_pct is not None and decided.mde_pct <= 5 * 1.2


def test_precise_samples_report_their_mde_and_pass() -> None:
    base_samples = [s for i in range(5) for s in lognormal(100 + i, 200, 0.05)]
    base = make_baseline("p95_ms", [22.0] * 5, base_samples)
    condition = cond(metric="p95_ms", regression={})
    result = timed(22.0, lognormal(1, 200, 0.05), noise=None)
    outcome = evaluate(condition, make_check(), result, DictBaselines(base))
    assert outcome.status is OutcomeStatus.PASS
    assert outcome.mde_pct is not None and outcome.mde_pct < 5 and outcome.needed_n is None


def test_min_effect_zero_reports_the_mde_but_never_makes_it_inconclusive() -> None:
    base_samples = [s for i in range(5) for s in lognormal(100 + i, 30, 0.6)]
    base = make_baseline("p95_ms", [40.0] * 5, base_samples)
    condition = cond(metric="p95_ms", regression={"min_effect_pct": 0})
    result = timed(40.0, lognormal(1, 30, 0.6), noise=None)
    outcome = evaluate(condition, make_check(), result, DictBaselines(base))
    assert outcome.status is OutcomeStatus.PASS and outcome.mde_pct is not None
