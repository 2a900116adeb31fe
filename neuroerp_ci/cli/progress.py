"""Live progress for the CLI: a spinner per running check, a line per finished one, and
once the gate has judged them, a line per check saying whether it met its conditions.

A finished check's line says how its tool ran (``ran``, ``error``, ``skipped``) under a
neutral mark: whether it passed is only known once its conditions are judged, after every
check ran (baselines, waivers, re-measurements of breaches). The judged line's mark is the
verdict on the check: ``✘`` when a condition failed, ``!`` when one warned (or the tool
errored without failing the gate), ``✔`` only when the tool ran and all conditions passed::

    · unit-tests             ran        3.2 s  120 passed, 1 failed
    ✘ unit-tests             FAIL       3.2 s  coverage_pct 70 < 80

Reasons are printed as they are (a ``Text``, never markup): ``[advisories]`` stays.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from neuroerp_ci.checks import Check
from neuroerp_ci.model import CheckResult, CheckStatus, Outcome, OutcomeStatus
from neuroerp_ci.support.secrets import redact

# How the tool ran, on the line of a finished check: never "ok", which reads as a pass.
_RAN = {
    CheckStatus.OK: ("ran", ""),
    CheckStatus.ERROR: ("error", "red"),
    CheckStatus.SKIPPED: ("skipped", "yellow"),
}
_FAILED = ("✘", "red")
_WARNED = ("!", "yellow")


class ConsoleProgress:
    """A :class:`~neuroerp_ci.run.runner.RunObserver` drawing on a rich console (and a
    :class:`~neuroerp_ci.run.runner.JudgementObserver`: the judged lines); it also shows
    re-measurements of breached checks (``confirm``: "confirming api-latency"), which are
    not counted as checks of the run."""

    def __init__(self, console: Console, checks: Sequence[Check]) -> None:
        self._console = console
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
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
            if result.cached_from is not None:  # skipped: that run's result is judged
                reason = f"unchanged since run {result.cached_from}: {result.reason}"
                self._line(("·", "dim"), check.id, ("skipped", "cyan"), result, reason)
            else:
                self._line(("·", "dim"), check.id, _RAN[result.status], result, result.reason)

    def check_judged(self, check: Check, result: CheckResult, outcomes: Sequence[Outcome]) -> None:
        mark, word = judged_mark(result, outcomes)
        with self._lock:
            reason = judged_reason(check, outcomes) or result.reason  # no outcome: the tool's
            self._line(mark, check.id, word, result, reason)

    def confirmation_started(self, check: Check, attempt: int) -> None:
        # Said as a line too: a CI log shows no spinner, and a re-run can take a while.
        text = f"confirming {check.id} ({_nth(attempt)} re-measurement of a breach)"
        with self._lock:
            self._running[_confirming(check, attempt)] = self._progress.add_task(
                f"  {text}", total=None
            )
            self._progress.console.print(Text(f"↻ {text}"), highlight=False)

    def confirmation_finished(self, check: Check, attempt: int, result: CheckResult) -> None:
        with self._lock:
            task = self._running.pop(_confirming(check, attempt), None)
            if task is not None:
                self._progress.remove_task(task)
            name = f"{check.id} (confirm {attempt})"
            self._line(("↻", "cyan"), name, _RAN[result.status], result, result.reason)

    def _line(
        self,
        mark: tuple[str, str],
        name: str,
        word: tuple[str, str],
        result: CheckResult,
        reason: str,
    ) -> None:
        # Styled pieces of a Text: the reason is never read as markup.
        line = Text.assemble(
            mark,
            f" {name:<22} ",
            (f"{word[0]:<8}", word[1]),
            f" {result.duration_s:6.1f} s  {redact(reason)}",
        )
        self._progress.console.print(line, soft_wrap=True, highlight=False)


def judged_mark(
    result: CheckResult, outcomes: Sequence[Outcome]
) -> tuple[tuple[str, str], tuple[str, str]]:
    """The mark and the word (each with its style) of a judged check: the worst of its
    outcomes as the verdict counts them; ``✔ PASS`` only when its tool ran and every
    condition passed."""
    for weight, (mark, style) in ((OutcomeStatus.FAIL, _FAILED), (OutcomeStatus.WARN, _WARNED)):
        worst = next((o for o in outcomes if o.weight is weight), None)
        if worst is not None:  # INCONCLUSIVE says so, marked as what it counts as
            return (mark, style), (worst.status.value.upper(), style)
    if result.status is CheckStatus.ERROR:  # a policy let the error pass: still not met
        return _WARNED, ("ERROR", "yellow")
    if result.status is CheckStatus.SKIPPED:
        return ("–", "yellow"), ("SKIPPED", "yellow")
    if any(o.status is OutcomeStatus.INFO for o in outcomes):  # breached, counts for nothing
        return ("i", "cyan"), ("INFO", "cyan")
    return ("✔", "green"), ("PASS", "green")


def judged_reason(check: Check, outcomes: Sequence[Outcome]) -> str:
    """Why: the reasons of the outcomes that count against the verdict (or breached), else
    of all of them, without the check id each starts with."""
    telling = [o for o in outcomes if o.weight is not OutcomeStatus.PASS] or list(outcomes)
    said = (_without_id(o.reason, check.id) for o in telling)
    return "; ".join(dict.fromkeys(said))


def _without_id(reason: str, check_id: str) -> str:
    """``api: p95_ms 412 > 300`` / ``api error: ...`` -> ``p95_ms 412 > 300`` / ``error: ...``
    (the line names the check already)."""
    for prefix in (f"{check_id}: ", f"{check_id} "):
        if reason.startswith(prefix):
            return reason[len(prefix) :]
    return reason


def _confirming(check: Check, attempt: int) -> str:
    return f"{check.id}\0confirm-{attempt}"  # cannot clash with a check id


def _nth(attempt: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(attempt, f"{attempt}th")
