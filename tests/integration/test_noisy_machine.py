"""A timing gate on a busy machine: INCONCLUSIVE where the machine explains the breach.

The real ``http`` check measures a real HTTP server (each request sleeps 20 ms: a service
waiting on its database) while CPU burners outside our process tree — another job on the
same CI machine — spin on every core.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from neuroerp_ci.checks import KINDS, Check, CheckContext, execute_check
from neuroerp_ci.checks.http import Endpoint, HttpProbeSettings
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.gates import evaluate
from neuroerp_ci.gates.verdict import decide
from neuroerp_ci.model import CheckStatus, OutcomeStatus, Priority, Verdict
from tests.burners import foreign_burners

pytestmark = pytest.mark.integration


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        time.sleep(0.02)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def measure(base_url: str, work: Path) -> tuple[Check, object]:
    settings = HttpProbeSettings(endpoints=[Endpoint(name="api", path="/api")], samples=30)
    check = Check("api", "API latency", "http", Priority.HIGH, (), 60.0, settings)
    ctx = CheckContext(
        project_dir=work, work_dir=work / "api", python=sys.executable, env={}, base_url=base_url
    )
    return check, execute_check(KINDS["http"], check, ctx)


def test_a_breach_under_a_cpu_burner_is_inconclusive_and_a_huge_one_still_fails(
    server: str, tmp_path: Path
) -> None:
    with foreign_burners():
        check, result = measure(server, tmp_path)
    assert result.status is CheckStatus.OK, result.reason
    noise = result.noise
    assert noise is not None and noise.noisy, noise
    p50 = result.metrics["p50_ms"].value
    assert p50 >= 20  # every request sleeps 20 ms
    # A limit just below what was measured: the busy machine explains the breach.
    near = ConditionSpec.model_validate({"check": "api", "metric": "p50_ms", "max": p50 * 0.9})
    outcome = evaluate(near, check, result)
    assert outcome.status is OutcomeStatus.INCONCLUSIVE, outcome.reason
    assert outcome.breached and outcome.weight is OutcomeStatus.WARN
    assert "inconclusive: machine busy: other processes used" in outcome.reason
    assert decide([outcome]) is Verdict.WARN  # never a pass, never a false FAIL
    # +1000 % over the limit: no busy machine explains that.
    far = ConditionSpec.model_validate({"check": "api", "metric": "p50_ms", "max": p50 / 11})
    failed = evaluate(far, check, result)
    assert failed.status is OutcomeStatus.FAIL, failed.reason
    assert "beyond what the busy machine explains" in failed.reason
    # The reading is in the result, for every report.
    assert result.noise is not None and result.noise.foreign_cpu_pct > 30
