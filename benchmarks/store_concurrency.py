"""Two ``neuroerp-ci run`` processes writing one history store at once, round after round.

Run it from the repository with the project's interpreter::

    python benchmarks/store_concurrency.py                 # 20 rounds, SQLite store
    python benchmarks/store_concurrency.py --rounds 3      # a quick look
    python benchmarks/store_concurrency.py --url postgresql://postgres@127.0.0.1/test

Each round starts two runs of a tiny pipeline (three ``command`` checks, one of them compared
with its baseline, so every run also reads the store) at the same moment, each with its own
temporary Prefect server, and waits for both. Afterwards the store must hold every run the
command lines reported, each finished and whole, and pass its integrity check. Prints one
line per round and a summary; exits 0 when all runs are recorded and the store is sound,
1 when not, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neuroerp_ci.store import RunStatus, open_store

CLI = (sys.executable, "-m", "neuroerp_ci")
RUN_TIMEOUT_S = 600
PIPELINE = """
[target]
name = "bench"
{store}

[[checks]]
id = "first"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "print(1)"] }}

[[checks]]
id = "second"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "print(2)"] }}

[[checks]]
id = "work"
kind = "command"
dependencies = ["first"]
[checks.settings]
argv = ["{{python}}", "-c", 'import json; print(json.dumps(dict(work_ms=40)))']
metrics_json = true

[stages.dev]
checks = ["first", "second", "work"]
conditions = [{{ check = "work", metric = "work_ms", max_increase_pct = 1000 }}]
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of two runs (20)")
    parser.add_argument("--url", help="store URL (default: SQLite file in the project)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="neuroerp-store-bench-") as tmp:
        base = Path(tmp)
        project = base / "project"
        project.mkdir()
        store = f'\n[store]\nurl = "{args.url}"\n' if args.url else ""
        config = project / "neuroerp-ci.toml"
        config.write_text(PIPELINE.format(store=store), encoding="utf-8")
        url = args.url or f"sqlite:///{project / '.neuroerp-ci' / 'history.sqlite3'}"
        if args.url:
            with open_store(url) as opened:
                if opened.count_runs():
                    print(f"{url}: the store is not empty; give an empty one", file=sys.stderr)
                    return 2
        return bench(config, url, args.rounds, base)


def bench(config: Path, url: str, rounds: int, base: Path) -> int:
    homes = [base / "prefect-a", base / "prefect-b"]
    reported: list[str] = []
    failures: list[str] = []
    started = time.monotonic()
    for round_no in range(1, rounds + 1):
        t0 = time.monotonic()
        procs = [start(config, f"round{round_no}-{lane}", home)
                 for lane, home in zip("ab", homes, strict=True)]  # fmt: skip
        codes = []
        for proc in procs:
            out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
            codes.append(proc.returncode)
            run_ids = [ln.removeprefix("Reports: ").strip() for ln in out.splitlines()
                       if ln.startswith("Reports: ")]  # fmt: skip
            if proc.returncode != 0 or len(run_ids) != 1:
                failures.append(f"round {round_no}: exit {proc.returncode}: {err.strip()[-300:]}")
            reported.extend(Path(r).name for r in run_ids)
        took = time.monotonic() - t0
        print(f"round {round_no:2d}: exit codes {codes}, {took:5.1f} s", flush=True)
    wall = time.monotonic() - started
    with open_store(url) as store:
        runs = store.runs(limit=10 * rounds + 10)
        problems = store.integrity_check()
        finished = [r for r in runs if r.status is RunStatus.FINISHED]
        missing = sorted(set(reported) - {r.run_id for r in runs})
        baseline = store.baseline_provider("dev", "bench").baseline("work", "work_ms")
    expected = 2 * rounds
    print()
    print(f"store: {store.name}")
    print(f"runs started by the CLI: {expected}, reported a run id: {len(reported)}")
    print(f"runs recorded: {len(runs)}, finished: {len(finished)}, missing: {len(missing)}")
    print(f"integrity check: {'ok' if not problems else '; '.join(problems)}")
    if baseline is not None:
        print(f"baseline of work/work_ms: {baseline.value} from {len(baseline.runs)} runs")
    print(f"wall time: {wall:.0f} s ({wall / rounds:.1f} s per round of two runs)")
    for failure in failures:
        print(f"FAILED {failure}")
    ok = (
        not failures
        and not problems
        and not missing
        and len(runs) == len(finished) == len(reported) == expected
    )
    print("RESULT:", "all runs recorded, store sound" if ok else "NOT OK")
    return 0 if ok else 1


def start(config: Path, version: str, prefect_home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROERP_CI_")}
    env["PREFECT_HOME"] = str(prefect_home)
    # Two temporary Prefect servers starting at once on a busy machine need more than 20 s.
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    return subprocess.Popen(  # noqa: S603 - fixed argument list
        [*CLI, "run", "dev", "--config", str(config), "--version", version],
        cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
