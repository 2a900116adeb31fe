"""Answers kept between runs, keyed by the files they came from: the memo itself, and its
use for an advisory mirror's index. A real memo folder per test (``NEUROERP_CI_CACHE_DIR``).

A memo needs files that have settled (:func:`~neuroerp_ci.support.stat_memo.settled`):
files written here are dated back with :func:`age`, as a mirror fetched earlier would be.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from neuroerp_ci.checks.advisories import AdvisoryMirror, MirrorFolder
from neuroerp_ci.errors import ToolError
from neuroerp_ci.support.stat_memo import (
    CACHE_DIR_ENV,
    StatMemo,
    cache_dir,
    settled,
    stat_key,
)


@pytest.fixture(autouse=True)
def memo_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(folder))
    return folder


def age(*roots: Path, seconds_ago: float = 60.0) -> None:
    """Date these files, and everything below these folders, back."""
    when = time.time() - seconds_ago
    for root in roots:
        for path in [root, *root.rglob("*")]:
            os.utime(path, (when, when))


def counted(value: object, calls: list[int]) -> object:
    calls.append(1)
    return value


# --- the memo -------------------------------------------------------------------------------


def test_the_cache_folder_follows_the_environment(tmp_path: Path) -> None:
    assert cache_dir({CACHE_DIR_ENV: str(tmp_path)}) == tmp_path
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "neuroerp-ci"


def test_a_value_is_computed_once_and_kept(memo_folder: Path) -> None:
    calls: list[int] = []
    first = StatMemo("answers").get("k", lambda: counted({"a": [1, "b"]}, calls))
    again = StatMemo("answers").get("k", lambda: counted({"a": "other"}, calls))
    assert first == again == {"a": [1, "b"]} and len(calls) == 1
    assert json.loads((memo_folder / "answers.json").read_text()) == {"k": {"a": [1, "b"]}}


def test_valid_refuses_stored_and_computed_values() -> None:
    memo, calls = StatMemo("answers"), list[int]()
    assert memo.get("k", lambda: counted("failed", calls), lambda v: v != "failed") == "failed"
    assert memo.get("k", lambda: counted("ok", calls), lambda v: v != "failed") == "ok"
    assert memo.get("k", lambda: counted("ok", calls), lambda v: v == "ok") == "ok"
    assert len(calls) == 2  # the failed answer was not kept
    # A stored value the caller does not accept (a foreign or older format) is computed again.
    assert memo.get("k", lambda: counted(3, calls), lambda v: isinstance(v, int)) == 3


def test_the_oldest_entries_go_first() -> None:
    memo = StatMemo("answers", max_entries=2)
    for key in "abc":
        memo.get(key, key.upper)
    calls: list[int] = []
    assert memo.get("b", lambda: counted("?", calls)) == "B" and not calls
    assert memo.get("a", lambda: counted("again", calls)) == "again" and calls


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "", "\udcff"])
def test_a_damaged_memo_file_is_computed_again_and_replaced(
    memo_folder: Path, content: str
) -> None:
    memo_folder.mkdir()
    (memo_folder / "answers.json").write_text(content, encoding="utf-8", errors="surrogateescape")
    assert StatMemo("answers").get("k", lambda: "v") == "v"
    assert json.loads((memo_folder / "answers.json").read_text()) == {"k": "v"}


def test_a_read_only_or_unusable_memo_folder_only_costs_time(
    tmp_path: Path, memo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo_folder.mkdir()
    (memo_folder / "answers.json").write_text('{"k": "kept"}')
    (memo_folder / "answers.json").chmod(0o444)
    memo_folder.chmod(0o555)  # as root this still writes: either way nothing fails
    try:
        assert StatMemo("answers").get("k", lambda: "new") == "kept"
        assert StatMemo("answers").get("other", lambda: "new") == "new"
    finally:
        memo_folder.chmod(0o755)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(CACHE_DIR_ENV, str(blocked / "cache"))  # cannot be created
    calls: list[int] = []
    for _ in range(2):
        assert StatMemo("answers").get("k", lambda: counted("v", calls)) == "v"
    assert len(calls) == 2
    # A value JSON cannot keep is returned all the same.
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache2"))
    assert StatMemo("answers").get("k", lambda: {1, 2}) == {1, 2}


def test_stat_key_names_a_file_as_it_is_now(tmp_path: Path) -> None:
    file = tmp_path / "tool"
    file.write_text("v1")
    age(file)
    key = stat_key(file)
    (tmp_path / "link").symlink_to(file)
    assert key is not None and key == stat_key(tmp_path / "link")  # the file it names
    file.write_text("v2")  # same size, in place
    age(file, seconds_ago=30)
    assert stat_key(file) not in (None, key)
    assert stat_key(tmp_path / "missing") is None
    assert stat_key(file, tmp_path / "missing") is None


def test_a_file_changed_just_now_is_no_evidence(tmp_path: Path) -> None:
    file = tmp_path / "tool"
    file.write_text("v1")  # rewritten within the same clock tick it would look the same
    assert stat_key(file) is None
    assert settled(time.time_ns() - 60 * 10**9)
    assert not settled(time.time_ns() + 60 * 10**9)  # from the future: a skewed clock


# --- an advisory mirror's index -------------------------------------------------------------

RECORD = "id: {id}\nmodified: '{day}T00:00:00Z'\naffected:\n- package: {{name: {name}, ecosystem: PyPI}}\n  versions: ['1.0']\n"  # noqa: E501


def pypa_record(root: Path, name: str, advisory: str, day: str) -> Path:
    path = root / "vulns" / name / f"{advisory}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORD.format(id=advisory, day=day, name=name), encoding="utf-8")
    return path


def tree_record(root: Path, name: str, advisory: str) -> Path:
    path = root / "advisories" / advisory / f"{advisory}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    affected = [{"package": {"name": name, "ecosystem": "PyPI"}, "versions": ["1.0"]}]
    path.write_text(json.dumps({"id": advisory, "affected": affected}), encoding="utf-8")
    return path


def newest(root: Path) -> str:
    found = MirrorFolder(root).snapshot_date()
    return found.day.isoformat() if found else "none"


def test_the_dates_are_read_once_per_content_of_the_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    pypa_record(mirror, "pkg", "PYSEC-1", "2024-05-01")
    age(mirror)
    assert newest(mirror) == "2024-05-01"
    with monkeypatch.context() as patched:  # unchanged: the memo answers, nothing is read
        patched.setattr(MirrorFolder, "_read_modified_days", lambda self: pytest.fail("read"))
        assert newest(mirror) == "2024-05-01"

    # An added advisory file: read again.
    pypa_record(mirror, "other", "PYSEC-2", "2024-06-01")
    age(mirror, seconds_ago=50)
    assert newest(mirror) == "2024-06-01"
    # Rewritten in place, same size: read again.
    edited = pypa_record(mirror, "other", "PYSEC-2", "2024-06-02")
    age(mirror, seconds_ago=40)
    assert newest(mirror) == "2024-06-02"
    # Put back with its old modification time (tar -x, cp -p): the change time still tells.
    stat = edited.stat()
    edited.write_text(RECORD.format(id="PYSEC-2", day="2024-06-03", name="other"))
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert newest(mirror) == "2024-06-03"
    # Removed: read again.
    edited.unlink()
    age(mirror, seconds_ago=30)
    assert newest(mirror) == "2024-05-01"


def test_a_fresh_mirror_file_is_read_every_time(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    pypa_record(mirror, "pkg", "PYSEC-1", "2024-05-01")  # just written
    assert newest(mirror) == "2024-05-01"
    assert not (tmp_path / "cache" / "advisory-modified-days.json").exists()


def test_a_tree_is_indexed_once_and_again_when_a_record_is_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "ghsa"
    tree_record(tree, "alpha", "GHSA-A")
    age(tree)
    assert [r["id"] for r in AdvisoryMirror(tree).query("alpha", "1.0")] == ["GHSA-A"]
    with monkeypatch.context() as patched:
        patched.setattr(MirrorFolder, "_read_tree_index", lambda self: pytest.fail("indexed"))
        again = AdvisoryMirror(tree)
        assert [r["id"] for r in again.query("Alpha", "1.0")] == ["GHSA-A"]
        assert again.query("beta", "1.0") == []
    tree_record(tree, "beta", "GHSA-B")
    age(tree, seconds_ago=30)
    assert [r["id"] for r in AdvisoryMirror(tree).query("beta", "1.0")] == ["GHSA-B"]
    # A broken record still stops every query once the tree changed.
    (tree / "advisories" / "GHSA-C.json").write_text('{"id": "GHSA-C", "PyPI": ')
    age(tree, seconds_ago=20)
    with pytest.raises(ToolError, match="cannot read"):
        AdvisoryMirror(tree).query("alpha", "1.0")
