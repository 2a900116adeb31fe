"""Production rollout: approval, backup, deploy, canary, validation, rollback. Plain Python.

The sequence (:func:`run_rollout`)::

    lock ────── held by another run (refuse / waited) ─> FAIL (nothing deployed)
       │
    approval ── rejected / timed out ──────────────────> FAIL (nothing deployed)
       │
    backup ──── hook error ────────────────────────────> FAIL (nothing deployed)
       │
    deploy ──── hook error ──┐
    canary ──── regression ──┤  (canary mode: compare, then the full ``switch``)
    switch ──── hook error ──┤
    validation ─ FAIL ───────┴─> rollback (once) ──────> FAIL, "rolled back"
       │                              └─ rollback error ─> FAIL, "ROLLBACK FAILED: ..."
    PASS / WARN          ... and in every case: release the lock

The rollout lock (:class:`RolloutLock`, a row in the history store per stage and target) is
taken before anyone is asked to approve and held to the end, rollback included, with a lease
renewed while the run lives. So a second rollout started while the first waits for approval
is refused at once, or waits for the lock (``[stages.<name>] lock = "wait"``), before it asks
anyone. The lock is confirmed again after the approval and before a canary's ``switch``: a
run that lost it (the store unreachable until the lease ran out, then another run took it)
fails there, before backup and deploy, or rolls its canary back. Prefect's deployment
concurrency limit cannot do this: it frees the slot while a run is paused for approval.

How a person approves, how checks run and how hooks are called are passed in: the Prefect
adapter (:mod:`neuroerp_ci.orchestration`) pauses the flow run for typed input, runs the
stage's checks as tasks and each hook as a task; tests pass plain callables. Every step's
result is kept in a :class:`RolloutReport` (``rollout.json`` and ``rollout.md``).
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx

from neuroerp_ci.config import Pipeline, Stage
from neuroerp_ci.config.stage_rules import CanarySpec, HookSpec, LockSpec
from neuroerp_ci.errors import ConfigError, NeuroErpCiError, TargetError, ToolError
from neuroerp_ci.gates.statistics import compare_samples
from neuroerp_ci.model import Outcome, OutcomeStatus, Severity, StageReport, Verdict
from neuroerp_ci.store import Lease, LeaseRenewer, LockAttempt, LockTable, StoreError
from neuroerp_ci.store.locks import iso_utc
from neuroerp_ci.support.hosts import LOOPBACK_HOSTS, ensure_allowed, guarded_client
from neuroerp_ci.support.placeholders import expand, expand_all
from neuroerp_ci.support.secrets import redact
from neuroerp_ci.support.tooling import describe, run_tool

logger = logging.getLogger(__name__)

ROLLOUT_CHECK = "rollout"  # the ``check`` of the outcomes a rollout reports itself
LOCK_STEP = "lock"
_TAIL = 300


class HookError(NeuroErpCiError):
    """An HTTP hook failed (transport error or unexpected status)."""


# --- approval -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRequest:
    """What a person is asked to approve."""

    stage: str
    version: str
    target: str
    timeout_s: int
    approvers: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        who = f" Approvers: {', '.join(self.approvers)}." if self.approvers else ""
        return (
            f"Deploy **{self.version}** of {self.target} to **{self.stage}**? Set `approve`, "
            f"say who you are in `approver` and why in `comment`.{who} Without an answer "
            f"within {self.timeout_s} s the stage fails and nothing is deployed."
        )


@dataclass(frozen=True)
class Approval:
    """The answer: approved or not, by whom and why. ``timed_out``: nobody answered."""

    approved: bool
    approver: str = ""
    comment: str = ""
    timed_out: bool = False
    at: str = field(default_factory=lambda: _now())


def approval_problem(request: ApprovalRequest, answer: Approval) -> str | None:
    """Why ``answer`` does not let the rollout go on, or None when it does."""
    who = answer.approver.strip()
    comment = f": {answer.comment.strip()}" if answer.comment.strip() else " (no comment)"
    if answer.timed_out:
        return f"approval timed out after {request.timeout_s} s (nobody approved)"
    if not answer.approved:
        return f"rejected by {who or 'an anonymous reviewer'}{comment}"
    if not who:
        return "approved without saying who approves (the 'approver' field is empty)"
    if request.approvers and who not in request.approvers:
        return f"{who!r} approved but is not one of the approvers {list(request.approvers)}"
    return None


# --- the rollout lock -----------------------------------------------------------------------


@dataclass
class LockOutcome:
    """What the rollout lock did, for the report: taken (maybe after waiting, maybe over an
    expired lease) or not, and which other run held it."""

    acquired: bool
    mode: str  # refuse | wait
    reason: str
    lease_s: float
    waited_s: float = 0.0
    holder_run_id: str | None = None  # the other run: refused by, waited for, or taken over from
    holder_label: str = ""
    holder_since: str | None = None
    took_over: bool = False  # from holder_*, whose lease had expired (it crashed)
    released: str = ""  # how it ended: "released at ...", or why it could not be


class RolloutLock:
    """The rollout lock of one stage and target for one run: take, confirm, release.

    :meth:`acquire` refuses or waits as ``spec`` says and then renews the lease in a thread
    until :meth:`release`. ``sleep`` and ``monotonic`` are the waiting's clock (tests).
    """

    def __init__(
        self,
        table: LockTable,
        spec: LockSpec,
        stage: str,
        target: str,
        run_id: str,
        label: str = "",
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._spec = spec
        self._stage, self._target, self._run_id, self._label = stage, target, run_id, label
        self._sleep = sleep
        self._monotonic = monotonic
        self._lease: Lease | None = None
        self._renewer: LeaseRenewer | None = None

    def acquire(self) -> LockOutcome:
        """Take the lock, waiting for it in ``wait`` mode; a store error is not a lock."""
        spec, what = self._spec, f"the {self._stage} rollout lock of {self._target}"
        started = self._monotonic()
        logged = False
        while True:
            waited = round(self._monotonic() - started, 3)
            try:
                attempt = self._table.try_acquire(
                    self._stage, self._target, self._run_id, self._label, spec.lease_s
                )
            except StoreError as exc:
                reason = f"could not take {what}: {exc}"
                return LockOutcome(False, spec.mode, reason, spec.lease_s, waited)
            if attempt.lease is not None:
                return self._taken(attempt, attempt.lease, waited, what)
            holder = attempt.holder
            outcome = LockOutcome(
                False,
                spec.mode,
                "",
                spec.lease_s,
                waited,
                holder_run_id=holder.run_id,
                holder_label=holder.label,
                holder_since=iso_utc(holder.acquired_at),
            )
            if spec.mode == "refuse":
                outcome.reason = (
                    f"another {self._stage} rollout of {self._target} holds the rollout "
                    f"lock: {holder.describe()}"
                )
                return outcome
            if waited >= spec.wait_timeout_s:
                outcome.reason = (
                    f"another {self._stage} rollout of {self._target} still holds the "
                    f"rollout lock after {waited:.0f} s of waiting: {holder.describe()}"
                )
                return outcome
            if not logged:
                logger.warning(
                    "waiting up to %.0f s for %s, held by %s",
                    spec.wait_timeout_s,
                    what,
                    holder.describe(),
                )
                logged = True
            self._sleep(min(spec.poll_s, max(spec.wait_timeout_s - waited, 0.0)))

    def _taken(self, attempt: LockAttempt, lease: Lease, waited: float, what: str) -> LockOutcome:
        self._lease = lease
        self._renewer = LeaseRenewer(lambda: self._table.renew(lease), lease.lease_s)
        self._renewer.start()
        mine = attempt.holder
        reason = f"took {what} at {iso_utc(mine.acquired_at)} (lease {lease.lease_s:g} s)"
        outcome = LockOutcome(True, self._spec.mode, reason, lease.lease_s, waited)
        if waited > 0:
            outcome.reason += f" after waiting {waited:.0f} s"
        old = attempt.took_over
        if old is not None:
            outcome.reason += (
                f", taking it over from {old.describe()}, whose lease expired at "
                f"{iso_utc(old.expires_at)}"
            )
            outcome.holder_run_id, outcome.holder_label = old.run_id, old.label
            outcome.holder_since, outcome.took_over = iso_utc(old.acquired_at), True
        return outcome

    def check(self) -> str | None:
        """None while this run holds the lock (renewed just now), else why it does not."""
        if self._lease is None or self._renewer is None:
            return "this run does not hold the rollout lock"
        if self._renewer.lost is not None:
            return f"the rollout lock was lost: {self._renewer.lost}"
        try:
            held = self._table.renew(self._lease)
        except StoreError as exc:
            return f"could not confirm the rollout lock: {exc}"
        return None if held else "the rollout lock was lost: another run took it over"

    def release(self) -> str:
        """Stop renewing and give the lock up; never raises (the lease expires anyway)."""
        if self._lease is None or self._renewer is None:
            return ""
        self._renewer.stop()
        lease, self._lease = self._lease, None
        try:
            released = self._table.release(lease)
        except StoreError as exc:
            logger.error("could not release the rollout lock: %s", exc)
            return f"NOT released ({exc}); it expires {lease.lease_s:g} s after its last renewal"
        if not released:
            return "not held any more at the end: another run had taken it over"
        return f"released at {_now()}"


# --- steps and the record -------------------------------------------------------------------


class StepStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class StepResult:
    """One step of a rollout: a hook, the approval, the canary or the validation."""

    step: str
    status: StepStatus
    reason: str
    duration_s: float = 0.0
    attempts: int = 0
    log: str | None = None  # file with the step's raw output (commands, HTTP bodies)

    @property
    def ok(self) -> bool:
        return self.status is StepStatus.OK


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


@dataclass
class RolloutReport:
    """Everything one rollout did, in order, and what it concluded."""

    stage: str
    version: str
    target: str
    run_id: str
    started_at: str
    verdict: Verdict = Verdict.FAIL
    summary: str = ""
    finished_at: str = ""
    steps: list[StepResult] = field(default_factory=list)
    approval: Approval | None = None
    canary: CanaryResult | None = None
    validation: StageReport | None = None
    rollback: str = "not needed"  # "not needed" | "rolled back" | "FAILED" | "no hook"
    lock: LockOutcome | None = None

    def step(self, name: str) -> StepResult | None:
        found = [s for s in self.steps if s.step == name]
        return found[-1] if found else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the validation report appears by run id, verdict and summary."""
        data: dict[str, Any] = {
            "stage": self.stage,
            "version": self.version,
            "target": self.target,
            "run_id": self.run_id,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "lock": asdict(self.lock) if self.lock else None,
            "approval": asdict(self.approval) if self.approval else None,
            "steps": [{**asdict(s), "status": s.status.value} for s in self.steps],
            "canary": asdict(self.canary) if self.canary else None,
            "validation": None,
            "rollback": self.rollback,
        }
        if self.validation is not None:
            data["validation"] = {
                "run_id": self.validation.run_id,
                "verdict": self.validation.verdict.value,
                "summary": self.validation.summary,
            }
        return data


def render_rollout_json(report: RolloutReport) -> str:
    """The text of ``rollout.json``."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_rollout_markdown(report: RolloutReport) -> str:
    """A short Markdown account: verdict, approval, one row per step."""
    lines = [f"# {report.stage} rollout of {report.version}: {report.verdict.value}", ""]
    lines += [report.summary, ""]
    if report.lock is not None:
        released = f"; {report.lock.released}" if report.lock.released else ""
        lines += [f"Lock: {report.lock.reason}{released}", ""]
    if report.approval is not None:
        a = report.approval
        answer = "timed out" if a.timed_out else ("approved" if a.approved else "rejected")
        lines += [f"Approval: **{answer}** by {a.approver or '—'} at {a.at}: {a.comment or '—'}"]
        lines.append("")
    lines += ["| step | status | attempts | duration | reason |", "|---|---|---|---|---|"]
    for s in report.steps:
        reason = s.reason.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {s.step} | {s.status.value} | {s.attempts or '—'} | {s.duration_s:.2f} s "
            f"| {reason} |"
        )
    lines += ["", f"Rollback: {report.rollback}", ""]
    return "\n".join(lines)


def rollout_stage_report(report: RolloutReport) -> StageReport:
    """A stage report for a rollout that stopped before validation (rejected, timed out,
    a hook failed): verdict FAIL, one outcome per step taken, for the history and CI."""
    outcomes = [
        Outcome(
            check=ROLLOUT_CHECK,
            condition=f"{s.step} ok",
            status=OutcomeStatus.PASS if s.ok else OutcomeStatus.FAIL,
            severity=Severity.BLOCKING,
            value=None,
            target="ok",
            reason=s.reason,
        )
        for s in report.steps
    ]
    return StageReport(
        run_id=report.run_id,
        stage=report.stage,
        version=report.version,
        target=report.target,
        verdict=report.verdict,
        started_at=report.started_at,
        finished_at=report.finished_at or _now(),
        duration_s=round(sum(s.duration_s for s in report.steps), 3),
        checks=[],
        outcomes=outcomes,
        summary=report.summary,
    )


# --- hooks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookContext:
    """Where and for what hooks run."""

    project_dir: Path
    python: str
    stage: str
    version: str
    run_id: str
    log_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    secrets: Mapping[str, str] = field(default_factory=dict)  # {env:NAME} values, never shown


class HookCaller(Protocol):
    def run(self, name: str, spec: HookSpec) -> StepResult: ...


class HookRunner:
    """Runs a hook: a command through :func:`run_tool`, or an HTTP call on ``client``.

    Each attempt has the hook's timeout; a failed attempt is retried ``retries`` times after
    ``retry_delay_s``. A host outside the allow-list is refused without any attempt.
    """

    def __init__(
        self,
        ctx: HookContext,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ctx = ctx
        self._client = client
        self._sleep = sleep

    def run(self, name: str, spec: HookSpec) -> StepResult:
        started = time.perf_counter()
        total = spec.retries + 1
        self._ctx.log_dir.mkdir(parents=True, exist_ok=True)
        log = self._ctx.log_dir / f"hook-{name}.log"
        log.unlink(missing_ok=True)
        if spec.url is not None:
            try:
                ensure_allowed(spec.url, self._ctx.allowed_hosts, f"{name} hook")
            except TargetError as exc:
                return StepResult(name, StepStatus.FAILED, f"{name} hook refused: {exc}")
        error = ""
        for attempt in range(1, total + 1):
            try:
                done = self._command(name, spec, log) if spec.argv else self._http(name, spec, log)
            except (ToolError, HookError) as exc:
                error = " ".join(str(exc).split())  # one line for reasons and summaries
                _append(log, f"# attempt {attempt}/{total} failed: {error}\n")
                if attempt < total:
                    self._sleep(spec.retry_delay_s)
                continue
            return StepResult(
                name,
                StepStatus.OK,
                f"{name} hook ok: {done}" + (f" (attempt {attempt}/{total})" if total > 1 else ""),
                round(time.perf_counter() - started, 3),
                attempt,
                str(log),
            )
        return StepResult(
            name,
            StepStatus.FAILED,
            f"{name} hook failed after {total} attempt{'s' if total > 1 else ''}: {error}",
            round(time.perf_counter() - started, 3),
            total,
            str(log),
        )

    def _values(self) -> dict[str, str]:
        return {
            **self._ctx.secrets,
            "python": self._ctx.python,
            "project": str(self._ctx.project_dir),
        }

    def _identity(self, name: str) -> dict[str, str]:
        ctx = self._ctx
        return {"version": ctx.version, "stage": ctx.stage, "hook": name, "run_id": ctx.run_id}

    def _command(self, name: str, spec: HookSpec, log: Path) -> str:
        values = self._values()
        argv = expand_all(spec.argv or [], values)
        cwd = self._ctx.project_dir / spec.cwd if spec.cwd else self._ctx.project_dir
        env = {
            **self._ctx.env,
            **{k: expand(v, values) for k, v in spec.env.items()},
            **{f"NEUROERP_CI_{k.upper()}": v for k, v in self._identity(name).items()},
        }
        run = run_tool(argv, cwd=cwd, timeout=spec.timeout_s, env=env, ok_codes=None)
        _append(
            log,
            f"$ {describe(argv)}\n# exit {run.returncode}, {run.duration_s:.3f} s\n"
            f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}\n",
        )
        shown = " ".join(describe(argv).split())  # one line, even for a multi-line script
        if run.returncode not in spec.ok_codes:
            raise ToolError(f"{shown} exited {run.returncode}: {run.tail(_TAIL)}")
        return f"{shown} exited {run.returncode}"

    def _http(self, name: str, spec: HookSpec, log: Path) -> str:
        url = spec.url or ""
        body = None if spec.method == "GET" else {**spec.body, **self._identity(name)}
        client = self._client or guarded_client(self._ctx.allowed_hosts)
        try:
            response = client.request(spec.method, url, json=body, timeout=spec.timeout_s)
        except httpx.HTTPError as exc:
            raise HookError(f"{spec.method} {url}: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._client is None:
                client.close()
        text = response.text
        _append(log, f"{spec.method} {url} -> {response.status_code}\n{text}\n")
        expected = spec.expect_status
        good = response.status_code in expected if expected else response.is_success
        if not good:
            tail = " ".join(text[-_TAIL:].split())
            raise HookError(f"{spec.method} {url} answered {response.status_code}: {tail}")
        return f"{spec.method} {url} answered {response.status_code}"


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(redact(text))  # a hook may print its whole environment


# --- canary ---------------------------------------------------------------------------------


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


# --- the sequence ---------------------------------------------------------------------------


Approver = Callable[[ApprovalRequest], Approval]
Validator = Callable[[], StageReport]
CanaryJudge = Callable[[CanarySpec], CanaryResult]


def is_rollout_stage(stage: Stage) -> bool:
    """Stages with approval, hooks or a canary run as a rollout, not as a plain gate."""
    return stage.approval is not None or stage.hooks is not None or stage.canary is not None


def check_rollout_plan(pipeline: Pipeline, stage: Stage) -> None:
    """Refuse a rollout that cannot work before anyone is asked to approve it."""
    where = f"stages.{stage.name}"
    hooks = stage.hooks
    if stage.canary is not None:
        if hooks is None or hooks.deploy is None or hooks.switch is None:
            raise ConfigError(
                pipeline.path,
                f"{where}.canary",
                "canary mode needs hooks.deploy (start the canary) and hooks.switch "
                "(the full switch once the canary passed)",
            )
        for key in ("canary_url", "stable_url"):
            _allowed(pipeline, getattr(stage.canary, key), f"{where}.canary.{key}")
    if hooks is not None:
        for name in ("backup", "deploy", "switch", "rollback"):
            spec: HookSpec | None = getattr(hooks, name)
            if spec is not None and spec.url is not None:
                _allowed(pipeline, spec.url, f"{where}.hooks.{name}.url")


def _allowed(pipeline: Pipeline, url: str, key: str) -> None:
    try:
        ensure_allowed(url, pipeline.target.allowed_hosts, "URL")
    except TargetError as exc:
        raise ConfigError(pipeline.path, key, f"{exc} (see [target] allowed_hosts)") from None


def run_rollout(
    pipeline: Pipeline,
    stage_name: str,
    version: str,
    run_id: str,
    *,
    approve: Approver,
    validate: Validator,
    hooks: HookCaller,
    canary: CanaryJudge | None = None,
    lock: RolloutLock | None = None,
) -> RolloutReport:
    """Run the rollout of ``stage_name`` for ``version``; never raises for a failed step.

    With ``lock``, nothing happens (no approval is asked) unless the lock is taken, and it is
    released on every way out. Raises :class:`ConfigError` (before anything happens) for a
    plan that cannot work.
    """
    stage = pipeline.stage(stage_name)
    check_rollout_plan(pipeline, stage)
    report = RolloutReport(stage.name, version, pipeline.target.name, run_id, _now())
    if lock is None:
        return _steps(report, stage, approve, validate, hooks, canary, None)
    failure = _lock(report, lock)
    if failure is not None:
        return _finish(report, Verdict.FAIL, f"{failure}; nothing deployed, no rollback needed")
    try:
        return _steps(report, stage, approve, validate, hooks, canary, lock)
    finally:
        released = lock.release()
        if report.lock is not None:
            report.lock.released = released


def _steps(
    report: RolloutReport,
    stage: Stage,
    approve: Approver,
    validate: Validator,
    hooks: HookCaller,
    canary: CanaryJudge | None,
    lock: RolloutLock | None,
) -> RolloutReport:
    version = report.version
    failure = _approve(report, stage, approve)
    if failure is None:
        # The approval may have taken hours: still ours before anything changes?
        failure = _confirm_lock(report, lock, "backup and deploy")
    specs = stage.hooks
    if failure is None and specs is not None and specs.backup is not None:
        failure = _hook(report, hooks, "backup", specs.backup)
    if failure is not None:
        return _finish(report, Verdict.FAIL, f"{failure}; nothing deployed, no rollback needed")
    failure = _deploy(report, stage, hooks, canary, lock)
    if failure is None:
        failure = _validate(report, validate)
    if failure is None:
        assert report.validation is not None
        verdict = report.validation.verdict
        shown = _after_dash(report.validation.summary)
        who = f" (approved by {report.approval.approver})" if report.approval else ""
        return _finish(report, verdict, f"{version} deployed{who}; validation: {shown}")
    return _roll_back(report, stage, hooks, failure)


def _lock(report: RolloutReport, lock: RolloutLock) -> str | None:
    started = time.perf_counter()
    outcome = lock.acquire()
    report.lock = outcome
    took = round(time.perf_counter() - started, 3)
    status = StepStatus.OK if outcome.acquired else StepStatus.FAILED
    report.steps.append(StepResult(LOCK_STEP, status, outcome.reason, took))
    if outcome.acquired:
        return None
    logger.warning("%s rollout of %s: %s", report.stage, report.version, outcome.reason)
    return outcome.reason


def _confirm_lock(report: RolloutReport, lock: RolloutLock | None, before: str) -> str | None:
    """Why the rollout must not go on to ``before`` (it lost its lock), or None."""
    lost = lock.check() if lock is not None else None
    if lost is None:
        return None
    reason = f"{lost}; {before} not started"
    report.steps.append(StepResult(LOCK_STEP, StepStatus.FAILED, reason))
    logger.error("%s rollout of %s: %s", report.stage, report.version, reason)
    return reason


def _approve(report: RolloutReport, stage: Stage, approve: Approver) -> str | None:
    if stage.approval is None:
        return None
    request = ApprovalRequest(
        stage.name,
        report.version,
        report.target,
        stage.approval.timeout_s,
        tuple(stage.approval.approvers),
    )
    started = time.perf_counter()
    answer = approve(request)
    report.approval = answer
    problem = approval_problem(request, answer)
    took = round(time.perf_counter() - started, 3)
    if problem is None:
        note = f": {answer.comment.strip()}" if answer.comment.strip() else ""
        reason = f"approved by {answer.approver.strip()}{note}"
        report.steps.append(StepResult("approval", StepStatus.OK, reason, took))
        return None
    report.steps.append(StepResult("approval", StepStatus.FAILED, problem, took))
    logger.warning("%s rollout of %s: %s", stage.name, report.version, problem)
    return problem


def _hook(report: RolloutReport, hooks: HookCaller, name: str, spec: HookSpec) -> str | None:
    result = hooks.run(name, spec)
    report.steps.append(result)
    return None if result.ok else result.reason


def _deploy(
    report: RolloutReport,
    stage: Stage,
    hooks: HookCaller,
    canary: CanaryJudge | None,
    lock: RolloutLock | None,
) -> str | None:
    specs = stage.hooks
    if specs is None or specs.deploy is None:
        return None
    failure = _hook(report, hooks, "deploy", specs.deploy)
    if failure is None and stage.canary is not None:
        if canary is None:
            return "canary mode is configured but no canary comparison was given"
        started = time.perf_counter()
        try:
            result = canary(stage.canary)
        except (NeuroErpCiError, ValueError) as exc:
            result = CanaryResult(False, f"canary comparison failed: {exc}")
        report.canary = result
        status = StepStatus.OK if result.passed else StepStatus.FAILED
        took = round(time.perf_counter() - started, 3)
        report.steps.append(StepResult("canary", status, result.reason, took))
        failure = None if result.passed else f"canary failed: {result.reason}"
    if failure is None and specs.switch is not None:
        failure = _confirm_lock(report, lock, "switch")
    if failure is None and specs.switch is not None:
        failure = _hook(report, hooks, "switch", specs.switch)
    return failure


def _validate(report: RolloutReport, validate: Validator) -> str | None:
    started = time.perf_counter()
    try:
        validation = validate()
    except Exception as exc:  # noqa: BLE001 - whatever broke, what was deployed must go back
        reason = f"validation could not run: {type(exc).__name__}: {exc}".splitlines()[0]
        took = round(time.perf_counter() - started, 3)
        report.steps.append(StepResult("validation", StepStatus.FAILED, reason, took))
        return reason
    report.validation = validation
    took = round(time.perf_counter() - started, 3)
    ok = validation.verdict is not Verdict.FAIL
    status = StepStatus.OK if ok else StepStatus.FAILED
    report.steps.append(StepResult("validation", status, validation.summary, took))
    return None if ok else f"validation failed: {_after_dash(validation.summary)}"


def _roll_back(
    report: RolloutReport, stage: Stage, hooks: HookCaller, failure: str
) -> RolloutReport:
    """Call the rollback hook exactly once; its failure is the loudest thing reported."""
    spec = stage.hooks.rollback if stage.hooks is not None else None
    if spec is None:
        # Nothing was deployed by a hook (HooksSpec demands a rollback hook for deploys).
        report.rollback = "no hook"
        return _finish(report, Verdict.FAIL, f"{failure}; no rollback hook configured")
    result = hooks.run("rollback", spec)
    report.steps.append(result)
    if result.ok:
        report.rollback = "rolled back"
        return _finish(report, Verdict.FAIL, f"{failure}; rolled back ({result.reason})")
    report.rollback = "FAILED"
    logger.error(
        "ROLLBACK FAILED in the %s rollout of %s: %s (after: %s)",
        report.stage,
        report.version,
        result.reason,
        failure,
    )
    return _finish(
        report,
        Verdict.FAIL,
        f"ROLLBACK FAILED: {result.reason}; the {report.stage} target may be left half "
        f"deployed — act now. It was rolling back because {failure}",
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _after_dash(summary: str) -> str:
    """'production: FAIL — 1 of 5 conditions failed: ...' -> '1 of 5 conditions failed: ...'"""
    head, sep, rest = summary.partition(" — ")
    return rest if sep else summary


def _finish(report: RolloutReport, verdict: Verdict, text: str) -> RolloutReport:
    report.verdict = verdict
    report.summary = f"{report.stage}: {verdict.value} — {text}"
    report.finished_at = _now()
    return report
