"""Small in-process latency budgets: generous bounds that catch gross regressions only
(an N+1 query, a lost index); the real latency gates measure the running service."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.performance

CALLS = 50
P95_BUDGET_S = 0.200


def _p95(call: Callable[[], int]) -> float:
    call()  # warm-up: first-request costs are not what this measures
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        assert call() == 200
        samples.append(time.perf_counter() - started)
    return statistics.quantiles(samples, n=20)[-1]


def test_article_list_p95_within_budget(client: TestClient) -> None:
    p95 = _p95(lambda: client.get("/api/articles").status_code)
    assert p95 < P95_BUDGET_S, f"p95 {p95 * 1000:.1f} ms >= {P95_BUDGET_S * 1000:.0f} ms"


def test_revenue_report_p95_within_budget(client: TestClient) -> None:
    p95 = _p95(lambda: client.get("/api/reports/revenue?days=30").status_code)
    assert p95 < P95_BUDGET_S, f"p95 {p95 * 1000:.1f} ms >= {P95_BUDGET_S * 1000:.0f} ms"
