"""Rollout hooks (``backup``, ``deploy``, ``switch``, ``rollback``): a command or an HTTP call,
each attempt with the hook's timeout, retried as configured, its raw output logged (redacted)
to ``hooks/hook-<name>.log``. A rollout calls them through a :class:`HookCaller`: the Prefect
adapter wraps each call in a task, tests pass the :class:`HookRunner` itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from neuroerp_ci.config.stage_rules import HookSpec
from neuroerp_ci.errors import NeuroErpCiError, TargetError, ToolError
from neuroerp_ci.release.rollout.report import StepResult, StepStatus
from neuroerp_ci.support.hosts import LOOPBACK_HOSTS, ensure_allowed, guarded_client
from neuroerp_ci.support.placeholders import expand, expand_all
from neuroerp_ci.support.secrets import redact
from neuroerp_ci.support.tooling import describe, run_tool

_TAIL = 300


class HookError(NeuroErpCiError):
    """An HTTP hook failed (transport error or unexpected status)."""


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
