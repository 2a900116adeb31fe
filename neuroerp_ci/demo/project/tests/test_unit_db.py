from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from neuroerp_demo import db

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 31, 12, 0, 0, tzinfo=UTC)


def test_db_path_defaults_to_project_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(db.DB_ENV, raising=False)
    assert db.db_path() == db.PROJECT_DIR / "data" / "erp.sqlite3"


def test_db_path_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(db.DB_ENV, str(tmp_path / "x.sqlite3"))
    assert db.db_path() == tmp_path / "x.sqlite3"


def test_migrations_apply_once(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "m.sqlite3")
    assert db.apply_migrations(conn) == len(db.MIGRATIONS)
    assert db.apply_migrations(conn) == 0
    assert db.schema_problems(conn) == []


def test_schema_problems_names_what_is_missing(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "empty.sqlite3")
    assert db.schema_problems(conn) == [
        "missing articles", "missing orders", "missing order_lines",
        "missing idx_orders_created_at", "missing idx_order_lines_order_id",
    ]


def test_seed_fills_an_empty_database_once(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "s.sqlite3")
    db.apply_migrations(conn)
    assert db.seed(conn, articles=20, orders=100, now=NOW) is True
    assert db.seed(conn, now=NOW) is False
    assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 20
    assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 100
    lines = conn.execute("SELECT COUNT(*) FROM order_lines").fetchone()[0]
    assert 100 <= lines <= 400
    newest = conn.execute("SELECT MAX(created_at) FROM orders").fetchone()[0]
    oldest = conn.execute("SELECT MIN(created_at) FROM orders").fetchone()[0]
    assert newest < db.format_time(NOW)
    assert oldest >= "2024-12-31"


def test_init_db_creates_parent_and_seeds(tmp_path: Path) -> None:
    path = db.init_db(tmp_path / "nested" / "erp.sqlite3")
    conn = db.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == db.SEED_ARTICLES
    assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == db.SEED_ORDERS


def test_report_window_is_half_open_over_days() -> None:
    assert db.report_window(30, NOW) == ("2025-03-01T12:00:00", "2025-03-31T12:00:01")


def test_revenue_report_uses_the_created_at_index(db_file: Path) -> None:
    with db.session() as conn:
        plan = " | ".join(db.revenue_plan(conn, 30))
    assert "idx_orders_created_at" in plan, plan


def test_revenue_by_day_sums_quantity_times_price(db_file: Path) -> None:
    with db.session() as conn:
        before = db.revenue_by_day(conn, 1, NOW)
        order = db.create_order(conn, 3, 2, "Test AG", now=NOW)
        after = db.revenue_by_day(conn, 1, NOW)
    added = order["lines"][0]["unit_price_cents"] * 2
    assert sum(r["revenue_cents"] for r in after) - sum(r["revenue_cents"] for r in before) == added
    assert after[-1]["day"] == "2025-03-31"


def test_session_rolls_back_on_error(db_file: Path) -> None:
    with pytest.raises(db.OutOfStock), db.session() as conn:
        db.create_order(conn, 1, 1, "first")  # booked, then rolled back by the failure below
        db.create_order(conn, 1, db.SEED_STOCK + 1, "too many")
    with db.session() as conn:
        assert db.get_article(conn, 1)["stock"] == db.SEED_STOCK


def test_missing_rows_raise_not_found(db_file: Path) -> None:
    with db.session() as conn:
        with pytest.raises(db.NotFound, match="article 9999"):
            db.get_article(conn, 9999)
        with pytest.raises(db.NotFound, match="order 99999"):
            db.get_order(conn, 99999)


def test_foreign_keys_are_enforced(db_file: Path) -> None:
    with pytest.raises(sqlite3.IntegrityError), db.session() as conn:
        conn.execute(
            "INSERT INTO order_lines (order_id, article_id, quantity, unit_price_cents)"
            " VALUES (999999, 1, 1, 100)"
        )
