from __future__ import annotations

import random
import re
import time

import pytest
from fastapi.testclient import TestClient

from neuroerp_demo.app import app
from neuroerp_demo.faults import DELAY_ENV, ERROR_RATE_ENV

pytestmark = pytest.mark.unit


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_articles_list_is_limited_and_ordered(client: TestClient) -> None:
    response = client.get("/api/articles", params={"limit": 5, "offset": 10})
    assert response.status_code == 200
    body = response.json()
    assert [a["id"] for a in body] == [11, 12, 13, 14, 15]
    assert set(body[0]) == {"id", "sku", "name", "unit_price_cents", "stock"}
    assert body[0]["sku"] == "ART-00011"


def test_articles_default_limit(client: TestClient) -> None:
    assert len(client.get("/api/articles").json()) == 50


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "limit=abc"])
def test_articles_rejects_bad_paging(client: TestClient, query: str) -> None:
    assert client.get(f"/api/articles?{query}").status_code == 422


def test_article_detail_and_404(client: TestClient) -> None:
    assert client.get("/api/articles/1").json()["id"] == 1
    missing = client.get("/api/articles/9999")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "article 9999 not found"}


def test_create_order_returns_201_with_the_order(client: TestClient) -> None:
    price = client.get("/api/articles/7").json()["unit_price_cents"]
    response = client.post(
        "/api/orders", json={"article_id": 7, "quantity": 3, "customer": "Test AG"}
    )
    assert response.status_code == 201
    order = response.json()
    assert order["customer"] == "Test AG"
    assert order["status"] == "open"
    assert order["lines"] == [{"article_id": 7, "quantity": 3, "unit_price_cents": price}]
    assert order["total_cents"] == 3 * price
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", order["created_at"])


@pytest.mark.parametrize(
    "payload",
    [
        {"article_id": 1, "quantity": 0, "customer": "A"},
        {"article_id": 1, "quantity": 1001, "customer": "A"},
        {"article_id": 0, "quantity": 1, "customer": "A"},
        {"article_id": 1, "quantity": 1, "customer": ""},
        {"article_id": 1, "quantity": 1},
    ],
)
def test_create_order_validates_input(client: TestClient, payload: dict[str, object]) -> None:
    assert client.post("/api/orders", json=payload).status_code == 422


def test_create_order_for_unknown_article(client: TestClient) -> None:
    response = client.post(
        "/api/orders", json={"article_id": 9999, "quantity": 1, "customer": "A"}
    )
    assert response.status_code == 422
    assert response.json() == {"detail": "article 9999 not found"}


def test_create_order_beyond_stock_conflicts(client: TestClient) -> None:
    from neuroerp_demo import db

    with db.session() as conn:
        conn.execute("UPDATE articles SET stock = 2 WHERE id = 5")
    response = client.post("/api/orders", json={"article_id": 5, "quantity": 3, "customer": "A"})
    assert response.status_code == 409
    assert response.json() == {"detail": "article 5 has 2 in stock, 3 ordered"}


def test_order_detail_and_404(client: TestClient) -> None:
    assert client.get("/api/orders/1").json()["id"] == 1
    assert client.get("/api/orders/999999").status_code == 404


def test_revenue_report_shape(client: TestClient) -> None:
    response = client.get("/api/reports/revenue", params={"days": 7})
    assert response.status_code == 200
    report = response.json()
    assert report["days"] == 7
    assert 7 <= len(report["rows"]) <= 8  # a partial day at each end of the window
    assert report["total_cents"] == sum(r["revenue_cents"] for r in report["rows"])
    days = [r["day"] for r in report["rows"]]
    assert days == sorted(days)


@pytest.mark.parametrize("days", [0, 366])
def test_revenue_report_rejects_bad_days(client: TestClient, days: int) -> None:
    assert client.get("/api/reports/revenue", params={"days": days}).status_code == 422


def test_index_and_assets_are_served(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.text)
    assert len(assets) == 3
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 1000
    assert client.get("/assets/missing.js").status_code == 404


def test_error_rate_one_fails_api_requests_but_not_health(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ERROR_RATE_ENV, "1")
    response = client.get("/api/articles")
    assert response.status_code == 500
    assert response.json() == {"detail": "injected fault"}
    assert client.get("/health").status_code == 200


def test_error_rate_draws_per_request(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([0.1, 0.9])
    monkeypatch.setattr(random, "random", lambda: next(draws))
    monkeypatch.setenv(ERROR_RATE_ENV, "0.5")
    assert client.get("/api/articles/1").status_code == 500
    assert client.get("/api/articles/1").status_code == 200


def test_delay_is_added_to_requests(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DELAY_ENV, "120")
    started = time.perf_counter()
    assert client.get("/health").status_code == 200
    assert time.perf_counter() - started >= 0.12


def test_invalid_knob_stops_start_up(db_file: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DELAY_ENV, "fast")
    with pytest.raises(ValueError, match="NEUROERP_DEMO_DELAY_MS"), TestClient(app):
        pass
