"""Flows across endpoints and the database, in process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from neuroerp_demo import db

pytestmark = pytest.mark.integration


def _today_revenue(client: TestClient) -> int:
    report = client.get("/api/reports/revenue", params={"days": 1}).json()
    today = db.utc_now().strftime("%Y-%m-%d")
    return sum(r["revenue_cents"] for r in report["rows"] if r["day"] == today)


def test_order_shows_up_in_the_revenue_report(client: TestClient) -> None:
    before = _today_revenue(client)
    order = client.post(
        "/api/orders", json={"article_id": 42, "quantity": 4, "customer": "Report KG"}
    ).json()
    assert _today_revenue(client) - before == order["total_cents"] > 0
    assert client.get(f"/api/orders/{order['id']}").json() == order


def test_order_decrements_stock(client: TestClient) -> None:
    stock = client.get("/api/articles/9").json()["stock"]
    client.post("/api/orders", json={"article_id": 9, "quantity": 6, "customer": "A"})
    assert client.get("/api/articles/9").json()["stock"] == stock - 6


def test_concurrent_orders_never_oversell(client: TestClient) -> None:
    with db.session() as conn:
        conn.execute("UPDATE articles SET stock = 5 WHERE id = 11")

    def order(_: int) -> int:
        payload = {"article_id": 11, "quantity": 1, "customer": "Rush"}
        return int(client.post("/api/orders", json=payload).status_code)

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(order, range(8)))
    assert sorted(codes) == [201] * 5 + [409] * 3
    assert client.get("/api/articles/11").json()["stock"] == 0


def test_rejected_order_changes_nothing(client: TestClient) -> None:
    with db.session() as conn:
        conn.execute("UPDATE articles SET stock = 10 WHERE id = 3")
    before = client.get("/api/reports/revenue", params={"days": 1}).json()["total_cents"]
    response = client.post("/api/orders", json={"article_id": 3, "quantity": 11, "customer": "A"})
    assert response.status_code == 409
    assert client.get("/api/articles/3").json()["stock"] == 10
    assert client.get("/api/reports/revenue", params={"days": 1}).json()["total_cents"] == before
    with db.session() as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders WHERE customer = 'A'").fetchone()[0] == 0


def test_restart_keeps_data_and_does_not_reseed(client: TestClient) -> None:
    from neuroerp_demo.app import app

    order = client.post("/api/orders", json={"article_id": 1, "quantity": 1, "customer": "A"})
    with TestClient(app) as second:
        assert second.get(f"/api/orders/{order.json()['id']}").status_code == 200
        with db.session() as conn:
            count = conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
    assert count == db.SEED_ARTICLES


def test_migrating_the_live_database_is_a_no_op(client: TestClient) -> None:
    with db.session() as conn:
        assert db.apply_migrations(conn) == 0
        assert db.schema_problems(conn) == []
