"""Issue 10, point 6: setup without harm.

``target.setup`` runs before the target and the checks with its output in the run folder; a
failing one fails the stage; ``target.workdir = "scratch"`` keeps a setup that wipes a
database away from the developer's own; a check's own ``env`` reaches that check only.
Real subprocesses throughout (setup commands, a target service, command checks), run through
:func:`neuroerp_ci.run.runner.run_stage` with the thread executor.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import CheckStatus, OutcomeStatus, StageReport, Verdict, summary_line
from neuroerp_ci.project.workdir import SCRATCH_PREFIX
from neuroerp_ci.run import runner
from neuroerp_ci.support.secrets import REDACTED

pytestmark = pytest.mark.integration

PY = sys.executable
# Appends its name to order.txt in its working directory, prints a line, exits with a code.
STEP = (
    "import pathlib, sys; name, code = sys.argv[1], int(sys.argv[2]);"
    "pathlib.Path('order.txt').open('a').write(name + '\\n');"
    "print('step ' + name + ' says hello', flush=True); sys.exit(code)"
)
# Shows what a check sees: its working directory and FOO.
SHOW = "import os; print('cwd=' + os.getcwd()); print('FOO=' + os.environ.get('FOO', '<unset>'))"
# The developer's database is wiped and recreated, empty: what `flask init-db` does.
WIPE_DB = (
    "import os, sqlite3; os.remove('data/app.db');"
    "db = sqlite3.connect('data/app.db'); db.execute('create table notes (body text)');"
    "db.commit(); print('initialised', os.getcwd())"
)
COUNT_NOTES = (
    "import sqlite3, sys; n = sqlite3.connect('data/app.db')"
    ".execute('select count(*) from notes').fetchone()[0]; print('notes', n); sys.exit(n)"
)
# A target that records where it runs, then serves (health = any GET).
SERVE = (
    "import http.server, os, pathlib, sqlite3;"
    "pathlib.Path(os.environ['WHERE_FILE']).write_text(os.getcwd() + '\\n' + str("
    "sqlite3.connect('data/app.db').execute('select count(*) from notes').fetchone()[0]));"
    "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler,"
    " ServerClass=http.server.ThreadingHTTPServer,"
    " port=int(os.environ['NEUROERP_CI_PORT']), bind='127.0.0.1')"
)


def toml(value: Any) -> str:
    return json.dumps(value)  # a JSON string or array of strings is TOML too


def command_check(cid: str, code: str, extra: str = "", settings: str = "") -> str:
    argv = toml(["{python}", "-c", code])
    return (
        f'[[checks]]\nid = "{cid}"\nkind = "command"\n{extra}\n'
        f"settings = {{ argv = {argv}{settings} }}\n"
    )


def run(project: Path, text: str, env: dict[str, str] | None = None) -> StageReport:
    (project / "neuroerp-ci.toml").write_text(text)
    pipeline = load_pipeline(project / "neuroerp-ci.toml")
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcome = runner.run_stage(
            pipeline,
            runner.RunOptions(
                stage="dev", output_dir=project / "out", run_id="t",
                env={**os.environ, **(env or {})},
            ),
            runner.ThreadExecutor(pool),
        )
    return outcome.report


def make_dev_db(project: Path) -> bytes:
    """The developer's own data: data/app.db with two notes; its bytes."""
    (project / "data").mkdir(parents=True)
    db = sqlite3.connect(project / "data" / "app.db")
    db.execute("create table notes (body text)")
    db.executemany("insert into notes values (?)", [("mine",), ("also mine",)])
    db.commit()
    db.close()
    return (project / "data" / "app.db").read_bytes()


def checks_of(report: StageReport) -> dict[str, Any]:
    return {c.check_id: c for c in report.checks}


def test_setup_commands_run_in_order_before_checks_with_logs_in_the_run_folder(
    tmp_path: Path,
) -> None:
    setup = [["{python}", "-c", STEP, "first", "0"], ["{python}", "-c", STEP, "second", "0"],
             [PY, "-c", STEP, "third", "0"]]
    text = (
        f'[target]\npython = "{{python}}"\nsetup = {toml(setup)}\n\n'
        + command_check("reads-order", "print(open('order.txt').read().split())")
        + "\n[stages.dev]\n"
    )
    report = run(tmp_path, text)

    assert report.verdict is Verdict.PASS, report.summary
    assert (tmp_path / "order.txt").read_text().split() == ["first", "second", "third"]
    logs = sorted(p.name for p in (tmp_path / "out" / "setup").iterdir())
    assert logs == ["1-python.log", "2-python.log", f"3-{Path(PY).name}.log"]
    first = (tmp_path / "out" / "setup" / "1-python.log").read_text()
    assert "step first says hello" in first and "# exit 0" in first
    # The check ran after every setup command.
    log = (tmp_path / "out" / "checks" / "reads-order" / "command.log").read_text()
    assert "['first', 'second', 'third']" in log


def test_a_failing_setup_command_fails_the_stage_and_names_it(tmp_path: Path) -> None:
    marker = tmp_path / "target-started"
    start = [PY, "-c", f"open({str(marker)!r}, 'w').close()"]
    setup = [["{python}", "-c", STEP, "migrate", "0"],
             ["{python}", "-c", STEP + "\nprint('no schema table')", "seed", "3"],
             ["{python}", "-c", STEP, "never", "0"]]
    text = (
        f'[target]\npython = "{{python}}"\nbase_url = "http://127.0.0.1:{{port}}"\n'
        f"start = {toml(start)}\n"
        f"setup = {toml(setup)}\n\n"
        + command_check("unit", "print('ran')")
        + command_check("smoke", "print('ran')", settings=", uses_target = true")
        # Even a check whose errors are ignored cannot let the stage pass.
        + '\n[stages.dev]\nconditions = [{ check = "unit", metric = "exit_code", max = 0,'
        ' on_error = "ignore" }, { check = "smoke", metric = "exit_code", max = 0,'
        ' on_error = "ignore" }]\n'
    )
    report = run(tmp_path, text)

    assert report.verdict is Verdict.FAIL
    setup_outcome = report.outcomes[0]
    assert setup_outcome.check == "setup" and setup_outcome.status is OutcomeStatus.FAIL
    assert "setup command 2 of 3 (python -c" in setup_outcome.reason
    assert "exited 3: step seed says hello" in setup_outcome.reason
    assert "(log: setup/2-python.log)" in setup_outcome.reason
    assert "setup command 2 of 3" in summary_line(report.summary)
    for check in report.checks:  # neither the target nor the plain check ran
        assert check.status is CheckStatus.ERROR
        assert check.reason.startswith("not run: setup command 2 of 3 (python -c ")
        assert check.reason.endswith(") exited 3 (log: setup/2-python.log)")
        assert "says hello" not in check.reason  # the output is in the setup outcome
    assert (tmp_path / "order.txt").read_text().split() == ["migrate", "seed"]
    assert not marker.exists()
    assert not (tmp_path / "out" / "checks" / "unit" / "command.log").exists()


def test_a_setup_command_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    setup = [["{python}", "-c", "import time; print('waiting for the lock', flush=True);"
              " time.sleep(120)"]]
    text = (
        f'[target]\npython = "{{python}}"\nsetup = {toml(setup)}\nsetup_timeout = 1\n\n'
        + command_check("unit", "print('ran')") + "\n[stages.dev]\n"
    )
    report = run(tmp_path, text)

    assert report.verdict is Verdict.FAIL
    assert "timed out after 1 s: waiting for the lock" in report.outcomes[0].reason
    assert checks_of(report)["unit"].status is CheckStatus.ERROR


def test_scratch_workdir_keeps_the_developers_database_and_is_removed(tmp_path: Path) -> None:
    project = tmp_path / "erp"
    before = make_dev_db(project)
    (project / "app.py").write_text("# the service\n")
    where = tmp_path / "where.txt"
    text = (
        '[target]\npython = "{python}"\nworkdir = "scratch"\n'
        'base_url = "http://127.0.0.1:{port}"\n'
        f"start = {toml(['{python}', '-c', SERVE])}\n"
        f"env = {{ WHERE_FILE = {toml(str(where))} }}\n"
        f"setup = {toml([['{python}', '-c', WIPE_DB]])}\n\n"
        # The suite sees the freshly initialised database, in the copy, as the target does.
        + command_check("tests", COUNT_NOTES, settings=", uses_target = true")
        + command_check("show", SHOW, extra='env = { FOO = "{project}" }')
        + "\n[stages.dev]\n"
    )
    report = run(project, text)

    assert report.verdict is Verdict.PASS, report.summary
    assert (project / "data" / "app.db").read_bytes() == before  # byte for byte
    target_cwd, target_notes = where.read_text().split("\n")
    assert target_notes == "0"  # the target saw the wiped, re-created database
    scratch = Path(target_cwd)
    assert scratch.name == "erp" and scratch.parent.name.startswith(SCRATCH_PREFIX)
    assert not scratch.parent.exists()  # removed afterwards
    shown = (project / "out" / "checks" / "show" / "command.log").read_text()
    assert f"cwd={scratch}\n" in shown and f"FOO={scratch}\n" in shown  # {project}: the copy
    assert "notes 0" in (project / "out" / "checks" / "tests" / "command.log").read_text()
    # Reports stay in the real project's run folder.
    assert (project / "out" / "report.json").is_file()
    assert "initialised " + str(scratch) in (project / "out" / "setup" / "1-python.log").read_text()


def test_scratch_copy_of_a_git_checkout_leaves_ignored_data_out(tmp_path: Path) -> None:
    project = tmp_path / "erp"
    before = make_dev_db(project)
    (project / ".gitignore").write_text("data/\n")
    (project / "tracked.txt").write_text("tracked")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True, timeout=60)
    subprocess.run([*git, "add", "."], cwd=project, check=True, timeout=60)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=project, check=True, timeout=60)
    (project / "untracked.txt").write_text("new")
    listing = (
        "import os; print(sorted(os.path.join(d, f)[2:] for d, _, fs in os.walk('.')"
        " for f in fs))"
    )
    # No data/app.db in the copy: setup makes it, as a fresh CI checkout would need.
    make_db = "import os, sqlite3; os.makedirs('data'); sqlite3.connect('data/app.db').close()"
    text = (
        '[target]\npython = "{python}"\nworkdir = "scratch"\n'
        f"setup = {toml([['{python}', '-c', listing], ['{python}', '-c', make_db]])}\n\n"
        + command_check("unit", "print('ok')") + "\n[stages.dev]\n"
    )
    report = run(project, text)

    assert report.verdict is Verdict.PASS, report.summary
    seen = (project / "out" / "setup" / "1-python.log").read_text()
    assert "['.gitignore', 'neuroerp-ci.toml', 'tracked.txt', 'untracked.txt']" in seen
    assert (project / "data" / "app.db").read_bytes() == before


def test_a_checks_own_env_reaches_only_that_check(tmp_path: Path) -> None:
    secret = "s3cr3t-password-value"
    text = (
        '[target]\npython = "{python}"\n\n'
        + command_check(
            "own-db", SHOW + "; print('PW=' + os.environ['DB_PASSWORD'])",
            extra='env = { FOO = "sqlite:///{project}/test.db",'
            ' DB_PASSWORD = "{env:DB_PASSWORD}" }',
        )
        + command_check("other", SHOW + "; print('PW=' + os.environ.get('DB_PASSWORD', '-'))")
        + "\n[stages.dev]\n"
    )
    report = run(tmp_path, text, env={"FOO": "outer", "DB_PASSWORD": secret})

    assert report.verdict is Verdict.PASS, report.summary
    own = (tmp_path / "out" / "checks" / "own-db" / "command.log").read_text()
    other = (tmp_path / "out" / "checks" / "other" / "command.log").read_text()
    assert f"FOO=sqlite:///{tmp_path}/test.db\n" in own
    assert f"PW={REDACTED}\n" in own and secret not in own  # it got it; the log does not show it
    assert "FOO=outer\n" in other  # the caller's value, untouched by the other check's env
    assert "PW=-\n" in other  # a referenced variable is a secret: kept out of other checks


def test_setup_gets_the_targets_env_and_its_log_is_redacted(tmp_path: Path) -> None:
    secret = "another-secret-value"
    setup = [["{python}", "-c", "import os; print('url', os.environ['DATABASE_URL'])"]]
    text = (
        '[target]\npython = "{python}"\n'
        'env = { DATABASE_URL = "postgresql://erp:{env:DB_PASSWORD}@127.0.0.1/erp" }\n'
        f"setup = {toml(setup)}\n\n"
        + command_check("unit", "print('ok')") + "\n[stages.dev]\n"
    )
    report = run(tmp_path, text, env={"DB_PASSWORD": secret})

    assert report.verdict is Verdict.PASS, report.summary
    log = (tmp_path / "out" / "setup" / "1-python.log").read_text()
    assert f"url postgresql://erp:{REDACTED}@127.0.0.1/erp" in log
    assert secret not in log


def test_scratch_folder_is_removed_when_setup_fails(tmp_path: Path) -> None:
    project = tmp_path / "erp"
    before = make_dev_db(project)
    where = tmp_path / "where.txt"
    fail = f"import os, pathlib; pathlib.Path({str(where)!r}).write_text(os.getcwd()); exit(1)"
    text = (
        '[target]\npython = "{python}"\nworkdir = "scratch"\n'
        f"setup = {toml([['{python}', '-c', WIPE_DB], ['{python}', '-c', fail]])}\n\n"
        + command_check("unit", "print('ok')") + "\n[stages.dev]\n"
    )
    report = run(project, text)

    assert report.verdict is Verdict.FAIL
    assert not Path(where.read_text()).parent.exists()
    assert hashlib.sha256((project / "data" / "app.db").read_bytes()).digest() == (
        hashlib.sha256(before).digest()
    )
