"""The noise sampler: parsing /proc text, the pure decision, the sampler over a fake /proc with
known figures, the wiring into execute_check and the reports, and real CPU burners (foreign
ones make the window noisy; one started as our child is our own CPU, not noise).

No test asserts that an unloaded window is quiet: CI machines are shared and loaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from neuroerp_ci.checks.interface import Check, CheckContext, CheckKind, KindSettings, execute_check
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    NoiseReading,
    Priority,
    StageReport,
    Summary,
    Verdict,
)
from neuroerp_ci.reports.json_report import render_json, report_from_dict
from neuroerp_ci.reports.markdown import render_markdown
from neuroerp_ci.support.noise import (
    ALLOWANCE_CAP,
    NoiseSampler,
    ProcStat,
    TreeCpu,
    WindowFigures,
    descendants,
    judge_noise,
    parse_loadavg,
    parse_pid_stat,
    parse_schedstat,
    parse_stat,
    parse_task_schedstat,
)

# --- parsers -------------------------------------------------------------------------------

STAT = """cpu  83788 10 16497 1190965 2212 5 1248 6010 0 0
cpu0 21572 0 6678 617050 272 0 480 3442 0 0
cpu1 62216 10 9819 573915 1940 5 768 2568 0 0
intr 1 2 3
ctxt 99
procs_running 3
procs_blocked 0
"""

SCHEDSTAT = """version 15
timestamp 4295312345
cpu0 0 0 1234 567 890 123 45678901234 1234567890 5678
domain0 03 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
cpu1 0 0 1234 567 890 123 45678901234 987654321 5678
domain0 03 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"""


def pid_stat(pid: int, comm: str, ppid: int, cpu: int, start: int = 100) -> str:
    """A /proc/<pid>/stat line: ``cpu`` as utime, the other CPU fields 0."""
    return f"{pid} ({comm}) S {ppid} 0 0 0 -1 0 0 0 0 0 {cpu} 0 0 0 20 0 1 0 {start} 0 0\n"


def test_the_aggregate_cpu_line_cpu_count_and_run_queue_are_read() -> None:
    times = parse_stat(STAT)
    assert times is not None
    assert times.busy == 83788 + 10 + 16497  # interrupt time is nobody's process
    assert times.total == 83788 + 10 + 16497 + 1190965 + 2212 + 5 + 1248 + 6010
    assert (times.steal, times.cpus, times.procs_running) == (6010, 2, 3)


def test_an_old_kernel_without_steal_and_garbage_are_unknown_not_errors() -> None:
    old = parse_stat("cpu  10 0 5 100 1 0 0\ncpu0 10 0 5 100 1 0 0\n")
    assert old is not None and old.steal is None and old.procs_running is None
    assert parse_stat("garbage\n") is None and parse_stat("cpu  1 x 3 4\n") is None
    assert parse_loadavg("0.30 0.28 0.18 1/135 20617\n") == 0.30
    assert parse_loadavg("") is None


def test_schedstat_sums_the_run_queue_wait_of_every_cpu() -> None:
    assert parse_schedstat(SCHEDSTAT) == 1234567890 + 987654321
    assert parse_schedstat(SCHEDSTAT.replace("version 15", "version 14")) is None
    assert parse_schedstat("version 15\ncpu0 0 0 1\n") is None  # too few fields
    assert parse_task_schedstat("235210 534931 2\n") == 534931
    assert parse_task_schedstat("") is None


def test_a_process_name_with_spaces_and_parentheses_is_read_from_the_last_one() -> None:
    text = "1234 (my (odd) name) S 77 1234 1234 0 -1 4194304 1 0 0 0 11 22 33 44 20 0 1 0 555\n"
    assert parse_pid_stat(text) == ProcStat(1234, "my (odd) name", 77, 555, 11 + 22 + 33 + 44, 33)
    assert parse_pid_stat("1234 no parens") is None
    assert parse_pid_stat("1234 (short) S 1 2 3\n") is None


def test_our_tree_is_the_root_and_its_descendants_by_parent_links() -> None:
    processes = {
        (s.pid, s.start): s
        for s in [
            ProcStat(10, "root", 1, 5, 0),
            ProcStat(11, "child", 10, 6, 0),
            ProcStat(12, "grandchild", 11, 7, 0),
            ProcStat(20, "other", 1, 8, 0),
            ProcStat(21, "its child", 20, 9, 0),
        ]
    }
    assert descendants(processes, 10) == {(10, 5), (11, 6), (12, 7)}
    assert descendants(processes, 99) == set()


def test_a_reaped_child_is_counted_once_and_an_orphan_stays_ours() -> None:
    tree = TreeCpu(10)
    root, child = ProcStat(10, "root", 1, 1, 10), ProcStat(11, "child", 10, 2, 5)
    grandchild = ProcStat(12, "grandchild", 11, 3, 4)
    assert tree.update({(10, 1): root, (11, 2): child, (12, 3): grandchild}) == 19
    # the child exits and the root reaps it (+5 children's time, +1 own); the grandchild is
    # re-parented to init and keeps burning: still ours
    root = ProcStat(10, "root", 1, 1, 16)
    orphan = ProcStat(12, "grandchild", 1, 3, 9)
    assert tree.update({(10, 1): root, (12, 3): orphan}) == 25
    # the orphan exits, reaped by init: its CPU stays counted, none of it twice
    assert tree.update({(10, 1): root}) == 25


# --- the decision ----------------------------------------------------------------------------


def figures(**changes: object) -> WindowFigures:
    quiet: dict[str, object] = {
        "cpus": 2,
        "window_s": 5.0,
        "probe_ms": (20.0, 21.0),
        "probe_reference_ms": 20.0,
        "foreign_cpu_pct": 3.0,
        "own_cpu_pct": 40.0,
        "steal_pct": 0.2,
        "load_avg": (0.3, 0.4),
    }
    return WindowFigures(**{**quiet, **changes})  # type: ignore[arg-type]


def test_a_quiet_window_is_not_noisy_and_allows_nothing() -> None:
    assert judge_noise(figures()) == (
        False,
        "quiet: other processes used 3 % of 2 CPUs, probe at idle speed, load 0.4",
        0.0,
    )


def test_a_burner_on_one_of_two_cores_is_noise_with_the_slowdown_it_explains() -> None:
    noisy, reason, allowance = judge_noise(
        figures(foreign_cpu_pct=48.0, probe_ms=(42.0, 50.0), load_avg=(1.2, 3.1))
    )
    assert noisy
    assert reason == (
        "machine busy: other processes used 48 % of 2 CPUs, probe 2.1x slower than idle, load 3.1"
    )
    # probe +110 % (the faster of the two; beats 0.96 of a core: +96 %), times 2 for tails
    assert allowance == 220.0


def test_the_busiest_foreign_process_is_named() -> None:
    _, reason, allowance = judge_noise(
        figures(foreign_cpu_pct=50.0, top_foreign=("python3 (pid 4711)", 46.0))
    )
    assert "other processes used 50 % of 2 CPUs (most: python3 (pid 4711) 46 %)" in reason
    assert allowance == 200.0  # a whole core of two taken: +100 %, times 2


def test_steal_alone_makes_a_machine_noisy() -> None:
    noisy, reason, allowance = judge_noise(figures(foreign_cpu_pct=2.0, steal_pct=12.0))
    assert noisy and reason.startswith("machine busy: ") and "steal 12 %" in reason
    assert allowance == pytest.approx(2 * 100 * 0.12 / 0.88, abs=0.1)
    # The steal these VMs show with nothing else running does not make them busy.
    assert not judge_noise(figures(foreign_cpu_pct=2.0, steal_pct=8.0))[0]


def test_a_slow_probe_decides_only_where_the_cpu_shares_are_unknown() -> None:
    unknown = {"foreign_cpu_pct": None, "steal_pct": None}
    noisy, reason, allowance = judge_noise(figures(**unknown, probe_ms=(34.0, 36.0)))
    assert noisy and "probe 1.7x slower than idle" in reason
    assert allowance == pytest.approx(140.0)
    assert not judge_noise(figures(**unknown, probe_ms=(20.0, 29.0)))[0]  # one slow probe
    assert not judge_noise(figures(**unknown, probe_ms=(30.0, 31.0)))[0]  # 1.5x: idle spread
    # Beside known CPU shares an idle probe's spread (up to 1.9x here) calls nothing busy.
    assert not judge_noise(figures(foreign_cpu_pct=1.0, probe_ms=(38.0, 39.0)))[0]


def test_the_allowance_is_capped() -> None:
    noisy, _, allowance = judge_noise(figures(foreign_cpu_pct=95.0, probe_ms=(200.0, 180.0)))
    assert noisy and allowance == ALLOWANCE_CAP


def test_unknown_figures_never_make_a_machine_noisy() -> None:
    noisy, reason, allowance = judge_noise(
        figures(foreign_cpu_pct=None, steal_pct=None, load_avg=None)
    )
    assert (noisy, allowance) == (False, 0.0)
    assert reason == "quiet: CPU use of other processes unknown (2 CPUs), probe at idle speed"


# --- the sampler over a fake /proc -----------------------------------------------------------


def write_proc(
    proc: Path,
    *,
    user: int,
    idle: int,
    steal: int,
    running: int,
    load: float,
    wait: int,
    root_cpu: int,
    child_cpu: int,
    other_cpu: int,
    root_wait: int,
) -> None:
    line = f"{user} 0 0 {idle} 0 0 0 {steal} 0 0"
    (proc / "stat").write_text(f"cpu  {line}\ncpu0 {line}\ncpu1 {line}\nprocs_running {running}\n")
    (proc / "loadavg").write_text(f"{load} 0.1 0.1 1/100 999\n")
    (proc / "schedstat").write_text(
        f"version 15\ntimestamp 1\ncpu0 0 0 0 0 0 0 0 {wait} 0\ncpu1 0 0 0 0 0 0 0 0 0\n"
    )
    for pid, comm, ppid, cpu in [
        (4242, "neuroerp-ci", 1, root_cpu),
        (4243, "locust", 4242, child_cpu),
        (999, "burner", 1, other_cpu),
    ]:
        (proc / str(pid) / "task" / str(pid)).mkdir(parents=True, exist_ok=True)
        (proc / str(pid) / "stat").write_text(pid_stat(pid, comm, ppid, cpu))
        thread_wait = root_wait if pid == 4242 else 0
        (proc / str(pid) / "task" / str(pid) / "schedstat").write_text(f"1 {thread_wait} 1\n")


def test_the_sampler_takes_our_tree_out_of_the_machine_busy_time(tmp_path: Path) -> None:
    """Between the window's ends: 200 ticks of capacity, 150 busy, 10 stolen; our tree (the
    root and its locust child) used 50, so others used 100: 50 % of the machine."""
    start = {"root_cpu": 100, "child_cpu": 0, "other_cpu": 7, "root_wait": 0}
    write_proc(tmp_path, user=1000, idle=8000, steal=0, running=3, load=0.5, wait=10**9, **start)
    with NoiseSampler(proc=tmp_path, root_pid=4242, interval_s=60) as sampler:
        end = {"root_cpu": 110, "child_cpu": 40, "other_cpu": 97, "root_wait": 1000}
        write_proc(
            tmp_path, user=1150, idle=8040, steal=10, running=5, load=2.5, wait=10**9 + 10**6, **end
        )
    reading = sampler.reading
    assert reading is not None
    assert (reading.foreign_cpu_pct, reading.own_cpu_pct, reading.steal_pct) == (50.0, 25.0, 5.0)
    assert (reading.cpus, reading.run_queue_max, reading.load_avg) == (2, 5, (0.5, 2.5))
    assert reading.wait_pct is not None and reading.wait_pct > 0
    assert reading.noisy and reading.allowance_pct >= 200.0
    assert reading.reason.startswith(
        "machine busy: other processes used 50 % of 2 CPUs (most: burner (pid 999) 45 %)"
    )
    assert len(reading.probe_ms) == 2 and reading.probe_reference_ms is not None


def test_without_proc_only_the_probe_is_known(tmp_path: Path) -> None:
    with NoiseSampler(proc=tmp_path / "missing") as sampler:
        time.sleep(0.05)
    reading = sampler.reading
    assert reading is not None and len(reading.probe_ms) == 2
    assert "CPU use of other processes unknown" in reading.reason
    assert reading.foreign_cpu_pct == 0.0 and reading.steal_pct is None
    assert reading.wait_pct is None and reading.load_avg == (0.0, 0.0)


def test_the_sampler_never_hides_the_measurement_error(tmp_path: Path) -> None:
    sampler = NoiseSampler(proc=tmp_path)
    with pytest.raises(ZeroDivisionError), sampler:
        _ = 1 / 0
    assert sampler.reading is not None


# --- wiring: execute_check and the reports ---------------------------------------------------


class _Settings(KindSettings):
    fail: bool = False


class _Timing(CheckKind):
    name = "timing-test"
    settings_model = _Settings
    exclusive = True

    def metric_names(self, settings: KindSettings) -> MetricNames:
        return MetricNames()

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        assert isinstance(check.settings, _Settings)
        if check.settings.fail:
            raise ToolError("the target did not answer")
        return CheckResult(check.id, check.kind, CheckStatus.OK)


class _Audit(_Timing):
    exclusive = False


def run_kind(kind: CheckKind, tmp_path: Path, fail: bool = False) -> CheckResult:
    check = Check("c", "C", kind.name, Priority.HIGH, (), 10.0, _Settings(fail=fail))
    ctx = CheckContext(tmp_path, tmp_path / "work", sys.executable, {})
    return execute_check(kind, check, ctx)


def test_measurement_checks_record_the_machine_other_kinds_do_not(tmp_path: Path) -> None:
    measured = run_kind(_Timing(), tmp_path)
    assert measured.status is CheckStatus.OK and isinstance(measured.noise, NoiseReading)
    errored = run_kind(_Timing(), tmp_path, fail=True)
    assert errored.status is CheckStatus.ERROR and isinstance(errored.noise, NoiseReading)
    assert run_kind(_Audit(), tmp_path).noise is None


BUSY = NoiseReading(
    noisy=True,
    reason="machine busy: other processes used 48 % of 2 CPUs, probe 2.1x slower than idle",
    allowance_pct=220.0,
    load_avg=(1.2, 3.1),
    cpus=2,
    run_queue_max=6,
    foreign_cpu_pct=48.0,
    own_cpu_pct=30.5,
    steal_pct=0.4,
    wait_pct=None,
    probe_ms=(42.0, 30.0),
    probe_reference_ms=20.0,
    window_s=5.25,
)


def _report(noise: NoiseReading | None) -> StageReport:
    checks = [
        CheckResult("api-latency", "http", CheckStatus.OK, noise=noise),
        CheckResult("bandit", "bandit", CheckStatus.OK),
    ]
    return StageReport(
        run_id="r1",
        stage="development",
        version="v",
        target="t",
        verdict=Verdict.PASS,
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:05Z",
        duration_s=5.0,
        checks=checks,
        outcomes=[],
        summary=Summary("development", Verdict.PASS, ()),
    )


def test_the_noise_reading_goes_into_report_json_and_back() -> None:
    data = json.loads(render_json(_report(BUSY)))
    assert data["checks"][0]["noise"]["foreign_cpu_pct"] == 48.0
    assert data["checks"][1]["noise"] is None
    restored = report_from_dict(data)
    assert restored.checks[0].noise == BUSY and restored.checks[1].noise is None


def test_report_md_has_one_machine_line_per_measurement_check() -> None:
    text = render_markdown(_report(BUSY))
    assert (
        "- api-latency: Machine: busy (other processes used 48 % of 2 CPUs, probe 2.1x slower"
        " than idle; timings may move by up to 220 % for it)"
    ) in text
    assert "- bandit: Machine" not in text
    quiet = NoiseReading(False, "quiet: other processes used 2 % of 2 CPUs, load 0.3")
    assert "- api-latency: Machine: quiet (other processes used 2 % of 2 CPUs, load 0.3)" in (
        render_markdown(_report(quiet))
    )


# --- real CPU burners ------------------------------------------------------------------------

MARK = "neuroerp-ci-noise-test-burner"
# Burns one CPU; ends by itself after 60 s, should a kill ever miss it.
BURN = f"import time  # {MARK}\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass\n"
# Starts the burners in sessions of their own and exits: re-parented to init, they are not
# our descendants, as another job's processes are not.
LAUNCH = (
    "import subprocess, sys\n"
    "burn, n = sys.argv[1], int(sys.argv[2])\n"
    "procs = [subprocess.Popen([sys.executable, '-c', burn], stdin=subprocess.DEVNULL,\n"
    "    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)\n"
    "    for _ in range(n)]\n"
    "print(' '.join(str(p.pid) for p in procs))\n"
)


def _kill_burner(pid: int) -> None:
    """SIGKILL ``pid`` if it still is one of our burners (its pid cannot have been reused)."""
    try:
        if MARK.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass


@contextmanager
def foreign_burners(count: int) -> Iterator[None]:
    out = subprocess.run(  # noqa: S603 - our own code, argument list
        [sys.executable, "-c", LAUNCH, BURN, str(count)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    pids = [int(pid) for pid in out.split()]
    try:
        assert all(os.getppid() != pid for pid in pids)
        time.sleep(0.3)  # running before the window opens
        yield
    finally:
        for pid in pids:
            _kill_burner(pid)


def _cpu_ticks(pid: int) -> int:
    stat = parse_pid_stat(Path(f"/proc/{pid}/stat").read_text())
    assert stat is not None
    return stat.cpu


needs_proc = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")


@pytest.mark.integration
@needs_proc
def test_foreign_cpu_burners_make_the_window_noisy_and_the_reason_names_them() -> None:
    cpus = os.cpu_count() or 1
    with foreign_burners(min(cpus, 2)), NoiseSampler() as sampler:
        time.sleep(2.0)
    reading = sampler.reading
    assert reading is not None
    assert reading.noisy, reading
    assert reading.foreign_cpu_pct > 30 / max(cpus / 2, 1), reading
    assert reading.reason.startswith("machine busy: other processes used"), reading
    assert reading.allowance_pct > 0 and reading.run_queue_max >= 1 and reading.window_s > 1.5


@pytest.mark.integration
@needs_proc
def test_a_burner_that_is_our_child_is_our_cpu_not_noise() -> None:
    """The load generator's case: a child of this process burning CPU is the measurement's."""
    burner = subprocess.Popen([sys.executable, "-c", BURN])  # noqa: S603 - our own code
    try:
        time.sleep(0.3)
        with NoiseSampler() as sampler:
            before = _cpu_ticks(burner.pid)
            time.sleep(2.0)
            burned = _cpu_ticks(burner.pid) - before
    finally:
        burner.kill()
        burner.wait()
    reading = sampler.reading
    assert reading is not None
    ticks = reading.window_s * reading.cpus * os.sysconf("SC_CLK_TCK")
    burned_pct = burned / ticks * 100
    assert burned_pct > 10, f"the burner hardly ran: {burned} ticks"
    # all of what it burned is ours (the window is a little longer than what was read here);
    # what others did meanwhile on a shared machine is theirs and is not asserted
    assert reading.own_cpu_pct >= 0.8 * burned_pct, (reading, burned_pct)
