"""A reason quoting a tool's output starts at a line, never mid-word: support.text.tail_lines,
and every quoting of a tool's or a log's end that goes through it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from neuroerp_ci.checks.command import CommandCheck, CommandSettings
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.model import CheckStatus, Priority
from neuroerp_ci.support.text import tail_lines
from neuroerp_ci.support.tooling import ToolRun, log_tail

OUTPUT = "collected 12 items\n\ntests/test_a.py ..F\n\nE   AssertionError: 1 != 2\n"


@pytest.mark.parametrize(
    ("chars", "expected"),
    [
        (600, "collected 12 items tests/test_a.py ..F E AssertionError: 1 != 2"),
        (45, "tests/test_a.py ..F E AssertionError: 1 != 2"),  # whole lines only
        (30, "E AssertionError: 1 != 2"),
        (20, "… 1 != 2"),  # the last line alone is too long: from a word on
    ],
)
def test_the_tail_starts_at_a_line(chars: int, expected: str) -> None:
    said = tail_lines(OUTPUT, chars)
    assert said == expected and len(said) <= chars


def test_a_line_cut_at_a_word_boundary_starts_with_the_next_whole_word() -> None:
    said = tail_lines("ERROR: could not resolve host advisories.example.org", 30)
    assert said == "… host advisories.example.org"
    assert tail_lines("x" * 50, 10) == "… " + "x" * 8  # one word: nothing better to do
    assert tail_lines("  \n\n ", 10) == ""


def test_a_tool_runs_tail_is_its_last_lines() -> None:
    run = ToolRun(("tool",), 1, "out\n", "first line is long enough\nlast line\n", 0.1)
    assert run.tail(20) == "last line"
    assert ToolRun(("tool",), 1, "only stdout here\n", "", 0.1).tail() == "only stdout here"


def test_a_logs_tail_never_starts_in_a_line_it_began_reading_in(tmp_path: Path) -> None:
    log = tmp_path / "target.log"
    # log_tail reads the last 4 * chars bytes: that starts in the middle of "word" lines.
    log.write_text("word " * 40 + "\n" + "starting server\nlistening on 127.0.0.1:8000\n")
    assert log_tail(log, 20) == "… on 127.0.0.1:8000"
    assert log_tail(log, 50) == "starting server listening on 127.0.0.1:8000"


def test_a_failing_commands_reason_quotes_its_last_lines(tmp_path: Path) -> None:
    # A first line too long to quote whole (600 characters at most), then the one that tells.
    script = (
        "import sys; sys.stderr.write('x' * 50 + ' ' + 'y' * 560 + '\\nboom: disk full\\n');"
        " sys.exit(3)"
    )
    check = Check(
        "migrate", "migrate", "command", Priority.HIGH, (), 60.0,
        CommandSettings(argv=[sys.executable, "-c", script]),
    )  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    ctx = CheckContext(
        project_dir=tmp_path, work_dir=work, python=sys.executable, env={}, base_url=None,
        allowed_hosts=(),
    )  # fmt: skip
    result = execute_check(CommandCheck(), check, ctx)
    assert result.status is CheckStatus.ERROR
    quoted = result.reason.split(" exited 3: ", 1)[1]
    assert quoted == "boom: disk full", result.reason  # not "yyyy… boom: disk full"
