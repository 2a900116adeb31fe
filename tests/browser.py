"""A real headless Chromium for tests: Debian's ``chromium`` driven by Playwright.

Never ``playwright install``: its browser download fails on these machines, and the product's
users run the distribution's browser. A page opened here records what a reviewer of a report
cares about: console errors, uncaught exceptions, and every request the page made, so a test
can assert that a self-contained file reached for nothing outside itself.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neuroerp_ci.checks._browser import CHROMIUM_ARGS  # the a11y kind's launch flags

# Schemes a self-contained page may load from: itself and inline data.
_SELF_CONTAINED = ("file://", "data:", "blob:", "about:")


def chromium_or_skip() -> str:
    """The Chromium executable; the test skips, saying how to install it, when there is none
    (``.ci/run`` installs it with apt where it can)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no Chromium on this machine: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # pragma: no cover - a dev dependency
        pytest.skip("the playwright package is not installed: pip install -e '.[dev]'")
    return found


@dataclass
class PageVisit:
    """What happened while a page was open."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        """Requests for anything but the file itself and inline data."""
        return [url for url in self.requests if not url.startswith(_SELF_CONTAINED)]


@contextmanager
def open_file(
    path: Path, screenshot: Path | None = None, width: int = 1280
) -> Iterator[tuple[object, PageVisit]]:
    """Open ``path`` in a fresh headless Chromium profile; yields (Playwright page, visit).

    Network requests other than to the file itself are aborted (and recorded), so a page that
    depends on the network shows it as a broken page, not as a slow test. ``screenshot``: a full
    page PNG written when the block ends.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    visit = PageVisit()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": width, "height": 900},
        )
        try:
            context.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(_SELF_CONTAINED)
                    else route.abort()
                ),
            )
            page = context.new_page()
            page.on("request", lambda request: visit.requests.append(request.url))
            page.on(
                "console",
                lambda message: (
                    visit.console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=30_000)
            yield page, visit
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
