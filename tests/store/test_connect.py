"""Store URLs and the SQLite settings that make several writers safe."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from neuroerp_ci.store import StoreError, StoreUrlError, default_store_url, open_store, store_url
from neuroerp_ci.store.connect import WRITE_OPTION, create_store_engine, safe_url


def test_the_default_store_is_a_file_in_the_project_state_directory(tmp_path: Path) -> None:
    url = default_store_url(tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve()}/.neuroerp-ci/history.sqlite3"
    assert store_url(None, tmp_path) == url


def test_a_relative_sqlite_path_is_relative_to_the_project(tmp_path: Path) -> None:
    assert store_url("sqlite:///db/h.sqlite3", tmp_path) == f"sqlite:///{tmp_path}/db/h.sqlite3"
    assert store_url("sqlite:////abs/h.sqlite3", tmp_path) == "sqlite:////abs/h.sqlite3"
    pg = "postgresql://ci:secret@db.example/ci"
    assert store_url(pg, tmp_path) == pg


def test_passwords_never_appear_in_messages() -> None:
    assert safe_url("postgresql://ci:secret@db/ci") == "postgresql://ci:***@db/ci"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://u@h/db", "backend 'mysql' is not supported"),
        ("sqlite://", "in-memory SQLite store forgets every run"),
        ("sqlite:///:memory:", "in-memory SQLite store forgets every run"),
        ("postgresql+nosuchdriver://u@h/db", "database driver not available"),
    ],
)
def test_an_unusable_url_is_one_line(url: str, needle: str) -> None:
    with pytest.raises(StoreUrlError) as caught:
        create_store_engine(url)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    engine = create_store_engine("postgresql://u@127.0.0.1:1/db")
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


def test_an_unreachable_server_is_a_store_error_naming_it_without_the_password() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://ci:secret@127.0.0.1:1/ci")
    message = str(caught.value)
    assert message.startswith("history store postgresql://ci:***@127.0.0.1:1/ci: cannot open: ")
    assert "secret" not in message and "\n" not in message


def test_a_store_directory_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create"):
        open_store(f"sqlite:///{blocker}/sub/history.sqlite3")


def test_sqlite_connections_use_wal_full_sync_a_busy_timeout_and_foreign_keys(
    store_url: str,
) -> None:
    open_store(store_url).close()
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    engine.dispose()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 30000,
                       "foreign_keys": 1}  # fmt: skip


def test_write_transactions_take_the_write_lock_up_front(store_url: str) -> None:
    """A writing connection holds the lock from BEGIN: a second writer cannot start, while a
    reader still reads (WAL)."""
    open_store(store_url).close()
    engine = create_store_engine(store_url)
    other = create_store_engine(store_url)
    with engine.connect() as writer:
        writer.execution_options(**{WRITE_OPTION: True})
        with writer.begin():
            with other.connect() as reader:
                assert reader.execute(text("SELECT count(*) FROM runs")).scalar() == 0
            raw = other.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
                with pytest.raises(Exception, match="locked"):
                    raw.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            finally:
                raw.close()
    engine.dispose()
    other.dispose()
