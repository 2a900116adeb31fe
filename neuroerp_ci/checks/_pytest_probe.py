"""A pytest plugin that records what one pytest session collected and ran, for the pytest kind.

The kind loads it into the *target's* interpreter, which may not have neuroerp_ci installed:
it copies this file as ``neuroerp_ci_pytest_probe.py`` into a directory of its own, puts that
directory on ``PYTHONPATH`` and passes ``-p neuroerp_ci_pytest_probe``. So this module imports
only the standard library and pytest, and stays valid Python 3.8.

Each pytest process that loads it appends JSON lines to ``session-<pid>.jsonl`` in the
directory named by ``$NEUROERP_CI_PYTEST_PROBE``, one line flushed at a time, so a session
that dies half way (``os._exit`` in a test) still leaves what it did:

- ``start``: the options that decide what runs, as pytest ended up with them (after the
  project's addopts, ``PYTEST_ADDOPTS`` and plugins), and whether this is an xdist worker;
- ``collected``: items collected, collectors that failed or skipped, items deselected by
  pytest's own selection options (``-m``, ``-k``, ``--deselect``), items deselected by anyone
  else (by file), and the items left to run;
- ``test``: one per finished test: its worst outcome and whether its body ran;
- ``finish``: the exit status, once the session ended normally.
"""

from __future__ import annotations

import json
import os
import sys
from types import FrameType
from typing import IO, Any

import _pytest
import pluggy
import pytest

PROBE_DIR_ENV = "NEUROERP_CI_PYTEST_PROBE"
_RANK = {"passed": 0, "skipped": 1, "error": 2, "failure": 3}  # as the kind's JUnit reader
_PYTEST_DIR = os.path.dirname(os.path.abspath(_pytest.__file__)) + os.sep
_PLUGGY_DIR = os.path.dirname(os.path.abspath(pluggy.__file__)) + os.sep


class Probe:
    """The hooks; state lives here, not in the module, so inline sessions do not share it."""

    def __init__(self, config: pytest.Config, out: IO[str]) -> None:
        self.config = config
        self.out = out
        self.collected = 0
        self.collect_errors = 0
        self.collect_skipped = 0
        self.deselected = 0  # by pytest's own -m / -k / --deselect
        self.removed_by: dict[str, int] = {}  # deselected by a conftest or plugin, by file
        self.running: dict[str, list[Any]] = {}  # nodeid -> [worst outcome, body ran]

    def write(self, event: str, **data: Any) -> None:
        self.out.write(json.dumps({"event": event, **data}) + "\n")

    def pytest_sessionstart(self) -> None:
        option = self.config.option
        workerinput = getattr(self.config, "workerinput", None)
        self.write(
            "start",
            pid=os.getpid(),
            pytest=pytest.__version__,
            worker=workerinput.get("workerid") if isinstance(workerinput, dict) else None,
            numprocesses=getattr(option, "numprocesses", None) or 0,
            markexpr=getattr(option, "markexpr", "") or "",
            keyword=getattr(option, "keyword", "") or "",
            deselect=list(getattr(option, "deselect", None) or []),
            collectonly=bool(getattr(option, "collectonly", False)),
            cov_source=_json_safe(getattr(option, "cov_source", None)),
        )

    def pytest_itemcollected(self) -> None:
        self.collected += 1

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors += 1
        elif report.skipped:
            self.collect_skipped += 1

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        caller = _caller_file()
        if caller.startswith(_PYTEST_DIR):
            self.deselected += len(items)
        else:
            name = os.path.relpath(caller, str(self.config.rootpath))
            self.removed_by[name] = self.removed_by.get(name, 0) + len(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.write(
            "collected",
            collected=self.collected,
            errors=self.collect_errors,
            skipped=self.collect_skipped,
            deselected=self.deselected,
            removed_by=self.removed_by,
            selected=len(session.items),
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.running.setdefault(report.nodeid, ["passed", False])
        if report.failed:
            outcome = "failure" if report.when == "call" else "error"
        elif report.skipped:
            outcome = "skipped"
        else:
            outcome = "passed"
        if _RANK[outcome] > _RANK[state[0]]:
            state[0] = outcome
        # The body ran, or setup decided it must not (a skip, a failing fixture). Setup and
        # teardown alone (--setup-only, --setup-plan) report "passed" without running it.
        if report.when == "call" or (report.when == "setup" and not report.passed):
            state[1] = True

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        outcome, ran = self.running.pop(nodeid, ["passed", False])
        self.write("test", nodeid=nodeid, outcome=outcome, ran=ran)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.write("finish", exitstatus=int(exitstatus))

    def pytest_unconfigure(self) -> None:
        self.out.close()


def pytest_configure(config: pytest.Config) -> None:
    directory = os.environ.get(PROBE_DIR_ENV)
    if not directory:
        return  # loaded by hand: nobody reads what it would write
    path = os.path.join(directory, f"session-{os.getpid()}.jsonl")
    out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed at unconfigure
    config.pluginmanager.register(Probe(config, out), "neuroerp-ci-pytest-probe")


def _caller_file() -> str:
    """The file of the code that called the hook (the first frame outside pluggy and here)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(_PLUGGY_DIR) and name != os.path.abspath(__file__):
            return name
        frame = frame.f_back
    return "?"


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)
