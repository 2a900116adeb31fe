from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from neuroerp_ci.errors import UsageError
from neuroerp_ci.model import StageReport
from neuroerp_ci.reports import RENDERERS, render_json
from neuroerp_ci.reports.writer import (
    default_output_dir,
    new_run_id,
    write_atomically,
    write_reports,
)


def test_writes_every_registered_file_into_a_new_dir(
    tmp_path: Path, fail_report: StageReport
) -> None:
    out_dir = tmp_path / "project" / ".neuroerp-ci" / "runs" / fail_report.run_id
    files = write_reports(fail_report, out_dir)
    assert set(files) == set(RENDERERS)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(RENDERERS)  # no temp files left
    for name, path in files.items():
        assert path == out_dir / name
        assert path.read_text(encoding="utf-8") == RENDERERS[name](fail_report)
    assert json.loads(files["report.json"].read_text(encoding="utf-8"))["verdict"] == "FAIL"
    assert stat.S_IMODE(files["report.json"].stat().st_mode) == 0o644


def test_rewrite_replaces_the_file_not_its_contents(
    tmp_path: Path, pass_report: StageReport, fail_report: StageReport
) -> None:
    first = write_reports(pass_report, tmp_path)["report.json"]
    held = first.open(encoding="utf-8")  # a reader that opened the old report
    try:
        old_inode = os.stat(first).st_ino
        write_reports(fail_report, tmp_path)
        assert os.stat(first).st_ino != old_inode  # renamed into place, not truncated
        assert json.loads(held.read())["verdict"] == "PASS"  # the reader still sees a whole file
    finally:
        held.close()
    assert json.loads(first.read_text(encoding="utf-8"))["verdict"] == "FAIL"


def test_a_failing_renderer_writes_nothing(tmp_path: Path, pass_report: StageReport) -> None:
    def broken(report: StageReport) -> str:
        raise RuntimeError("renderer bug")

    out_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="renderer bug"):
        write_reports(pass_report, out_dir, {"report.json": render_json, "broken.txt": broken})
    assert not out_dir.exists()


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        write_atomically(target, "{}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_text_is_written_as_utf8_bytes(tmp_path: Path) -> None:
    path = write_atomically(tmp_path / "report.md", "❌ FAIL — x\n")
    assert path.read_bytes() == "❌ FAIL — x\n".encode()


def test_default_output_dir(tmp_path: Path) -> None:
    assert default_output_dir(tmp_path, "20261128T104501Z-3f9a2c") == (
        tmp_path / ".neuroerp-ci" / "runs" / "20261128T104501Z-3f9a2c"
    )


@pytest.mark.parametrize("run_id", ["", "..", "../x", "a/b", ".hidden", "a\\b", "x y"])
def test_default_output_dir_refuses_paths(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(UsageError, match="run id"):
        default_output_dir(tmp_path, run_id)


def test_new_run_id_shape_and_uniqueness() -> None:
    now = datetime(2026, 11, 28, 10, 45, 1, tzinfo=UTC)
    ids = {new_run_id(now) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"20261128T104501Z-[0-9a-f]{6}", i) for i in ids)


def test_new_run_id_converts_to_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    assert new_run_id(datetime(2026, 11, 28, 11, 45, 1, tzinfo=berlin)).startswith(
        "20261128T104501Z-"
    )
    assert new_run_id(datetime(2026, 1, 2, 3, 4, 5)).startswith("20260102T030405Z-")


def test_new_run_id_defaults_to_now_and_is_a_valid_directory(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    run_id = new_run_id()
    after = datetime.now(UTC)
    stamp = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= after
    assert default_output_dir(tmp_path, run_id).name == run_id
