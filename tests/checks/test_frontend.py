from __future__ import annotations

import functools
import gzip
import hashlib
import importlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from neuroerp_ci.checks.frontend import (
    Chunk,
    FrontendCheck,
    FrontendSettings,
    PageLoad,
    asset_urls,
    chunk_name,
    chunk_names,
    gzip_size,
    page_metrics,
    resolve_compressor,
    size_metrics,
)
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.demo import DEMO_PIPELINE, write_demo
from neuroerp_ci.errors import ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import CheckResult, CheckStatus, OutcomeStatus, Priority

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HTML = b"""<!doctype html><html><head>
<link rel="stylesheet" href="/assets/app.24d54944.css">
<link rel="icon" href="/favicon.ico">
<link rel="modulepreload" href="assets/lazy.0a1b2c3d.js">
<script defer src="/assets/vendor.d3b08ba8.js"></script>
<script defer src="/assets/app.970e5f67.js"></script>
<script src="/assets/app.970e5f67.js"></script>
<script>inline()</script>
<script src="data:text/javascript,1"></script>
</head><body></body></html>"""


def make_check(settings: dict[str, Any], timeout: float = 60.0, cid: str = "frontend") -> Check:
    return Check(
        id=cid, title=cid, kind="frontend", priority=Priority.HIGH, dependencies=(),
        timeout=timeout, settings=FrontendSettings.model_validate(settings),
    )


def make_ctx(project: Path, base_url: str | None, work: Path) -> CheckContext:
    work.mkdir(parents=True, exist_ok=True)
    return CheckContext(
        project_dir=project, work_dir=work, python=sys.executable, env={},
        base_url=base_url, allowed_hosts=LOOPBACK,
    )


def write_dist(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / "frontend" / "dist" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# --- pure functions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("app.970e5f67.js", "app.js"),
        ("vendor.d3b08ba8.js", "vendor.js"),
        ("app.24d54944.css", "app.css"),
        ("index-B-k3e9Xa.js", "index.js"),  # Vite/Rollup
        ("main.3f2a1b4c5d6e7f80a1b2.chunk.js", "main.chunk.js"),  # webpack
        ("app.js", "app.js"),
        ("vendor-polyfill.js", "vendor-polyfill.js"),  # a word, not a hash
        ("jquery.min.js", "jquery.min.js"),
        ("react-dom.production.min.js", "react-dom.production.min.js"),
        ("chunk.deadbeef.js", "chunk.deadbeef.js"),  # hex without a digit stays
    ],
)
def test_chunk_name_strips_content_hashes(filename: str, expected: str) -> None:
    assert chunk_name(filename) == expected


def test_colliding_chunk_names_keep_their_paths() -> None:
    paths = [Path("a/index-B1k3e9Xa.js"), Path("b/index-C2x9Qq0z.js"), Path("app.970e5f67.js")]
    assert chunk_names(paths) == ["a/index-B1k3e9Xa.js", "b/index-C2x9Qq0z.js", "app.js"]
    # The same file name in two folders: two chunks, not one hiding the other.
    assert chunk_names([Path("a/app.js"), Path("b/app.js")]) == ["a/app.js", "b/app.js"]


def test_odd_bytes_in_file_names_are_escaped_one_to_one() -> None:
    paths = [Path(os.fsdecode(b"\xff.js")), Path(os.fsdecode(b"\xfe.js")),
             Path("bell\x07.css"), Path("back\\xff.js")]
    assert chunk_names(paths) == ["\\xff.js", "\\xfe.js", "bell\\x07.css", "back\\\\xff.js"]


def test_gzip_size_is_deterministic_and_rewards_repetition() -> None:
    repeated = b"function f(){return 1}\n" * 500
    noise = random.Random(1).randbytes(len(repeated))
    assert gzip_size(repeated) == gzip_size(repeated)  # mtime=0: no timestamp in the header
    assert gzip_size(repeated) == len(gzip.compress(repeated, compresslevel=6, mtime=0))
    assert gzip_size(repeated) < len(repeated) / 20
    assert gzip_size(noise) > len(noise)  # random bytes do not compress


def test_brotli_is_the_automatic_choice() -> None:
    compressor = resolve_compressor("auto")
    assert compressor.key == "br" and compressor.module == "brotli"
    text = b"const total = orders.reduce((a, o) => a + o.total_cents, 0);\n" * 200
    assert len(compressor.compress(text)) < gzip_size(text)


def test_zstd_needs_zstandard() -> None:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(ToolError, match="needs the Python package zstandard"):
            resolve_compressor("zstd")
    else:
        assert resolve_compressor("zstd").key == "zst"


def test_auto_without_brotli_falls_back_or_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "brotli", None)  # import brotli now raises ImportError
    try:
        compressor = resolve_compressor("auto")
    except ToolError as exc:
        assert "brotli or zstandard" in str(exc)
    else:
        assert compressor.key == "zst"
    with pytest.raises(ToolError, match="'brotli' needs the Python package brotli"):
        resolve_compressor("brotli")


def test_asset_urls_are_scripts_and_styles_in_order() -> None:
    urls = asset_urls(HTML.decode(), "http://127.0.0.1:8000/app/")
    assert urls == [
        "http://127.0.0.1:8000/assets/app.24d54944.css",
        "http://127.0.0.1:8000/app/assets/lazy.0a1b2c3d.js",  # relative to the page
        "http://127.0.0.1:8000/assets/vendor.d3b08ba8.js",
        "http://127.0.0.1:8000/assets/app.970e5f67.js",
    ]


def test_size_metrics_names_and_totals() -> None:
    chunks = [Chunk("app.js", "assets/app.1.js", 1000, 400, 300),
              Chunk("app.css", "assets/app.1.css", 500, 200, 150)]
    m = {metric.name: metric.value for metric in size_metrics(chunks, "br")}
    assert m["app.js.raw_bytes"] == 1000 and m["app.js.gzip_bytes"] == 400
    assert m["app.css.br_bytes"] == 150
    assert m["chunk_count"] == 2
    assert (m["total_raw_bytes"], m["total_gzip_bytes"], m["total_br_bytes"]) == (1500, 600, 450)
    assert m["largest_chunk_bytes"] == 1000


def test_page_metrics_skip_warmup_and_failed_loads() -> None:
    loads = [
        PageLoad(True, ttfb_ms=100.0, load_ms=500.0, assets=3),
        PageLoad(False, ttfb_ms=2.0, load_ms=10.0, assets=3, transfer_bytes=900),
        PageLoad(False, ttfb_ms=4.0, load_ms=30.0, assets=3, transfer_bytes=900),
        PageLoad(False, ttfb_ms=3.0, load_ms=None, assets=3, failed=["x: HTTP 404"]),
    ]
    m = {metric.name: metric for metric in page_metrics(loads)}
    assert m["page_ttfb_ms"].value == 3.0 and m["page_ttfb_ms"].samples == (2.0, 4.0)
    assert m["page_load_ms"].value == 20.0 and m["page_load_ms"].samples == (10.0, 30.0)
    assert m["page_failed_requests"].value == 1
    assert m["page_assets"].value == 3 and m["page_transfer_bytes"].value == 900


def test_settings_defaults_and_unknown_keys() -> None:
    settings = FrontendSettings()
    assert (settings.dist, settings.page_path, settings.samples) == ("frontend/dist", "/", 5)
    assert settings.compression == "auto" and settings.page_timings
    with pytest.raises(ValidationError):
        FrontendSettings.model_validate({"compression": "lzma"})
    with pytest.raises(ValidationError):
        FrontendSettings.model_validate({"budget": 1})


def test_needs_target_only_for_page_timings() -> None:
    kind = FrontendCheck()
    assert kind.exclusive
    assert kind.needs_target_for(make_check({}))
    assert not kind.needs_target_for(make_check({"page_timings": False}))


# --- the check with an in-memory web server (httpx.MockTransport) ------------------------


class Site:
    """Serves HTML and assets; counts requests; can be told an asset is missing."""

    def __init__(self, html: bytes, missing: frozenset[str] = frozenset()) -> None:
        self.html = html
        self.missing = missing
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path in self.missing:
            return httpx.Response(404)
        if request.url.path == "/":
            return httpx.Response(200, content=self.html, headers={"content-type": "text/html"})
        return httpx.Response(200, content=b"x" * 100)


def test_sizes_only_without_target(tmp_path: Path) -> None:
    project = write_dist(tmp_path, {
        "assets/app.970e5f67.js": b"console.log(1);\n" * 100,
        "assets/app.24d54944.css": b"body{margin:0}\n" * 10,
        "assets/app.970e5f67.js.map": b"{}" * 5000,  # not a chunk
        "index.html": HTML,
    })
    check = make_check({"page_timings": False})
    result = execute_check(FrontendCheck(), check, make_ctx(project, None, tmp_path / "w"))
    assert result.status is CheckStatus.OK, result.reason
    m = result.metrics
    assert m["chunk_count"].value == 2
    assert m["app.js.raw_bytes"].value == 1600
    assert m["app.js.gzip_bytes"].value < 100 and m["app.js.br_bytes"].value < 100
    assert "page_load_ms" not in m and "page_failed_requests" not in m
    report = json.loads(Path(result.artifacts["frontend"]).read_text())
    assert {c["path"] for c in report["chunks"]} == {"assets/app.970e5f67.js",
                                                     "assets/app.24d54944.css"}
    assert report["gzip_level"] == 6 and report["compressor"]["name"] == "brotli"


def test_page_timings_fetch_html_then_every_asset(tmp_path: Path) -> None:
    project = write_dist(tmp_path, {"assets/app.970e5f67.js": b"1;"})
    site = Site(HTML)
    check = make_check({"samples": 3, "warmup": 1})
    result = execute_check(
        FrontendCheck(httpx.MockTransport(site)), check,
        make_ctx(project, "http://127.0.0.1:9", tmp_path / "w"),
    )
    assert result.status is CheckStatus.OK, result.reason
    per_load = ["/", "/assets/app.24d54944.css", "/assets/lazy.0a1b2c3d.js",
                "/assets/vendor.d3b08ba8.js", "/assets/app.970e5f67.js"]
    assert site.paths == per_load * 4  # warm-up + 3 samples, each asset once per load
    m = result.metrics
    assert len(m["page_ttfb_ms"].samples) == 3 and len(m["page_load_ms"].samples) == 3
    assert m["page_load_ms"].value >= m["page_ttfb_ms"].value
    assert m["page_assets"].value == 4 and m["page_failed_requests"].value == 0


def test_missing_asset_counts_as_failed_request(tmp_path: Path) -> None:
    project = write_dist(tmp_path, {"assets/app.970e5f67.js": b"1;"})
    site = Site(HTML, missing=frozenset({"/assets/vendor.d3b08ba8.js"}))
    result = execute_check(
        FrontendCheck(httpx.MockTransport(site)), make_check({"samples": 2, "warmup": 0}),
        make_ctx(project, "http://127.0.0.1:9", tmp_path / "w"),
    )
    assert result.status is CheckStatus.OK
    assert result.metrics["page_failed_requests"].value == 2
    assert "page_load_ms" not in result.metrics  # no load completed
    assert "2 failed requests" in result.reason


def test_asset_on_a_disallowed_host_is_never_requested(tmp_path: Path) -> None:
    project = write_dist(tmp_path, {"assets/app.970e5f67.js": b"1;"})
    site = Site(b'<script src="/a.js"></script><script src="http://10.255.255.1/x.js"></script>')
    result = execute_check(
        FrontendCheck(httpx.MockTransport(site)), make_check({"samples": 2}),
        make_ctx(project, "http://127.0.0.1:9", tmp_path / "w"),
    )
    assert result.status is CheckStatus.ERROR
    assert "'10.255.255.1'" in result.reason and "allowed_hosts" in result.reason
    assert site.paths == ["/"]  # the page only: not even the allowed asset was fetched


def test_page_path_needs_a_base_url(tmp_path: Path) -> None:
    project = write_dist(tmp_path, {"assets/app.970e5f67.js": b"1;"})
    result = execute_check(FrontendCheck(), make_check({}), make_ctx(project, None, tmp_path / "w"))
    assert result.status is CheckStatus.ERROR
    assert "page_path '/' is a relative path but there is no base_url" in result.reason


def test_page_not_loading_is_an_error(tmp_path: Path) -> None:
    project = write_dist(tmp_path, {"assets/app.970e5f67.js": b"1;"})
    site = Site(HTML, missing=frozenset({"/"}))
    result = execute_check(
        FrontendCheck(httpx.MockTransport(site)), make_check({"samples": 2}),
        make_ctx(project, "http://127.0.0.1:9", tmp_path / "w"),
    )
    assert result.status is CheckStatus.ERROR
    assert "page not loading at http://127.0.0.1:9/: http://127.0.0.1:9/: HTTP 404" in result.reason


def test_missing_or_empty_build_is_an_error(tmp_path: Path) -> None:
    settings = {"page_timings": False}
    result = execute_check(
        FrontendCheck(), make_check(settings), make_ctx(tmp_path, None, tmp_path / "w")
    )
    assert result.status is CheckStatus.ERROR and "does not exist" in result.reason
    write_dist(tmp_path, {"index.html": HTML, "assets/logo.svg": b"<svg/>"})
    result = execute_check(
        FrontendCheck(), make_check(settings), make_ctx(tmp_path, None, tmp_path / "w")
    )
    assert result.status is CheckStatus.ERROR and "nothing to measure" in result.reason


# --- integration: the demo's build, served by a real HTTP server -------------------------


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    return write_demo(tmp_path / "demo")


@pytest.fixture
def dist_server(demo_project: Path) -> Iterator[str]:
    """The demo's dist/ served as files: "/" is its index.html, as the demo service does."""
    handler = functools.partial(_Quiet, directory=str(demo_project / "frontend" / "dist"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def demo_entry(project: Path, check_id: str, stage: str) -> tuple[dict[str, Any], list[Any]]:
    """A check's settings and its conditions in ``stage``, as the demo pipeline file has them."""
    raw = tomllib.loads((project / DEMO_PIPELINE).read_text(encoding="utf-8"))
    entry = next(c for c in raw["checks"] if c["id"] == check_id)
    conditions = [
        ConditionSpec.model_validate(c)
        for c in raw["stages"][stage]["conditions"] if c["check"] == check_id
    ]
    return entry["settings"], conditions


def varied_js(size: int, seed: int = 7) -> bytes:
    """Plausible minified JS with varied identifiers and numbers (compresses like real code)."""
    rng = random.Random(seed)
    syllables = ["ord", "art", "cust", "inv", "stk", "pay", "ship", "tax", "sku", "qty", "rev",
                 "net", "vat", "due", "lot", "bin"]
    lines, count, i = [], 0, 0
    while count < size:
        name = "".join(rng.choice(syllables) for _ in range(3)) + str(i)
        a, b = rng.choice(syllables) + str(rng.randrange(100)), rng.choice(syllables)
        line = (
            f"function {name}({a},{b}){{var r={rng.randrange(1, 10**6)};"
            f"if({a}>{rng.randrange(1000)})r+={b}*{rng.randrange(1, 97)};"
            f"return K.fmt.money(r-{a}%{rng.randrange(2, 50)})}}\n"
        )
        lines.append(line)
        count += len(line)
        i += 1
    return "".join(lines).encode()


def grow_app_chunk(project: Path, extra: bytes) -> str:
    """Append to the app chunk and rebuild its name as the demo's build does (new hash)."""
    dist = project / "frontend" / "dist"
    (old,) = (dist / "assets").glob("app.*.js")
    data = old.read_bytes() + extra
    new_name = f"app.{hashlib.sha256(data).hexdigest()[:8]}.js"
    (dist / "assets" / new_name).write_bytes(data)
    old.unlink()
    index = dist / "index.html"
    index.write_text(index.read_text().replace(old.name, new_name))
    return new_name


def run_budget(project: Path, base_url: str, work: Path) -> tuple[CheckResult, list[Any]]:
    settings, conditions = demo_entry(project, "frontend-budget", "nightly-baseline")
    check = make_check(settings, cid="frontend-budget")
    result = execute_check(FrontendCheck(), check, make_ctx(project, base_url, work))
    return result, [evaluate(cond, check, result) for cond in conditions]


@pytest.mark.integration
def test_demo_build_sizes_and_page_timings(demo_project: Path, dist_server: str) -> None:
    result, outcomes = run_budget(demo_project, dist_server, demo_project / "w")
    assert result.status is CheckStatus.OK, result.reason
    m = result.metrics
    assert m["chunk_count"].value == 3
    assert {"app.js.raw_bytes", "vendor.js.gzip_bytes", "app.css.br_bytes"} <= set(m)
    assert m["page_assets"].value == 3 and m["page_failed_requests"].value == 0
    assert len(m["page_load_ms"].samples) == 5
    assert outcomes and all(o.status is OutcomeStatus.PASS for o in outcomes), outcomes


@pytest.mark.integration
def test_fifty_kib_more_js_fails_the_budget_naming_the_chunk(
    demo_project: Path, dist_server: str
) -> None:
    before, _ = run_budget(demo_project, dist_server, demo_project / "w1")
    new_name = grow_app_chunk(demo_project, varied_js(50 * 1024))
    after, outcomes = run_budget(demo_project, dist_server, demo_project / "w2")
    assert after.status is CheckStatus.OK, after.reason
    grown = after.metrics["app.js.raw_bytes"].value - before.metrics["app.js.raw_bytes"].value
    assert grown >= 50 * 1024  # the chunk keeps its name "app.js" under a new content hash
    assert new_name != "app.970e5f67.js"
    failed = {o.condition: o for o in outcomes if o.status is OutcomeStatus.FAIL}
    raw_budget = next(c for c in failed if c.startswith("app.js.raw_bytes"))
    assert "app.js" in failed[raw_budget].reason
    assert any(c.startswith("app.js.gzip_bytes") for c in failed), failed
    # vendor.js did not change, and its budget still holds
    assert not any(c.startswith("vendor.js") for c in failed)


# --- the real command line: both must-show changes in one nightly-baseline run -------------


@pytest.mark.integration
def test_cli_nightly_gate_names_the_chunk_and_the_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``neuroerp-ci run nightly-baseline`` on the demo after two changes: 50 KiB more code in
    the app chunk, and the revenue report's index dropped. Exactly those conditions fail."""
    project = write_demo(tmp_path / "demo")
    monkeypatch.syspath_prepend(str(project))
    demo_db = importlib.import_module("neuroerp_demo.db")
    path = demo_db.init_db(project / "data" / "erp.sqlite3")  # as the service would, at start
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX idx_orders_created_at")
    conn.commit()
    conn.close()
    grow_app_chunk(project, varied_js(50 * 1024))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NEUROERP_DEMO_", "NEUROERP_CI_", "PYTEST_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    # A fresh Prefect home migrates its database first: on a busy machine that can outlast
    # the ephemeral API server's default start-up wait (seen: "Timed out while attempting to
    # connect to ephemeral Prefect API server", exit 1 without a report).
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    done = subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-c", "from neuroerp_ci.cli import main; main()",
         "run", "nightly-baseline", "--config", str(project / DEMO_PIPELINE),
         "--output", str(out), "--version", "test"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    console = f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 1 and (out / "report.json").is_file(), console
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "FAIL"
    assert all(c["status"] == "ok" for c in report["checks"]), report["checks"]
    failed = {(o["check"], o["condition"]): o["reason"]
              for o in report["outcomes"] if o["status"] == "fail"}
    assert failed[("db-queries", "revenue.full_scans <= 0")].startswith(
        "db-queries: revenue.full_scans 1 > 0"
    )
    assert "app.js.raw_bytes" in failed[("frontend-budget", "app.js.raw_bytes <= 16384")]
    assert ("frontend-budget", "app.js.gzip_bytes <= 6144") in failed
    allowed = {("db-queries", "revenue.full_scans <= 0"), ("db-queries", "revenue.p95_ms <= 25"),
               ("frontend-budget", "app.js.raw_bytes <= 16384"),
               ("frontend-budget", "app.js.gzip_bytes <= 6144"),
               ("frontend-budget", "total_gzip_bytes <= 16384")}
    assert set(failed) <= allowed, failed  # the API, the network, vendor.js, article: unchanged
    assert "revenue.full_scans 1 > 0" in done.stdout
