"""Live progress for the CLI: a spinner per running check, a line per finished one."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from neuroerp_ci.checks import Check
from neuroerp_ci.model import CheckResult, CheckStatus
from neuroerp_ci.support.secrets import redact

_MARK = {
    CheckStatus.OK: "[green]✔[/]",
    CheckStatus.ERROR: "[red]✘[/]",
    CheckStatus.SKIPPED: "[yellow]–[/]",
}


class ConsoleProgress:
    """A :class:`~neuroerp_ci.run.runner.RunObserver` drawing on a rich console; it also
    shows re-measurements of breached checks (``confirm``: "confirming api-latency"),
    which are not counted as checks of the run."""

    def __init__(self, console: Console, checks: Sequence[Check]) -> None:
        self._console = console
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._lock = threading.Lock()
        self._overall: TaskID | None = None
        self._total = len(checks)
        self._running: dict[str, TaskID] = {}

    def __enter__(self) -> ConsoleProgress:
        self._progress.start()
        self._overall = self._progress.add_task("checks", total=self._total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def check_started(self, check: Check) -> None:
        with self._lock:
            self._running[check.id] = self._progress.add_task(f"  {check.id}", total=None)

    def check_finished(self, check: Check, result: CheckResult) -> None:
        with self._lock:
            task = self._running.pop(check.id, None)
            if task is not None:
                self._progress.remove_task(task)
            if self._overall is not None:
                self._progress.advance(self._overall)
            self._line(_MARK[result.status], check.id, result)

    def confirmation_started(self, check: Check, attempt: int) -> None:
        # Said as a line too: a CI log shows no spinner, and a re-run can take a while.
        text = f"confirming {check.id} ({_nth(attempt)} re-measurement of a breach)"
        with self._lock:
            self._running[_confirming(check, attempt)] = self._progress.add_task(
                f"  {text}", total=None
            )
            self._progress.console.print(f"↻ {text}", markup=False, highlight=False)

    def confirmation_finished(self, check: Check, attempt: int, result: CheckResult) -> None:
        with self._lock:
            task = self._running.pop(_confirming(check, attempt), None)
            if task is not None:
                self._progress.remove_task(task)
            self._line("[cyan]↻[/]", f"{check.id} (confirm {attempt})", result)

    def _line(self, mark: str, name: str, result: CheckResult) -> None:
        self._progress.console.print(
            f"{mark} {name:<22} {result.status.value:<7} "
            f"{result.duration_s:6.1f} s  {redact(result.reason)}",
            soft_wrap=True,
            markup=True,
            highlight=False,
        )


def _confirming(check: Check, attempt: int) -> str:
    return f"{check.id}\0confirm-{attempt}"  # cannot clash with a check id


def _nth(attempt: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(attempt, f"{attempt}th")
