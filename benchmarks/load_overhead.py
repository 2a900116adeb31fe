"""Overhead of the ``load`` check next to plain locust, and what locust workers add.

Run it from the repository with the project's interpreter::

    python benchmarks/load_overhead.py                 # about 4 minutes
    python benchmarks/load_overhead.py --repeat 1 --duration 4   # a smoke run

One demo service (``write_demo`` into a temporary directory, uvicorn on 127.0.0.1) serves
every run. Two locust profiles, each run by plain ``locust --headless`` and by our ``load``
check with the same locustfile, users, spawn rate and duration (no warm-up):

* ``demo``: the demo's own ``locustfile.py`` (ERP clerks, 0.2-1 s think time): the load a
  staging gate applies; the target, not locust, sets the pace.
* ``hammer``: one request after the other without think time (``GET /health``): locust's
  CPU is the limit, so any overhead of ours and the effect of workers show here.

The check also runs with ``workers = 1`` and ``workers = 2`` (master + local workers).
Each repetition runs every configuration once, in a shuffled order. RPS is computed the same
way for every run, from locust's ``--json-file`` (requests / (last request - first start),
locust's own ``total_rps``), p95 from locust's histogram; the table shows medians. RPS
and p95 move with whatever else the machine runs; "CPU ms/req" (CPU time of every locust
process of a run, start-up included, per request) is the overhead figure that does not.

Target: the check's RPS >= 0.95 x plain locust's for each profile. Exits 0 when met, 1 when
not, 2 on a setup error. ``--json PATH`` also writes every run's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neuroerp_ci.checks._locust_stats import aggregate, parse_stats
from neuroerp_ci.checks._percentiles import weighted_percentile
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.checks.load import LoadSettings, LocustLoadCheck
from neuroerp_ci.config import TargetSpec
from neuroerp_ci.demo import write_demo
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.model import CheckStatus, Priority
from neuroerp_ci.run.target import target_session
from neuroerp_ci.support.tooling import find_tool, run_tool

TARGET_RATIO = 0.95
HAMMER = '''"""Requests back to back: the load generator's CPU is the limit."""

from locust import HttpUser, constant, task


class Hammer(HttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="GET /health")
'''
PROFILES = {"demo": ("locustfile.py", 50), "hammer": ("hammer_locustfile.py", 10)}


@dataclass(frozen=True)
class Figures:
    profile: str
    runner: str  # "plain", "check", "check w1", "check w2"
    repeat: int
    requests: int
    rps: float  # locust's total_rps, from the JSON stats
    p95_ms: float
    check_rps: float | None = None  # the check's own rps metric (its measured window)
    generator_cpu_pct: float | None = None
    cpu_ms_per_request: float = 0.0  # CPU of all locust processes (start-up included)


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children: the locust processes it waited for
    (the demo service is still running, so it is not counted)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stats_figures(path: Path) -> tuple[int, float, float]:
    """Requests, RPS (locust's total_rps) and p95 from a ``--json-file`` output."""
    rows = parse_stats(json.loads(path.read_text(encoding="utf-8")))
    total = aggregate(rows)
    if not total.requests or total.last_request is None:
        raise NeuroErpCiError(f"{path}: no requests")
    span = max(total.last_request - total.start_time, 1e-9)
    return total.requests, total.requests / span, weighted_percentile(total.histogram, 95)


def run_plain(
    project: Path, locustfile: str, users: int, duration: int, url: str, out: Path
) -> tuple[int, float, float]:
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        find_tool("locust"), "-f", locustfile, "--headless", "-u", str(users), "-r", str(users),
        "-t", f"{duration}s", "--host", url, "--json-file", str(out / "plain"),
    ]
    run_tool(argv, cwd=project, timeout=duration + 60, env=dict(os.environ), ok_codes=(0, 1))
    return stats_figures(out / "plain.json")


def run_check(
    project: Path, locustfile: str, users: int, duration: int, workers: int, url: str,
    out: Path,
) -> tuple[int, float, float, float, float | None]:
    settings = LoadSettings(
        locustfile=locustfile, users=users, spawn_rate=users, duration_s=duration,
        workers=workers,
    )
    check = Check("load", "load", "load", Priority.HIGH, (), duration + 90.0, settings)
    ctx = CheckContext(
        project_dir=project, work_dir=out, python=sys.executable, env=dict(os.environ),
        base_url=url,
    )
    result = execute_check(LocustLoadCheck(), check, ctx)
    if result.status is not CheckStatus.OK:
        raise NeuroErpCiError(f"load check (workers={workers}) {result.status}: {result.reason}")
    requests, rps, p95 = stats_figures(Path(result.artifacts["locust_stats"]))
    cpu = result.metrics.get("generator_cpu_pct")
    return requests, rps, p95, result.metrics["rps"].value, cpu.value if cpu else None


@contextmanager
def demo_service(root: Path) -> Iterator[tuple[Path, str]]:
    project = write_demo(root / "demo")
    (project / PROFILES["hammer"][0]).write_text(HAMMER, encoding="utf-8")
    spec = TargetSpec(
        base_url="http://127.0.0.1:{port}",
        start=["{python}", "-m", "uvicorn", "neuroerp_demo.app:app", "--host", "127.0.0.1",
               "--port", "{port}", "--log-level", "warning"],
        health_url="/health",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROERP_DEMO_")}
    values = {"python": sys.executable, "project": str(project)}
    with target_session(spec, values, env, root / "target.log", project) as info:
        assert info.base_url is not None
        yield project, info.base_url


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results: list[Figures]) -> tuple[str, dict[str, float]]:
    lines = [
        f"{'profile':<8} {'runner':<10} {'users':>5} {'requests':>9} {'rps':>9} "
        f"{'rps min-max':>13} {'p95 ms':>8} {'check rps':>10} {'gen CPU %':>9} "
        f"{'CPU ms/req':>10}",
    ]
    ratios: dict[str, float] = {}
    for profile, (_file, users) in PROFILES.items():
        base = None
        for runner in ("plain", "check", "check w1", "check w2"):
            rows = [r for r in results if r.profile == profile and r.runner == runner]
            if not rows:
                continue
            rps = median([r.rps for r in rows])
            check_rps = [r.check_rps for r in rows if r.check_rps is not None]
            cpu = [r.generator_cpu_pct for r in rows if r.generator_cpu_pct is not None]
            lines.append(
                f"{profile:<8} {runner:<10} {users:>5} "
                f"{median([float(r.requests) for r in rows]):>9.0f} {rps:>9.1f} "
                f"{f'{min(r.rps for r in rows):.0f}-{max(r.rps for r in rows):.0f}':>13} "
                f"{median([r.p95_ms for r in rows]):>8.1f} "
                f"{(f'{median(check_rps):.1f}' if check_rps else '-'):>10} "
                f"{(f'{median(cpu):.0f}' if cpu else '-'):>9} "
                f"{median([r.cpu_ms_per_request for r in rows]):>10.2f}"
            )
            if runner == "plain":
                base = rps
            elif base:
                ratios[f"{profile}: {runner} / plain"] = rps / base
        w1 = [r.rps for r in results if r.profile == profile and r.runner == "check w1"]
        w2 = [r.rps for r in results if r.profile == profile and r.runner == "check w2"]
        if w1 and w2:
            ratios[f"{profile}: workers=2 / workers=1"] = median(w2) / median(w1)
    return "\n".join(lines), ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--duration", type=int, default=7, help="seconds per run (default 7)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    configs = [(p, r) for p in PROFILES for r in ("plain", "check", "check w1", "check w2")]
    results: list[Figures] = []
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="load-overhead-") as tmp, demo_service(
            Path(tmp)
        ) as (project, url):
            print(f"demo service at {url}; {args.repeat} x {len(configs)} runs of "
                  f"{args.duration} s; load average {_load()}", flush=True)
            for rep in range(args.repeat):
                for n, (profile, runner) in enumerate(rng.sample(configs, len(configs))):
                    locustfile, users = PROFILES[profile]
                    out = Path(tmp) / f"r{rep}-{n}"
                    cpu_before = children_cpu_s()
                    if runner == "plain":
                        req, rps, p95 = run_plain(project, locustfile, users, args.duration,
                                                  url, out)
                        check_rps, cpu = None, None
                    else:
                        workers = {"check": 0, "check w1": 1, "check w2": 2}[runner]
                        req, rps, p95, check_rps, cpu = run_check(
                            project, locustfile, users, args.duration, workers, url, out
                        )
                    per_request = (children_cpu_s() - cpu_before) * 1000 / req
                    results.append(Figures(profile, runner, rep, req, rps, p95, check_rps, cpu,
                                           per_request))
                print(f"repetition {rep + 1} done at {time.monotonic() - started:.0f} s",
                      flush=True)
    except NeuroErpCiError as exc:
        print(f"setup error: {exc}", file=sys.stderr)
        return 2
    text, ratios = table(results)
    print()
    print(f"medians of {args.repeat} repetitions, {args.duration} s per run "
          f"(rps = locust's total_rps from each run's JSON stats; check rps = the check's metric)")
    print(text)
    print()
    met = True
    for name, ratio in ratios.items():
        verdict = ""
        if name.endswith("check / plain"):
            ok = ratio >= TARGET_RATIO
            met = met and ok
            verdict = f"  (target >= {TARGET_RATIO}: {'met' if ok else 'NOT met'})"
        print(f"{name:<32} {ratio:6.3f}{verdict}")
    print(f"total {time.monotonic() - started:.0f} s; load average now {_load()} "
          f"on {os.cpu_count()} CPUs (other work on the machine shows as spread)")
    if args.json:
        payload: dict[str, Any] = {"runs": [asdict(r) for r in results], "ratios": ratios}
        args.json.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
