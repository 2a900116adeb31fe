"""``report.json`` and ``samples.json``: the machine-readable record of a stage run.

The schema is documented in ``docs/report-schema.md``; bump :data:`SCHEMA_VERSION` for any
change that is not a pure addition (version 2 added the ``inconclusive`` outcome status, which
a reader of version 1 would not know; the versions this code reads are
:data:`READABLE_VERSIONS`). Keys come out in a fixed order (metrics, artifacts and
tool versions sorted by name), indented by two spaces, enums as their string values. Raw
metric samples stay out of ``report.json`` to keep it small: ``samples.json`` holds them, and
:func:`report_from_dict` puts the two back together.

Numbers that JSON cannot hold (NaN, infinity) are written as ``null``; a metric read back with
``null`` gets NaN, which gates treat as "not measured".
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from neuroerp_ci.model import (
    BaselineState,
    Calibration,
    CheckResult,
    CheckStatus,
    Component,
    Confirmation,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    NoiseReading,
    Outcome,
    OutcomeStatus,
    Severity,
    StageReport,
    Summary,
    Verdict,
    WaiverRef,
    summary_line,
)

SCHEMA_VERSION = 2
# Version 1 is version 2 without INCONCLUSIVE and the outcome keys it added: still readable.
READABLE_VERSIONS = (1, 2)
# Written beside report.json in every run folder (reports/registry.py).
RELATED_FILES = {"sarif": "report.sarif", "sbom": "bom.cdx.json", "junit": "junit.xml"}
_SURROGATE = re.compile(r"[\ud800-\udfff]")

JsonObject = dict[str, Any]


def render_json(report: StageReport) -> str:
    """The full text of ``report.json``."""
    return _dump(report_to_dict(report))


def render_samples(report: StageReport) -> str:
    """The full text of ``samples.json``: ``{check_id: {metric: [samples...]}}``.

    Indented like ``report.json``, except that each metric's samples share one line: a load
    test can have thousands of them.
    """
    checks = samples_to_dict(report)
    if not checks:
        return "{}\n"
    blocks = []
    for check_id, metrics in checks.items():
        lines = [
            f"    {_dump_one(name)}: [{', '.join(_dump_one(v) for v in values)}]"
            for name, values in metrics.items()
        ]
        blocks.append(f"  {_dump_one(check_id)}: {{\n" + ",\n".join(lines) + "\n  }")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def report_to_dict(report: StageReport) -> JsonObject:
    """The ``report.json`` document as plain data, keys in their documented order."""
    return {
        "schema_version": report.schema_version,
        "run_id": report.run_id,
        "stage": report.stage,
        "version": report.version,
        "target": report.target,
        "verdict": report.verdict.value,
        "summary": summary_line(report.summary),
        "recorded": report.recorded,
        "record_error": report.record_error,
        "tested": dict(report.tested),
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "duration_s": _number(report.duration_s),
        "counts": _counts(report),
        # The run folder's other views of the same run, for tools that read this one.
        "files": dict(RELATED_FILES),
        "checks": [_check(result) for result in report.checks],
        "outcomes": [_outcome(outcome) for outcome in report.outcomes],
    }


def samples_to_dict(report: StageReport) -> dict[str, dict[str, list[float | None]]]:
    """Raw samples per check and metric; checks and metrics without samples are left out."""
    samples: dict[str, dict[str, list[float | None]]] = {}
    for result in report.checks:
        per_metric = {
            name: [_number(sample) for sample in result.metrics[name].samples]
            for name in sorted(result.metrics)
            if result.metrics[name].samples
        }
        if per_metric:
            samples[result.check_id] = per_metric
    return samples


def report_from_dict(
    data: Mapping[str, Any], samples: Mapping[str, Mapping[str, Any]] | None = None
) -> StageReport:
    """Rebuild a :class:`StageReport` from ``report.json`` (and ``samples.json`` if given).

    Raises :class:`ValueError` naming the key when the document is not a report of a schema
    version this code reads.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"report.json: expected an object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        known = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise ValueError(f"report.json: schema_version {version!r} is not {known}")
    samples = samples or {}
    try:
        return StageReport(
            run_id=str(data["run_id"]),
            stage=str(data["stage"]),
            version=str(data["version"]),
            target=str(data["target"]),
            verdict=Verdict(data["verdict"]),
            started_at=str(data["started_at"]),
            finished_at=str(data["finished_at"]),
            duration_s=_float(data["duration_s"]),
            checks=[_check_from(c, samples.get(c["id"], {})) for c in data["checks"]],
            outcomes=[_outcome_from(o) for o in data["outcomes"]],
            # Only the line was written: the summary comes back as that line.
            summary=Summary(
                str(data["stage"]), Verdict(data["verdict"]), written=str(data.get("summary", ""))
            ),
            schema_version=SCHEMA_VERSION,
            recorded=None if data.get("recorded") is None else bool(data["recorded"]),
            record_error=str(data.get("record_error") or ""),
            tested={str(k): str(v) for k, v in (data.get("tested") or {}).items()},
        )
    except KeyError as exc:
        raise ValueError(f"report.json: missing key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(f"report.json: unreadable value: {exc}") from exc


def _dump(document: object) -> str:
    # allow_nan=False: every non-finite number must have been mapped to null already.
    return _escape_surrogates(
        json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )


def _dump_one(value: object) -> str:
    return _escape_surrogates(json.dumps(value, ensure_ascii=False, allow_nan=False))


def _escape_surrogates(text: str) -> str:
    """A lone surrogate (a byte of a file name that is not UTF-8) cannot be written as UTF-8;
    in JSON it can be escaped, as ensure_ascii would."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _number(value: float) -> float | None:
    # float(): an int that slipped into a metric still comes out as a JSON float, always.
    return float(value) if math.isfinite(value) else None


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _optional(value: float | None) -> float | None:
    return None if value is None else _number(value)


def _optional_from(value: Any) -> float | None:
    return None if value is None else float(value)


def _counts(report: StageReport) -> JsonObject:
    outcomes = Counter(o.status for o in report.outcomes)
    checks = Counter(c.status for c in report.checks)
    findings = Counter(f.severity for c in report.checks for f in c.findings)
    return {
        "outcomes": {status.value: outcomes[status] for status in OutcomeStatus},
        "checks": {status.value: checks[status] for status in CheckStatus},
        "findings": {severity.value: findings[severity] for severity in FindingSeverity},
        # counted findings the stage's baseline run did not have; findings a waiver covers
        "new_findings": sum(
            1 for c in report.checks for f in c.findings if f.baseline_state is BaselineState.NEW
        ),
        "waived": sum(len(c.waived) for c in report.checks),
    }


def _check(result: CheckResult) -> JsonObject:
    return {
        "id": result.check_id,
        "kind": result.kind,
        "status": result.status.value,
        "reason": result.reason,
        "duration_s": _number(result.duration_s),
        "metrics": {name: _metric(result.metrics[name]) for name in sorted(result.metrics)},
        "findings": [_finding(finding) for finding in result.findings],
        # Hidden by the project (bandit "# nosec"): shown, never counted by a findings limit.
        "suppressed": [_finding(finding) for finding in result.suppressed],
        # Covered by a pipeline waiver (its id, reason, owner, expiry): shown, never counted.
        "waived": [_finding(finding) for finding in result.waived],
        # The baseline run's findings that this run no longer has.
        "absent": [_finding(finding) for finding in result.absent],
        "components": [_component(c) for c in result.components],
        "artifacts": dict(sorted(result.artifacts.items())),
        "tool_versions": dict(sorted(result.tool_versions.items())),
        # A measurement's machine state over its window; null for other kinds.
        "noise": _noise(result.noise),
        # The hash of its inputs (null: not cacheable), and the run whose result this is
        # when it was skipped as unchanged (null: it ran in this run).
        "cache_key": result.cache_key,
        "cached_from": result.cached_from,
    }


def _noise(noise: NoiseReading | None) -> JsonObject | None:
    if noise is None:
        return None
    return {
        "noisy": noise.noisy,
        "reason": noise.reason,
        "allowance_pct": _number(noise.allowance_pct),
        "load_avg": [_number(v) for v in noise.load_avg],
        "cpus": noise.cpus,
        "run_queue_max": noise.run_queue_max,
        "foreign_cpu_pct": _number(noise.foreign_cpu_pct),
        "own_cpu_pct": _number(noise.own_cpu_pct),
        "steal_pct": None if noise.steal_pct is None else _number(noise.steal_pct),
        "wait_pct": None if noise.wait_pct is None else _number(noise.wait_pct),
        "probe_ms": [_number(v) for v in noise.probe_ms],
        "probe_reference_ms": (
            None if noise.probe_reference_ms is None else _number(noise.probe_reference_ms)
        ),
        "window_s": _number(noise.window_s),
    }


def _noise_from(data: Mapping[str, Any] | None) -> NoiseReading | None:
    if data is None:
        return None
    load = tuple(_float(v) for v in data.get("load_avg", (0.0, 0.0)))
    steal, wait, reference = (
        data.get("steal_pct"),
        data.get("wait_pct"),
        data.get("probe_reference_ms"),
    )
    return NoiseReading(
        noisy=bool(data["noisy"]),
        reason=str(data.get("reason", "")),
        allowance_pct=_float(data.get("allowance_pct", 0.0)),
        load_avg=(load[0], load[1]) if len(load) == 2 else (0.0, 0.0),
        cpus=int(data.get("cpus", 1)),
        run_queue_max=int(data.get("run_queue_max", 0)),
        foreign_cpu_pct=_float(data.get("foreign_cpu_pct", 0.0)),
        own_cpu_pct=_float(data.get("own_cpu_pct", 0.0)),
        steal_pct=None if steal is None else _float(steal),
        wait_pct=None if wait is None else _float(wait),
        probe_ms=tuple(_float(v) for v in data.get("probe_ms", ())),
        probe_reference_ms=None if reference is None else _float(reference),
        window_s=_float(data.get("window_s", 0.0)),
    )


def _metric(metric: Metric) -> JsonObject:
    return {
        "value": _number(metric.value),
        "unit": metric.unit,
        "direction": metric.direction.value,
        "samples_count": len(metric.samples),
    }


def _finding(finding: Finding) -> JsonObject:
    return {
        "tool": finding.tool,
        "rule": finding.rule,
        "severity": finding.severity.value,
        "confidence": finding.confidence,
        "location": finding.location,
        "message": finding.message,
        "fix_versions": list(finding.fix_versions),
        "aliases": list(finding.aliases),
        "fingerprint": finding.identity,
        "help_url": finding.help_url,
        "baseline_state": None if finding.baseline_state is None else finding.baseline_state.value,
        "waiver": None if finding.waiver is None else asdict(finding.waiver),
    }


def _component(component: Component) -> JsonObject:
    return asdict(component)


def _outcome(outcome: Outcome) -> JsonObject:
    return {
        "check": outcome.check,
        "condition": outcome.condition,
        "status": outcome.status.value,
        "severity": outcome.severity.value,
        "value": _optional(outcome.value),
        "target": outcome.target,
        "baseline": _optional(outcome.baseline),
        "change_pct": _optional(outcome.change_pct),
        "p_value": _optional(outcome.p_value),
        "effect": _optional(outcome.effect),
        "effect_ci": (
            None
            if outcome.effect_ci is None
            else [_number(outcome.effect_ci[0]), _number(outcome.effect_ci[1])]
        ),
        "baseline_runs": list(outcome.baseline_runs),
        "metric": outcome.metric,
        "no_baseline": outcome.no_baseline,
        "breached": outcome.breached,
        "counts_as": None if outcome.counts_as is None else outcome.counts_as.value,
        "mde_pct": _optional(outcome.mde_pct),
        "needed_n": outcome.needed_n,
        "confirmations": [_confirmation(c) for c in outcome.confirmations],
        "calibration": _calibration(outcome.calibration),
        "reason": outcome.reason,
    }


def _confirmation(confirmation: Confirmation) -> JsonObject:
    """One re-measurement of a breached timing condition (``confirm = N``)."""
    return {
        "attempt": confirmation.attempt,
        "value": _optional(confirmation.value),
        "breached": confirmation.breached,
        "reason": confirmation.reason,
    }


def _confirmation_from(data: Mapping[str, Any]) -> Confirmation:
    return Confirmation(
        attempt=int(data["attempt"]),
        value=_optional_from(data.get("value")),
        breached=bool(data["breached"]),
        reason=str(data.get("reason", "")),
    )


def _calibration(calibration: Calibration | None) -> JsonObject | None:
    """The condition's measured error rates (``neuroerp-ci calibrate``), with their line."""
    if calibration is None:
        return None
    return {
        "false_alarm_pct": _optional(calibration.false_alarm_pct),
        "detection_pct": [[_number(s), _number(r)] for s, r in calibration.detection_pct],
        "runs": calibration.runs,
        "pairs": calibration.pairs,
        "budget_pct": _number(calibration.budget_pct),
        "over_budget": calibration.over_budget,
        "measured_at": calibration.measured_at,
        "text": calibration.text(),
    }


def _calibration_from(data: Mapping[str, Any] | None) -> Calibration | None:
    if data is None:
        return None
    return Calibration(
        false_alarm_pct=_optional_from(data.get("false_alarm_pct")),
        detection_pct=tuple((_float(s), _float(r)) for s, r in data.get("detection_pct", ())),
        runs=int(data["runs"]),
        pairs=int(data["pairs"]),
        budget_pct=_float(data.get("budget_pct", Calibration(None, (), 0, 0).budget_pct)),
        over_budget=bool(data.get("over_budget", False)),
        measured_at=str(data.get("measured_at", "")),
    )


def _check_from(data: Mapping[str, Any], samples: Mapping[str, Any]) -> CheckResult:
    metrics = {
        name: Metric(
            name=name,
            value=_float(m["value"]),
            unit=str(m.get("unit", "")),
            direction=Direction(m.get("direction", Direction.LOWER.value)),
            samples=tuple(_float(s) for s in samples.get(name, ())),
        )
        for name, m in data.get("metrics", {}).items()
    }
    return CheckResult(
        check_id=str(data["id"]),
        kind=str(data["kind"]),
        status=CheckStatus(data["status"]),
        reason=str(data.get("reason", "")),
        duration_s=_float(data.get("duration_s", 0.0)),
        metrics=metrics,
        findings=[_finding_from(f) for f in data.get("findings", [])],
        artifacts={str(k): str(v) for k, v in data.get("artifacts", {}).items()},
        tool_versions={str(k): str(v) for k, v in data.get("tool_versions", {}).items()},
        suppressed=[_finding_from(f) for f in data.get("suppressed", [])],
        waived=[_finding_from(f) for f in data.get("waived", [])],
        absent=[_finding_from(f) for f in data.get("absent", [])],
        components=[_component_from(c) for c in data.get("components", [])],
        noise=_noise_from(data.get("noise")),
        cache_key=None if data.get("cache_key") is None else str(data["cache_key"]),
        cached_from=None if data.get("cached_from") is None else str(data["cached_from"]),
    )


def check_result_to_json(result: CheckResult) -> str:
    """One check's result with its samples, as the history's cache keeps it."""
    samples = {name: [_number(s) for s in m.samples] for name, m in result.metrics.items()}
    return _dump_one({"check": _check(result), "samples": samples})


def check_result_from_json(text: str) -> CheckResult:
    """The result :func:`check_result_to_json` wrote; ValueError when it is not one."""
    try:
        data = json.loads(text)
        return _check_from(data["check"], data.get("samples") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a cached check result: {exc}") from exc


def _finding_from(data: Mapping[str, Any]) -> Finding:
    confidence = data.get("confidence")
    state, waiver = data.get("baseline_state"), data.get("waiver")
    finding = Finding(
        tool=str(data["tool"]),
        rule=str(data["rule"]),
        severity=FindingSeverity(data["severity"]),
        message=str(data["message"]),
        location=str(data["location"]),
        confidence=None if confidence is None else str(confidence),
        fix_versions=tuple(str(v) for v in data.get("fix_versions", ())),
        aliases=tuple(str(a) for a in data.get("aliases", ())),
        help_url=str(data.get("help_url") or ""),
        baseline_state=None if state is None else BaselineState(state),
        waiver=None if waiver is None else _waiver_from(waiver),
    )
    # A fingerprint is written whether the tool gave it or it was derived: only a tool's own
    # is kept as such.
    written = str(data.get("fingerprint") or "")
    return finding if written in ("", finding.identity) else replace(finding, fingerprint=written)


def _waiver_from(data: Mapping[str, Any]) -> WaiverRef:
    return WaiverRef(
        id=str(data["id"]),
        reason=str(data["reason"]),
        owner=str(data["owner"]),
        expires=str(data["expires"]),
        expired=bool(data.get("expired", False)),
    )


def _component_from(data: Mapping[str, Any]) -> Component:
    return Component(
        name=str(data["name"]),
        version=str(data["version"]),
        purl=str(data.get("purl") or ""),
        license=str(data.get("license") or ""),
        license_declared=str(data.get("license_declared") or ""),
    )


def _outcome_from(data: Mapping[str, Any]) -> Outcome:
    ci = data.get("effect_ci")
    if ci is not None and len(ci) != 2:
        raise ValueError(f"effect_ci must have 2 numbers, got {ci!r}")
    counts_as = data.get("counts_as")
    return Outcome(
        check=str(data["check"]),
        condition=str(data["condition"]),
        status=OutcomeStatus(data["status"]),
        severity=Severity(data["severity"]),
        value=_optional_from(data.get("value")),
        target=str(data["target"]),
        reason=str(data["reason"]),
        baseline=_optional_from(data.get("baseline")),
        change_pct=_optional_from(data.get("change_pct")),
        p_value=_optional_from(data.get("p_value")),
        effect=_optional_from(data.get("effect")),
        effect_ci=None if ci is None else (_float(ci[0]), _float(ci[1])),
        baseline_runs=tuple(str(r) for r in data.get("baseline_runs", ())),
        metric=None if data.get("metric") is None else str(data["metric"]),
        no_baseline=bool(data.get("no_baseline", False)),
        breached=bool(data.get("breached", False)),
        counts_as=None if counts_as is None else OutcomeStatus(counts_as),
        mde_pct=_optional_from(data.get("mde_pct")),
        needed_n=None if data.get("needed_n") is None else int(data["needed_n"]),
        confirmations=tuple(_confirmation_from(c) for c in data.get("confirmations", ())),
        calibration=_calibration_from(data.get("calibration")),
    )
