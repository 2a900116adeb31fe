"""Load profile of an ERP clerk: browse articles, open one, book an order, check revenue.

Run by neuroerp-ci as a subprocess; by hand:
``locust -f locustfile.py --headless -u 10 -r 5 -t 30s --host http://127.0.0.1:8000``.
Every request has a stable ``name``, so statistics group per endpoint, not per URL.
"""

from __future__ import annotations

import random

from locust import HttpUser, between, task

SEEDED_ARTICLES = 200


class ErpUser(HttpUser):
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.article_ids = list(range(1, SEEDED_ARTICLES + 1))
        with self.client.get(
            "/api/articles?limit=200", name="GET /api/articles", catch_response=True
        ) as response:
            if response.status_code == 200 and response.json():
                self.article_ids = [article["id"] for article in response.json()]
            else:
                response.failure(f"article list: HTTP {response.status_code}")

    @task(5)
    def browse_articles(self) -> None:
        offset = random.choice((0, 50, 100, 150))
        self.client.get(f"/api/articles?limit=50&offset={offset}", name="GET /api/articles")

    @task(3)
    def view_article(self) -> None:
        article_id = random.choice(self.article_ids)
        self.client.get(f"/api/articles/{article_id}", name="GET /api/articles/[id]")

    @task(1)
    def create_order(self) -> None:
        self.client.post(
            "/api/orders",
            json={
                "article_id": random.choice(self.article_ids),
                "quantity": random.randint(1, 3),
                "customer": "Load Test GmbH",
            },
            name="POST /api/orders",
        )

    @task(1)
    def revenue_report(self) -> None:
        days = random.choice((7, 30, 90))
        self.client.get(f"/api/reports/revenue?days={days}", name="GET /api/reports/revenue")
