"""What skipping unchanged checks saves (neuroerp_ci/run/cache.py): a cold run next to an
unchanged re-run, and which checks one changed file sends back to work.

Run it from the repository with the project's interpreter::

    python benchmarks/cache.py            # 3 repetitions, about 4 minutes
    python benchmarks/cache.py --quick    # one repetition, under 2 minutes

Every run is ``python -m neuroerp_ci run <stage> --version v1 -c <pipeline file>
--no-prefect -o <fresh folder>`` in a subprocess, in a copy of the bundled demo
(:func:`neuroerp_ci.demo.write_demo`), timed on the wall clock, its per-check results read
from its report.json (``checks[].cached_from``: the run whose result was reused, null when
the check ran). The environment: NEUROERP_CI_ADVISORIES = the offline mirror (pip-audit
gets a cache key only offline), NEUROERP_CI_CACHE_DIR = a temporary folder, no
PREFECT_API_* and no NEUROERP_CI_PREFECT (``--no-prefect`` also overrides a Prefect profile
with a server: no flow, no server, in any run).

(1) the demo's ``development`` stage as written. ``cold`` is ``--no-cache`` (every check
    runs); ``unchanged`` is a re-run with the cache on after nothing changed. Its measurement
    checks (http, a11y, command, the e2e suite that uses the target) always run, and the
    target service starts for them: the ratio is reported as it is, with the checks that ran.
(2) a ``code`` stage the benchmark appends to a second copy's pipeline file: every check of
    the demo whose kind declares its inputs and that does not use the target (the test
    suites, bandit, pip-audit, detect-secrets, licences), with the development stage's
    conditions on them (kinds' defaults for the rest). ``unchanged / cold`` is the goal line
    (<= 10 %). Beside it the stage time report.json gives (without start-up and report
    writing) and a floor in the same rotation: ``python -c 'import neuroerp_ci.cli'``, what
    any command pays before it starts.
(3) in the same rotation as (2), one file changed before a run with the cache on: a test
    file, a source file bandit scans, README.md, a new docs file, and the database the
    demo's ``[cache] ignore`` names. Each prints which checks ran again and which were
    reused. Every change is new (a comment or row with a fresh token), so it never meets a key
    recorded before.

One unmeasured run with the cache on, first in each copy, records the keys the unchanged runs
find (``--no-cache`` runs record none); its wall time is printed, it is what a first run with
the cache on pays to build its keys. Each variant runs ``--repeat`` times (default 3,
``--quick`` 1), the order rotating between repetitions so a busy machine's drift touches all
alike; tables give median and min, ratios the medians', the mins' and the median of the
per-repetition ratios (``paired``). Exit 0 when every run passed and the cache behaved (a
cold run ran everything, an unchanged run reused every check that has a key), 1 when a run
failed or did not (its output is printed), 2 on a setup problem (no mirror).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroerp_ci.checks import KINDS, CheckKind
from neuroerp_ci.config import Pipeline, load_pipeline
from neuroerp_ci.demo import DEMO_PIPELINE, write_demo
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.support.stat_memo import CACHE_DIR_ENV
from neuroerp_ci.support.tooling import run_tool

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "advisory-database"
FULL_STAGE = "development"
CODE_STAGE = "code"
VERSION = "v1"
GOAL = 0.10  # unchanged / cold, code stage
RUN_TIMEOUT_S = 600.0
PASSING = ("PASS", "WARN")
PREFECT_SWITCH = "NEUROERP_CI_PREFECT"  # neuroerp_ci.cli.stage_command.PREFECT_ENV
ADVISORIES_ENV = "NEUROERP_CI_ADVISORIES"
FLOOR_MODULE = "neuroerp_ci.cli"  # what any neuroerp-ci command imports before it starts


class BenchmarkError(Exception):
    """A measured run did not succeed or the cache did not behave: its numbers mean nothing."""


# --- the pipeline: which checks can be cached, the code stage ------------------------------


def cacheable_checks(pipeline: Pipeline) -> list[str]:
    """The checks (file order) whose kind declares inputs and that do not use the target:
    the ones a run with the cache on may skip."""

    def declares(kind: CheckKind) -> bool:
        return type(kind).cache_inputs is not CheckKind.cache_inputs

    return [
        cid
        for cid, check in pipeline.checks.items()
        if declares(KINDS[check.kind]) and not KINDS[check.kind].needs_target_for(check)
    ]


def code_stage(data: Mapping[str, Any], checks: Sequence[str]) -> dict[str, Any]:
    """A stage of ``checks`` with the development stage's conditions on them (a check with
    none there gets its kind's defaults)."""
    wanted = set(checks)
    conditions = [c for c in data["stages"][FULL_STAGE]["conditions"] if c["check"] in wanted]
    return {"checks": list(checks), "conditions": conditions}


def with_stage(text: str, name: str, stage: Mapping[str, Any]) -> str:
    """The pipeline file ``text`` with ``[stages.<name>]`` appended (the rest untouched:
    its comments, its other stages). Raises BenchmarkError when the stage exists."""
    if name in tomllib.loads(text).get("stages", {}):
        raise BenchmarkError(f"the demo pipeline already has a stage {name!r}")
    conditions = "".join(f"    {_inline(c)},\n" for c in stage["conditions"])
    return (
        f"{text.rstrip()}\n\n# Added by benchmarks/cache.py: the checks a run may skip.\n"
        f"[stages.{name if name.replace('-', '').isalnum() else json.dumps(name)}]\n"
        f"checks = {json.dumps(list(stage['checks']))}\n"
        f"conditions = [\n{conditions}]\n"
    )


def _inline(condition: Mapping[str, Any]) -> str:
    # A condition holds scalars only: JSON's strings, numbers and booleans are TOML's.
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in condition.items()) + " }"


# --- one run and what its report says -------------------------------------------------------


@dataclass(frozen=True)
class CheckRow:
    id: str
    kind: str
    status: str
    cached_from: str | None
    duration_s: float | None


@dataclass(frozen=True)
class RunReport:
    """What a run's report.json says about the cache."""

    run_id: str
    verdict: str
    summary: str
    duration_s: float | None
    checks: tuple[CheckRow, ...]

    @property
    def ran(self) -> list[str]:
        return [c.id for c in self.checks if c.cached_from is None]

    @property
    def reused(self) -> list[str]:
        return [c.id for c in self.checks if c.cached_from is not None]

    def problems(self) -> list[str]:
        """Why this run's figures would mean nothing: not passing, a check not ok."""
        found = [] if self.verdict in PASSING else [f"verdict {self.verdict}: {self.summary}"]
        return found + [f"{c.id}: {c.status}" for c in self.checks if c.status != "ok"]


def parse_report(data: Mapping[str, Any]) -> RunReport:
    checks = tuple(
        CheckRow(
            id=str(c["id"]),
            kind=str(c["kind"]),
            status=str(c["status"]),
            cached_from=None if c.get("cached_from") is None else str(c["cached_from"]),
            duration_s=c.get("duration_s"),
        )
        for c in data["checks"]
    )
    return RunReport(
        str(data["run_id"]), str(data["verdict"]), str(data["summary"]),
        data.get("duration_s"), checks,
    )  # fmt: skip


@dataclass(frozen=True)
class Project:
    """A demo copy, its pipeline file and stage, and where each run's report goes."""

    root: Path
    config: Path
    stage: str
    runs: Path
    env: Mapping[str, str]

    def run(self, label: str, *flags: str) -> tuple[float, RunReport]:
        """One ``neuroerp-ci run`` subprocess: its wall time and report."""
        out = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.runs))
        argv = [
            sys.executable, "-m", "neuroerp_ci", "run", self.stage, "--version", VERSION,
            "-c", str(self.config), "--no-prefect", "-o", str(out), *flags,
        ]  # fmt: skip
        started = time.perf_counter()
        try:
            done = run_tool(argv, cwd=self.root, timeout=RUN_TIMEOUT_S, env=self.env, ok_codes=None)
        except NeuroErpCiError as exc:
            raise BenchmarkError(f"{label}: {exc}") from exc
        elapsed = time.perf_counter() - started
        output = (done.stdout + done.stderr).strip()[-3000:]
        try:
            report = parse_report(json.loads((out / "report.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise BenchmarkError(f"{label}: no readable report ({exc}):\n{output}") from exc
        if done.returncode != 0 or report.problems():
            why = "; ".join(report.problems()) or f"exit {done.returncode}"
            raise BenchmarkError(f"{label}: {why}\n{output}")
        return elapsed, report


def run_env(mirror: Path, cache_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_API_") and k != PREFECT_SWITCH
    }
    env.update({ADVISORIES_ENV: str(mirror), CACHE_DIR_ENV: str(cache_dir)})
    return env


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Series:
    """Repeated wall times (s) of one variant, its reports' stage times, and its reports."""

    label: str
    times: list[float] = field(default_factory=list)
    reports: list[RunReport] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def stage_median(self) -> float | None:
        """The median stage time report.json gives (no report writing, no start-up)."""
        stages = [r.duration_s for r in self.reports if r.duration_s is not None]
        return statistics.median(stages) if stages else None

    def add(self, measured: tuple[float, RunReport]) -> RunReport:
        self.times.append(measured[0])
        self.reports.append(measured[1])
        return measured[1]


Variant = tuple[Series, Callable[[], None]]  # a series and what adds one run to it


def repeat_rotated(variants: Sequence[Variant], repeat: int) -> None:
    """Run every variant ``repeat`` times, rotating the order so drift touches all alike."""
    for rep in range(repeat):
        shift = rep % len(variants)
        for series, run in [*variants[shift:], *variants[:shift]]:
            print(f"  [{rep + 1}/{repeat}] {series.label} ...", end=" ", flush=True)
            run()
            print(f"{series.times[-1]:.2f} s", flush=True)


def cold_and_unchanged(
    project: Project, cacheable: Sequence[str]
) -> tuple[Series, Series, list[Variant]]:
    """``--no-cache`` runs, and re-runs with the cache on that must reuse ``cacheable``."""
    cold, warm = Series("cold (--no-cache)"), Series("unchanged re-run (cache on)")

    def run_cold() -> None:
        report = cold.add(project.run("cold", "--no-cache"))
        if report.reused:
            raise BenchmarkError(f"--no-cache reused {', '.join(report.reused)}")

    def run_warm() -> None:
        report = warm.add(project.run("unchanged"))
        if missed := [c for c in cacheable if c not in report.reused]:
            raise BenchmarkError(f"nothing changed, yet these ran again: {', '.join(missed)}")

    return cold, warm, [(cold, run_cold), (warm, run_warm)]


def prime(project: Project) -> float:
    """The first run with the cache on: it records the keys the unchanged runs find."""
    print(f"  first run with the cache on ({project.stage}) ...", end=" ", flush=True)
    elapsed, _ = project.run("first")
    print(f"{elapsed:.2f} s", flush=True)
    return elapsed


# --- one-file changes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One file changed before a run: appended to (a new file: created), or for an SQLite
    database a row written, as the demo service writes its own."""

    path: str
    why: str

    def apply(self, project: Path, token: str) -> None:
        rel = self.path.format(token=token)
        target = project / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".sqlite3":
            conn = sqlite3.connect(target)
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS benchmark_touch (token TEXT)")
                conn.execute("INSERT INTO benchmark_touch VALUES (?)", (token,))
                conn.commit()
            finally:
                conn.close()
            return
        line = f"<!-- {token} -->" if target.suffix == ".md" else f"# {token}"
        with target.open("a", encoding="utf-8") as handle:
            handle.write(f"\n{line}\n")


CHANGES = (
    Change("tests/test_unit_db.py", "a test file"),
    Change("neuroerp_demo/db.py", "a source file (bandit scans neuroerp_demo/)"),
    Change("README.md", "README.md (no check is about it)"),
    Change("docs/benchmark-{token}.md", "a new docs file"),
    Change("data/erp.sqlite3", "the database ([cache] ignore)"),
)
IGNORED_DB = "data/erp.sqlite3"


def change_variant(project: Project, change: Change, series: Series) -> Callable[[], None]:
    def run() -> None:
        change.apply(project.root, f"benchmark change {len(series.times) + 1}")
        series.add(project.run("change"))

    return run


# --- parts ----------------------------------------------------------------------------------


def setup_project(root: Path, name: str, env: Mapping[str, str], code: bool) -> Project:
    project = write_demo(root / name)
    config = project / DEMO_PIPELINE
    stage = FULL_STAGE
    if code:
        text = config.read_text(encoding="utf-8")
        checks = cacheable_checks(load_pipeline(config))
        config.write_text(
            with_stage(text, CODE_STAGE, code_stage(tomllib.loads(text), checks)), "utf-8"
        )
        stage = CODE_STAGE
        # The database exists in a project whose service has run: a change is a write to it.
        Change(IGNORED_DB, "").apply(project, "created")
    runs = root / f"{name}-runs"
    runs.mkdir()
    return Project(project, config, stage, runs, env)


def part_full(root: Path, env: Mapping[str, str], repeat: int) -> list[str]:
    project = setup_project(root, "full", env, code=False)
    pipeline = load_pipeline(project.config)
    checks = pipeline.stage(FULL_STAGE).checks
    cacheable = [c for c in cacheable_checks(pipeline) if c in checks]
    first = prime(project)
    cold, warm, variants = cold_and_unchanged(project, cacheable)
    repeat_rotated(variants, repeat)
    ran = warm.reports[-1].ran
    return [
        f"(1) demo stage '{FULL_STAGE}' ({len(checks)} checks; wall seconds, {len(cold.times)}"
        " runs each; 'stage s' from report.json)",
        *table([cold, warm]),
        f"  unchanged / cold = {ratios(warm, cold)}",
        f"  ran in the unchanged re-run ({len(ran)}, measurement kinds and the target's):"
        f" {', '.join(ran)}",
        f"  reused ({len(warm.reports[-1].reused)}): {', '.join(warm.reports[-1].reused)}",
        f"  first run with the cache on (records the keys): {first:.2f} s",
    ]


def part_code(root: Path, env: Mapping[str, str], repeat: int) -> list[str]:
    project = setup_project(root, "code", env, code=True)
    cacheable = cacheable_checks(load_pipeline(project.config))
    first = prime(project)
    cold, warm, pairs = cold_and_unchanged(project, cacheable)
    floor = Series(f"floor: python -c 'import {FLOOR_MODULE}'")

    def run_floor() -> None:
        argv = [sys.executable, "-c", f"import {FLOOR_MODULE}"]
        started = time.perf_counter()
        run_tool(argv, cwd=project.root, timeout=RUN_TIMEOUT_S, env=project.env)
        floor.times.append(time.perf_counter() - started)

    changed = [Series(f"changed: {c.path.format(token='<n>')}") for c in CHANGES]
    variants = [
        *pairs,
        (floor, run_floor),
        *((s, change_variant(project, c, s)) for s, c in zip(changed, CHANGES, strict=True)),
    ]
    repeat_rotated(variants, repeat)
    goal = warm.median / cold.median
    lines = [
        f"(2) code stage '{CODE_STAGE}': {', '.join(cacheable)} (wall seconds, "
        f"{len(cold.times)} runs each; 'stage s' from report.json)",
        *table([cold, warm, floor]),
        f"  unchanged / cold = {ratios(warm, cold)} (goal <= {GOAL:.0%}): "
        f"{'met' if goal <= GOAL else 'MISSED'}",
        f"  stage time alone (report.json duration_s): unchanged / cold = "
        f"{(warm.stage_median or 0.0) / (cold.stage_median or 1.0):.1%}; of the unchanged "
        f"run's {warm.median:.2f} s, {warm.median - (warm.stage_median or 0.0):.2f} s are outside"
        f" the stage (start-up and imports: the floor row; writing the reports)",
        f"  first run with the cache on (records the keys): {first:.2f} s",
        "",
        "(3) one file changed, then the code stage with the cache on (same rotation as (2))",
        *table(changed, cold),
    ]
    for series, change in zip(changed, CHANGES, strict=True):
        lines.append(f"  {change.path.format(token='<n>')}: {change.why}")
        lines += [f"    {line}" for line in changed_lines(series.reports)]
    return lines


def changed_lines(reports: Sequence[RunReport]) -> list[str]:
    """Which checks ran again and which were reused; every distinct split if they differ."""
    splits = list(dict.fromkeys((tuple(r.ran), tuple(r.reused)) for r in reports))
    lines = []
    for ran, reused in splits:
        lines += [f"ran again: {', '.join(ran) or '-'}", f"reused:    {', '.join(reused) or '-'}"]
    if len(splits) > 1:
        lines.append(f"(the split differed between the {len(reports)} repetitions)")
    return lines


def table(rows: Sequence[Series], reference: Series | None = None) -> list[str]:
    head = f"  {'variant':<44}{'median':>8}{'min':>8}{'stage s':>9}"
    lines = [head + (f"{'% of cold':>11}" if reference else "")]
    for s in rows:
        share = f"{s.median / reference.median:11.0%}" if reference else ""
        stage = "-" if s.stage_median is None else f"{s.stage_median:.2f}"
        lines.append(f"  {s.label:<44}{s.median:8.2f}{s.min:8.2f}{stage:>9}{share}")
    return lines


def ratios(series: Series, reference: Series) -> str:
    paired = statistics.median(t / r for t, r in zip(series.times, reference.times, strict=True))
    return (
        f"{series.median / reference.median:.1%} (medians); min/min "
        f"{series.min / reference.min:.1%}, paired {paired:.1%}"
    )


# --- main -----------------------------------------------------------------------------------


def default_mirror() -> Path:
    for candidate in (Path("/work/shared/advisory-database"), DEFAULT_MIRROR):
        if (candidate / "vulns").is_dir():
            return candidate
    return DEFAULT_MIRROR


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--quick", action="store_true", help="one repetition of everything")
    parser.add_argument("--only", choices=["all", "full", "code"], default="all")
    parser.add_argument(
        "--advisories",
        type=Path,
        default=default_mirror(),
        help="offline OSV mirror for pip-audit (default: ../shared/advisory-database)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.advisories / "vulns").is_dir():
        print(f"no OSV mirror at {args.advisories} (set --advisories)", file=sys.stderr)
        return 2
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="neuroerp-cache-bench-") as tmp:
        root = Path(tmp)
        (root / "cache").mkdir()
        env = run_env(args.advisories.resolve(), root / "cache")
        tables: list[str] = []
        try:
            if args.only in ("all", "full"):
                tables += [*part_full(root, env, args.repeat), ""]
            if args.only in ("all", "code"):
                tables += [*part_code(root, env, args.repeat), ""]
        except BenchmarkError as exc:
            print(f"\nbenchmark run failed: {exc}", file=sys.stderr)
            return 1
    tables.append(
        f"Total benchmark time {time.perf_counter() - started:.0f} s; 1-minute load average "
        f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        f"({os.cpu_count()} CPUs)."
    )
    print("\n" + "\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
