"""What a page timing costs in the browser (the ``a11y`` kind) next to the httpx paths.

Run it from the repository with the project's interpreter::

    python benchmarks/browser_timing.py              # 20 samples per path, about a minute
    python benchmarks/browser_timing.py --quick      # 5 samples per path, a smoke run

One page (HTML, a stylesheet and two scripts, like the demo's front end) is served by a
stdlib ``http.server`` on 127.0.0.1. In one run, the same page is sampled ``--samples``
times by each path, the paths interleaved round by round, so drift of the machine touches
them alike:

* ``browser``: what one counted load of the ``a11y`` kind does: a fresh browser context,
  the allowed-hosts routes, navigation to the load event, the page's timings read after
  ``settle_ms`` of quiet (the kind's default, 250 ms; ``--settle-ms`` changes it). The
  browser is launched once, before the samples; the launch is reported on its own.
* ``httpx page``: a ``frontend`` kind page load: a new guarded client, the HTML, then
  every asset it references.
* ``httpx GET``: one GET of the HTML over one reused guarded client (the ``http`` kind).

For each: samples per second (wall time of its samples), wall ms per sample, and CPU ms per
sample (this process plus its children: Playwright's driver and Chromium are counted once
the browser has closed, so the browser's CPU includes its launch and shutdown, reported per
sample). Ratios: browser / httpx page and browser / httpx GET. Exits 0, or 2 when no
Chromium is installed (``apt-get install -y chromium``) or a path fails.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from neuroerp_ci.checks._browser import chromium, find_chromium
from neuroerp_ci.checks.a11y import A11ySettings
from neuroerp_ci.checks.frontend import load_page
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.support.hosts import LOOPBACK_HOSTS, guarded_client

CSS = "body { font-family: sans-serif; margin: 2rem; } main { max-width: 40rem; }\n" * 20
SCRIPT = "window.app = { rows: Array.from({ length: 200 }, (_, i) => i * 2) };\n" * 20
HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Orders</title>
<link rel="stylesheet" href="/assets/app.css">
<script defer src="/assets/vendor.js"></script><script defer src="/assets/app.js"></script>
</head><body><main><h1>Orders</h1>
<p>Open orders of this week, by customer and due date.</p>
<table><tr><th>Order</th><th>Customer</th></tr><tr><td>1001</td><td>Acme</td></tr></table>
</main></body></html>"""
FILES = {
    "/": ("text/html; charset=utf-8", HTML),
    "/assets/app.css": ("text/css", CSS),
    "/assets/vendor.js": ("text/javascript", SCRIPT),
    "/assets/app.js": ("text/javascript", "document.title += ' ready';\n"),
}
PATHS = ("browser", "httpx page", "httpx GET")


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        kind, body = FILES.get(self.path, ("text/plain", "not found"))
        data = body.encode()
        self.send_response(200 if self.path in FILES else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Figures:
    name: str
    wall_s: list[float] = field(default_factory=list)  # per sample
    cpu_s: float = 0.0  # all samples (the browser: launch and shutdown included)
    extra: str = ""

    def per_sample_ms(self) -> float:
        return statistics.median(self.wall_s) * 1000

    def per_second(self) -> float:
        return len(self.wall_s) / sum(self.wall_s)

    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / len(self.wall_s)


def run(samples: int, settle_ms: int, executable: str) -> tuple[dict[str, Figures], float]:
    paths = {name: Figures(name) for name in PATHS}
    launch_s = 0.0
    with site() as url:
        client = guarded_client(LOOPBACK_HOSTS, timeout=10.0)
        load_page(lambda: guarded_client(LOOPBACK_HOSTS, timeout=10.0), url, LOOPBACK_HOSTS)
        client.get(url).read()  # warm: the first of each path is not counted
        browser_cpu_before = cpu_s()
        started = time.perf_counter()
        with chromium(executable, LOOPBACK_HOSTS) as session:
            launch_s = time.perf_counter() - started
            paths["browser"].extra = f"Chromium {session.version}"
            with session.open(url, "bench", timeout_s=30) as page:
                page.timings(settle_ms)  # warm-up load
            for _ in range(samples):
                # httpx paths: their CPU is measured around each sample (this process only).
                before_cpu, before = cpu_s(), time.perf_counter()
                loaded = load_page(
                    lambda: guarded_client(LOOPBACK_HOSTS, timeout=10.0), url, LOOPBACK_HOSTS
                )
                paths["httpx page"].wall_s.append(time.perf_counter() - before)
                paths["httpx page"].cpu_s += cpu_s() - before_cpu
                if loaded.failed:
                    raise NeuroErpCiError(f"httpx page load failed: {loaded.failed}")
                before_cpu, before = cpu_s(), time.perf_counter()
                response = client.get(url)
                response.read()
                paths["httpx GET"].wall_s.append(time.perf_counter() - before)
                paths["httpx GET"].cpu_s += cpu_s() - before_cpu
                if response.status_code != 200:
                    raise NeuroErpCiError(f"httpx GET answered {response.status_code}")
                before = time.perf_counter()
                with session.open(url, "bench", timeout_s=30) as page:
                    timings = page.timings(settle_ms)
                paths["browser"].wall_s.append(time.perf_counter() - before)
                if timings.load_ms is None:
                    raise NeuroErpCiError("the browser reported no load time")
        client.close()
        # Chromium's processes are counted once the browser and Playwright's driver exited.
        httpx_cpu = paths["httpx page"].cpu_s + paths["httpx GET"].cpu_s
        paths["browser"].cpu_s = cpu_s() - browser_cpu_before - httpx_cpu
    return paths, launch_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=20, help="samples per path (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 samples per path")
    parser.add_argument(
        "--settle-ms", type=int, default=A11ySettings.model_fields["settle_ms"].default,
        help="the browser's quiet time before timings are read (the kind's default)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    samples = 5 if args.quick else args.samples
    try:
        executable = find_chromium(None, os.environ, Path.cwd())
        paths, launch_s = run(samples, args.settle_ms, executable)
    except NeuroErpCiError as exc:
        print(f"setup error: {exc}", file=sys.stderr)
        return 2
    print(f"{samples} samples per path of one page (HTML + 3 assets) on 127.0.0.1, interleaved;"
          f" browser settle_ms = {args.settle_ms}; load average"
          f" {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'path':<12} {'samples/s':>10} {'wall ms/sample':>15} {'CPU ms/sample':>14}")
    for path in paths.values():
        print(f"{path.name:<12} {path.per_second():>10.2f} {path.per_sample_ms():>15.1f}"
              f" {path.cpu_ms():>14.1f}")  # fmt: skip
    browser = paths["browser"]
    print(f"browser launch (once per check): {launch_s * 1000:.0f} ms; {browser.extra}")
    for other in ("httpx page", "httpx GET"):
        base = paths[other]
        print(f"ratio browser / {other:<10}: {browser.per_sample_ms() / base.per_sample_ms():8.1f}x"
              f" wall per sample, {browser.cpu_ms() / max(base.cpu_ms(), 1e-3):8.1f}x CPU"
              " per sample")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
