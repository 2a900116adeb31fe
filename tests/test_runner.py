"""The runner with the Prefect-free thread executor and real (trivial) command checks."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from neuroerp_ci.checks import Check
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import CheckResult, CheckStatus, Verdict
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, resolve_advisories, run_stage

# Each check appends "<id> start|end <monotonic>" to a shared log so the test can see overlap.
STAMP = (
    "import sys, time, pathlib; p = pathlib.Path(sys.argv[1]); cid = sys.argv[2];"
    "w = lambda e: p.open('a').write(f'{{cid}} {{e}} {time.monotonic()}\\n');"
    "w('start'); time.sleep(float(sys.argv[3])); w('end');"
    "sys.exit(int(sys.argv[4]))"
)


TARGET = '[target]\npython = "{python}"'


def pipeline_text(
    log: Path, checks: list[tuple[str, list[str], float, int]], extra: str = ""
) -> str:
    parts = []
    for cid, deps, sleep, code in checks:
        argv = ["{python}", "-c", STAMP, str(log), cid, str(sleep), str(code)]
        parts.append(
            f'[[checks]]\nid = "{cid}"\nkind = "command"\ndependencies = {json.dumps(deps)}\n'
            f"settings = {{ argv = {json.dumps(argv)} }}\n"
        )
    # The checks run on this interpreter by choice: declared, so no interpreter warning.
    target = f"{TARGET}\n\n"
    return target + "\n".join(parts) + "\n[stages.dev]\n" + extra


def spans(log: Path) -> dict[str, tuple[float, float]]:
    events: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        cid, event, at = line.split()
        events.setdefault(cid, {})[event] = float(at)
    return {cid: (e["start"], e["end"]) for cid, e in events.items()}


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: dict[str, CheckStatus] = {}

    def check_started(self, check: Check) -> None:
        self.started.append(check.id)

    def check_finished(self, check: Check, result: CheckResult) -> None:
        self.finished[check.id] = result.status


def run(
    tmp_path: Path, text: str, recorder: Recorder | None = None
) -> tuple[Verdict, dict[str, CheckResult]]:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(text)
    pipeline = load_pipeline(config)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcome = run_stage(
            pipeline,
            RunOptions(stage="dev", output_dir=tmp_path / "out", run_id="t"),
            ThreadExecutor(pool),
            recorder,
        )
    assert (tmp_path / "out" / "report.json").is_file()
    return outcome.report.verdict, {r.check_id: r for r in outcome.report.checks}


def test_independent_checks_overlap_and_dependants_wait(tmp_path: Path) -> None:
    log = tmp_path / "log"
    text = pipeline_text(log, [("a", [], 0.6, 0), ("b", [], 0.6, 0), ("c", ["a", "b"], 0.0, 0)])
    recorder = Recorder()
    verdict, results = run(tmp_path, text, recorder)
    assert verdict is Verdict.PASS
    s = spans(log)
    assert s["a"][0] < s["b"][1] and s["b"][0] < s["a"][1], "a and b should run at once"
    assert s["c"][0] >= max(s["a"][1], s["b"][1])
    assert set(recorder.finished) == {"a", "b", "c"}


def test_failed_dependency_skips_dependant_and_fails_the_gate(tmp_path: Path) -> None:
    log = tmp_path / "log"
    text = pipeline_text(log, [("a", [], 0.0, 3), ("b", ["a"], 0.0, 0)])
    verdict, results = run(tmp_path, text)
    assert verdict is Verdict.FAIL
    assert results["a"].status is CheckStatus.ERROR and "exited 3" in results["a"].reason
    assert results["b"].status is CheckStatus.SKIPPED
    assert "dependency did not complete: a (error)" in results["b"].reason
    assert "b" not in spans(log)


def test_exclusive_check_runs_alone(tmp_path: Path) -> None:
    """An http probe (exclusive) must not overlap with any other check."""
    log = tmp_path / "log"
    server = tmp_path / "www"
    server.mkdir()
    (server / "index.html").write_text("ok")
    text = pipeline_text(log, [("a", [], 0.5, 0), ("b", [], 0.5, 0)]).replace(
        TARGET,
        f"""{TARGET}
base_url = "http://127.0.0.1:{{port}}"
start = ["{{python}}", "-m", "http.server", "{{port}}", "--bind", "127.0.0.1",
         "--directory", {json.dumps(str(server))}]
health_url = "/"
""",
    ).replace(
        "[stages.dev]",
        """[[checks]]
id = "probe"
kind = "http"
settings = { samples = 5, warmup = 1, endpoints = [{ name = "index", path = "/" }] }

[stages.dev]""",
    )
    recorder = Recorder()
    verdict, results = run(tmp_path, text, recorder)
    assert verdict is Verdict.PASS, results
    assert results["probe"].metrics["requests"].value == 5
    # The probe started only after both others had ended (it is last to start).
    assert recorder.started.index("probe") == 2
    assert set(spans(log)) == {"a", "b"}


def test_advisories_precedence(tmp_path: Path) -> None:
    explicit, env_dir, file_dir = tmp_path / "x", tmp_path / "e", tmp_path / "f"
    env = {"NEUROERP_CI_ADVISORIES": str(env_dir)}
    assert resolve_advisories([explicit], env, [file_dir]) == (explicit.resolve(),)
    assert resolve_advisories([], env, [file_dir]) == (env_dir.resolve(),)
    assert resolve_advisories([], {}, [file_dir]) == (file_dir,)
    assert resolve_advisories([], {}, []) == ()
    # several mirror folders: repeated --advisories, os.pathsep in the variable, a list
    other = tmp_path / "o"
    several = {"NEUROERP_CI_ADVISORIES": f"{env_dir}{os.pathsep}{os.pathsep}{other}"}
    assert resolve_advisories([], several, []) == (env_dir.resolve(), other.resolve())
    assert resolve_advisories([explicit, other], several, []) == (
        explicit.resolve(),
        other.resolve(),
    )


def test_unavailable_target_errors_only_the_checks_that_need_it(tmp_path: Path) -> None:
    log = tmp_path / "log"
    text = pipeline_text(log, [("a", [], 0.0, 0)]).replace(
        TARGET,
        f"""{TARGET}
start = ["{{python}}", "-c", "raise SystemExit(3)"]
base_url = "http://127.0.0.1:{{port}}"
health_url = "/"
""",
    ).replace(
        "[stages.dev]",
        """[[checks]]
id = "probe"
kind = "http"
settings = { samples = 2, endpoints = [{ name = "index", path = "/" }] }

[stages.dev]""",
    )
    verdict, results = run(tmp_path, text)
    assert verdict is Verdict.FAIL
    assert results["a"].status is CheckStatus.OK
    assert results["probe"].status is CheckStatus.ERROR
    assert "target not available" in results["probe"].reason and "code 3" in results["probe"].reason


