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
    """A :class:`~neuroerp_ci.run.runner.RunObserver` drawing on a rich console."""

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
            self._progress.console.print(
                f"{_MARK[result.status]} {check.id:<22} {result.status.value:<7} "
                f"{result.duration_s:6.1f} s  {redact(result.reason)}",
                soft_wrap=True,
                markup=True,
                highlight=False,
            )
