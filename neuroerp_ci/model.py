"""The core model: what checks measure, what gates conclude. Plain Python, no Prefect.

A check produces a :class:`CheckResult` (metrics and findings, never a pass/fail decision);
gate conditions turn results into :class:`Outcome` objects; the outcomes decide the
:class:`Verdict` of a :class:`StageReport`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Severity(StrEnum):
    """How much a breached gate condition weighs in the verdict."""

    BLOCKING = "blocking"
    WARNING = "warning"
    INFO = "info"

    @classmethod
    def for_priority(cls, priority: Priority) -> Severity:
        return _SEVERITY_FOR_PRIORITY[priority]


_SEVERITY_FOR_PRIORITY = {
    Priority.HIGH: Severity.BLOCKING,
    Priority.MEDIUM: Severity.WARNING,
    Priority.LOW: Severity.INFO,
}

# What a condition concludes when the data cannot decide (the check errored or was skipped,
# the metric is missing, no baseline yet): its on_error / on_missing / on_no_baseline.
Policy = Literal["fail", "warn", "ignore"]
# What an INCONCLUSIVE outcome counts as in the verdict (a condition's ``on_inconclusive``):
# never a pass, and a FAIL only when the pipeline says so.
InconclusivePolicy = Literal["warn", "fail"]


class CheckStatus(StrEnum):
    OK = "ok"
    ERROR = "error"  # tool missing, crashed, timed out, unreadable output, target unreachable
    SKIPPED = "skipped"  # by config, or because a dependency did not complete


class Direction(StrEnum):
    """Which way a metric is better."""

    LOWER = "lower"
    HIGHER = "higher"


class FindingSeverity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    # An advisory without a rating counts as high: an unrated vulnerability is not harmless.
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _FINDING_RANK[self]


_FINDING_RANK = {
    FindingSeverity.CRITICAL: 4,
    FindingSeverity.HIGH: 3,
    FindingSeverity.UNKNOWN: 3,
    FindingSeverity.MEDIUM: 2,
    FindingSeverity.LOW: 1,
}


# Units of metrics that depend on how fast the machine runs: a busy machine moves them
# (latencies, durations, throughput), unlike counts, bytes or ratios.
TIMING_UNITS = frozenset({"ms", "s", "rps"})


@dataclass(frozen=True)
class Metric:
    """One measured value; ``samples`` keeps the raw observations behind it."""

    name: str
    value: float
    unit: str = ""
    direction: Direction = Direction.LOWER
    samples: tuple[float, ...] = ()

    @property
    def timing(self) -> bool:
        """Whether a busy machine moves it (:data:`TIMING_UNITS`)."""
        return self.unit in TIMING_UNITS


class BaselineState(StrEnum):
    """A finding against the stage's baseline run (SARIF's ``baselineState``)."""

    NEW = "new"  # the baseline run did not have it
    UNCHANGED = "unchanged"  # the same finding at the same place
    UPDATED = "updated"  # the same finding, moved or changed (a line, a version, a severity)
    ABSENT = "absent"  # the baseline run had it, this run does not (``CheckResult.absent``)


@dataclass(frozen=True)
class WaiverRef:
    """The waiver a finding matched (gates/waivers.py): named in every report."""

    id: str
    reason: str
    owner: str
    expires: str  # ISO date, the last day it applies
    expired: bool = False  # it matched, but has expired: the finding counts again


# The line of a "path:line" location, and the version of a "package==version" one: where a
# finding sits may move between runs without it becoming another finding.
# A secret found in a git history range says where: "path:line (commit abc1234)".
_MOVABLE = re.compile(r"(:\d+(:\d+)?( \(commit [0-9a-f]+\))?|==[^\s]+)$")


@dataclass(frozen=True)
class Finding:
    """One problem a tool reported: a static-analysis issue, a known advisory, a secret."""

    tool: str
    rule: str  # rule or advisory id, e.g. "B602" or "PYSEC-2021-108"
    severity: FindingSeverity
    message: str
    location: str  # "path:line" or "package==version"
    confidence: str | None = None
    fix_versions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # What the finding is, stable across runs (a tool's own, e.g. a hash of the flagged code
    # line); empty: :attr:`identity` derives one from tool, rule and location without its line.
    fingerprint: str = ""
    help_url: str = ""  # the rule's or advisory's documentation
    baseline_state: BaselineState | None = None  # None: no baseline run to compare with
    waiver: WaiverRef | None = None  # in ``CheckResult.waived``, or counted and expired

    @property
    def identity(self) -> str:
        """The fingerprint that finds this finding again in a later run."""
        if self.fingerprint:
            return self.fingerprint
        return fingerprint_of(self.tool, self.rule, _MOVABLE.sub("", self.location))

    @property
    def path(self) -> str | None:
        """The file of a "path:line" location (None for a package)."""
        if "==" in self.location:
            return None
        return _MOVABLE.sub("", self.location) or None

    @property
    def line(self) -> int | None:
        match = re.search(r":(\d+)(:\d+)?( \(commit [0-9a-f]+\))?$", self.location)
        return int(match.group(1)) if match else None


def fingerprint_of(*parts: str) -> str:
    """A short stable hash of ``parts`` (16 hex digits)."""
    # surrogatepass: a hand-made location with a lone surrogate still has a fingerprint
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Component:
    """One installed distribution a check examined: the SBOM's components, the licence
    check's subjects."""

    name: str  # as its metadata spells it
    version: str
    purl: str = ""  # "pkg:pypi/name@version"
    license: str = ""  # an SPDX expression; "" when unknown
    license_declared: str = ""  # what the metadata said, before normalising


@dataclass
class CheckResult:
    """What one check run produced. It never says pass or fail; gates do."""

    check_id: str
    kind: str
    status: CheckStatus
    reason: str = ""
    duration_s: float = 0.0
    metrics: dict[str, Metric] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> file path of raw output
    tool_versions: dict[str, str] = field(default_factory=dict)
    # Findings the project told the tool to hide (bandit's "# nosec"): reported, so nothing
    # disappears without a trace, but never counted by a findings limit.
    suppressed: list[Finding] = field(default_factory=list)
    # Findings a pipeline waiver covers (gates/waivers.py): listed in every report, not counted.
    waived: list[Finding] = field(default_factory=list)
    # Findings of the stage's baseline run that this run no longer has (baseline_state absent).
    absent: list[Finding] = field(default_factory=list)
    # The installed distributions the check examined (the licence check, pip-audit on an
    # environment): the SBOM's components.
    components: list[Component] = field(default_factory=list)
    # The machine's state over a measurement check's window (None for other kinds).
    noise: NoiseReading | None = None
    # The content hash of everything the result depends on (run/cache.py); None: not cacheable.
    cache_key: str | None = None
    # The run whose result this is, when the check was skipped because nothing it reads had
    # changed since that passing run; the gates judge it like any other result.
    cached_from: str | None = None

    def add_metric(self, metric: Metric) -> None:
        self.metrics[metric.name] = metric

    @property
    def cache_note(self) -> str:
        """``skipped (unchanged since run X)`` for a reused result, else ""."""
        return f"skipped (unchanged since run {self.cached_from})" if self.cached_from else ""


@dataclass(frozen=True)
class NoiseReading:
    """How busy the machine was while a measurement check measured (support/noise.py).

    ``noisy``: too busy to tell a slow target from a busy machine; ``allowance_pct``: how
    far a timing may move on such a machine for no reason of the target's (a breach within
    it is INCONCLUSIVE, one beyond it is still a breach); ``reason`` says why, in one line.
    """

    noisy: bool
    reason: str
    allowance_pct: float = 0.0
    load_avg: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at start and end
    cpus: int = 1
    run_queue_max: int = 0  # most runnable tasks seen (procs_running), ours included
    foreign_cpu_pct: float = 0.0  # CPU used by processes outside our tree, % of all cores
    own_cpu_pct: float = 0.0  # CPU used by our process tree (load generator, target)
    steal_pct: float | None = None  # CPU steal by a hypervisor, None where not reported
    wait_pct: float | None = None  # runnable tasks' wait for a CPU (schedstat), % of the window
    probe_ms: tuple[float, ...] = ()  # the fixed CPU-bound probe, timed before and after
    probe_reference_ms: float | None = None  # the probe on an idle core (its fastest known run)
    window_s: float = 0.0


@dataclass(frozen=True)
class Calibration:
    """How often a condition is wrong, measured by replaying the stored history
    (``neuroerp-ci calibrate``): the false-alarm rate on A/A pairs of passing runs and the
    detection rate of shifts injected into stored samples."""

    false_alarm_pct: float | None  # None: too few passing runs to form A/A pairs
    detection_pct: tuple[tuple[float, float], ...]  # (injected shift %, detected %)
    runs: int  # passing runs replayed
    pairs: int  # A/A pairs judged
    budget_pct: float = 5.0  # the false-alarm budget of a blocking condition
    over_budget: bool = False  # blocking, and its false-alarm rate exceeds the budget
    measured_at: str = ""  # ISO 8601, UTC

    def text(self) -> str:
        """``false alarms 1.8 %, detects +20 % in 96 %, from 40 runs``."""
        parts = []
        if self.false_alarm_pct is None:
            parts.append("false alarms unknown")
        else:
            parts.append(f"false alarms {self.false_alarm_pct:.1f} %")
        parts += [f"detects +{shift:g} % in {rate:.0f} %" for shift, rate in self.detection_pct]
        text = ", ".join(parts) + f", from {self.runs} runs"
        if self.over_budget:
            text += f" (over the {self.budget_pct:g} % false-alarm budget)"
        return text


@dataclass(frozen=True)
class Confirmation:
    """One re-measurement of a breached timing condition (``confirm = N``)."""

    attempt: int  # 1 for the first re-measurement
    value: float | None
    breached: bool
    reason: str


class OutcomeStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # counts against the verdict as blocking
    WARN = "warn"  # counts against the verdict as a warning
    INFO = "info"  # breached, reported, does not change the verdict
    # The data cannot decide (a noisy machine, too few samples for the effect that matters):
    # counts as the condition's on_inconclusive (warn by default), never as a pass.
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Outcome:
    """The result of one gate condition: value, target, status and why.

    Conditions against the baseline also say what the baseline was, the change, the
    statistics behind a regression verdict and which runs formed the baseline.
    """

    check: str
    condition: str  # e.g. "p95_ms <= 300", "findings(high+) <= 0", "completed"
    status: OutcomeStatus
    severity: Severity
    value: float | None
    target: str
    reason: str
    baseline: float | None = None
    change_pct: float | None = None  # (value - baseline) / baseline * 100
    p_value: float | None = None  # statistical regression test
    effect: float | None = None  # estimated shift, in % of the baseline
    effect_ci: tuple[float, float] | None = None  # its confidence interval, in %
    baseline_runs: tuple[str, ...] = ()  # run ids that formed the baseline
    metric: str | None = None  # the metric the condition limits (None: findings, completed)
    # The outcome only said "no baseline yet": it does not keep its run from a baseline.
    no_baseline: bool = False
    # The condition's form judged its limit breached (whatever the severity made of it); a
    # breach of a timing condition is what ``confirm`` re-measures.
    breached: bool = False
    # For INCONCLUSIVE: what it counts as in the verdict (on_inconclusive); else None.
    counts_as: OutcomeStatus | None = None
    mde_pct: float | None = None  # the smallest shift the test detects at these samples, %
    needed_n: int | None = None  # about how many samples per run would detect min_effect_pct
    confirmations: tuple[Confirmation, ...] = ()  # re-measurements of a breach (confirm = N)
    calibration: Calibration | None = None  # the condition's measured error rates

    @property
    def weight(self) -> OutcomeStatus:
        """The status this outcome counts as in the verdict (INCONCLUSIVE counts as its
        ``counts_as``, WARN when unset)."""
        if self.status is OutcomeStatus.INCONCLUSIVE:
            return self.counts_as or OutcomeStatus.WARN
        return self.status


@dataclass(frozen=True)
class Baseline:
    """What earlier runs measured for one metric of one check."""

    check: str
    metric: str
    values: tuple[float, ...]  # the metric's value in each baseline run, newest first
    samples: tuple[float, ...]  # all raw samples of those runs, pooled
    runs: tuple[str, ...]  # their run ids, newest first
    pinned: bool = False

    @property
    def value(self) -> float:
        """The baseline value: the median of the runs' values (robust to one odd run)."""
        ordered = sorted(self.values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# The metric of the findings a version introduced, and the name of a ``new = true`` findings
# limit (``new_findings(high+) <= 0``): the store finds the runs such a limit spoilt by it.
NEW_FINDINGS = "new_findings"


@dataclass(frozen=True)
class FindingsBaseline:
    """The findings of a check in the stage's baseline run: what ``new = true`` conditions
    and SARIF's ``baselineState`` compare with (the pinned run, else the newest finished run
    in which the check completed and none of its ``new = true`` limits failed or warned,
    whatever else decided that run's verdict)."""

    run_id: str
    findings: tuple[Finding, ...]  # counted and waived ones (suppressed ones are not findings)


class Verdict(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


_SHOWN_REASONS = 3  # in a summary line; "and N more" for the rest


@dataclass(frozen=True, eq=False)
class Summary:
    """Why a run ended with its verdict, as data: built once where the verdict is decided,
    rendered by :func:`summary_line` wherever one line is shown (reports, the history,
    notifications, Prefect's final state). So nothing parses a line back to reuse its parts.

    A gate's summary counts its conditions (``evaluated``; ``deciding`` of them failed or
    warned) and keeps every distinct reason of the deciding ones; a refusal or a rollout has
    reasons only. ``unrecorded``: why the history store does not hold the run (said first).
    ``written``: a summary read back from a ``report.json``, where only its line survives.
    Two summaries are equal when they render the same line, so a report read back equals
    the report written.

    Example::

        summary_line(Summary("development", Verdict.FAIL, ("unit-tests: failed 1 > 0",),
                             evaluated=5, deciding=1))
        # 'development: FAIL — 1 of 5 conditions failed: unit-tests: failed 1 > 0'
    """

    stage: str
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    evaluated: int | None = None  # None: not a gate's verdict (a refusal, a rollout)
    deciding: int = 0  # of those, how many failed (a FAIL) or warned (a WARN)
    unrecorded: str | None = None
    written: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return summary_line(self) == summary_line(other)

    def __hash__(self) -> int:
        return hash(summary_line(self))


NO_SUMMARY = Summary("", Verdict.FAIL, written="")  # a hand-made report that says nothing


def summary_line(summary: Summary) -> str:
    """The one line: '<stage>: <VERDICT> — <what decided it>'."""
    if summary.unrecorded is None and summary.written is not None:
        return summary.written
    said = summary.verdict.value if summary.unrecorded is None else "NOT RECORDED"
    head = f"{summary.stage}: {said}"
    detail = summary_detail(summary)
    return f"{head} — {detail}" if detail else head


def summary_detail(summary: Summary) -> str:
    """What :func:`summary_line` says after the verdict (all of a ``written`` line), for a
    caller that quotes it in its own summary (a rollout quotes its validation's)."""
    if summary.unrecorded is not None:
        verdict = summary_line(replace(summary, unrecorded=None))
        return f"{summary.unrecorded}; unrecorded verdict: {verdict}"
    if summary.written is not None:
        return summary.written
    if summary.evaluated is None:
        return "; ".join(summary.reasons)
    if summary.evaluated == 0:
        return "no condition was evaluated"
    if summary.deciding == 0:
        return f"{summary.evaluated} of {summary.evaluated} conditions met"
    label = "failed" if summary.verdict is Verdict.FAIL else "warned"
    reasons = "; ".join(summary.reasons[:_SHOWN_REASONS])
    left = len(summary.reasons) - _SHOWN_REASONS
    more = f"; and {left} more" if left > 0 else ""
    return f"{summary.deciding} of {summary.evaluated} conditions {label}: {reasons}{more}"


@dataclass
class StageReport:
    """Everything one stage run decided, in the shape ``report.json`` documents."""

    run_id: str
    stage: str
    version: str
    target: str
    verdict: Verdict
    started_at: str  # ISO 8601, UTC
    finished_at: str
    duration_s: float
    checks: list[CheckResult]
    outcomes: list[Outcome]
    summary: Summary = NO_SUMMARY
    schema_version: int = 2  # report.json's (reports/json_report.SCHEMA_VERSION)
    # Whether the history store holds this run: None without a store, False until it does
    # (and for good when recording failed, with the reason in ``record_error``).
    recorded: bool | None = None
    record_error: str = ""
    # What was tested: version, commit, tree, how the version was found, where it was
    # checked out, the interpreter (path, version, prefix, why that one).
    tested: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
