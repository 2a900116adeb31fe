"""How busy the machine was while a measurement check measured: the noise sampler.

A timing measured on a shared machine moves for two reasons: the target changed, or other
processes took the CPU. :class:`NoiseSampler` records the second over the measurement's window
so the gates can tell them apart: the CPU time of every process that is not ours (from
``/proc/stat``'s totals minus our process tree), hypervisor steal, the run queue, the load
average, the run-queue wait (``/proc/schedstat``, where the kernel has it) and a short fixed
CPU-bound probe timed before and after. :func:`judge_noise` decides from those figures alone
whether the machine was too noisy, and how far a timing may move on it for no reason of the
target's (:attr:`~neuroerp_ci.model.NoiseReading.allowance_pct`).

"Ours" is this process and all its descendants: the load generator (locust) and the target
service the runner starts are children of the neuroerp-ci process, and their CPU is the
measurement, not noise. A service the target uses that the runner did not start (a system
database) counts as foreign.

Standard library only, Linux ``/proc``. A file that is missing or unreadable makes its figure
unknown (``None``), never an error; an unknown figure never makes a machine noisy, since noise
only ever excuses a breach (fail closed). Off Linux only the probe is measured.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from neuroerp_ci.model import NoiseReading

# --- When a machine is noisy (judge_noise) -----------------------------------------------
# Other processes' CPU, % of all cores. A quiet CI machine runs a few daemons (a few %); 10 %
# of a 2-core machine is a fifth of a core taken all the window long, enough to delay a
# request that lands behind it by a scheduler slice (several ms), the size of a p95 change.
FOREIGN_CPU_NOISY_PCT = 10.0
# Hypervisor steal, % of all cores: time the VM's CPUs were runnable but the host ran someone
# else. Invisible to every process inside, and it slows everything alike. The 2-core VMs here
# steal 0-8 % with nothing else running (benchmarks/regression_detection.py, 2026-12-02),
# which moves a 20 ms request by well under the 5 % a regression condition tolerates; above
# 10 % a neighbour VM is busy.
STEAL_NOISY_PCT = 10.0
# The probe's timing over its reference (the fastest this process has seen), the faster of
# the probes before and after the window: slow on both sides means the cores were contended
# for the whole window, not one preemption. Idle probes on this VM spread by up to 1.5x
# (30 probes 0.3 s apart on a quiet 2-core machine: 1.0-1.53x, frequency scaling and cache
# after a sleep); beside burners on both cores they run 1.5-2.5x. So only beyond 1.6x does
# the probe alone call the machine busy; the CPU shares above catch the rest.
PROBE_SLOWDOWN_NOISY = 1.6
# The figures above tell the mean slowdown of CPU-bound work; the tails that timing gates
# limit (p95, p99) move about twice as much, since a short request that lands behind a
# foreign task waits for that task's whole time slice.
ALLOWANCE_MARGIN = 2.0
# No allowance beyond +400 %: a timing five times its limit is not explained by a busy
# machine of the kind measured here (a whole core taken is +100 %), it is a breach.
ALLOWANCE_CAP = 400.0

# --- The probe ---------------------------------------------------------------------------
# Fixed pure-Python work: about 20-25 ms on an idle core of the reference machine (2 cores,
# Python 3.11). Repeated PROBE_REPEATS times before and after a window, the fastest kept: a
# whole probe costs about 0.15 s per check on a quiet machine, twice that on a busy one.
PROBE_LOOPS = 200_000
PROBE_REPEATS = 3

# The background sampler's period: often enough to see a run queue build up and to catch
# short-lived processes of our tree, rarely enough that reading /proc (about 3 ms for 100
# processes) costs ~1 % of one core.
SAMPLE_INTERVAL_S = 0.25

PROC = Path("/proc")
_CLOCK_TICKS = 100  # USER_HZ, unless os.sysconf says otherwise
_SCHEDSTAT_MIN_VERSION = 15  # the cpuN field layout read here (Linux 4.x and later)

# The fastest probe this process has seen: the machine's idle speed as far as we know.
_reference_ms: float | None = None
_reference_lock = threading.Lock()

ProcKey = tuple[int, int]  # (pid, start time in ticks since boot): a pid is reused, this is not


# --- Parsers: text of a /proc file in, figures out (None: not in the text) ---------------


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of ``/proc/stat`` (clock ticks), and its CPU count."""

    busy: int  # user + nice + system: time some process ran (guest time is inside user)
    total: int  # every state up to steal: the window's capacity, all cores
    steal: int | None  # None where the kernel does not report steal
    cpus: int  # cpuN lines: online CPUs
    procs_running: int | None  # runnable tasks now (the run queue, all CPUs)


@dataclass(frozen=True)
class ProcStat:
    """One process from ``/proc/<pid>/stat``."""

    pid: int
    comm: str
    ppid: int
    start: int  # ticks since boot
    cpu: int  # utime + stime + cutime + cstime: its own CPU and its reaped children's
    # utime + stime alone: a reaper (init) gains a child's whole life at once when it reaps
    # it, so naming the busiest foreign process counts only what each ran itself
    self_cpu: int = 0


def parse_loadavg(text: str) -> float | None:
    """The 1-minute load average from ``/proc/loadavg`` (``0.30 0.28 0.18 1/135 20617``)."""
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        return None


def parse_stat(text: str) -> CpuTimes | None:
    """``/proc/stat``: the aggregate CPU ticks, the CPU count and ``procs_running``.

    Interrupt time (irq, softirq) is left out of ``busy``: no process is charged for it, and
    on a load test it is mostly the network stack carrying our own loopback traffic.
    """
    aggregate: list[int] | None = None
    cpus = 0
    running: int | None = None
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            aggregate = _ints(rest.split())
        elif name.startswith("cpu") and name[3:].isdigit():
            cpus += 1
        elif name == "procs_running":
            running = _int(rest.strip())
    if not aggregate or len(aggregate) < 4:
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user
    states = aggregate[:8]
    return CpuTimes(
        busy=sum(states[:3]),
        total=sum(states),
        steal=states[7] if len(states) >= 8 else None,
        cpus=max(cpus, 1),
        procs_running=running,
    )


def parse_schedstat(text: str) -> int | None:
    """Nanoseconds runnable tasks spent waiting for a CPU, summed over CPUs (``/proc/schedstat``:
    field 8 of each ``cpuN`` line); None for a format version this code does not know."""
    version: int | None = None
    waits: list[int] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "version":
            version = _int(fields[1])
        elif fields and fields[0].startswith("cpu") and fields[0][3:].isdigit():
            wait = _int(fields[8]) if len(fields) > 8 else None
            if wait is None:
                return None
            waits.append(wait)
    if version is None or version < _SCHEDSTAT_MIN_VERSION or not waits:
        return None
    return sum(waits)


def parse_task_schedstat(text: str) -> int | None:
    """A thread's wait for a CPU in ns (``/proc/<pid>/task/<tid>/schedstat``: run wait slices)."""
    fields = text.split()
    return _int(fields[1]) if len(fields) >= 2 else None


def parse_pid_stat(text: str) -> ProcStat | None:
    """``/proc/<pid>/stat``. The command name is in parentheses and may itself hold spaces and
    parentheses, so the fields are counted from the last ``)``."""
    head, sep, tail = text.rpartition(")")
    pid_text, _, comm = head.partition(" (")
    fields = tail.split()
    if not sep or len(fields) < 20:
        return None
    # fields[0] is field 3 (state): ppid 4, utime..cstime 14-17, starttime 22
    numbers = _ints([fields[1], *fields[11:15], fields[19]])
    pid = _int(pid_text)
    if numbers is None or pid is None:
        return None
    ppid, utime, stime, cutime, cstime, start = numbers
    return ProcStat(pid, comm, ppid, start, utime + stime + cutime + cstime, utime + stime)


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _ints(texts: Sequence[str]) -> list[int] | None:
    try:
        return [int(t) for t in texts]
    except ValueError:
        return None


# --- The decision: pure, from figures ----------------------------------------------------


@dataclass(frozen=True)
class WindowFigures:
    """What was measured over one window; ``None``: not measurable on this machine."""

    cpus: int
    window_s: float
    probe_ms: tuple[float, ...] = ()  # before, after
    probe_reference_ms: float | None = None
    foreign_cpu_pct: float | None = None  # % of all cores
    own_cpu_pct: float | None = None  # % of all cores
    steal_pct: float | None = None  # % of all cores
    wait_pct: float | None = None  # other tasks' wait for a CPU, % of window x cores
    load_avg: tuple[float, float] | None = None  # 1-minute, start and end
    run_queue_max: int | None = None
    top_foreign: tuple[str, float] | None = None  # ("python3 (pid 4711)", % of all cores)


def probe_slowdown(figures: WindowFigures) -> float | None:
    """The faster of the probes around the window over its reference (1.0 = idle speed);
    None without both."""
    reference = figures.probe_reference_ms
    if not figures.probe_ms or reference is None or reference <= 0:
        return None
    return min(figures.probe_ms) / reference


def judge_noise(figures: WindowFigures) -> tuple[bool, str, float]:
    """``(noisy, reason, allowance_pct)`` for one window.

    Noisy when other processes took more than :data:`FOREIGN_CPU_NOISY_PCT` of the machine,
    the hypervisor stole more than :data:`STEAL_NOISY_PCT`, or, where the CPU shares are
    unknown, the probe ran more than :data:`PROBE_SLOWDOWN_NOISY` times its idle time. The
    allowance is 0 on a quiet machine (nothing to excuse), else :func:`allowance_pct`.
    """
    slowdown = probe_slowdown(figures)
    noisy = (
        _over(figures.foreign_cpu_pct, FOREIGN_CPU_NOISY_PCT)
        or _over(figures.steal_pct, STEAL_NOISY_PCT)
        # The probe alone only where the CPU shares are unknown (off Linux): on these VMs an
        # idle probe runs up to 1.9x its fastest time (frequency scaling, cache, steal), so
        # beside known CPU shares it sizes the allowance but does not call a machine busy.
        or (figures.foreign_cpu_pct is None and _over(slowdown, PROBE_SLOWDOWN_NOISY))
    )
    prefix = "machine busy" if noisy else "quiet"
    reason = f"{prefix}: {', '.join(_reason_parts(figures, slowdown))}"
    return noisy, reason, allowance_pct(figures) if noisy else 0.0


def allowance_pct(figures: WindowFigures) -> float:
    """How far a timing may move on this machine for no reason of the target's, in %.

    The largest of three estimates of the slowdown of CPU-bound work, times
    :data:`ALLOWANCE_MARGIN` for the tails, at most :data:`ALLOWANCE_CAP`:

    - the probe: 2.1x slower than idle is +110 %;
    - other processes' CPU: a CPU-bound task sharing a core with a foreign one that keeps it
      busy runs at half speed (+100 %), one that takes a share u of a core costs about u;
      beyond a whole core, the rest is spread over all cores (a busy 2-core machine with a
      burner on one core: +100 %, with two: +150 %);
    - steal: a CPU that loses s of its time runs 1 / (1 - s) slower.
    """
    estimates = [0.0]
    slowdown = probe_slowdown(figures)
    if slowdown is not None:
        estimates.append((slowdown - 1.0) * 100.0)
    if figures.foreign_cpu_pct is not None:
        cores = figures.foreign_cpu_pct / 100.0 * figures.cpus
        estimates.append(100.0 * (min(cores, 1.0) + max(cores - 1.0, 0.0) / figures.cpus))
    if figures.steal_pct is not None:
        stolen = min(figures.steal_pct, 90.0) / 100.0
        estimates.append(100.0 * stolen / (1.0 - stolen))
    return round(min(ALLOWANCE_CAP, ALLOWANCE_MARGIN * max(estimates)), 1)


def reading_from(figures: WindowFigures) -> NoiseReading:
    """The :class:`~neuroerp_ci.model.NoiseReading` of a window (unknown figures as 0 / None)."""
    noisy, reason, allowance = judge_noise(figures)
    return NoiseReading(
        noisy=noisy,
        reason=reason,
        allowance_pct=allowance,
        load_avg=figures.load_avg or (0.0, 0.0),
        cpus=figures.cpus,
        run_queue_max=figures.run_queue_max or 0,
        foreign_cpu_pct=_round(figures.foreign_cpu_pct) or 0.0,
        own_cpu_pct=_round(figures.own_cpu_pct) or 0.0,
        steal_pct=_round(figures.steal_pct),
        wait_pct=_round(figures.wait_pct),
        probe_ms=tuple(round(ms, 2) for ms in figures.probe_ms),
        probe_reference_ms=_round(figures.probe_reference_ms, 2),
        window_s=round(figures.window_s, 3),
    )


def _over(value: float | None, limit: float) -> bool:
    return value is not None and value > limit


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _reason_parts(figures: WindowFigures, slowdown: float | None) -> list[str]:
    """``other processes used 48 % of 2 CPUs (most: python3 (pid 4711) 46 %)``, steal, probe,
    load: the figures a person checks first, each only when it was measured."""
    cpus = f"{figures.cpus} CPU{'s' if figures.cpus != 1 else ''}"
    if figures.foreign_cpu_pct is None:
        parts = [f"CPU use of other processes unknown ({cpus})"]
    else:
        foreign = f"other processes used {figures.foreign_cpu_pct:.0f} % of {cpus}"
        if figures.top_foreign is not None and figures.foreign_cpu_pct >= 1.0:
            name, pct = figures.top_foreign
            foreign += f" (most: {name} {pct:.0f} %)"
        parts = [foreign]
    if figures.steal_pct is not None and figures.steal_pct >= 1.0:
        parts.append(f"steal {figures.steal_pct:.0f} %")
    if slowdown is not None:
        speed = "at idle speed" if slowdown < 1.1 else f"{slowdown:.1f}x slower than idle"
        parts.append(f"probe {speed}")
    if figures.load_avg is not None:
        parts.append(f"load {max(figures.load_avg):.1f}")
    return parts


# --- The probe ---------------------------------------------------------------------------


def run_probe(loops: int = PROBE_LOOPS, repeats: int = PROBE_REPEATS) -> float:
    """The fixed CPU-bound probe: its fastest of ``repeats`` runs in ms (wall time, so a core
    shared with another task shows). Lowers the process's reference when faster."""
    global _reference_ms
    fastest = min(_probe_once(loops) for _ in range(max(repeats, 1)))
    with _reference_lock:
        if _reference_ms is None or fastest < _reference_ms:
            _reference_ms = fastest
    return fastest


def probe_reference_ms() -> float | None:
    """The fastest probe this process has seen: its best estimate of the idle speed."""
    return _reference_ms


def _probe_once(loops: int) -> float:
    started = time.perf_counter()
    acc = 0
    for i in range(loops):
        acc = (acc * 31 + i) & 0xFFFFFF
    elapsed = time.perf_counter() - started
    return elapsed * 1000.0 if acc >= 0 else 0.0  # acc used: the loop cannot be skipped


# --- Reading /proc -----------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_stat(proc: Path = PROC) -> CpuTimes | None:
    text = _read(proc / "stat")
    return None if text is None else parse_stat(text)


def read_loadavg(proc: Path = PROC) -> float | None:
    text = _read(proc / "loadavg")
    return None if text is None else parse_loadavg(text)


def read_schedstat(proc: Path = PROC) -> int | None:
    text = _read(proc / "schedstat")
    return None if text is None else parse_schedstat(text)


def scan_processes(proc: Path = PROC) -> dict[ProcKey, ProcStat]:
    """Every process ``/proc`` shows (a process may vanish while it is read: skipped)."""
    try:
        names = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return {}
    found: dict[ProcKey, ProcStat] = {}
    for name in names:
        text = _read(proc / name / "stat")
        stat = None if text is None else parse_pid_stat(text)
        if stat is not None:
            found[(stat.pid, stat.start)] = stat
    return found


def descendants(processes: Mapping[ProcKey, ProcStat], root_pid: int) -> set[ProcKey]:
    """``root_pid`` and every process below it, by parent links."""
    children: dict[int, list[ProcKey]] = {}
    for key, stat in processes.items():
        children.setdefault(stat.ppid, []).append(key)
    tree = {key for key in processes if key[0] == root_pid}
    todo = [root_pid]
    while todo:
        for key in children.get(todo.pop(), ()):
            if key not in tree and key[0] != root_pid:
                tree.add(key)
                todo.append(key[0])
    return tree


def thread_waits(pids: Iterable[int], proc: Path = PROC) -> dict[tuple[int, int], int]:
    """Each thread's wait for a CPU so far (ns), for the given processes: ``(pid, tid)``."""
    waits: dict[tuple[int, int], int] = {}
    for pid in pids:
        try:
            tids = os.listdir(proc / str(pid) / "task")
        except OSError:
            continue
        for tid in tids:
            text = _read(proc / str(pid) / "task" / tid / "schedstat")
            wait = None if text is None or not tid.isdigit() else parse_task_schedstat(text)
            if wait is not None:
                waits[(pid, int(tid))] = wait
    return waits


class TreeCpu:
    """The CPU time of a process tree, followed through a window of scans.

    The tree's CPU at a scan is the sum over its live members of their own and their reaped
    children's CPU: a member that exits and is reaped by another member moves into that one's
    children's time, so nothing is lost or counted twice. A member once seen stays ours when
    its parent exits (it is re-parented to init); when such an orphan exits, its last known
    CPU is kept, since init's children's time is nobody's.
    """

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.members: dict[ProcKey, ProcStat] = {}
        self.ever: set[ProcKey] = set()
        self._departed = 0

    def update(self, processes: Mapping[ProcKey, ProcStat]) -> int:
        """Take in one scan; returns the tree's CPU (ticks) at it."""
        live = descendants(processes, self.root_pid) | (self.members.keys() & processes.keys())
        live_pids = {key[0] for key in live} | {key[0] for key in self.members}
        for key, last in self.members.items():
            if key not in processes and last.ppid not in live_pids:
                self._departed += last.cpu  # an orphan reaped outside the tree
        self.members = {key: processes[key] for key in live}
        self.ever |= live
        return self.total()

    def total(self) -> int:
        return self._departed + sum(stat.cpu for stat in self.members.values())


# --- The sampler -------------------------------------------------------------------------


@dataclass
class _Snapshot:
    at: float  # time.monotonic()
    cpu: CpuTimes | None
    load: float | None
    wait_ns: int | None
    processes: dict[ProcKey, ProcStat]
    tree_cpu: int
    tree_waits: dict[tuple[int, int], int] = field(default_factory=dict)


class NoiseSampler:
    """Records the machine's state around one measurement::

        with NoiseSampler() as sampler:
            result = kind.measure(check, ctx)
        result.noise = sampler.reading

    Times the probe, reads ``/proc``, and samples the run queue and our process tree every
    :data:`SAMPLE_INTERVAL_S` from a daemon thread; on exit probes again and sets
    :attr:`reading`. It never raises: a sampler that failed leaves ``reading`` None (no
    noise known, so none excuses a breach), and it never hides the measurement's exception.
    """

    def __init__(
        self,
        proc: Path = PROC,
        root_pid: int | None = None,
        interval_s: float = SAMPLE_INTERVAL_S,
        probe_loops: int = PROBE_LOOPS,
    ) -> None:
        self.proc = proc
        self.interval_s = interval_s
        self.probe_loops = probe_loops
        self.reading: NoiseReading | None = None
        self._tree = TreeCpu(os.getpid() if root_pid is None else root_pid)
        self._run_queue_max: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start: _Snapshot | None = None
        self._probes: list[float] = []
        self._lock = threading.Lock()

    def __enter__(self) -> NoiseSampler:
        try:
            self._probes = [run_probe(self.probe_loops)]
            self._start = self._snapshot()
            self._thread = threading.Thread(
                target=self._sample_loop, name="neuroerp-ci-noise", daemon=True
            )
            self._thread.start()
        except Exception:  # noqa: BLE001 - the sampler must never break a measurement
            self._start = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        try:
            if self._thread is not None:
                self._thread.join(timeout=max(2.0, 4 * self.interval_s))
            if self._start is not None:
                end = self._snapshot()
                self._probes.append(run_probe(self.probe_loops))
                self.reading = reading_from(self._figures(self._start, end))
        except Exception:  # noqa: BLE001 - no reading rather than a crashed check
            self.reading = None

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._sample()
            except Exception:  # noqa: BLE001 - stop sampling; the window's ends still count
                return

    def _sample(self) -> None:
        cpu = read_stat(self.proc)
        processes = scan_processes(self.proc)
        with self._lock:
            if cpu is not None:
                self._note_run_queue(cpu.procs_running)
            self._tree.update(processes)

    def _note_run_queue(self, running: int | None) -> None:
        if running is not None:
            self._run_queue_max = max(self._run_queue_max or 0, running)

    def _snapshot(self) -> _Snapshot:
        cpu = read_stat(self.proc)
        wait_ns = read_schedstat(self.proc)
        processes = scan_processes(self.proc)
        with self._lock:
            tree_cpu = self._tree.update(processes)
            if cpu is not None:
                self._note_run_queue(cpu.procs_running)
            members = [key[0] for key in self._tree.members]
        # Our threads' own wait, to take out of the total: only worth reading where the total is.
        waits = thread_waits(members, self.proc) if wait_ns is not None else {}
        return _Snapshot(
            at=time.monotonic(),
            cpu=cpu,
            load=read_loadavg(self.proc),
            wait_ns=wait_ns,
            processes=processes,
            tree_cpu=tree_cpu,
            tree_waits=waits,
        )

    def _figures(self, start: _Snapshot, end: _Snapshot) -> WindowFigures:
        window_s = max(end.at - start.at, 1e-6)
        cpus = end.cpu.cpus if end.cpu is not None else (os.cpu_count() or 1)
        capacity = _capacity_ticks(start, end, window_s, cpus)
        own = max(end.tree_cpu - start.tree_cpu, 0)
        foreign = steal = wait = None
        if start.cpu is not None and end.cpu is not None:
            foreign = max(end.cpu.busy - start.cpu.busy - own, 0) / capacity * 100.0
            if start.cpu.steal is not None and end.cpu.steal is not None:
                steal = max(end.cpu.steal - start.cpu.steal, 0) / capacity * 100.0
        if start.wait_ns is not None and end.wait_ns is not None:
            ours = sum(w - start.tree_waits.get(k, 0) for k, w in end.tree_waits.items())
            others = max(end.wait_ns - start.wait_ns - max(ours, 0), 0)
            wait = others / (window_s * 1e9 * cpus) * 100.0
        loads = (start.load, end.load)
        return WindowFigures(
            cpus=cpus,
            window_s=window_s,
            probe_ms=tuple(self._probes),
            probe_reference_ms=probe_reference_ms(),
            foreign_cpu_pct=foreign,
            own_cpu_pct=own / capacity * 100.0 if start.cpu is not None else None,
            steal_pct=steal,
            wait_pct=wait,
            load_avg=None if None in loads else (loads[0] or 0.0, loads[1] or 0.0),
            run_queue_max=self._run_queue_max,
            top_foreign=_top_foreign(start, end, self._tree.ever, capacity),
        )


def _capacity_ticks(start: _Snapshot, end: _Snapshot, window_s: float, cpus: int) -> float:
    """All cores' ticks in the window: /proc/stat's own count, else window x cores x USER_HZ."""
    if start.cpu is not None and end.cpu is not None and end.cpu.total > start.cpu.total:
        return float(end.cpu.total - start.cpu.total)
    return window_s * cpus * _clock_ticks()


def _top_foreign(
    start: _Snapshot, end: _Snapshot, ours: set[ProcKey], capacity: float
) -> tuple[str, float] | None:
    """The foreign process that used the most CPU in the window, as ``(name, % of all cores)``
    (one started in the window counts from zero)."""
    best: tuple[int, ProcStat] | None = None
    for key, stat in end.processes.items():
        if key in ours:
            continue
        before = start.processes.get(key)
        used = stat.self_cpu - (before.self_cpu if before is not None else 0)
        if best is None or used > best[0]:
            best = (used, stat)
    if best is None or best[0] <= 0:
        return None
    used, stat = best
    return f"{stat.comm} (pid {stat.pid})", used / capacity * 100.0


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return _CLOCK_TICKS
