"""The ``frontend`` kind: bundle sizes per chunk, and page timings of the served HTML.

Example (pipeline file)::

    [[checks]]
    id = "frontend-budget"
    kind = "frontend"
    settings = { dist = "frontend/dist", page_path = "/", samples = 5 }

**Sizes** (no target needed): every ``.js``, ``.mjs``, ``.cjs`` and ``.css`` file under
``dist`` is a chunk, measured raw, gzipped at level 6 (zlib's default and what servers
typically use on the fly) and with brotli at quality 11 (what a build pre-compresses static
assets with) or, failing that, zstd at level 19. A chunk is named by its file name without
the content hash, so budgets survive rebuilds: ``app.970e5f67.js`` -> ``app.js``,
``index-B-k3e9Xa.js`` -> ``index.js``. Chunks whose names would collide keep their full file
name. Metrics: ``<chunk>.raw_bytes``, ``<chunk>.gzip_bytes``, ``<chunk>.br_bytes`` (or
``.zst_bytes``), ``chunk_count``, ``total_raw_bytes``, ``total_gzip_bytes``,
``total_br_bytes`` (or ``total_zst_bytes``) and ``largest_chunk_bytes`` (raw).

**Page timings** (``page_timings = true``, needs the target): each sample is a cold first
visit with a new HTTP client: GET ``page_path``, then every ``<script src>`` and
``<link rel=stylesheet|modulepreload|preload href>`` it references, one after another over
that client's connection. ``page_ttfb_ms`` is the time to the HTML's response headers,
``page_load_ms`` the time until the last asset's body is read (medians, with the raw
samples); also ``page_assets`` and ``page_failed_requests``. Every asset URL is checked
against ``ctx.allowed_hosts`` before the first asset is requested.
"""

from __future__ import annotations

import gzip
import importlib
import json
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin

import httpx
from pydantic import Field

from neuroerp_ci.checks._percentiles import median
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    typed_settings,
)
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Metric
from neuroerp_ci.support.hosts import ensure_allowed, guarded_client, resolve_url
from neuroerp_ci.support.text import printable_name

REPORT_FILE = "frontend.json"
CHUNK_SUFFIXES = frozenset({".js", ".mjs", ".cjs", ".css"})
GZIP_LEVEL = 6
BROTLI_QUALITY = 11
ZSTD_LEVEL = 19
_ASSET_RELS = frozenset({"stylesheet", "modulepreload", "preload"})

# "app.970e5f67.js", webpack "main.3f2a1b4c5d6e7f80a1b2.chunk.js": a hex segment with a digit.
_HEX_HASH = re.compile(r"^(?=[0-9a-f]*[0-9])[0-9a-f]{8,64}$")
# Vite/Rollup "index-B-k3e9Xa.js": 8 base64url characters after the last "-" that fits.
_DASH_HASH = re.compile(r"^(?P<base>.+)-(?P<hash>[A-Za-z0-9_-]{8})$")
_RANDOM_LOOKING = re.compile(r"[0-9A-Z_-]")


class FrontendSettings(KindSettings):
    dist: str = "frontend/dist"  # the build directory, relative to the project
    compression: Literal["brotli", "zstd", "auto"] = "auto"  # auto: brotli, else zstd
    page_timings: bool = True  # needs the target
    page_path: str = "/"  # the served HTML, a path under the target's base URL
    samples: int = Field(default=5, ge=1, le=1_000)  # counted page loads
    warmup: int = Field(default=1, ge=0, le=100)  # page loads not counted
    request_timeout: float = Field(default=10.0, gt=0)


def chunk_name(filename: str) -> str:
    """A chunk's file name without its content hash (``app.970e5f67.js`` -> ``app.js``)."""
    parts = filename.split(".")
    if len(parts) < 2:
        return filename
    suffix = parts[-1]
    kept = [parts[0], *(p for p in parts[1:-1] if not _HEX_HASH.match(p))]
    stem = ".".join(kept)
    match = _DASH_HASH.match(stem)
    if match and _RANDOM_LOOKING.search(match.group("hash")):
        stem = match.group("base")
    return f"{stem}.{suffix}"


@dataclass(frozen=True)
class Compressor:
    """The second compression besides gzip: brotli or zstd."""

    key: str  # metric infix: "br" or "zst"
    module: str
    version: str
    compress: Callable[[bytes], bytes]


def resolve_compressor(choice: str) -> Compressor:
    """The compressor for ``choice``; ToolError naming the missing package."""
    order = {"auto": ("brotli", "zstandard"), "brotli": ("brotli",), "zstd": ("zstandard",)}
    missing = []
    for module in order[choice]:
        try:
            # Imported by name: both are optional and ship no type information.
            lib: Any = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        version = str(getattr(lib, "__version__", "unknown"))
        if module == "brotli":
            return Compressor("br", module, version, _brotli(lib))
        return Compressor("zst", module, version, _zstd(lib))
    raise ToolError(
        f"compression {choice!r} needs the Python package {' or '.join(missing)}, not installed"
    )


def _brotli(lib: Any) -> Callable[[bytes], bytes]:
    def compress(data: bytes) -> bytes:
        return bytes(lib.compress(data, quality=BROTLI_QUALITY))

    return compress


def _zstd(lib: Any) -> Callable[[bytes], bytes]:
    compressor = lib.ZstdCompressor(level=ZSTD_LEVEL)

    def compress(data: bytes) -> bytes:
        return bytes(compressor.compress(data))

    return compress


def gzip_size(data: bytes) -> int:
    """Bytes after gzip at :data:`GZIP_LEVEL` (``mtime=0``: the same input, the same size)."""
    return len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))


@dataclass(frozen=True)
class Chunk:
    name: str  # without content hash
    path: str  # relative to the build directory
    raw_bytes: int
    gzip_bytes: int
    packed_bytes: int  # brotli or zstd


def find_chunks(dist: Path) -> list[Path]:
    """Every script and style file under ``dist``, in path order."""
    return sorted(p for p in dist.rglob("*") if p.is_file() and p.suffix in CHUNK_SUFFIXES)


def chunk_names(paths: Sequence[Path]) -> list[str]:
    """Hash-free names of ``paths`` (relative to the build directory); names that would
    collide keep their whole path, so no chunk hides another. Odd bytes and control
    characters of a name are escaped (``\\xff.js``), one to one."""
    names = [chunk_name(printable_name(p.name)) for p in paths]
    counts = Counter(names)
    return [
        n if counts[n] == 1 else printable_name(p.as_posix())
        for n, p in zip(names, paths, strict=True)
    ]


def measure_chunks(dist: Path, compressor: Compressor) -> list[Chunk]:
    paths = find_chunks(dist)
    chunks = []
    names = chunk_names([p.relative_to(dist) for p in paths])
    for path, name in zip(paths, names, strict=True):
        data = path.read_bytes()
        chunks.append(
            Chunk(
                name,
                printable_name(path.relative_to(dist).as_posix()),
                len(data),
                gzip_size(data),
                len(compressor.compress(data)),
            )
        )
    return chunks


def size_metrics(chunks: Sequence[Chunk], packed: str) -> list[Metric]:
    """Per chunk and total sizes; ``packed`` is the brotli/zstd infix ("br" or "zst")."""
    metrics: list[Metric] = []
    for c in chunks:
        metrics.append(Metric(f"{c.name}.raw_bytes", float(c.raw_bytes), "bytes"))
        metrics.append(Metric(f"{c.name}.gzip_bytes", float(c.gzip_bytes), "bytes"))
        metrics.append(Metric(f"{c.name}.{packed}_bytes", float(c.packed_bytes), "bytes"))
    metrics.append(Metric("chunk_count", float(len(chunks)), "count"))
    metrics.append(Metric("total_raw_bytes", float(sum(c.raw_bytes for c in chunks)), "bytes"))
    metrics.append(Metric("total_gzip_bytes", float(sum(c.gzip_bytes for c in chunks)), "bytes"))
    metrics.append(
        Metric(f"total_{packed}_bytes", float(sum(c.packed_bytes for c in chunks)), "bytes")
    )
    largest = max((c.raw_bytes for c in chunks), default=0)
    metrics.append(Metric("largest_chunk_bytes", float(largest), "bytes"))
    return metrics


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.refs.append(found["src"] or "")
        elif tag == "link" and found.get("href"):
            rels = set((found.get("rel") or "").lower().split())
            if rels & _ASSET_RELS:
                self.refs.append(found["href"] or "")


def asset_urls(html: str, page_url: str) -> list[str]:
    """Absolute URLs of the scripts and styles ``html`` loads, in order, without repeats."""
    parser = _AssetParser()
    parser.feed(html)
    parser.close()
    urls: list[str] = []
    for ref in parser.refs:
        if ref.startswith("data:"):
            continue
        url = urljoin(page_url, ref)
        if url not in urls:
            urls.append(url)
    return urls


@dataclass
class PageLoad:
    """One cold page load: timings (ms), what was fetched, what failed."""

    warmup: bool
    html_status: int | None = None  # None: the page got no HTTP answer
    ttfb_ms: float | None = None
    load_ms: float | None = None  # None: some request failed
    assets: int = 0
    transfer_bytes: int = 0  # as received on the wire (compressed if the server compressed)
    failed: list[str] = field(default_factory=list)  # "url: problem"


ClientFactory = Callable[[], httpx.Client]


def load_page(
    make_client: ClientFactory,
    page_url: str,
    allowed_hosts: Sequence[str],
    *,
    warmup: bool = False,
) -> PageLoad:
    """Fetch the page and then each asset it references, with one new client."""
    load = PageLoad(warmup)
    with make_client() as client:
        # Timed from here: building a client (its TLS context) is not part of a page load.
        started = time.perf_counter()
        html = _fetch(client, page_url, load, started, first=True)
        if html is None:
            return load
        urls = asset_urls(html.decode("utf-8", errors="replace"), page_url)
        for url in urls:  # all checked before the first asset request
            ensure_allowed(url, allowed_hosts, "page asset")
        load.assets = len(urls)
        for url in urls:
            _fetch(client, url, load, started)
    if not load.failed:
        load.load_ms = (time.perf_counter() - started) * 1000.0
    return load


def _fetch(
    client: httpx.Client, url: str, load: PageLoad, started: float, *, first: bool = False
) -> bytes | None:
    try:
        with client.stream("GET", url) as response:
            if first:
                load.ttfb_ms = (time.perf_counter() - started) * 1000.0
                load.html_status = response.status_code
            body = response.read()
            load.transfer_bytes += response.num_bytes_downloaded
    except httpx.HTTPError as exc:
        load.failed.append(f"{url}: {type(exc).__name__}: {exc}")
        return None
    if not response.is_success:
        load.failed.append(f"{url}: HTTP {response.status_code}")
        return None
    return body


def page_metrics(loads: Sequence[PageLoad]) -> list[Metric]:
    """Medians of the counted loads; none at all when no page was loaded."""
    counted = [p for p in loads if not p.warmup]
    metrics: list[Metric] = []
    if not counted:
        return metrics
    ttfb = tuple(p.ttfb_ms for p in counted if p.ttfb_ms is not None and not p.failed)
    full = tuple(p.load_ms for p in counted if p.load_ms is not None)
    if ttfb:
        metrics.append(Metric("page_ttfb_ms", median(ttfb), "ms", Direction.LOWER, ttfb))
    if full:
        metrics.append(Metric("page_load_ms", median(full), "ms", Direction.LOWER, full))
    complete = [p for p in counted if not p.failed]
    if complete:
        last = complete[-1]
        metrics.append(Metric("page_assets", float(last.assets), "count"))
        metrics.append(Metric("page_transfer_bytes", float(last.transfer_bytes), "bytes"))
    failed = float(sum(len(p.failed) for p in counted))
    metrics.append(Metric("page_failed_requests", failed, "count"))
    return metrics


class FrontendCheck(CheckKind):
    """``kind = "frontend"``: bundle sizes per chunk and cold page-load timings."""

    name: ClassVar[str] = "frontend"
    settings_model: ClassVar[type[KindSettings]] = FrontendSettings
    exclusive: ClassVar[bool] = True
    # Without page timings: bundle sizes have no limit that suits every build.
    completed_means: ClassVar[str] = "every chunk under dist was measured"

    def metric_names(self, settings: KindSettings) -> MetricNames:
        fe = settings if isinstance(settings, FrontendSettings) else FrontendSettings()
        packed = {"brotli": {"br"}, "zstd": {"zst"}, "auto": {"br", "zst"}}[fe.compression]
        sizes = {"raw_bytes", "gzip_bytes"} | {f"{p}_bytes" for p in packed}
        fixed = {"chunk_count", "largest_chunk_bytes"} | {f"total_{s}" for s in sizes}
        page = {
            "page_ttfb_ms", "page_load_ms", "page_assets", "page_transfer_bytes",
            "page_failed_requests",
        }  # fmt: skip
        choice = {"br": 'compression = "brotli" or "auto"', "zst": 'compression = "zstd" or "auto"'}
        needs = {f"{p}_bytes": choice[p] for p in set(choice) - packed}
        needs.update({f"total_{n}": need for n, need in needs.items()})
        if not fe.page_timings:
            needs.update(dict.fromkeys(page, "page_timings = true"))
        return MetricNames(
            fixed=frozenset(fixed | (page if fe.page_timings else set())),
            per_item=frozenset(sizes),
            items=None,  # the chunks found under dist, named without their content hash
            item="chunk",
            item_pattern=r".+\.(js|mjs|cjs|css)",
            needs=needs,
        )

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        if isinstance(settings, FrontendSettings) and settings.page_timings:
            return ({"metric": "page_failed_requests", "max": 0},)
        return ()

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        # Tests inject httpx.MockTransport here.
        self._transport = transport

    def needs_target_for(self, check: Check) -> bool:
        return typed_settings(check, FrontendSettings).page_timings

    def client(self, settings: FrontendSettings, allowed_hosts: Sequence[str]) -> httpx.Client:
        return guarded_client(
            allowed_hosts, transport=self._transport, timeout=settings.request_timeout
        )

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, FrontendSettings)
        page_url: str | None = None
        if settings.page_timings:
            # Before any work: a page URL that may not be contacted fails the check up front.
            page_url = resolve_url(settings.page_path, ctx.base_url, "page_path")
            ensure_allowed(page_url, ctx.allowed_hosts, "page_path")
        compressor = resolve_compressor(settings.compression)
        dist = ctx.project_dir / settings.dist
        if not dist.is_dir():
            raise ToolError(f"front-end build directory {dist} does not exist")
        chunks = measure_chunks(dist, compressor)
        if not chunks:
            raise ToolError(f"no .js or .css chunks under {dist}: nothing to measure")
        loads: list[PageLoad] = []
        report = ctx.work_dir / REPORT_FILE
        try:
            if page_url is not None:
                loads = self._page_loads(settings, page_url, ctx, check.timeout)
        finally:
            _write_report(report, dist, compressor, chunks, page_url, loads)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        for metric in size_metrics(chunks, compressor.key):
            result.add_metric(metric)
        for metric in page_metrics(loads):
            result.add_metric(metric)
        result.artifacts["frontend"] = str(report)
        result.tool_versions.update(
            {"zlib": zlib.ZLIB_RUNTIME_VERSION, compressor.module: compressor.version}
        )
        if page_url is not None:
            result.tool_versions["httpx"] = httpx.__version__
        result.reason = _reason(result, chunks, compressor.key)
        return result

    def _page_loads(
        self, settings: FrontendSettings, page_url: str, ctx: CheckContext, timeout: float
    ) -> list[PageLoad]:
        deadline = time.perf_counter() + timeout
        loads: list[PageLoad] = []
        total = settings.warmup + settings.samples
        for i in range(total):
            if time.perf_counter() >= deadline:
                raise ToolError(f"page timings exceeded timeout after {i} of {total} loads")
            loads.append(
                load_page(
                    lambda: self.client(settings, ctx.allowed_hosts), page_url, ctx.allowed_hosts,
                    warmup=i < settings.warmup,
                )
            )
        counted = [p for p in loads if not p.warmup]
        if not any(p.html_status is not None and 200 <= p.html_status < 300 for p in counted):
            # Not one page to time: the page timings were not measured at all.
            problem = next((f for p in counted for f in p.failed), "no answer")
            raise TargetError(f"page not loading at {page_url}: {problem}")
        return loads


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def _reason(result: CheckResult, chunks: Sequence[Chunk], packed: str) -> str:
    m = result.metrics
    largest = max(chunks, key=lambda c: c.raw_bytes)
    text = (
        f"{len(chunks)} chunks, {_kib(m['total_raw_bytes'].value)} raw,"
        f" {_kib(m['total_gzip_bytes'].value)} gzip,"
        f" {_kib(m[f'total_{packed}_bytes'].value)} {packed};"
        f" largest {largest.name} {_kib(largest.raw_bytes)}"
    )
    if "page_load_ms" in m:
        text += f"; page load {m['page_load_ms'].value:.1f} ms"
    failed = m.get("page_failed_requests")
    if failed is not None and failed.value:
        text += f", {int(failed.value)} failed requests"
    return text


def _write_report(
    path: Path,
    dist: Path,
    compressor: Compressor,
    chunks: Sequence[Chunk],
    page_url: str | None,
    loads: Sequence[PageLoad],
) -> None:
    data = {
        "dist": str(dist),
        "gzip_level": GZIP_LEVEL,
        "compressor": {"name": compressor.module, "version": compressor.version,
                       "level": BROTLI_QUALITY if compressor.key == "br" else ZSTD_LEVEL},
        "chunks": [asdict(c) for c in chunks],
        "page_url": page_url,
        "page_loads": [asdict(p) for p in loads],
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
