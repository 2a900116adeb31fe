"""The console's lines: the mark says whether a check met its conditions, reasons printed
as they are.

A real stage of real command checks runs through the runner (thread executor, no Prefect)
with the console attached to a rich Console that writes to a string, as in a CI log.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console

from neuroerp_ci.checks import Check
from neuroerp_ci.checks.interface import KindSettings
from neuroerp_ci.cli import commands
from neuroerp_ci.cli.progress import ConsoleProgress
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import CheckResult, CheckStatus, Priority, Verdict
from neuroerp_ci.run.runner import NullObserver, RunOptions, ThreadExecutor, run_stage

ADVICE = "no advisory data: set [advisories] mirror in the pipeline file"
# stdout's last line is the metrics (metrics_json); an exit 1 is a tool error.
SCRIPT = (
    "import json, sys; print(json.dumps({metrics})); sys.stderr.write({stderr!r}); sys.exit({code})"
)


def command(cid: str, metrics: dict[str, float], code: int = 0, stderr: str = "") -> str:
    script = SCRIPT.format(metrics=metrics, stderr=stderr, code=code)
    argv = json.dumps(["{python}", "-c", script])
    return (
        f'[[checks]]\nid = "{cid}"\nkind = "command"\npriority = "high"\n'
        f"settings = {{ argv = {argv}, metrics_json = true }}\n"
    )


PIPELINE = (
    '[target]\npython = "{python}"\n\n'
    + command("coverage", {"coverage_pct": 70})
    + command("lint", {"warnings": 0})
    + command("bundle", {"size_kb": 900})
    + command("audit", {}, code=1, stderr=f"Traceback (most recent call last):\n{ADVICE}\n")
    + """
[stages.dev]
checks = ["coverage", "lint", "bundle", "audit"]
conditions = [
    { check = "coverage", metric = "coverage_pct", min = 80 },
    { check = "lint", metric = "warnings", max = 0 },
    { check = "bundle", metric = "size_kb", max = 500, severity = "warning" },
]
"""
)


@pytest.fixture(scope="module")
def console_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The console's lines of one run of the stage above (FAIL)."""
    tmp_path = tmp_path_factory.mktemp("console")
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE)
    pipeline = load_pipeline(config)
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    checks = list(pipeline.checks.values())
    with ThreadPoolExecutor(max_workers=2) as pool, ConsoleProgress(console, checks) as progress:
        outcome = run_stage(
            pipeline,
            RunOptions(stage="dev", output_dir=tmp_path / "out", run_id="t"),
            ThreadExecutor(pool),
            progress,
        )
    assert outcome.report.verdict is Verdict.FAIL
    return out.getvalue().splitlines()


def judged(lines: list[str], check: str) -> str:
    """The line the console printed once ``check`` was judged (its mark is not ``·``)."""
    found = [line for line in lines if line.split()[1:2] == [check] and line[0] != "·"]
    assert len(found) == 1, lines
    return found[0]


def finished(lines: list[str], check: str) -> str:
    """The line the console printed when ``check``'s tool finished."""
    found = [line for line in lines if line.startswith(f"· {check} ")]
    assert len(found) == 1, lines
    return found[0]


def test_a_check_whose_condition_failed_is_marked_failed(console_lines: list[str]) -> None:
    line = judged(console_lines, "coverage")
    assert line.startswith("✘ coverage") and " FAIL " in line, console_lines
    assert "coverage_pct 70 < 80" in line and " ok " not in line
    # Its line when the tool finished says how the tool ran, under no verdict mark.
    ran = finished(console_lines, "coverage")
    assert " ran " in ran and " ok " not in ran
    assert not any(line.startswith("✔ coverage") for line in console_lines)


def test_only_a_check_that_met_all_its_conditions_gets_the_tick(console_lines: list[str]) -> None:
    assert judged(console_lines, "lint").startswith("✔ lint")
    assert " PASS " in judged(console_lines, "lint")
    warned = judged(console_lines, "bundle")
    assert warned.startswith("! bundle") and " WARN " in warned and "size_kb 900 > 500" in warned
    errored = judged(console_lines, "audit")
    assert errored.startswith("✘ audit") and " FAIL " in errored


def test_bracketed_text_in_a_reason_survives(console_lines: list[str]) -> None:
    # The tool's stderr, quoted from its last lines, in both the finished and judged line.
    for line in (finished(console_lines, "audit"), judged(console_lines, "audit")):
        assert line.endswith(f"exited 1: Traceback (most recent call last): {ADVICE}"), line


def test_markup_in_any_reason_is_printed_as_it_is() -> None:
    check = Check("api", "api", "http", Priority.HIGH, (), 60.0, KindSettings())
    result = CheckResult("api", "http", CheckStatus.ERROR, reason="[bold]x[/] [advisories] [red]")
    out = io.StringIO()
    with ConsoleProgress(Console(file=out, width=200, force_terminal=False), [check]) as progress:
        progress.check_finished(check, result)
        progress.confirmation_finished(check, 1, result)
        progress.check_judged(check, result, [])
    lines = [line for line in out.getvalue().splitlines() if line]
    assert len(lines) == 3 and all(line.endswith("[bold]x[/] [advisories] [red]") for line in lines)
    assert lines[2].startswith("! api") and " ERROR " in lines[2]  # no outcome: still not met


def test_the_cli_consoles_print_no_markup(capsys: pytest.CaptureFixture[str]) -> None:
    # The verdict line quotes the summary, which quotes reasons.
    commands.out.print(f"FAIL dev: FAIL — 1 of 1 conditions failed: {ADVICE}")
    assert capsys.readouterr().out == f"FAIL dev: FAIL — 1 of 1 conditions failed: {ADVICE}\n"


def test_an_observer_without_check_judged_still_runs_a_stage(tmp_path: Path) -> None:
    class Plain:  # the RunObserver of before: told of starts and finishes only
        def __init__(self) -> None:
            self.finished: list[str] = []

        def check_started(self, check: Check) -> None:
            pass

        def check_finished(self, check: Check, result: CheckResult) -> None:
            self.finished.append(check.id)

    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(
        '[target]\npython = "{python}"\n\n'
        + command("lint", {"warnings": 0})
        + '\n[stages.dev]\nchecks = ["lint"]\n'
    )
    plain = Plain()
    for observer in (plain, NullObserver()):
        with ThreadPoolExecutor(max_workers=1) as pool:
            outcome = run_stage(
                load_pipeline(config),
                RunOptions(stage="dev", output_dir=tmp_path / "out", run_id="t"),
                ThreadExecutor(pool),
                observer,
            )
        assert outcome.report.verdict is Verdict.PASS
    assert plain.finished == ["lint"]
