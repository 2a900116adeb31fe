"""The load check's per-second timeline: the wrapper's delta and percentile functions, parsing
the run record's timeline, reading ``locust_timeline.json`` back, and the check writing it
(with a stand-in locust executable; the real locust run is in test_load.py)."""

from __future__ import annotations

import builtins
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.checks._load_timeline import (
    MAX_POINTS,
    TIMELINE_FILE,
    TimelinePoint,
    histogram_percentile,
    parse_timeline,
    read_timeline,
    sample_every,
    timeline_delta,
    timeline_point,
    wrapper_source,
    write_timeline,
)
from neuroerp_ci.checks._locust_stats import parse_run_record
from neuroerp_ci.checks._percentiles import weighted_percentile
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.checks.load import LoadSettings, LocustLoadCheck, render_wrapper
from neuroerp_ci.model import CheckStatus, Priority

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "locust"


def point(t: float, requests: int = 10, failures: int = 0, **extra: Any) -> dict[str, Any]:
    return {"t": t, "users": 5, "requests": requests, "failures": failures,
            "p50": 10.0, "p95": 20.0, **extra}


# --- the functions the wrapper runs -----------------------------------------------------


def test_histogram_percentile_matches_weighted_percentile() -> None:
    rng = random.Random(7)
    for _ in range(200):
        histogram = {
            float(rng.choice((1, 5, 12, 40, 150, 1100, 9000))): rng.randint(0, 30)
            for _ in range(rng.randint(1, 6))
        }
        for q in (0.0, 50.0, 90.0, 95.0, 99.0, 100.0):
            if sum(histogram.values()):
                assert histogram_percentile(histogram, q) == pytest.approx(
                    weighted_percentile(histogram, q)
                ), (histogram, q)
            else:
                assert histogram_percentile(histogram, q) is None
    assert histogram_percentile({}, 95.0) is None
    assert histogram_percentile({10: 1, 20: 3}, 50.0) == 20.0  # locust's int keys


def test_delta_of_cumulative_totals() -> None:
    first = (10, 1, {10: 8, 100: 2})
    assert timeline_delta(None, first) == (10, 1, {10: 8, 100: 2})
    later = (25, 1, {10: 20, 100: 2, 300: 3})
    assert timeline_delta(first, later) == (15, 0, {10: 12, 300: 3})
    assert timeline_delta(later, later) == (0, 0, {})  # a quiet second


@pytest.mark.parametrize(
    "after",
    [
        (4, 0, {10: 4}),  # requests went down: stats were reset
        (30, 0, {10: 30}),  # failures went down
        (30, 2, {10: 10, 20: 20}),  # more requests, but a bucket went down
    ],
)
def test_a_count_going_down_is_a_reset(after: tuple[int, int, dict[int, int]]) -> None:
    before = (20, 1, {10: 18, 100: 2})
    assert timeline_delta(before, after) == (after[0], after[1], after[2])


def test_timeline_point_shape_and_quiet_seconds() -> None:
    assert timeline_point(2.00049, 7, (0, 0, {}), (20, 2, {10: 19, 1000: 1})) == {
        "t": 2.0, "users": 7, "requests": 20, "failures": 2, "p50": 10.0, "p95": 10.0 + 990 * 0.05,
    }
    quiet = timeline_point(3.0, 7, (20, 2, {10: 20}), (20, 2, {10: 20}))
    assert quiet["requests"] == 0 and quiet["p50"] is None and quiet["p95"] is None


def test_wrapper_copy_uses_builtins_only_and_agrees() -> None:
    namespace: dict[str, Any] = {"__builtins__": builtins}
    source = "from __future__ import annotations\n" + wrapper_source()
    exec(compile(source, "wrapper", "exec"), namespace)  # noqa: S102 - our own source
    previous, current = (5, 0, {10: 5}), (9, 1, {10: 6, 80: 3})
    assert namespace["timeline_point"](1.5, 3, previous, current) == timeline_point(
        1.5, 3, previous, current
    )
    rendered = render_wrapper(record_path="/r", warmup_s=0, stages=[], allowed_hosts=[])
    assert wrapper_source() in rendered
    assert rendered.index("from __future__ import annotations") < rendered.index("import json")


def test_sampling_interval_keeps_long_runs_bounded() -> None:
    assert [sample_every(s) for s in (1, 60, MAX_POINTS, MAX_POINTS + 1, 86_400)] == [
        1, 1, 1, 2, 24,
    ]


def test_a_run_with_a_warmup_reset_gives_no_negative_or_lost_second() -> None:
    # Cumulative totals a second apart; the warm-up reset comes between t=2 and t=3.
    totals = [(10, 0, {10: 10}), (22, 1, {10: 21, 50: 1}), (9, 0, {10: 9}), (20, 0, {10: 20})]
    points, previous = [], None
    for i, current in enumerate(totals):
        points.append(timeline_point(float(i + 1), 4, previous, current))
        previous = current
    assert [p["requests"] for p in points] == [10, 12, 9, 11]
    assert [p["failures"] for p in points] == [0, 1, 0, 0]
    assert [p["p95"] for p in points] == [10.0, pytest.approx(10.0 + 40 * 0.45), 10.0, 10.0]


# --- parsing the run record's timeline ---------------------------------------------------


def test_parse_timeline() -> None:
    parsed = parse_timeline([point(1.0), point(2.0, 0, p50=None, p95=None), point(3, 4, 1)])
    assert parsed == (
        TimelinePoint(1.0, 5, 10, 0, 10.0, 20.0),
        TimelinePoint(2.0, 5, 0, 0, None, None),
        TimelinePoint(3.0, 5, 4, 1, 10.0, 20.0),
    )
    assert parse_timeline([]) == ()


@pytest.mark.parametrize(
    "data",
    [
        None, "timeline", {"t": 1}, [1, 2], [None],
        [point(1.0), point(1.0)],  # t must increase
        [point(2.0), point(1.0)],
        [point(-1.0)], [point(float("nan"))], [point(float("inf"))], [point(True)],
        [point(1.0, -3)], [point(1.0, 2.5)], [point(1.0, failures=-1)],
        [point(1.0, users="5")], [point(1.0, p95=-1.0)], [point(1.0, p50="fast")],
        [point(1.0, p95=float("nan"))], [{"t": 1.0}],
        [point(float(i + 1)) for i in range(MAX_POINTS + 1)],
    ],
)
def test_bad_timelines_are_dropped(data: Any) -> None:
    assert parse_timeline(data) == ()


def test_run_record_with_a_bad_timeline_still_parses() -> None:
    raw = json.loads((ASSET_DIR / "run_ok.json").read_text(encoding="utf-8"))
    assert parse_run_record(raw).timeline == ()  # recorded before there was a timeline
    raw["timeline"] = [point(1.0), point(2.0)]
    assert len(parse_run_record(raw).timeline) == 2
    raw["timeline"] = {"not": "a list"}
    record = parse_run_record(raw)
    assert record.timeline == () and record.users == (5, 5, 5)


# --- locust_timeline.json ---------------------------------------------------------------


def test_write_and_read_timeline(tmp_path: Path) -> None:
    points = parse_timeline([point(1.0, 10), point(2.0, 0, p50=None, p95=None),
                             point(4.0, 30, 3)])
    path = write_timeline(tmp_path / TIMELINE_FILE, points, measured_from_s=1.5)
    assert path is not None
    assert json.loads(path.read_text())["measured_from_s"] == 1.5
    assert read_timeline(path) == [
        (1.0, 10.0, 20.0, 0.0), (2.0, 0.0, None, 0.0), (4.0, 15.0, 20.0, 1.5),  # 2 s interval
    ]
    assert write_timeline(tmp_path / "empty.json", ()) is None
    assert not (tmp_path / "empty.json").exists()
    assert write_timeline(tmp_path / "no" / "dir.json", points) is None  # no crash


@pytest.mark.parametrize(
    "content",
    [
        b"", b"not json", b"\xff\xfe\x00", b"[" * 100_000, b"null", b"42", b'"x"',
        b'{"points": null}', b'{"points": {"t": 1}}', b'{"points": [{"t": 1}]}',
        b'{"points": [{"t": 0, "users": 1, "requests": 1, "failures": 0}]}',  # zero span
        json.dumps({"points": [point(2.0), point(1.0)]}).encode(),
    ],
)
def test_read_timeline_never_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / TIMELINE_FILE
    path.write_bytes(content)
    assert read_timeline(path) == []


def test_read_timeline_of_missing_or_odd_paths(tmp_path: Path) -> None:
    assert read_timeline(tmp_path / "missing.json") == []
    assert read_timeline(tmp_path) == []  # a directory
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([point(1.0, 3)]))  # the record's list itself
    assert read_timeline(bare) == [(1.0, 3.0, 20.0, 0.0)]


# --- the check writes the artifact (stand-in locust) --------------------------------------

# Writes locust's captured --json-file output and the captured run record, with the timeline
# from $FAKE_TIMELINE, where the wrapper's settings say.
_FAKE_LOCUST = """\
import ast, json, os, shutil, sys
argv = sys.argv[1:]
wrapper = argv[argv.index("-f") + 1].split(",")[0]
line = next(x for x in open(wrapper) if x.startswith("_CONFIG = json.loads("))
config = json.loads(ast.literal_eval(line.strip()[len("_CONFIG = json.loads("):-1]))
shutil.copy(os.path.join(os.environ["ASSETS"], "stats_ok.json"),
            argv[argv.index("--json-file") + 1] + ".json")
record = json.load(open(os.path.join(os.environ["ASSETS"], "run_ok.json")))
record["timeline"] = json.loads(os.environ["FAKE_TIMELINE"])
json.dump(record, open(config["record"], "w"))
"""


def run_fake(tmp_path: Path, timeline: Any) -> Any:
    fake = tmp_path / "fake-locust"
    fake.write_text(f"#!{sys.executable}\n{_FAKE_LOCUST}")
    fake.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "locustfile.py").write_text("")
    check = Check(
        id="load-test", title="load", kind="load", priority=Priority.HIGH, dependencies=(),
        timeout=60.0,
        settings=LoadSettings(duration_s=3, warmup_s=1, executable=str(fake)),
    )
    env = {**os.environ, "ASSETS": str(ASSET_DIR), "FAKE_TIMELINE": json.dumps(timeline)}
    ctx = CheckContext(
        project_dir=project, work_dir=tmp_path / "work", python=sys.executable, env=env,
        base_url="http://127.0.0.1:1", allowed_hosts=("127.0.0.1",),
    )
    return execute_check(LocustLoadCheck(), check, ctx)


@pytest.mark.timeout(60)
def test_check_writes_the_timeline_artifact(tmp_path: Path) -> None:
    result = run_fake(tmp_path, [point(1.0, 10), point(2.0, 20, 1)])
    assert result.status is CheckStatus.OK, result.reason
    path = Path(result.artifacts["locust_timeline"])
    assert path == tmp_path / "work" / TIMELINE_FILE
    assert read_timeline(path) == [(1.0, 10.0, 20.0, 0.0), (2.0, 20.0, 20.0, 1.0)]
    # The warm-up's end, in seconds since the start (run_ok.json: about 1 s).
    assert json.loads(path.read_text())["measured_from_s"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("timeline", ["garbage", [point(1.0, -5)], []])
def test_a_bad_timeline_changes_nothing_else(tmp_path: Path, timeline: Any) -> None:
    result = run_fake(tmp_path, timeline)
    assert result.status is CheckStatus.OK, result.reason
    assert "locust_timeline" not in result.artifacts
    assert not (tmp_path / "work" / TIMELINE_FILE).exists()
    assert result.metrics["requests"].value > 0
