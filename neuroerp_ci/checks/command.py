"""The ``command`` kind: run any program (migration test, smoke script, hook) as a check.

The program passes by exiting with one of ``ok_codes``. With ``metrics_json`` it reports
numbers too: the last non-empty line of its stdout must be a JSON object of name -> number,
e.g. ``{"rows_migrated": 1200, "duration_ms": 840}``.

``{python}``, ``{project}``, ``{base_url}`` and ``{port}`` in ``argv`` and ``env`` values are
replaced; the last two need the target running, so they need ``uses_target = true``.

Example pipeline entry::

    [[checks]]
    id = "smoke"
    kind = "command"
    settings = { argv = ["{python}", "scripts/smoke.py", "{base_url}"], uses_target = true,
                 metrics_json = true }
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, model_validator

from neuroerp_ci.checks._outputs import write_log
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    TargetUserSettings,
    placeholder_values,
    typed_settings,
)
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Metric
from neuroerp_ci.support.placeholders import PLACEHOLDERS, expand, expand_all
from neuroerp_ci.support.text import tail_lines
from neuroerp_ci.support.tooling import describe, run_tool

_TARGET_PLACEHOLDERS = ("{base_url}", "{port}")
_METRICS_SHOWN = 4


class CommandSettings(TargetUserSettings):
    """Settings of a ``command`` check."""

    argv: list[str] = Field(min_length=1)  # the command, run without a shell
    cwd: str | None = None  # relative to the project
    env: dict[str, str] = Field(default_factory=dict)  # added to the check's environment
    ok_codes: list[int] = Field(default_factory=lambda: [0], min_length=1)  # else an error
    metrics_json: bool = False  # the last stdout line is {"name": number, ...}

    @model_validator(mode="after")
    def _target_placeholders(self) -> CommandSettings:
        texts = [*self.argv, *self.env.values()]
        used = sorted({p for p in _TARGET_PLACEHOLDERS for t in texts if p in t})
        if used and not self.uses_target:
            raise ValueError(f"{', '.join(used)} needs the target: set uses_target = true")
        return self


class CommandCheck(CheckKind):
    """Run ``argv`` without a shell; exit status and optional JSON metrics."""

    name: ClassVar[str] = "command"
    settings_model = CommandSettings
    placeholders: ClassVar[Mapping[str, frozenset[str]]] = {
        "argv": frozenset(PLACEHOLDERS),
        "env": frozenset(PLACEHOLDERS),
    }
    # No default condition: an exit status outside ok_codes already makes the check an error.
    completed_means: ClassVar[str] = "the command exited with one of ok_codes"

    def metric_names(self, settings: KindSettings) -> MetricNames:
        reports = isinstance(settings, CommandSettings) and settings.metrics_json
        return MetricNames(
            fixed=frozenset({"exit_code"}),
            any_name=reports,  # the names of its JSON line
            needs={} if reports else {"*": "metrics_json = true (a JSON line of metrics)"},
        )

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, CommandSettings)
        values = placeholder_values(ctx, [*settings.argv, *settings.env.values()])
        argv = expand_all(settings.argv, values)
        cwd = ctx.project_dir / settings.cwd if settings.cwd else ctx.project_dir
        if not cwd.is_dir():
            raise ToolError(f"command working directory {settings.cwd!r} is not a directory")
        env = {**ctx.env, **{k: expand(v, values) for k, v in settings.env.items()}}
        log = ctx.work_dir / "command.log"
        log.unlink(missing_ok=True)
        run = run_tool(argv, cwd=cwd, timeout=check.timeout, env=env, ok_codes=None)
        write_log(log, run)
        if run.returncode not in settings.ok_codes:
            raise ToolError(f"{describe(argv)} exited {run.returncode}: {run.tail()}")
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = {"log": str(log)}
        reported = parse_metrics_line(run.stdout) if settings.metrics_json else {}
        for name, value in reported.items():
            result.add_metric(Metric(name, value, "", Direction.LOWER))
        result.add_metric(Metric("exit_code", run.returncode, "", Direction.LOWER))
        result.reason = command_reason(argv, run.returncode, reported)
        return result


def parse_metrics_line(stdout: str) -> dict[str, float]:
    """The JSON object on the last non-empty line of ``stdout``, as name -> finite number."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    try:
        data = json.loads(last)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not data:
        raise ToolError(f"command printed no JSON metrics: {_tail(last or stdout)}")
    metrics: dict[str, float] = {}
    for name, value in data.items():
        # bool is an int in Python, but true/false is not a measurement.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError(f"command printed no JSON metrics: {name!r} is not a number")
        if not math.isfinite(value):
            raise ToolError(f"command printed no JSON metrics: {name!r} is {value}")
        if name == "exit_code":
            raise ToolError("command printed no JSON metrics: 'exit_code' is reserved")
        metrics[name] = float(value)
    return metrics


def command_reason(argv: list[str], code: int, metrics: dict[str, float]) -> str:
    """One line, e.g. ``python migrate.py exited 0; rows=1200, duration_ms=840``."""
    text = f"{describe(argv)} exited {code}"
    if metrics:
        shown = [f"{k}={v:g}" for k, v in list(metrics.items())[:_METRICS_SHOWN]]
        more = len(metrics) - len(shown)
        text += "; " + ", ".join(shown) + (f", +{more} more" if more else "")
    return text


def _tail(text: str, chars: int = 200) -> str:
    return tail_lines(text, chars) or "(empty output)"
