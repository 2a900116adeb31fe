"""Notifications and monitoring: a webhook on FAIL, gate metrics in Prometheus text format.

- **Webhook**: when a stage ends with a verdict listed in ``[notify] on`` (default FAIL), its
  summary is POSTed as JSON (``{"text": summary, "stage": ..., ...}``, which Slack and
  Mattermost incoming webhooks show as a message). The URL is a secret: it comes from the
  environment variable ``[notify] webhook_env`` (default ``NEUROERP_CI_WEBHOOK_URL``) or a
  Prefect Secret block, and it is never printed, logged or reported; errors name the webhook,
  not its URL. Like every secret (:mod:`neuroerp_ci.support.secrets`) it is redacted from the body,
  the notes and the Prometheus text too.
- **Prometheus**: :func:`prometheus_text` renders a run's gate metrics in the text exposition
  format (0.0.4). It is written to ``[notify] metrics_file`` (``{stage}`` in the name is
  replaced, so each stage keeps its own file for node_exporter's textfile collector) and/or
  PUT to a Pushgateway at ``[notify] pushgateway_url`` under
  ``/metrics/job/<job>/stage/<stage>/target/<target>``.

Notifying never changes a verdict: every problem becomes a note for the run's log.
"""

from __future__ import annotations

import base64
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from neuroerp_ci.config import Pipeline
from neuroerp_ci.config.stage_rules import NotifySpec
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.model import CheckStatus, OutcomeStatus, StageReport, Verdict, summary_line
from neuroerp_ci.release.rollout import RolloutReport
from neuroerp_ci.support.hosts import http_url_problem
from neuroerp_ci.support.secrets import SecretLoader, redact, redact_data, register

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NotifyError(NeuroErpCiError):
    """A notification could not be delivered (the message never holds the secret URL)."""


@dataclass(frozen=True)
class Note:
    """What one notification did, for the run's log (``ok=False``: log it as a warning)."""

    text: str
    ok: bool = True


# --- webhook --------------------------------------------------------------------------------


def resolve_webhook_url(
    spec: NotifySpec, env: Mapping[str, str], load_secret: SecretLoader | None = None
) -> str | None:
    """The webhook URL: the environment variable first, then the Secret block; None if
    neither is set. A value that is not an http(s) URL is a NotifyError (not shown)."""
    url = env.get(spec.webhook_env, "").strip()
    source = f"${spec.webhook_env}"
    if not url and spec.webhook_secret_block and load_secret is not None:
        source = f"Secret block {spec.webhook_secret_block!r}"
        try:
            url = load_secret(spec.webhook_secret_block).strip()
        except Exception as exc:  # noqa: BLE001 - any failure to load is "no URL", said once
            raise NotifyError(f"webhook: cannot load {source}: {type(exc).__name__}") from None
    if not url:
        return None
    if http_url_problem(url) is not None:
        raise NotifyError(f"webhook: the URL in {source} is not an http(s) URL")
    register(url)  # httpx logs the URL it posts to: the log filter hides it
    return url


def webhook_payload(report: StageReport, rollout: RolloutReport | None = None) -> dict[str, Any]:
    """The JSON body: ``text`` (the summary) plus the run's identity and the reasons of what
    failed and warned, each as it counted in the verdict (an INCONCLUSIVE outcome as its
    ``on_inconclusive``, labelled so)."""
    verdict = rollout.verdict if rollout else report.verdict
    summary = summary_line(rollout.summary if rollout else report.summary)
    failed = _reasons(report, OutcomeStatus.FAIL)
    warned = _reasons(report, OutcomeStatus.WARN)
    return {
        "text": f"neuroerp-ci {report.target} {report.version}: {summary}",
        "stage": report.stage,
        "target": report.target,
        "version": report.version,
        "verdict": verdict.value,
        "run_id": report.run_id,
        "summary": summary,
        "failed": failed[:20],
        "warned": warned[:20],
    }


def _reasons(report: StageReport, weight: OutcomeStatus) -> list[str]:
    """``check: reason`` of each outcome that counted as ``weight``; an INCONCLUSIVE one
    says so (``api: inconclusive: ...``), so no one reads it as a confirmed breach."""
    return [
        f"{o.check}: inconclusive: {o.reason}"
        if o.status is OutcomeStatus.INCONCLUSIVE
        else f"{o.check}: {o.reason}"
        for o in report.outcomes
        if o.weight is weight
    ]


def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    client: httpx.Client,
    *,
    timeout: float,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """POST ``payload`` (redacted); retry transport errors and 5xx/429. Returns a note
    without the URL."""
    register(url)
    body = redact_data(dict(payload))
    error = ""
    for attempt in range(1, retries + 2):
        try:
            response = client.post(url, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
        else:
            if response.is_success:
                return f"webhook: delivered (HTTP {response.status_code}, attempt {attempt})"
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the receiver refused the message itself: retrying will not help
        if attempt <= retries:
            sleep(min(2.0**attempt, 30.0))
    raise NotifyError(f"webhook: not delivered after {attempt} attempt(s): {error}")


# --- Prometheus text exposition -------------------------------------------------------------


class _Exposition:
    """Collects samples per metric family and renders them with HELP and TYPE lines."""

    def __init__(self, base: Mapping[str, str]) -> None:
        self._base = dict(base)
        self._families: dict[str, tuple[str, list[str]]] = {}

    def add(self, name: str, help_text: str, value: float, **labels: str) -> None:
        _, lines = self._families.setdefault(name, (help_text, []))
        all_labels = {**self._base, **labels}
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in all_labels.items())
        lines.append(f"{name}{{{text}}} {_number(value)}")

    def render(self) -> str:
        out: list[str] = []
        for name, (help_text, lines) in self._families.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *lines]
        return "\n".join(out) + "\n" if out else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _timestamp(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return math.nan


def prometheus_text(report: StageReport, rollout: RolloutReport | None = None) -> str:
    """The run's gate metrics as Prometheus text (all gauges, labelled stage and target)."""
    x = _Exposition({"stage": report.stage, "target": report.target})
    verdict = rollout.verdict if rollout else report.verdict
    for v in Verdict:
        x.add(
            "neuroerp_ci_gate_verdict",
            "1 for the verdict of the stage's last run, 0 for the others.",
            1.0 if v is verdict else 0.0,
            verdict=v.value,
        )
    x.add(
        "neuroerp_ci_gate_info",
        "The stage's last run: version and run id.",
        1.0,
        version=report.version,
        run_id=report.run_id,
    )
    x.add(
        "neuroerp_ci_gate_duration_seconds",
        "Wall time of the stage's last run.",
        report.duration_s,
    )
    x.add(
        "neuroerp_ci_gate_last_run_timestamp_seconds",
        "When the stage's last run finished (Unix time).",
        _timestamp(report.finished_at),
    )
    counts = Counter(o.status for o in report.outcomes)
    for status in OutcomeStatus:
        x.add(
            "neuroerp_ci_gate_outcomes",
            "Gate conditions of the last run by outcome status.",
            counts.get(status, 0),
            status=status.value,
        )
    _check_families(x, report)
    if rollout is not None:
        _rollout_families(x, rollout)
    return x.render()


def _check_families(x: _Exposition, report: StageReport) -> None:
    for r in report.checks:
        for status in CheckStatus:
            x.add(
                "neuroerp_ci_check_status",
                "1 for the status of each check in the last run, 0 for the others.",
                1.0 if r.status is status else 0.0,
                check=r.check_id,
                status=status.value,
            )
        x.add(
            "neuroerp_ci_check_duration_seconds",
            "Wall time of each check in the last run.",
            r.duration_s,
            check=r.check_id,
        )
        by_severity = Counter(f.severity.value for f in r.findings)
        for severity, count in sorted(by_severity.items()):
            x.add(
                "neuroerp_ci_check_findings",
                "Findings of each check in the last run by severity.",
                count,
                check=r.check_id,
                severity=severity,
            )
        for m in r.metrics.values():
            x.add(
                "neuroerp_ci_check_metric",
                "Every metric the checks of the last run measured (unit in the label).",
                m.value,
                check=r.check_id,
                metric=m.name,
                unit=m.unit,
            )


def _rollout_families(x: _Exposition, rollout: RolloutReport) -> None:
    for s in rollout.steps:
        x.add(
            "neuroerp_ci_rollout_step_ok",
            "1 when the rollout step succeeded in the last rollout, else 0.",
            1.0 if s.ok else 0.0,
            step=s.step,
        )
    x.add(
        "neuroerp_ci_rollout_rollback_failed",
        "1 when the last rollout's rollback hook failed: the target may be half deployed.",
        1.0 if rollout.rollback == "FAILED" else 0.0,
    )


def write_metrics_file(text: str, path: Path) -> Path:
    """Write atomically (the textfile collector must never read half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def pushgateway_url(base: str, job: str, grouping: Mapping[str, str]) -> str:
    """``<base>/metrics/job/<job>/<label>/<value>...``; a value with '/' goes base64."""
    parts = [base.rstrip("/"), "metrics", "job", quote(job, safe="")]
    for label, value in grouping.items():
        if "/" in value or not value:
            encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
            parts += [f"{label}@base64", encoded]
        else:
            parts += [label, quote(value, safe="")]
    return "/".join(parts)


def push_metrics(
    text: str,
    base: str,
    job: str,
    grouping: Mapping[str, str],
    client: httpx.Client,
    timeout: float,
) -> str:
    """PUT the text to a Pushgateway (replacing the group's metrics); a note or NotifyError."""
    url = pushgateway_url(base, job, grouping)
    shown = _origin(base)
    try:
        response = client.put(
            url, content=text.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE},
            timeout=timeout,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise NotifyError(f"pushgateway {shown}: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        tail = " ".join(response.text[-200:].split())
        raise NotifyError(f"pushgateway {shown}: HTTP {response.status_code}: {tail}")
    return f"metrics pushed to {shown} (HTTP {response.status_code})"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


# --- everything a finished run sends --------------------------------------------------------


def notify_outcome(
    pipeline: Pipeline,
    report: StageReport,
    *,
    rollout: RolloutReport | None = None,
    env: Mapping[str, str] | None = None,
    load_secret: SecretLoader | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Note]:
    """Write/push metrics and call the webhook as configured; return notes, never raise."""
    spec = pipeline.notify
    env = os.environ if env is None else env
    notes: list[Note] = []
    own_client = client is None
    http = client or httpx.Client()
    try:
        text = redact(prometheus_text(report, rollout))
        if spec.metrics_file:
            name = spec.metrics_file.replace("{stage}", report.stage)
            path = (pipeline.project_dir / name).resolve()
            try:
                notes.append(Note(f"metrics written to {write_metrics_file(text, path)}"))
            except OSError as exc:
                notes.append(Note(f"metrics file {path}: not written: {exc.strerror}", ok=False))
        if spec.pushgateway_url:
            grouping = {"stage": report.stage, "target": report.target}
            try:
                pushed = push_metrics(
                    text, spec.pushgateway_url, spec.job, grouping, http, spec.timeout_s
                )
                notes.append(Note(pushed))
            except NotifyError as exc:
                notes.append(Note(str(exc), ok=False))
        verdict = rollout.verdict if rollout else report.verdict
        if verdict.value in spec.on:
            notes.append(_webhook(spec, report, rollout, env, load_secret, http, sleep))
    finally:
        if own_client:
            http.close()
    return [Note(redact(n.text), n.ok) for n in notes]


def _webhook(
    spec: NotifySpec,
    report: StageReport,
    rollout: RolloutReport | None,
    env: Mapping[str, str],
    load_secret: SecretLoader | None,
    client: httpx.Client,
    sleep: Callable[[float], None],
) -> Note:
    try:
        url = resolve_webhook_url(spec, env, load_secret)
        if url is None:
            return Note("webhook: not configured")
        delivered = send_webhook(
            url,
            webhook_payload(report, rollout),
            client,
            timeout=spec.timeout_s,
            retries=spec.retries,
            sleep=sleep,
        )
    except NotifyError as exc:
        return Note(str(exc), ok=False)
    return Note(delivered)


def metric_names(text: str) -> Sequence[str]:
    """The metric family names in an exposition text (for tests and docs)."""
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
