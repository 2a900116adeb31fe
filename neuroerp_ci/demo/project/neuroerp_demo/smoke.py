"""Smoke test against a running service: ``python -m neuroerp_demo.smoke BASE_URL``.

Checks health, lists articles, reads one and books an order. Prints one JSON line,
``{"smoke_requests": 4, "smoke_failures": 0, "smoke_ms": 12.3}``, and exits 1 when any call
failed (2 on wrong usage).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

TIMEOUT_S = 10.0


@dataclass
class SmokeReport:
    requests: int = 0
    failures: int = 0
    elapsed_ms: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_metrics(self) -> dict[str, float]:
        return {
            "smoke_requests": self.requests,
            "smoke_failures": self.failures,
            "smoke_ms": round(self.elapsed_ms, 1),
        }


def _call(
    client: httpx.Client, report: SmokeReport, method: str, path: str, expect: int,
    payload: dict[str, object] | None = None,
) -> httpx.Response | None:
    """One request; any transport error or unexpected status counts as a failure."""
    report.requests += 1
    try:
        response = client.request(method, path, json=payload)
    except httpx.HTTPError as exc:
        report.failures += 1
        report.problems.append(f"{method} {path}: {type(exc).__name__}: {exc}")
        return None
    if response.status_code != expect:
        report.failures += 1
        report.problems.append(f"{method} {path}: HTTP {response.status_code}, expected {expect}")
        return None
    return response


def run_smoke(client: httpx.Client) -> SmokeReport:
    """Run the four smoke calls with ``client`` (its base_url is the service)."""
    report = SmokeReport()
    started = time.perf_counter()
    _call(client, report, "GET", "/health", 200)
    listing = _call(client, report, "GET", "/api/articles?limit=5", 200)
    articles = listing.json() if listing is not None else []
    article_id = int(articles[0]["id"]) if articles else 1
    _call(client, report, "GET", f"/api/articles/{article_id}", 200)
    _call(
        client, report, "POST", "/api/orders", 201,
        {"article_id": article_id, "quantity": 1, "customer": "smoke-test"},
    )
    report.elapsed_ms = (time.perf_counter() - started) * 1000.0
    return report


def main(argv: Sequence[str] | None = None, client: httpx.Client | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].startswith(("http://", "https://")):
        print("usage: python -m neuroerp_demo.smoke BASE_URL", file=sys.stderr)
        return 2
    if client is None:
        with httpx.Client(base_url=args[0], timeout=TIMEOUT_S) as own:
            report = run_smoke(own)
    else:
        report = run_smoke(client)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    print(json.dumps(report.as_metrics()))
    return 1 if report.failures else 0


if __name__ == "__main__":  # pragma: no cover - exercised through main()
    sys.exit(main())
