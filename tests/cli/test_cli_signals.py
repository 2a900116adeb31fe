"""SIGTERM and SIGHUP in the CLI: they unwind the command like Ctrl-C (its ``finally``
blocks run: tools killed, target stopped, run recorded aborted) and exit 128 + the signal's
number with one line; during the interpreter's exit they end the process at once. Each case
runs in a child process, so the test process keeps its own handlers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# A command that signals itself while it "runs", then would sleep for a minute; its finally
# block stands for the target's stop and the run's abort record.
NAPPING_COMMAND = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from neuroerp_ci.cli import commands as cli

    @cli.app.command()
    def nap() -> None:
        try:
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
            time.sleep(60)
        finally:
            Path(sys.argv[1]).write_text("unwound")

    if sys.argv[3] == "ignored":
        signal.signal(getattr(signal, sys.argv[2]), signal.SIG_IGN)  # as under nohup
    cli.main(["nap"])
    """
)


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_stop_signal_unwinds_the_command_and_exits_128_plus_its_number(
    tmp_path: Path, name: str, code: int
) -> None:
    marker = tmp_path / "marker"
    done = run(NAPPING_COMMAND, str(marker), name, "handled")
    assert done.returncode == code, done.stderr
    assert done.stderr.strip() == f"neuroerp-ci: stopped by {name}: the run was stopped"
    assert marker.read_text() == "unwound"


def test_an_ignored_stop_signal_stays_ignored(tmp_path: Path) -> None:
    """Under nohup, SIGHUP must not stop the run: the command sleeps on, untouched."""
    code = NAPPING_COMMAND.replace("time.sleep(60)", "time.sleep(0.2)")
    done = run(code, str(tmp_path / "marker"), "SIGHUP", "ignored")
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_a_stop_signal_while_the_interpreter_exits_ends_the_process_at_once() -> None:
    done = run(
        textwrap.dedent(
            """
            import os, signal, time
            from neuroerp_ci.cli import commands as cli

            with cli._stop_signals_unwind(restore=False):
                pass  # the command is over; Prefect's server would be stopping now
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
            """
        )
    )
    assert done.returncode == 143
    assert done.stderr.strip() == "neuroerp-ci: stopped by SIGTERM"
