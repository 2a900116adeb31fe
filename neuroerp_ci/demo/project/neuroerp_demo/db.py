"""The demo ERP's SQLite database: schema migrations, seed data and the queries.

The file lives at ``$NEUROERP_DEMO_DB`` (default ``<project>/data/erp.sqlite3``). It is
created, migrated and seeded (about 200 articles and 5000 orders) when the service starts.
Every query is a constant, parameterised SQL string: no SQL is built from input.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DB_ENV = "NEUROERP_DEMO_DB"
PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_DIR / "data" / "erp.sqlite3"

SEED_ARTICLES = 200
SEED_ORDERS = 5000
SEED_DAYS = 90
SEED_STOCK = 100_000  # large, so load tests do not run the shelves empty

# created_at is stored as ISO-8601 UTC text with a fixed width, so text order is time order
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create articles", (
        """CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            sku TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
            stock INTEGER NOT NULL CHECK (stock >= 0)
        )""",
    )),
    Migration(2, "create orders", (
        """CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            customer TEXT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open'
        )""",
    )),
    Migration(3, "create order_lines", (
        """CREATE TABLE order_lines (
            id INTEGER PRIMARY KEY,
            order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            article_id INTEGER NOT NULL REFERENCES articles(id),
            quantity INTEGER NOT NULL CHECK (quantity > 0),
            unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0)
        )""",
    )),
    # The revenue report filters orders by a created_at range and joins their lines:
    # without these two indexes it scans both tables.
    Migration(4, "index orders by creation time and lines by order", (
        "CREATE INDEX idx_orders_created_at ON orders(created_at)",
        "CREATE INDEX idx_order_lines_order_id ON order_lines(order_id)",
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
EXPECTED_TABLES = ("articles", "orders", "order_lines")
EXPECTED_INDEXES = ("idx_orders_created_at", "idx_order_lines_order_id")

REVENUE_SQL = """
    SELECT substr(o.created_at, 1, 10) AS day,
           COUNT(DISTINCT o.id) AS orders,
           SUM(l.quantity * l.unit_price_cents) AS revenue_cents
    FROM orders AS o
    JOIN order_lines AS l ON l.order_id = o.id
    WHERE o.created_at >= ? AND o.created_at < ?
    GROUP BY day
    ORDER BY day
"""


class NotFound(LookupError):
    """A referenced row does not exist."""


class OutOfStock(ValueError):
    """An order asks for more than the article's stock."""


def db_path() -> Path:
    """The database file: ``$NEUROERP_DEMO_DB`` or ``<project>/data/erp.sqlite3``."""
    configured = os.environ.get(DB_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_DB


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def connect(path: Path) -> sqlite3.Connection:
    """A connection with dict-like rows and foreign keys enforced.

    ``check_same_thread=False``: the web framework may open a connection on one worker
    thread and use it on another; each connection is still used by one request at a time.
    """
    conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def session(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """One unit of work: commit on success, roll back on error, always close."""
    conn = connect(path or db_path())
    try:
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def apply_migrations(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen yet; return how many were applied."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )"""
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = 0
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, format_time(utc_now())),
        )
        applied += 1
    conn.commit()
    return applied


def schema_problems(conn: sqlite3.Connection) -> list[str]:
    """What is missing from the expected schema (empty when complete)."""
    names = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
    }
    expected = (*EXPECTED_TABLES, *EXPECTED_INDEXES)
    return [f"missing {name}" for name in expected if name not in names]


_ADJECTIVES = ("Steel", "Brass", "Oak", "Nylon", "Copper", "Ceramic", "Rubber", "Glass",
               "Carbon", "Aluminium")
_NOUNS = ("Bolt", "Hinge", "Bracket", "Valve", "Gasket", "Bearing", "Clamp", "Spring",
          "Washer", "Flange", "Coupling", "Sleeve", "Nozzle", "Rivet", "Pulley", "Seal",
          "Fitting", "Spacer", "Shaft", "Lever")
_CUSTOMERS = ("Müller GmbH", "Schmidt AG", "Weber KG", "Fischer & Co", "Becker Logistik",
              "Hoffmann Bau", "Koch Agrar", "Richter Technik", "Klein Handel", "Wolf Energie",
              "Neumann Metall", "Schwarz Mühlen")


def seed(
    conn: sqlite3.Connection,
    *,
    articles: int = SEED_ARTICLES,
    orders: int = SEED_ORDERS,
    now: datetime | None = None,
) -> bool:
    """Fill an empty database with deterministic sample data; False if it had articles.

    Values come from fixed arithmetic sequences rather than a random generator, so every
    seeded database is identical apart from the times, which end at ``now``.
    """
    if conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]:
        return False
    now = now or utc_now()
    conn.executemany(
        "INSERT INTO articles (id, sku, name, unit_price_cents, stock) VALUES (?, ?, ?, ?, ?)",
        (
            (
                i,
                f"ART-{i:05d}",
                f"{_ADJECTIVES[i % len(_ADJECTIVES)]} {_NOUNS[(i * 7) % len(_NOUNS)]} {i:03d}",
                199 + (i * 7919) % 24_800,
                SEED_STOCK,
            )
            for i in range(1, articles + 1)
        ),
    )
    prices = dict(conn.execute("SELECT id, unit_price_cents FROM articles").fetchall())
    span_minutes = SEED_DAYS * 24 * 60
    order_rows = []
    line_rows = []
    for j in range(1, orders + 1):
        created = now - timedelta(minutes=(j * 9973) % span_minutes + 1)
        order_rows.append((j, _CUSTOMERS[(j * 5) % len(_CUSTOMERS)], format_time(created)))
        for k in range(1 + (j * 31) % 4):
            article = 1 + (j * 37 + k * 101) % articles
            line_rows.append((j, article, 1 + (j + k) % 5, prices[article]))
    conn.executemany("INSERT INTO orders (id, customer, created_at) VALUES (?, ?, ?)", order_rows)
    conn.executemany(
        "INSERT INTO order_lines (order_id, article_id, quantity, unit_price_cents)"
        " VALUES (?, ?, ?, ?)",
        line_rows,
    )
    conn.commit()
    return True


def init_db(path: Path | None = None) -> Path:
    """Create, migrate and seed the database file if needed; return its path."""
    path = path or db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        # WAL lets the report queries read while an order is being written
        conn.execute("PRAGMA journal_mode = WAL")
        apply_migrations(conn)
        seed(conn)
    finally:
        conn.close()
    return path


def _article(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "unit_price_cents": row["unit_price_cents"],
        "stock": row["stock"],
    }


def list_articles(conn: sqlite3.Connection, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, sku, name, unit_price_cents, stock FROM articles ORDER BY id LIMIT ? OFFSET ?",
        (limit, offset),
    )
    return [_article(row) for row in rows]


def get_article(conn: sqlite3.Connection, article_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, sku, name, unit_price_cents, stock FROM articles WHERE id = ?", (article_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"article {article_id} not found")
    return _article(row)


def create_order(
    conn: sqlite3.Connection,
    article_id: int,
    quantity: int,
    customer: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Book one order line against the article's stock; the caller commits."""
    article = get_article(conn, article_id)
    # The stock test and the decrement are one statement, so two concurrent orders
    # cannot both take the last items.
    updated = conn.execute(
        "UPDATE articles SET stock = stock - ? WHERE id = ? AND stock >= ?",
        (quantity, article_id, quantity),
    ).rowcount
    if updated != 1:
        raise OutOfStock(
            f"article {article_id} has {article['stock']} in stock, {quantity} ordered"
        )
    created_at = format_time(now or utc_now())
    cursor = conn.execute(
        "INSERT INTO orders (customer, created_at) VALUES (?, ?)", (customer, created_at)
    )
    order_id = cursor.lastrowid
    conn.execute(
        "INSERT INTO order_lines (order_id, article_id, quantity, unit_price_cents)"
        " VALUES (?, ?, ?, ?)",
        (order_id, article_id, quantity, article["unit_price_cents"]),
    )
    return get_order(conn, int(order_id or 0))


def get_order(conn: sqlite3.Connection, order_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, customer, created_at, status FROM orders WHERE id = ?", (order_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"order {order_id} not found")
    lines = [
        {
            "article_id": line["article_id"],
            "quantity": line["quantity"],
            "unit_price_cents": line["unit_price_cents"],
        }
        for line in conn.execute(
            "SELECT article_id, quantity, unit_price_cents FROM order_lines"
            " WHERE order_id = ? ORDER BY id",
            (order_id,),
        )
    ]
    return {
        "id": row["id"],
        "customer": row["customer"],
        "created_at": row["created_at"],
        "status": row["status"],
        "lines": lines,
        "total_cents": sum(line["quantity"] * line["unit_price_cents"] for line in lines),
    }


def report_window(days: int, now: datetime | None = None) -> tuple[str, str]:
    """The ``[start, end)`` created_at range of a report over the last ``days`` days."""
    end = now or utc_now()
    # end is exclusive: one second past now includes orders booked this very second
    return format_time(end - timedelta(days=days)), format_time(end + timedelta(seconds=1))


def revenue_by_day(
    conn: sqlite3.Connection, days: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    start, end = report_window(days, now)
    return [
        {"day": row["day"], "orders": row["orders"], "revenue_cents": row["revenue_cents"]}
        for row in conn.execute(REVENUE_SQL, (start, end))
    ]


def revenue_plan(conn: sqlite3.Connection, days: int = 30) -> list[str]:
    """SQLite's query plan for the revenue report, one line per step."""
    start, end = report_window(days)
    return [str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + REVENUE_SQL, (start, end))]
