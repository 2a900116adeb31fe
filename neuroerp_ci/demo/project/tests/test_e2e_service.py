"""End-to-end tests against a running service at $NEUROERP_CI_BASE_URL (set by neuroerp-ci)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.e2e

BASE_URL = os.environ.get("NEUROERP_CI_BASE_URL", "").strip()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    if not BASE_URL:
        pytest.skip("NEUROERP_CI_BASE_URL is not set: start the service and point it there")
    with httpx.Client(base_url=BASE_URL, timeout=10.0) as client:
        yield client


def test_health(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_front_end_and_its_assets(http: httpx.Client) -> None:
    index = http.get("/")
    assert index.status_code == 200
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.text)
    assert {a.rsplit(".", 1)[-1] for a in assets} == {"js", "css"}
    for asset in assets:
        response = http.get(asset)
        assert response.status_code == 200, asset
        assert response.content


def test_browse_and_order(http: httpx.Client) -> None:
    articles = http.get("/api/articles", params={"limit": 3}).json()
    assert len(articles) == 3
    article = http.get(f"/api/articles/{articles[1]['id']}").json()
    assert article == articles[1] or article["id"] == articles[1]["id"]
    created = http.post(
        "/api/orders", json={"article_id": article["id"], "quantity": 2, "customer": "E2E GmbH"}
    )
    assert created.status_code == 201
    order = created.json()
    assert order["total_cents"] == 2 * article["unit_price_cents"]
    assert http.get(f"/api/orders/{order['id']}").json() == order
    stock_after = http.get(f"/api/articles/{article['id']}").json()["stock"]
    assert stock_after <= article["stock"] - 2


def test_revenue_report_includes_today(http: httpx.Client) -> None:
    http.post("/api/orders", json={"article_id": 1, "quantity": 1, "customer": "E2E GmbH"})
    report = http.get("/api/reports/revenue", params={"days": 30}).json()
    assert report["days"] == 30
    assert report["total_cents"] > 0
    assert report["rows"][-1]["orders"] >= 1


def test_errors_are_reported_as_json(http: httpx.Client) -> None:
    missing = http.get("/api/articles/999999")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "article 999999 not found"}
    invalid = http.post("/api/orders", json={"article_id": 1, "quantity": -1, "customer": "x"})
    assert invalid.status_code == 422
