"""Secrets stay secret: a project whose tests, commands and service print their environment.

``neuroerp-ci run`` runs as a subprocess with a webhook URL in the environment, a variable
named in ``[secrets] env`` and one referenced as ``{env:DB_PASSWORD}`` (granted to the test
suite, the target and one command). None of the three values, in any covered encoding, may be
in any file of the run folder or the project (history database included), in the webhook's
body, in the command's stdout/stderr, or in Prefect's database (a temporary PREFECT_HOME).
Redaction markers where the values were prove that the values did pass through.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from neuroerp_ci.support.secrets import REDACTED

pytestmark = pytest.mark.integration

APP = """
import http.server, os
print("service env:", dict(os.environ), flush=True)
print("service password:", os.environ["DB_PASSWORD"], flush=True)
if not {"API_TOKEN", "NEUROERP_CI_WEBHOOK_URL"} & set(os.environ):
    print("service sees no other secret", flush=True)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")

http.server.HTTPServer(("127.0.0.1", int(os.environ["NEUROERP_CI_PORT"])), Health).serve_forever()
"""
CONFTEST = 'import os\nprint("conftest env:", dict(os.environ))\n'
TESTS = """
import os

def test_prints_the_environment():
    print(os.environ)
    print(os.environ["DB_PASSWORD"])

def test_sees_only_its_grant():
    assert not {"API_TOKEN", "NEUROERP_CI_WEBHOOK_URL"} & set(os.environ)

def test_fails_showing_the_password():
    assert os.environ["DB_PASSWORD"] == "the right one"
"""
NOT_GRANTED = """
import os, sys
print(dict(os.environ))
sys.exit(3 if {"DB_PASSWORD", "API_TOKEN", "NEUROERP_CI_WEBHOOK_URL"} & set(os.environ) else 0)
"""
LEAKY_COMMAND = """
import os
print(os.environ["DB_PASSWORD"])
raise SystemExit("bad password " + os.environ["DB_PASSWORD"])
"""
PIPELINE = """
[target]
name = "leaky"
base_url = "http://127.0.0.1:{port}"
start = ["{python}", "app.py"]
health_url = "/"
env = { DB_PASSWORD = "{env:DB_PASSWORD}" }

[secrets]
env = ["API_TOKEN"]

[secrets.grant]
unit = { DB_PASSWORD = "{env:DB_PASSWORD}" }
leaky-command = { DB_PASSWORD = "{env:DB_PASSWORD}" }

[[checks]]
id = "unit"
kind = "pytest"
settings = { paths = ["tests"], uses_target = true, args = ["-rA", "-o", "junit_logging=all"] }

[[checks]]
id = "not-granted"
kind = "command"
settings = { argv = ["{python}", "not_granted.py"] }

[[checks]]
id = "leaky-command"
kind = "command"
settings = { argv = ["{python}", "leaky_command.py"] }

[stages.development]
conditions = [{ check = "unit", metric = "failed", max = 0 }]
"""


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "neuroerp_ci", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def forms(value: str) -> list[bytes]:
    """The value as is and in every encoding redaction covers."""
    xml = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    texts = {
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        xml,
        xml.replace('"', "&quot;"),
    }
    return [t.encode() for t in texts]


def leaks(data: bytes, values: list[str]) -> list[str]:
    return [f"{v!r} as {f!r}" for v in values for f in forms(v) if f in data]


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback receiver that records every body posted to it."""
    bodies: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def test_no_secret_leaves_the_run_even_when_everything_prints_its_environment(
    tmp_path: Path, webhook: tuple[str, list[bytes]]
) -> None:
    base, bodies = webhook
    project, out, prefect_home = tmp_path / "project", tmp_path / "out", tmp_path / "prefect"
    (project / "tests").mkdir(parents=True)
    prefect_home.mkdir()
    (project / "app.py").write_text(APP, encoding="utf-8")
    (project / "tests" / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (project / "tests" / "test_leak.py").write_text(TESTS, encoding="utf-8")
    (project / "not_granted.py").write_text(NOT_GRANTED, encoding="utf-8")
    (project / "leaky_command.py").write_text(LEAKY_COMMAND, encoding="utf-8")
    (project / "neuroerp-ci.toml").write_text(PIPELINE, encoding="utf-8")
    password = f'Pw-{secrets.token_hex(6)}&"<x>/é'
    token = f"tok-{secrets.token_hex(8)}"
    url = f"{base}/hook/{secrets.token_hex(8)}"
    values = [password, token, url]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEUROERP_CI_", "PREFECT_", "PYTEST_"))
    }
    env.update(
        DB_PASSWORD=password,
        API_TOKEN=token,
        NEUROERP_CI_WEBHOOK_URL=url,
        PREFECT_HOME=str(prefect_home),  # the temporary server's database lives here
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    done = run_cli(
        # --prefect: the run's logs and artifacts go to Prefect's database, searched below
        ["run", "development", "-c", str(project / "neuroerp-ci.toml"), "-o", str(out),
         "--version", "v1", "--prefect"],
        env,
        cwd=project,
    )  # fmt: skip
    console = (done.stdout + done.stderr).encode()
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    checks = {c["id"]: c for c in report["checks"]}

    # Nothing that was not granted a secret saw one (exit 3 otherwise).
    assert checks["not-granted"]["status"] == "ok", checks["not-granted"]
    # The values did pass through where they were granted, and were redacted there.
    assert REDACTED in checks["leaky-command"]["reason"], checks["leaky-command"]
    assert any(REDACTED in f["message"] for f in checks["unit"]["findings"]), checks["unit"]
    assert REDACTED in (out / "checks" / "unit" / "pytest.log").read_text(encoding="utf-8")
    assert REDACTED in (out / "checks" / "unit" / "junit.xml").read_text(encoding="utf-8")
    target_log = (out / "target.log").read_text(encoding="utf-8")
    assert f"service password: {REDACTED}" in target_log
    assert "service sees no other secret" in target_log
    failed = [f["rule"] for f in checks["unit"]["findings"]]
    assert failed == ["tests.test_leak::test_fails_showing_the_password"], failed
    assert len(bodies) == 1 and REDACTED.encode() in bodies[0]
    assert REDACTED.encode() in console

    found = {"console": leaks(console, values)}
    found.update({f"webhook body {i}": leaks(b, values) for i, b in enumerate(bodies)})
    searched = list(files_under(out, project, prefect_home))
    found.update({str(p): leaks(p.read_bytes(), values) for p in searched})
    assert not {where: what for where, what in found.items() if what}
    history = project / ".neuroerp-ci" / "history.sqlite3"
    prefect_db = [p for p in searched if p.name.startswith("prefect.db")]
    assert history in searched and prefect_db, sorted(map(str, searched))
    # The verdict's reasons reached Prefect's database, redacted.
    assert any(REDACTED.encode() in p.read_bytes() for p in prefect_db)


HOOK_PIPELINE = """
[secrets]
env = ["API_TOKEN"]

[[checks]]
id = "smoke"
kind = "command"
settings = { argv = ["{python}", "-c", "print('smoke')"] }

[stages.production]
checks = ["smoke"]

[stages.production.hooks]
backup = { argv = ["{python}", "not_granted.py"] }
deploy = { argv = ["{python}", "leaky_command.py"], env = { DB_PASSWORD = "{env:DB_PASSWORD}" } }
rollback = { argv = ["{python}", "-c", "import os; print(dict(os.environ))"] }
"""


def test_hooks_get_only_the_secrets_they_reference_and_their_logs_are_redacted(
    tmp_path: Path,
) -> None:
    project, out, prefect_home = tmp_path / "project", tmp_path / "out", tmp_path / "prefect"
    project.mkdir()
    prefect_home.mkdir()
    (project / "not_granted.py").write_text(NOT_GRANTED, encoding="utf-8")
    (project / "leaky_command.py").write_text(LEAKY_COMMAND, encoding="utf-8")
    (project / "neuroerp-ci.toml").write_text(HOOK_PIPELINE, encoding="utf-8")
    password, token = f'Pw-{secrets.token_hex(6)}&"<x>/é', f"tok-{secrets.token_hex(8)}"
    url = f"http://127.0.0.1:9/hook/{secrets.token_hex(8)}"  # never called: the on list is FAIL
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEUROERP_CI_", "PREFECT_", "PYTEST_"))
    }
    env.update(
        DB_PASSWORD=password,
        API_TOKEN=token,
        NEUROERP_CI_WEBHOOK_URL=url,
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    done = run_cli(
        ["promote", "v1", "--to", "production", "-c", str(project / "neuroerp-ci.toml"),
         "-o", str(out)],
        env,
        cwd=project,
    )  # fmt: skip
    console = (done.stdout + done.stderr).encode()
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    rollout = json.loads((out / "rollout.json").read_text(encoding="utf-8"))
    steps = {s["step"]: s for s in rollout["steps"]}
    assert steps["backup"]["status"] == "ok", steps  # exit 3 if it had seen a secret
    assert REDACTED in steps["deploy"]["reason"], steps
    assert REDACTED in (out / "hooks" / "hook-deploy.log").read_text(encoding="utf-8")
    searched = list(files_under(out, project, prefect_home))
    found = {str(p): leaks(p.read_bytes(), [password, token, url]) for p in searched}
    found["console"] = leaks(console, [password, token, url])
    assert not {where: what for where, what in found.items() if what}
