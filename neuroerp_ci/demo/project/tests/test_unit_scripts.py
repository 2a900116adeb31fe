from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from neuroerp_demo import db, migrate, smoke

pytestmark = pytest.mark.unit


def _last_json(out: str) -> dict[str, float]:
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_smoke_passes_against_the_app(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert smoke.main(["http://testserver"], client=client) == 0
    metrics = _last_json(capsys.readouterr().out)
    assert metrics["smoke_requests"] == 4
    assert metrics["smoke_failures"] == 0
    assert metrics["smoke_ms"] > 0
    with db.session() as conn:
        customers = conn.execute("SELECT COUNT(*) FROM orders WHERE customer = 'smoke-test'")
        assert customers.fetchone()[0] == 1


def test_smoke_counts_failed_calls(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if request.url.path == "/api/articles":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503)

    client = httpx.Client(base_url="http://x", transport=httpx.MockTransport(handler))
    assert smoke.main(["http://x"], client=client) == 1
    captured = capsys.readouterr()
    assert _last_json(captured.out) == {
        "smoke_requests": 4, "smoke_failures": 3, "smoke_ms": pytest.approx(0, abs=1000)
    }
    assert "GET /api/articles?limit=5: ConnectError: refused" in captured.err
    assert "POST /api/orders: HTTP 503, expected 201" in captured.err


def test_smoke_against_an_unreachable_port(capsys: pytest.CaptureFixture[str]) -> None:
    # a bound but not listening loopback socket: every connection is refused at once
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert smoke.main([f"http://127.0.0.1:{port}"]) == 1
    assert _last_json(capsys.readouterr().out)["smoke_failures"] == 4


@pytest.mark.parametrize("argv", [[], ["not-a-url"], ["http://a", "http://b"]])
def test_smoke_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main(argv) == 2
    assert "usage" in capsys.readouterr().err


def test_migrate_on_a_temporary_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate.main([]) == 0
    metrics = _last_json(capsys.readouterr().out)
    assert metrics["migrations_applied"] == len(db.MIGRATIONS)
    assert metrics["migrations_reapplied"] == 0
    assert metrics["schema_problems"] == 0


def test_migrate_a_given_database_is_idempotent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sub" / "erp.sqlite3"
    assert migrate.main([str(path)]) == 0
    assert _last_json(capsys.readouterr().out)["migrations_applied"] == len(db.MIGRATIONS)
    assert migrate.main([str(path)]) == 0
    assert _last_json(capsys.readouterr().out)["migrations_applied"] == 0


def test_migrate_reports_a_broken_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "erp.sqlite3"
    assert migrate.main([str(path)]) == 0
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX idx_orders_created_at")
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert migrate.main([str(path)]) == 1
    captured = capsys.readouterr()
    assert _last_json(captured.out)["schema_problems"] == 1
    assert "schema: missing idx_orders_created_at" in captured.err


def test_migrate_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate.main(["a", "b"]) == 2
    assert "usage" in capsys.readouterr().err
