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
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from neuroerp_ci.errors import TargetError
from neuroerp_ci.placeholders import expand, expand_all
from neuroerp_ci.tooling import TAIL_CHARS, describe

if TYPE_CHECKING:  # config imports the check kinds, which import this module
    from neuroerp_ci.config import TargetSpec

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

POLL_INTERVAL_S = 0.15
HEALTH_REQUEST_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class TargetInfo:
    """The target as the checks see it: resolved URLs, and the process if we started it."""

    base_url: str | None
    health_url: str | None
    pid: int | None = None
    log_path: Path | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def join_url(base_url: str, path: str) -> str:
    """``path`` appended to ``base_url`` (a base path prefix such as ``/api`` is kept)."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def resolve_url(url_or_path: str, base_url: str | None, what: str = "URL") -> str:
    """An absolute URL as is, a path joined to ``base_url`` (TargetError without one)."""
    if urlsplit(url_or_path).scheme:
        return url_or_path
    if base_url is None:
        raise TargetError(f"{what} {url_or_path!r} is a relative path but there is no base_url")
    return join_url(base_url, url_or_path)


def ensure_allowed(url: str, allowed_hosts: Sequence[str], what: str = "URL") -> None:
    """Raise TargetError unless ``url`` is http(s) and its host is in ``allowed_hosts``.

    Called before any traffic, so a mistyped or hostile URL is never contacted.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetError(f"{what} {url!r} is not an http:// or https:// URL")
    host = (parts.hostname or "").lower()
    if host not in {h.lower().strip("[]") for h in allowed_hosts}:
        raise TargetError(
            f"{what} host {host!r} ({url}) is not in allowed_hosts {list(allowed_hosts)}"
        )


def log_tail(log_path: Path | None, chars: int = TAIL_CHARS) -> str:
    """The end of the target's log on one line ("" when there is none)."""
    if log_path is None:
        return ""
    try:
        with log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4 * chars))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return " ".join(text.split())[-chars:]


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
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    # trust_env=False: a proxy from the environment must not see (or redirect) our polls.
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
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
        with httpx.Client(trust_env=False, follow_redirects=False) as client:
            response = client.get(info.health_url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TargetError(
            f"target not answering at {info.health_url}: {type(exc).__name__}: {exc}"
        ) from exc
    if not response.is_success:
        raise TargetError(
            f"target not healthy at {info.health_url}: HTTP {response.status_code}"
        )


def resolve_target(
    spec: TargetSpec, values: Mapping[str, str]
) -> tuple[TargetInfo, dict[str, str]]:
    """URLs with placeholders expanded and hosts checked, plus the values used.

    A free port is picked once when ``base_url``, ``start`` or ``health_url`` mention
    ``{port}`` (and the caller did not give one).
    """
    values = dict(values)
    texts = [spec.base_url or "", spec.health_url or "", *(spec.start or [])]
    if "port" not in values and any("{port}" in t for t in texts):
        values["port"] = str(free_port())
    base_url = expand(spec.base_url, values) if spec.base_url else None
    if base_url is not None:
        values["base_url"] = base_url
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
        wait_healthy(info.health_url, spec.start_timeout, proc, log_path=log_path)
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
            return subprocess.Popen(  # noqa: S603 - argument list, never a shell
                argv,
                cwd=str(cwd),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: stopping signals the whole group, so no child outlives it.
                start_new_session=True,
            )
        except OSError as exc:
            raise TargetError(f"cannot start target {describe(argv)}: {exc}") from exc


def stop_process_group(proc: subprocess.Popen[bytes], stop_timeout: float) -> None:
    """SIGTERM the process group, wait up to ``stop_timeout`` for the leader, SIGKILL the rest.

    The leader is waited for without being reaped (``WNOWAIT``), so its pid, which is also
    the group id, cannot be reused by another process before the final SIGKILL to the group.
    """
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    while proc.returncode is None and not _exited(proc.pid):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    # Whatever is left in the group (the leader ignoring SIGTERM, or its children) goes now.
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _exited(pid: int) -> bool:
    try:
        status = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True  # already reaped
    return status is not None


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


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
