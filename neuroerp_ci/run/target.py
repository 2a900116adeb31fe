"""The target service: resolve its URLs, start it, wait until healthy, always stop it.

:func:`target_session` is the one entry point the runner uses::

    with target_session(spec, {"python": sys.executable, "project": str(root)},
                        os.environ, out_dir / "target.log", root) as info:
        ...  # info.base_url is e.g. "http://127.0.0.1:41235"

With ``start`` set, the command runs in its own session (process group) with its output in
``log_path``; it is polled on its health URL until it answers 2xx, exits, or the start
timeout passes. Leaving the block, however it is left (exception, KeyboardInterrupt),
sends SIGTERM to the whole group, waits ``stop_timeout``, then SIGKILLs what is left.
Every URL is checked against ``allowed_hosts`` before anything is contacted.

Before the target (and before any check), :func:`prepared_workspace` gives the folder the
stage runs in: the project itself, or with ``workdir = "scratch"`` a copy of it removed
afterwards (:mod:`neuroerp_ci.project.workdir`); then it
runs the ``setup`` commands there, in order,
each with ``setup_timeout`` and the target's environment, its output in
``<run folder>/setup/<n>-<name>.log``. A failing one is a :class:`SetupError`: no check runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from neuroerp_ci.config import TargetSpec
from neuroerp_ci.errors import SetupError, TargetError
from neuroerp_ci.model import Outcome, OutcomeStatus, Severity
from neuroerp_ci.project.workdir import scratch_copy
from neuroerp_ci.support.hosts import (
    LOOPBACK_HOSTS,
    ensure_allowed,
    free_port,
    guarded_client,
    parse_http_url,
    resolve_url,
)
from neuroerp_ci.support.placeholders import expand, expand_all
from neuroerp_ci.support.secrets import redact_tree
from neuroerp_ci.support.tooling import (
    describe,
    log_tail,
    release_group,
    signal_group,
    start_group,
    stop_process_group,
)

POLL_INTERVAL_S = 0.15
HEALTH_REQUEST_TIMEOUT_S = 2.0
SETUP_CHECK = "setup"  # the ``check`` of the outcome that fails a stage whose setup failed
SETUP_POLL_S = 0.05


@dataclass(frozen=True)
class TargetInfo:
    """The target as the checks see it: resolved URLs, and the process if we started it."""

    base_url: str | None
    health_url: str | None
    pid: int | None = None
    log_path: Path | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS


def wait_healthy(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    *,
    log_path: Path | None = None,
    allowed_hosts: Sequence[str] | None = None,
    interval: float = POLL_INTERVAL_S,
) -> None:
    """Poll ``url`` until it answers 2xx; raise TargetError on exit of ``proc`` or timeout.

    Each poll is one short GET; connection errors and non-2xx answers are retried every
    ``interval`` seconds.
    """
    if allowed_hosts is not None:
        ensure_allowed(url, allowed_hosts, "health URL")
    try:  # without a list, the client may still reach the URL's own host only
        hosts = list(allowed_hosts) if allowed_hosts is not None else [parse_http_url(url).host]
    except ValueError as exc:
        raise TargetError(f"health URL {exc}") from None
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with guarded_client(hosts) as client:
        while True:
            if proc is not None and (code := _exit_code(proc)) is not None:
                raise TargetError(
                    f"target exited with code {code} before it was healthy: "
                    f"{log_tail(log_path) or '(no output)'}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = log_tail(log_path)
                raise TargetError(
                    f"target not healthy after {timeout:g} s at {url}: last {last}"
                    + (f"; log: {tail}" if tail else "")
                )
            try:
                response = client.get(
                    url, timeout=max(0.05, min(HEALTH_REQUEST_TIMEOUT_S, remaining))
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return
                last = f"HTTP {response.status_code}"
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def check_health(info: TargetInfo, timeout: float = HEALTH_REQUEST_TIMEOUT_S) -> None:
    """One health request to an already running target; TargetError unless it answers 2xx."""
    if info.health_url is None:
        raise TargetError("target has no health_url or base_url to check")
    ensure_allowed(info.health_url, info.allowed_hosts, "health URL")
    try:
        with guarded_client(info.allowed_hosts) as client:
            response = client.get(info.health_url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TargetError(
            f"target not answering at {info.health_url}: {type(exc).__name__}: {exc}"
        ) from exc
    if not response.is_success:
        raise TargetError(
            f"target not healthy at {info.health_url}: HTTP {response.status_code}"
        )


def target_values(spec: TargetSpec, values: Mapping[str, str]) -> dict[str, str]:
    """``values`` plus ``port`` and ``base_url`` as the target will have them.

    A free port is picked once when ``base_url``, ``start`` or ``health_url`` mention
    ``{port}`` (and the caller did not give one): pass the result on to keep it.
    """
    values = dict(values)
    texts = [spec.base_url or "", spec.health_url or "", *(spec.start or [])]
    if "port" not in values and any("{port}" in t for t in texts):
        values["port"] = str(free_port())
    if spec.base_url:
        values["base_url"] = expand(spec.base_url, values)
    return values


def resolve_target(
    spec: TargetSpec, values: Mapping[str, str]
) -> tuple[TargetInfo, dict[str, str]]:
    """URLs with placeholders expanded and hosts checked, plus the values used
    (:func:`target_values`)."""
    values = target_values(spec, values)
    base_url = values.get("base_url") if spec.base_url else None
    if base_url is not None:
        ensure_allowed(base_url, spec.allowed_hosts, "base_url")
    health_url = base_url
    if spec.health_url:
        health_url = resolve_url(expand(spec.health_url, values), base_url, "health_url")
    if health_url is not None:
        ensure_allowed(health_url, spec.allowed_hosts, "health URL")
    info = TargetInfo(base_url, health_url, allowed_hosts=tuple(spec.allowed_hosts))
    return info, values


@contextmanager
def target_session(
    spec: TargetSpec,
    values: Mapping[str, str],
    env: Mapping[str, str],
    log_path: Path,
    project_dir: Path | None = None,
) -> Iterator[TargetInfo]:
    """Resolve the target, start it if ``spec.start`` is set, and stop it afterwards.

    ``values`` holds the placeholder values (``python``, ``project``; ``port`` and
    ``base_url`` are filled in here). Without ``start`` nothing is contacted; use
    :func:`check_health` for one health request.
    """
    info, values = resolve_target(spec, values)
    if not spec.start:
        yield info
        return
    if info.health_url is None:  # config validation forbids this; kept for direct callers
        raise TargetError("a target with 'start' needs 'health_url' or 'base_url' to wait for")
    argv = expand_all(spec.start, values)
    cwd = project_dir if project_dir is not None else Path(values.get("project", "."))
    proc = _start(argv, _target_env(spec, values, env), cwd, log_path)
    try:
        wait_healthy(
            info.health_url, spec.start_timeout, proc, log_path=log_path,
            allowed_hosts=info.allowed_hosts,
        )
        yield TargetInfo(
            info.base_url, info.health_url, proc.pid, log_path, info.allowed_hosts
        )
    finally:
        stop_process_group(proc, spec.stop_timeout)


def _target_env(
    spec: TargetSpec, values: Mapping[str, str], env: Mapping[str, str]
) -> dict[str, str]:
    merged = dict(env)
    merged.update({key: expand(value, values) for key, value in spec.env.items()})
    port = values.get("port")
    if port is None and values.get("base_url"):
        found = urlsplit(values["base_url"]).port
        port = str(found) if found is not None else None
    if port is not None:
        merged["NEUROERP_CI_PORT"] = port
    if values.get("base_url"):
        merged["NEUROERP_CI_BASE_URL"] = values["base_url"]
    return merged


def _start(
    argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        try:
            # Own session (start_group): stopping signals the whole group, so no child outlives
            # it; tracked, so it dies with neuroerp-ci even when that is SIGKILLed.
            return start_group(
                argv,
                cwd=str(cwd),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise TargetError(f"cannot start target {describe(argv)}: {exc}") from exc


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """The exit code if ``proc`` ended (negative: killed by that signal), without reaping it.

    Not reaping keeps the pid (the process group id) reserved until we stop the group.
    """
    if proc.returncode is not None:
        return proc.returncode
    try:
        status = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return proc.poll()
    if status is None:
        return None
    if status.si_code == os.CLD_EXITED:
        return status.si_status
    return -status.si_status


# --- the folder the stage runs in, and its setup --------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """Where setup, the target and the checks run, and the placeholder values they share."""

    project_dir: Path  # the project, or its scratch copy
    values: Mapping[str, str]  # {python}, {project} (this folder), {port}, {base_url}, secrets
    error: SetupError | None = None  # why nothing may run: the copy or a setup command failed


@contextmanager
def prepared_workspace(
    spec: TargetSpec,
    project_dir: Path,
    values: Mapping[str, str],
    env: Mapping[str, str],
    log_dir: Path,
) -> Iterator[Workspace]:
    """The stage's folder (a scratch copy removed afterwards with ``workdir = "scratch"``),
    once ``spec.setup`` ran there; a failure is the workspace's ``error``, never raised."""
    with ExitStack() as stack:
        error: SetupError | None = None
        folder = project_dir
        try:
            if spec.workdir == "scratch":
                folder = stack.enter_context(scratch_copy(project_dir))
            shared = target_values(spec, {**values, "project": str(folder)})
            run_setup(spec, shared, env, folder, log_dir)
        except SetupError as exc:
            error, shared = exc, {**values, "project": str(folder)}
        yield Workspace(folder, shared, error)


def run_setup(
    spec: TargetSpec,
    values: Mapping[str, str],
    env: Mapping[str, str],
    cwd: Path,
    log_dir: Path,
) -> list[Path]:
    """Run ``spec.setup`` in order in ``cwd``; the logs written. SetupError names the first
    command that failed (exit code or timeout, and the end of its output)."""
    logs: list[Path] = []
    if not spec.setup:
        return logs
    setup_env = _target_env(spec, values, env)  # setup prepares what the target will use
    log_dir.mkdir(parents=True, exist_ok=True)
    total = len(spec.setup)
    for number, raw in enumerate(spec.setup, start=1):
        argv = expand_all(raw, values)
        log = log_dir / f"{number}-{setup_name(raw)}.log"
        logs.append(log)
        where = f"setup command {number} of {total} ({describe(argv)})"
        shown = f"(log: {log_dir.name}/{log.name})"
        try:
            code, tail = _run_logged(argv, cwd, setup_env, spec.setup_timeout, log, where)
        except SetupError as exc:  # could not run, or timed out
            raise SetupError(f"{exc} {shown}", f"{exc.headline} {shown}") from exc
        if code != 0:
            failed = f"{where} exited {code}"
            raise SetupError(f"{failed}: {tail} {shown}", f"{failed} {shown}")
    return logs


def setup_name(argv: Sequence[str]) -> str:
    """A short file-name part for a setup command: the module after ``-m`` or the script of
    an interpreter, else the program (``["{python}", "-m", "app.migrate"]`` -> app.migrate)."""
    program = Path(argv[0]).name
    name = program
    if argv[0] == "{python}" or program.startswith("python"):
        name = "python" if argv[0] == "{python}" else program
        for i, arg in enumerate(argv[1:], start=1):
            if arg in ("-m", "-c"):
                if arg == "-m" and i + 1 < len(argv):
                    name = argv[i + 1]
                break
            if not arg.startswith("-"):
                name = Path(arg).stem
                break
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:40] or "command"


def setup_outcome(error: SetupError) -> Outcome:
    """The blocking FAIL of a stage whose setup failed: no condition can outweigh it."""
    return Outcome(
        check=SETUP_CHECK,
        condition="target.setup completed",
        status=OutcomeStatus.FAIL,
        severity=Severity.BLOCKING,
        value=None,
        target="every setup command exits 0",
        reason=str(error),
    )


def _run_logged(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float, log: Path, where: str
) -> tuple[int, str]:
    """Run one command with its output in ``log`` (redacted); its exit code and the end of
    its output. What it leaves running in its process group is killed when it exits (setup
    prepares, ``start`` serves)."""
    started = time.monotonic()
    with log.open("wb") as fh:  # the child keeps its own descriptor
        fh.write(f"$ {describe(argv)}\n".encode())
        fh.flush()
        try:
            proc = start_group(
                argv, cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL, stdout=fh,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise SetupError(f"{where}: cannot run it: {exc.strerror or exc}") from exc
    code: int | None = None
    tail = ""
    try:
        # Waited for without reaping: its pid, the group's id, stays ours until the group dies.
        while (code := _exit_code(proc)) is None:
            if time.monotonic() - started >= timeout:
                stopped = f"{where} timed out after {timeout:g} s"
                raise SetupError(f"{stopped}: {_output_tail(log)}", stopped)
            time.sleep(SETUP_POLL_S)
        tail = _output_tail(log)
    finally:
        signal_group(proc.pid, signal.SIGKILL)
        release_group(proc)
        proc.wait()
        with log.open("a", encoding="utf-8") as fh:
            ended = f"exit {code}" if code is not None else "killed"
            fh.write(f"\n# {ended}, {time.monotonic() - started:.3f} s\n")
        redact_tree(log)  # the command may print its whole environment
    return code, tail


def _output_tail(log: Path) -> str:
    """The end of a setup log's output on one line, without the command line heading it."""
    text = log_tail(log)
    heading = ""
    with suppress(OSError), log.open("rb") as fh:
        heading = " ".join(fh.readline().decode("utf-8", errors="replace").split())
    if heading and text.startswith(heading):
        text = text[len(heading):].strip()
    return text or "(no output)"
