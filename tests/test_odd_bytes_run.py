"""Bytes that are not text, through a whole run of the real CLI: a command printing invalid
UTF-8 and control characters, front-end chunks whose file names hold such bytes, and a tool
(bandit, wrapped) whose version string does. Every report must be written and readable (JSON,
Markdown, JUnit XML, which cannot hold control characters at all) and the history store
must record the run."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

NOISY = r'''
import sys
sys.stdout.buffer.write(b"\xff\xfe half \xc3 a char \x00 nul \x1b[31mred\x1b[0m \x07 bell\n")
sys.stderr.buffer.write(b"\xc3\x28 bad \x0b\x0c\x1b]0;title\x07 \xed\xa0\x80 surrogate\n")
sys.exit(3)
'''

FAKE_BANDIT = f'''#!{sys.executable}
"""Real bandit, but its --version line carries bytes that are not text."""
import subprocess, sys
if sys.argv[1:] == ["--version"]:
    sys.stdout.buffer.write(b"bandit 1.9\\xff\\x1b[31m\\x00\\x07\\n  python version = 3\\n")
    sys.exit(0)
sys.exit(subprocess.call([sys.executable, "-m", "bandit", *sys.argv[1:]]))
'''

PIPELINE = """
[[checks]]
id = "noisy"
kind = "command"
settings = { argv = ["{python}", "noisy.py"] }

[[checks]]
id = "bundle"
kind = "frontend"
settings = { dist = "dist", page_timings = false }

[[checks]]
id = "scan"
kind = "bandit"
settings = { paths = ["app"], executable = "./fake_bandit.py" }

[stages.development]
checks = ["noisy", "bundle", "scan"]
conditions = [
    { check = "bundle", metric = "total_raw_bytes", max = 100000 },
    { check = "scan", findings = "high", max = 0 },
]
"""


def odd_project(root: Path) -> Path:
    project = root / "project"
    dist = project / "dist"
    (dist / "admin").mkdir(parents=True)
    for name in (b"\xff.js", b"\xfe\x1b[31m.js", b"tab\t.css", b"bell\x07.js", b"app.js"):
        (dist / os.fsdecode(name)).write_text("console.log(1)\n", encoding="utf-8")
    (dist / "admin" / "app.js").write_text("console.log(2)\n", encoding="utf-8")
    (project / os.fsdecode(b"app")).mkdir()
    (project / "app" / os.fsdecode(b"mod\xff.py")).write_text("X = 1\n", encoding="utf-8")
    (project / "noisy.py").write_text(NOISY, encoding="utf-8")
    fake = project / "fake_bandit.py"
    fake.write_text(FAKE_BANDIT, encoding="utf-8")
    fake.chmod(0o755)
    (project / "neuroerp-ci.toml").write_text(PIPELINE, encoding="utf-8")
    return project


def test_odd_bytes_reach_every_report_and_the_history(tmp_path: Path) -> None:
    project = odd_project(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    run = subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "neuroerp_ci", "run", "development", "-o", str(out),
         "--version", "v1"],
        cwd=project, env=env, capture_output=True, timeout=300, check=False,
    )
    stderr = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 1, stderr[-3000:]  # FAIL (the command exited 3), not a crash
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["noisy"]["status"] == "error"
    assert "exited 3" in checks["noisy"]["reason"]
    assert not any(ord(c) < 32 for c in checks["noisy"]["reason"])  # no control character
    metrics = checks["bundle"]["metrics"]
    shown = ("\\xff.js", "\\xfe\\x1b[31m.js", "tab\\x09.css", "bell\\x07.js", "app.js",
             "admin/app.js")
    for name in shown:
        assert f"{name}.raw_bytes" in metrics, sorted(metrics)
    assert metrics["chunk_count"]["value"] == 6  # no chunk hid another
    assert checks["scan"]["status"] == "ok", checks["scan"]["reason"]
    assert checks["scan"]["tool_versions"]["bandit"] == "1.9\ufffd\ufffd\ufffd"
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "\\xff.js" in markdown and "\x1b" not in markdown and "\x00" not in markdown
    ET.parse(out / "junit.xml")  # well-formed XML
    assert report.get("recorded") is not False, report.get("record_error")
    history = project / ".neuroerp-ci"
    stores = list(history.glob("*.sqlite3")) + list(history.glob("*.db"))
    assert stores, sorted(p.name for p in history.iterdir())
    with sqlite3.connect(stores[0]) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        runs = next(t for t in ("runs", "run") if t in names)
        rows = conn.execute(f"SELECT count(*) FROM {runs}").fetchone()  # noqa: S608
    assert rows[0] >= 1
