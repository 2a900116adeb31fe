"""The canary: the new version beside the stable one, sampled in the same window and judged
by a rank test with an effect-size floor before the full ``switch``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from neuroerp_ci.config.stage_rules import CanarySpec
from neuroerp_ci.gates.statistics import compare_samples
from neuroerp_ci.support.hosts import ensure_allowed


@dataclass(frozen=True)
class CanaryResult:
    """The canary against the stable target, sampled in the same window."""

    passed: bool
    reason: str
    canary_median_ms: float | None = None
    stable_median_ms: float | None = None
    shift_ms: float | None = None  # Hodges-Lehmann estimate of canary - stable
    shift_ci_ms: tuple[float, float] | None = None
    p_value: float | None = None
    canary_error_rate: float | None = None
    stable_error_rate: float | None = None
    samples: int = 0


CanaryJudge = Callable[[CanarySpec], CanaryResult]  # the comparison a rollout is given


def compare_canary(
    spec: CanarySpec,
    client: httpx.Client,
    allowed_hosts: Sequence[str],
    clock: Callable[[], float] = time.perf_counter,
) -> CanaryResult:
    """Sample canary and stable target alternately (same window), then compare latencies.

    Latency counts successful (2xx) responses only; errors count towards the error rate.
    """
    ensure_allowed(spec.canary_url, allowed_hosts, "canary_url")
    ensure_allowed(spec.stable_url, allowed_hosts, "stable_url")
    latencies: dict[str, list[float]] = {"canary": [], "stable": []}
    errors = {"canary": 0, "stable": 0}
    bases = {"canary": spec.canary_url.rstrip("/"), "stable": spec.stable_url.rstrip("/")}
    for round_no in range(spec.samples):
        # Alternate who goes first, so neither side always meets a warmer server.
        sides = ("canary", "stable") if round_no % 2 == 0 else ("stable", "canary")
        for path in spec.paths:
            for side in sides:
                started = clock()
                try:
                    response = client.get(bases[side] + path, timeout=spec.request_timeout_s)
                    ok = response.is_success
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies[side].append((clock() - started) * 1000.0)
                else:
                    errors[side] += 1
    return judge_canary(spec, latencies["canary"], latencies["stable"], errors)


def judge_canary(
    spec: CanarySpec,
    canary_ms: Sequence[float],
    stable_ms: Sequence[float],
    errors: Mapping[str, int],
) -> CanaryResult:
    """The verdict on the canary from its samples and the stable target's."""
    sent = spec.samples * len(spec.paths)
    canary_rate = errors.get("canary", 0) / sent
    stable_rate = errors.get("stable", 0) / sent

    def refused(reason: str) -> CanaryResult:
        return CanaryResult(
            False,
            reason,
            canary_error_rate=canary_rate,
            stable_error_rate=stable_rate,
            samples=sent,
        )

    if canary_rate > spec.max_error_rate:
        return refused(
            f"canary error rate {canary_rate:.1%} > {spec.max_error_rate:.1%} "
            f"(stable {stable_rate:.1%}, {sent} requests each)"
        )
    if len(canary_ms) < 5 or len(stable_ms) < 5:
        return refused(
            f"too few successful responses to compare (canary {len(canary_ms)}, "
            f"stable {len(stable_ms)}; need 5 each)"
        )
    cmp = compare_samples(canary_ms, stable_ms, worse="greater", alpha=spec.alpha)
    floor = cmp.baseline_median * spec.min_effect_pct / 100.0
    regressed = cmp.p_value < spec.alpha and cmp.low > floor
    canary_median = float(statistics.median(canary_ms))
    pct = 100.0 * cmp.shift / cmp.baseline_median if cmp.baseline_median else 0.0
    text = (
        f"canary median {canary_median:.1f} ms vs stable {cmp.baseline_median:.1f} ms: "
        f"shift {cmp.shift:+.1f} ms ({pct:+.0f} %, {cmp.confidence:.0%} CI "
        f"{cmp.low:+.1f}..{cmp.high:+.1f} ms), p={cmp.p_value:.3g}; errors "
        f"{canary_rate:.1%} vs {stable_rate:.1%}"
    )
    verdict = (
        f"regression beyond {spec.min_effect_pct:g} % — " if regressed else "no regression — "
    )
    return CanaryResult(
        not regressed,
        verdict + text,
        canary_median_ms=canary_median,
        stable_median_ms=cmp.baseline_median,
        shift_ms=cmp.shift,
        shift_ci_ms=(cmp.low, cmp.high),
        p_value=cmp.p_value,
        canary_error_rate=canary_rate,
        stable_error_rate=stable_rate,
        samples=sent,
    )
