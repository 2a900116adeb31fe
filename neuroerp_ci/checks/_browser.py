"""A headless Chromium for checks: the distribution's browser, driven by Playwright, held to
the pipeline's allowed hosts, and the page timings it measures.

**Which browser.** ``settings.executable``, else ``$NEUROERP_CI_CHROMIUM``, else
``chromium`` or ``chromium-browser`` on ``PATH`` (Debian's package). Never Playwright's own
download: none found is a :class:`~neuroerp_ci.errors.ToolError` whose reason gives the
install line, :data:`INSTALL_LINE`. Playwright's ``launch`` gives every browser a fresh
temporary profile, deleted when it closes, and each page load gets a new browser context
(cache, cookies and storage empty: a cold first visit).

**Where it may go.** Every request a page makes (the document, redirects, assets, fetch/XHR,
WebSockets) passes a Playwright route that lets it through only when its host is in
``allowed_hosts`` (the rule of :mod:`neuroerp_ci.support.hosts`) and aborts and records it
otherwise (:class:`NetworkGuard`). Underneath, the browser resolves no other host name at all
(``--host-resolver-rules``), so a connection the routes never see (a ``preconnect`` hint, DNS
prefetch) does not reach one either; it uses no proxy (``--no-proxy-server``), and service
workers are blocked, since their requests would bypass the routes.

**What it measures** (:class:`PageTimings`, all from the page's own performance timeline, in
ms since navigation start): ``ttfb_ms`` (navigation ``responseStart``), ``fcp_ms`` (first
contentful paint), ``lcp_ms`` (the last largest-contentful-paint entry), ``cls`` (cumulative
layout shift: the largest session window of shifts without recent input, windows closing
after a 1 s gap or at 5 s, as web-vitals counts it), ``tbt_ms`` (total blocking time: of
every long task, the part beyond 50 ms after first contentful paint, up to when the timings
are read) and ``load_ms`` (navigation ``loadEventEnd``). The observers are registered before
any script of the page runs (an init script); the timings are read after the load event once
the page was quiet (no new paint, shift or long task) for ``settle_ms``, at most
:data:`SETTLE_LIMIT` times that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.support.hosts import allowed_set, parse_http_url

if TYPE_CHECKING:  # imported when a browser is launched: the CLI starts without it
    from playwright.sync_api import Browser, Page, Route, ViewportSize, WebSocketRoute

CHROMIUM_ENV = "NEUROERP_CI_CHROMIUM"
INSTALL_LINE = "apt-get install -y chromium"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",
)
SETTLE_LIMIT = 10  # the longest wait for a quiet page, in multiples of settle_ms
LONG_TASK_MS = 50.0  # a task longer than this blocks input (total blocking time)
_LAUNCH_TIMEOUT_S = 60.0
# Schemes that are no network request (a page's own data and blobs).
_LOCAL_SCHEMES = ("data:", "blob:", "about:")
_SHOWN = 3

T = TypeVar("T")

# Registered in every document before its own scripts: the observers whose entries
# PerformanceObserver does not keep for a late reader (long tasks) are watched from the start.
INIT_SCRIPT = """
(() => {
  if (window !== window.top || window.__neuroerpCi) return;
  const seen = { lcp: [], shifts: [], longtasks: [], last: 0, unsupported: [] };
  window.__neuroerpCi = seen;
  const watch = (type, keep) => {
    try {
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) keep(entry);
        seen.last = performance.now();
      }).observe({ type, buffered: true });
    } catch (error) {
      seen.unsupported.push(type);
    }
  };
  watch('largest-contentful-paint', (e) => seen.lcp.push(e.startTime));
  watch('layout-shift', (e) => {
    if (!e.hadRecentInput) seen.shifts.push([e.startTime, e.value]);
  });
  watch('longtask', (e) => seen.longtasks.push([e.startTime, e.duration]));
})();
"""

# Waits for a quiet page (bounded), then returns the raw entries; Python does the sums.
READ_TIMINGS = """
async ({ quietMs, maxMs }) => {
  const seen = window.__neuroerpCi;
  const started = performance.now();
  const frame = new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  await Promise.race([frame, new Promise((done) => setTimeout(done, 200))]);
  for (;;) {
    const now = performance.now();
    const quietSince = Math.max(started, seen ? seen.last : 0);
    if (now - quietSince >= quietMs || now - started >= maxMs) break;
    await new Promise((done) => setTimeout(done, Math.max(10, Math.min(50, quietMs))));
  }
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint', 'paint')[0];
  return {
    observed: Boolean(seen),
    unsupported: seen ? seen.unsupported : [],
    navigation: nav ? { responseStart: nav.responseStart, loadEventEnd: nav.loadEventEnd } : null,
    fcp: fcp ? fcp.startTime : null,
    lcp: seen && seen.lcp.length ? seen.lcp[seen.lcp.length - 1] : null,
    shifts: seen ? seen.shifts : [],
    longtasks: seen ? seen.longtasks : [],
  };
}
"""

# Whether the page shows anything: text, or an element that is content without text.
HAS_CONTENT = """
() => {
  const body = document.body;
  if (!body) return false;
  if ((body.innerText || '').trim() !== '') return true;
  return body.querySelector(
    'img,svg,canvas,video,audio,picture,input,select,textarea,button,iframe,object,embed'
  ) !== null;
}
"""


def find_chromium(executable: str | None, env: Mapping[str, str], project: Path) -> str:
    """The Chromium to launch (see the module); ToolError with the install line if none."""
    choice, source = executable, "settings.executable"
    if not choice and env.get(CHROMIUM_ENV):
        choice, source = env[CHROMIUM_ENV], CHROMIUM_ENV
    if choice:
        # A relative path such as "bin/chromium" means the project's, not our working dir's.
        path = str(project / choice) if os.sep in choice and not os.path.isabs(choice) else choice
        found = shutil.which(path, path=env.get("PATH"))
        if found is None:
            raise ToolError(
                f"no Chromium: {source} = {choice!r} is not an executable file; install"
                f" Debian's browser with `{INSTALL_LINE}` or point {source} at one"
            )
        return found
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found is not None:
            return found
    raise ToolError(
        f"no Chromium: neither {' nor '.join(CHROMIUM_NAMES)} is on PATH; install it with"
        f" `{INSTALL_LINE}` (or set settings.executable or {CHROMIUM_ENV})"
    )


def resolver_rules(allowed_hosts: Sequence[str]) -> str:
    """``--host-resolver-rules``: every host but the allowed ones resolves to nothing (an
    address literal too: Chromium applies the rules to those as well)."""
    hosts = sorted(allowed_set(allowed_hosts))
    shown = [f"[{h}]" if ":" in h else h for h in hosts if not h.startswith("/")]
    return "MAP * ~NOTFOUND" + "".join(f", EXCLUDE {host}" for host in shown)


@dataclass
class NetworkGuard:
    """The routes of one browser context: allowed hosts pass, the rest is aborted and kept."""

    allowed_hosts: tuple[str, ...]
    blocked: list[str] = field(default_factory=list)  # URLs, in the order they were tried

    def allows(self, url: str) -> bool:
        """Whether a request for ``url`` may go out (http(s) and ws(s) to an allowed host)."""
        if url.startswith(_LOCAL_SCHEMES):
            return True
        if url.startswith(("ws://", "wss://")):
            url = "http" + url[2:]
        try:
            host = parse_http_url(url).host
        except ValueError:
            return False
        return host in allowed_set(self.allowed_hosts)

    def route(self, route: Route) -> None:
        from playwright.sync_api import Error as PlaywrightError

        url = route.request.url
        with suppress(PlaywrightError):  # the page may be gone by now
            if self.allows(url):
                route.continue_()
            else:
                self.blocked.append(url)
                route.abort("blockedbyclient")

    def websocket(self, socket: WebSocketRoute) -> None:
        from playwright.sync_api import Error as PlaywrightError

        with suppress(PlaywrightError):
            if self.allows(socket.url):
                socket.connect_to_server()  # messages pass both ways unchanged
            else:
                self.blocked.append(socket.url)
                socket.close(code=1008, reason="not in allowed_hosts")


@dataclass(frozen=True)
class PageTimings:
    """What one page load took (see the module); None where the page did not report it."""

    ttfb_ms: float | None = None
    fcp_ms: float | None = None
    lcp_ms: float | None = None
    cls: float | None = None
    tbt_ms: float | None = None
    load_ms: float | None = None

    def values(self) -> dict[str, float]:
        """The timings the page reported, by metric name."""
        found = {
            "ttfb_ms": self.ttfb_ms, "fcp_ms": self.fcp_ms, "lcp_ms": self.lcp_ms,
            "cls": self.cls, "tbt_ms": self.tbt_ms, "load_ms": self.load_ms,
        }  # fmt: skip
        return {name: value for name, value in found.items() if value is not None}


TIMING_UNITS = {
    "ttfb_ms": "ms", "fcp_ms": "ms", "lcp_ms": "ms", "cls": "", "tbt_ms": "ms", "load_ms": "ms",
}  # fmt: skip


def cumulative_layout_shift(shifts: Sequence[Sequence[float]]) -> float:
    """The largest session window of ``(start_ms, value)`` shifts (web-vitals' CLS): a
    window takes shifts less than 1 s apart and at most 5 s from its first one."""
    largest = current = 0.0
    first = previous = 0.0
    for start, value in sorted((float(s), float(v)) for s, v in shifts):
        if current and start - previous < 1000.0 and start - first < 5000.0:
            current += value
        else:
            current, first = value, start
        previous = start
        largest = max(largest, current)
    return largest


def total_blocking_time(longtasks: Sequence[Sequence[float]], fcp_ms: float | None) -> float:
    """The sum over ``(start_ms, duration_ms)`` long tasks of their time beyond 50 ms after
    first contentful paint (a task that began before it counts from FCP on, as Lighthouse
    clips it). Without a first paint every task counts."""
    since = fcp_ms or 0.0
    total = 0.0
    for start, duration in longtasks:
        end = float(start) + float(duration)
        if end <= since:
            continue
        total += max(0.0, end - max(float(start), since) - LONG_TASK_MS)
    return total


def parse_timings(raw: Any) -> PageTimings:
    """The timings of what :data:`READ_TIMINGS` returned; ToolError for another shape."""
    try:
        if not raw["observed"]:
            raise ToolError("the page's performance observers did not run (init script missing)")
        nav = raw["navigation"]
        if nav is None:
            raise ToolError("the page has no navigation timing entry")
        fcp = _ms(raw["fcp"])
        load = _ms(nav["loadEventEnd"])
        return PageTimings(
            ttfb_ms=_ms(nav["responseStart"]),
            fcp_ms=fcp,
            lcp_ms=_ms(raw["lcp"]),
            cls=round(cumulative_layout_shift(raw["shifts"]), 6),
            tbt_ms=round(total_blocking_time(raw["longtasks"], fcp), 3),
            load_ms=load if load else None,  # 0: the load event has not ended
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolError(f"page timings have an unexpected shape: {exc!r}") from exc


def _ms(value: Any) -> float | None:
    # The browser's clock is coarse (5 µs at best): no more digits than it has.
    return None if value is None else round(float(value), 3)


@dataclass
class OpenPage:
    """A page that loaded: its main document's HTTP status and what its context blocked."""

    page: Page
    name: str
    url: str
    status: int
    guard: NetworkGuard

    def timings(self, settle_ms: int) -> PageTimings:
        """The page's timings, read once it was quiet for ``settle_ms`` (bounded)."""
        limits = {"quietMs": settle_ms, "maxMs": max(settle_ms * SETTLE_LIMIT, 1)}
        return parse_timings(self.page.evaluate(READ_TIMINGS, limits))

    def has_content(self) -> bool:
        return bool(self.page.evaluate(HAS_CONTENT))


class BrowserSession:
    """One launched Chromium; :meth:`open` loads a page in a context of its own."""

    def __init__(self, browser: Browser, allowed_hosts: Sequence[str]) -> None:
        self._browser = browser
        self._allowed = tuple(allowed_hosts)
        self.version = browser.version
        self.blocked: list[str] = []  # every request blocked in any of its contexts

    @contextmanager
    def open(
        self, url: str, name: str, *, timeout_s: float, wait_for: str | None = None
    ) -> Iterator[OpenPage]:
        """Load ``url`` (page ``name``) cold; TargetError naming the page when it does not
        load, answers HTTP 400 or more, or ``wait_for`` does not become visible."""
        from playwright.sync_api import Error as PlaywrightError

        guard = NetworkGuard(self._allowed)
        viewport: ViewportSize = {"width": 1280, "height": 900}
        context = self._browser.new_context(service_workers="block", viewport=viewport)
        try:
            context.route("**/*", guard.route)
            context.route_web_socket("**/*", guard.websocket)
            context.add_init_script(script=INIT_SCRIPT)
            page = context.new_page()
            status = _navigate(page, url, name, timeout_s, guard)
            if wait_for is not None:
                try:
                    page.wait_for_selector(wait_for, state="visible", timeout=timeout_s * 1000)
                except PlaywrightError as exc:
                    raise TargetError(
                        f"page {name!r} ({url}): wait_for {wait_for!r} did not become visible"
                        f" within {timeout_s:g} s: {_first_line(exc)}"
                    ) from exc
            yield OpenPage(page, name, url, status, guard)
        finally:
            self.blocked.extend(guard.blocked)
            with suppress(PlaywrightError):
                context.close()


def _navigate(page: Page, url: str, name: str, timeout_s: float, guard: NetworkGuard) -> int:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        response = page.goto(url, wait_until="load", timeout=timeout_s * 1000)
    except PlaywrightTimeout as exc:
        raise TargetError(
            f"page {name!r} did not load within {timeout_s:g} s ({url}){_blocked(guard)}"
        ) from exc
    except PlaywrightError as exc:
        raise TargetError(
            f"page {name!r} did not load ({url}): {_first_line(exc)}{_blocked(guard)}"
        ) from exc
    if response is None:
        raise TargetError(f"page {name!r} ({url}): no HTTP response for the document")
    if response.status >= 400:
        raise TargetError(f"page {name!r} answered HTTP {response.status} ({url})")
    return response.status


def _blocked(guard: NetworkGuard) -> str:
    if not guard.blocked:
        return ""
    return f"; blocked (not in allowed_hosts): {listed(guard.blocked)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # Playwright's messages start "Page.goto: net::ERR_... at URL", then a call log.
    return text[0].split(": ", 1)[-1] if text else type(exc).__name__


def listed(items: Sequence[str], shown: int = _SHOWN) -> str:
    """The first ``shown`` items, then how many more."""
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f", +{more} more" if more > 0 else "")


@contextmanager
def chromium(
    executable: str, allowed_hosts: Sequence[str], *, timeout_s: float = _LAUNCH_TIMEOUT_S
) -> Iterator[BrowserSession]:
    """Launch ``executable`` headless (see the module); ToolError when it does not start."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, f"--host-resolver-rules={resolver_rules(allowed_hosts)}"]
    try:
        manager = sync_playwright().start()
    except PlaywrightError as exc:
        raise ToolError(f"Playwright's driver did not start: {_first_line(exc)}") from exc
    try:
        try:
            browser = manager.chromium.launch(
                executable_path=executable,
                headless=True,
                args=args,
                timeout=min(timeout_s, _LAUNCH_TIMEOUT_S) * 1000,
            )
        except PlaywrightError as exc:
            raise ToolError(
                f"Chromium {executable} did not start: {_first_line(exc)}; install Debian's"
                f" browser with `{INSTALL_LINE}`"
            ) from exc
        try:
            yield BrowserSession(browser, allowed_hosts)
        finally:
            with suppress(PlaywrightError):
                browser.close()
    finally:
        with suppress(PlaywrightError):
            manager.stop()


def outside_event_loop(work: Callable[[], T]) -> T:
    """Run ``work`` here, or in a thread of its own when this thread runs an asyncio loop
    (Playwright's sync API refuses to run inside one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="chromium") as pool:
        return pool.submit(work).result()
