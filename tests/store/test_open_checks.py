"""A store file that is not a sound neuroerp-ci history is refused when it is opened, and
left exactly as it was; a new store never exists as an empty file, even for a moment."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neuroerp_ci.store import HistoryStore, StoreError, open_store

from .conftest import at, make_report, record

Damage = Callable[[Path], None]


def truncate_to(size: int | Callable[[int], int]) -> Damage:
    def damage(path: Path) -> None:
        os.truncate(path, size(path.stat().st_size) if callable(size) else size)

    return damage


def overwrite(offset: Callable[[int], int], data: bytes) -> Damage:
    def damage(path: Path) -> None:
        with path.open("r+b") as handle:
            handle.seek(offset(path.stat().st_size))
            handle.write(data)

    return damage


def foreign_database(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER)")
    db.commit()
    db.close()


DAMAGES: dict[str, tuple[Damage, str]] = {
    "truncated to nothing": (truncate_to(0), "the file is empty (0 bytes)"),
    "truncated inside the header": (truncate_to(50), "is not an SQLite database"),
    "truncated to its first page": (truncate_to(4096), "SQLite says database disk image"),
    "truncated half-way": (truncate_to(lambda size: size // 2 + 100), "the file is truncated"),
    "garbage over the header": (overwrite(lambda _: 0, b"\x5a" * 8192), "not an SQLite database"),
    "garbage in the middle": (
        overwrite(lambda size: size // 2 // 4096 * 4096, b"\x5a" * 8192),
        "SQLite quick_check",
    ),
    "a text file": (lambda p: p.write_text("not a database\n"), "is not an SQLite database"),
    "another application's database": (foreign_database, "not a neuroerp-ci history store"),
}


@pytest.fixture
def filled(store_url: str) -> Path:
    """A store holding 30 runs, closed (checkpointed into its one file)."""
    with open_store(store_url) as store:
        for i in range(30):
            record(store, make_report(f"r{i}", started=at(i), samples=300))
    path = Path(store_url.removeprefix("sqlite:///"))
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_store_is_refused_in_one_line_and_left_untouched(
    filled: Path, store_url: str, damage: str
) -> None:
    harm, needle = DAMAGES[damage]
    harm(filled)
    before = filled.read_bytes()
    with pytest.raises(StoreError) as caught:
        open_store(store_url)
    message = str(caught.value)
    assert needle in message and "\n" not in message, message
    assert message.startswith(f"history store {store_url}: ")
    assert "left as it is" in message
    assert filled.read_bytes() == before  # not repaired, not replaced by an empty store


def test_a_missing_store_with_its_write_ahead_log_left_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.with_name(path.name + "-wal").write_bytes(b"\x00" * 4096)
    with pytest.raises(StoreError, match="the file is missing but its write-ahead log"):
        open_store(f"sqlite:///{path}")
    assert not path.exists()


def test_a_new_store_is_created_whole_and_then_opens_as_sound(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.sqlite3"
    with open_store(f"sqlite:///{path}") as store:
        assert store.count_runs() == 0
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert sorted(p.name for p in path.parent.iterdir()) == ["history.sqlite3"]  # no leftovers
    with open_store(f"sqlite:///{path}") as store:
        assert store.integrity_check() == []


def test_a_store_killed_before_its_first_checkpoint_still_opens(tmp_path: Path) -> None:
    """Committed runs that are only in the write-ahead log are a sound store, not damage."""
    path = tmp_path / "history.sqlite3"
    code = (
        "import os, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from neuroerp_ci.store import open_store\n"
        "from store.conftest import make_report, record\n"
        "store = open_store('sqlite:///' + sys.argv[1])\n"
        "record(store, make_report('wal-only'))\n"
        "os._exit(0)  # no close, no checkpoint\n"
    )
    subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-c", code, str(path), str(Path(__file__).parents[1])],
        check=True, timeout=120,
    )  # fmt: skip
    assert path.with_name(path.name + "-wal").stat().st_size > 0
    with open_store(f"sqlite:///{path}") as store:
        assert [r.run_id for r in store.runs()] == ["wal-only"]


def test_many_first_opens_at_once_share_one_store(tmp_path: Path) -> None:
    """Nobody sees the new file before its header is there (it would be refused as empty)."""
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"

    def open_and_record(i: int) -> None:
        with open_store(url) as store:
            record(store, make_report(f"r{i}", started=at(i)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(open_and_record, range(8)))
    with open_store(url) as store:
        assert store.count_runs() == 8 and store.integrity_check() == []


def test_a_sound_store_still_opens_and_keeps_its_runs(filled: Path, store_url: str) -> None:
    with open_store(store_url) as store:
        assert isinstance(store, HistoryStore) and store.count_runs() == 30
