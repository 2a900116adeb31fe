"""An offline advisory mirror: OSV records on disk, and a local OSV endpoint for pip-audit.

The mirror is a checkout of the PyPA advisory database (``vulns/<package>/PYSEC-*.yaml``,
OSV schema 1.x). :class:`AdvisoryMirror` answers "which advisories affect this package at this
version", and :func:`serve_osv` puts it behind the one OSV call pip-audit makes
(``POST /v1/query``), so ``pip-audit -s osv --osv-url <url>/v1/query`` audits offline.

Decisions, on purpose:

- Lookup is by directory: the PyPA layout keeps every advisory in its package's folder.
  Folders and queried names are compared after PEP 503 normalisation (``PyYAML`` = ``pyyaml``).
  Files are parsed on the first query for their package and cached.
- A file that cannot be read or parsed, or is not an OSV record, raises
  :class:`~neuroerp_ci.errors.ToolError` when its package is queried: a broken advisory could
  hide a vulnerability, so the audit of that package fails closed instead of passing.
- Only ``ECOSYSTEM`` ranges are evaluated (``GIT`` ranges name commits, not releases), with the
  OSV algorithm: events sorted by version, ``introduced`` (``"0"`` = since the beginning)
  opens, ``fixed`` closes at that version, ``last_affected`` closes after it; ``limit`` is
  ignored. A range holding a version that is not PEP 440 is skipped (it cannot be ordered);
  the record's explicit ``versions`` list still applies.
- Withdrawn records never match.

Example::

    mirror = AdvisoryMirror(Path("/srv/advisory-database"))
    [r["id"] for r in mirror.query("urllib3", "1.26.4")]   # ['PYSEC-2021-108', ...]
    with serve_osv(mirror) as url:
        ...  # pip-audit -s osv --osv-url f"{url}/v1/query"
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from neuroerp_ci.errors import ToolError

Record = dict[str, Any]

ECOSYSTEM = "PyPI"
MAX_BODY_BYTES = 64 * 1024  # an OSV query is a few hundred bytes


# libyaml's parser when built in (about 10x faster); the resolver below stays Python's.
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StringLoader(_SafeBase):  # type: ignore[misc,valid-type]
    """Safe YAML that keeps every scalar a string.

    Plain YAML would read an unquoted version ``1.10`` as the float 1.1 and a timestamp as a
    datetime; advisory versions and dates must stay exactly as written.
    """


_StringLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class AdvisoryMirror:
    """OSV advisories from a local directory, indexed lazily per package.

    Raises :class:`~neuroerp_ci.errors.ToolError` if ``root`` has no ``vulns/`` folder with at
    least one ``*.yaml`` advisory. Safe to query from several threads.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        vulns = self.root / "vulns"
        if not vulns.is_dir():
            raise ToolError(f"advisory mirror {self.root}: no vulns/ folder (not an OSV mirror)")
        if next(vulns.glob("*/*.yaml"), None) is None:
            raise ToolError(f"advisory mirror {self.root}: vulns/ holds no */*.yaml advisories")
        self._vulns = vulns
        self._lock = threading.Lock()
        self._folders: dict[str, list[Path]] | None = None
        self._records: dict[str, list[Record]] = {}
        # Every read error raised so far, so a caller whose tool only saw an HTTP 500 can say why.
        self.errors: list[str] = []

    @property
    def snapshot(self) -> str:
        """What data this is: the first line of ``SNAPSHOT.txt`` if present, else the path."""
        marker = self.root / "SNAPSHOT.txt"
        try:
            first = marker.read_text(encoding="utf-8").strip().splitlines()[0]
        except (OSError, UnicodeDecodeError, IndexError):
            return str(self.root)
        return first if len(first) <= 160 else first[:157] + "..."

    def records(self, name: str) -> list[Record]:
        """Every advisory filed for package ``name`` (withdrawn ones included)."""
        key = canonicalize_name(name)
        with self._lock:
            if key not in self._records:
                folders = self._index().get(key, [])
                try:
                    self._records[key] = [
                        _load(p) for folder in folders for p in sorted(folder.glob("*.yaml"))
                    ]
                except ToolError as exc:
                    self.errors.append(str(exc))
                    raise
            return self._records[key]

    def query(self, name: str, version: str) -> list[Record]:
        """The OSV records affecting ``name`` at ``version`` (deep copies, file order)."""
        key = canonicalize_name(name)
        return [
            copy.deepcopy(record)
            for record in self.records(name)
            if "withdrawn" not in record
            and any(
                canonicalize_name(str(affected.get("package", {}).get("name", ""))) == key
                and affected.get("package", {}).get("ecosystem") == ECOSYSTEM
                and affects(affected, version)
                for affected in record["affected"]
            )
        ]

    def find(self, name: str, advisory_id: str) -> Record | None:
        """The record of ``name`` whose id or one of whose aliases is ``advisory_id``."""
        for record in self.records(name):
            if record["id"] == advisory_id or advisory_id in record.get("aliases", []):
                return record
        return None

    def _index(self) -> dict[str, list[Path]]:
        if self._folders is None:
            folders: dict[str, list[Path]] = {}
            for folder in sorted(p for p in self._vulns.iterdir() if p.is_dir()):
                folders.setdefault(canonicalize_name(folder.name), []).append(folder)
            self._folders = folders
        return self._folders


def _load(path: Path) -> Record:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StringLoader)  # noqa: S506 - safe loader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ToolError(f"advisory mirror: cannot read {path}: {_one_line(exc)}") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), str)
        or not isinstance(data.get("affected"), list)
        or not all(isinstance(a, dict) for a in data["affected"])
    ):
        raise ToolError(f"advisory mirror: {path} is not an OSV record (needs id and affected)")
    return cast(Record, data)


def affects(affected: Record, version: str) -> bool:
    """Whether one ``affected[]`` entry covers ``version`` (its ranges or its versions list)."""
    try:
        parsed: Version | None = Version(version)
    except InvalidVersion:
        parsed = None  # only an exact entry in the versions list can match
    for listed in affected.get("versions") or []:
        if str(listed) == version or (parsed is not None and _same(str(listed), parsed)):
            return True
    if parsed is None:
        return False
    for rng in affected.get("ranges") or []:
        if isinstance(rng, dict) and rng.get("type") == "ECOSYSTEM":
            if in_range(parsed, rng.get("events") or []) is True:
                return True
    return False


def in_range(version: Version, events: list[Any]) -> bool | None:
    """OSV range evaluation; ``None`` when an event's version cannot be ordered (skip it)."""
    bounds: list[tuple[Version | None, str]] = []
    for event in events:
        if not isinstance(event, dict):
            return None
        for kind, raw in event.items():
            if kind == "introduced" and str(raw) == "0":
                bounds.append((None, kind))
                continue
            if kind not in ("introduced", "fixed", "last_affected"):
                continue  # "limit" bounds commit walks; it does not apply to releases
            try:
                bounds.append((Version(str(raw)), kind))
            except InvalidVersion:
                return None
    # Stable sort: "introduced X" listed before "fixed X" keeps X unaffected.
    bounds.sort(key=lambda b: (0, Version("0")) if b[0] is None else (1, b[0]))
    affected = False
    for bound, kind in bounds:
        if kind == "introduced":
            affected = affected or bound is None or version >= bound
        elif kind == "fixed" and bound is not None and version >= bound:
            affected = False
        elif kind == "last_affected" and bound is not None and version > bound:
            affected = False
    return affected


def _same(listed: str, version: Version) -> bool:
    try:
        return Version(listed) == version
    except InvalidVersion:
        return False


# --- severity -------------------------------------------------------------------------------

_LABELS = {
    "critical": "critical",
    "high": "high",
    "moderate": "medium",  # GitHub's word for medium
    "medium": "medium",
    "low": "low",
}


def severity_label(record: Record) -> str | None:
    """``critical``/``high``/``medium``/``low`` from an OSV record, or None if it has no rating.

    ``database_specific.severity`` (GitHub's label) wins; else the highest CVSS v3 base score
    in ``severity[]``, rated with the CVSS bands (9.0 critical, 7.0 high, 4.0 medium).
    """
    specific = record.get("database_specific")
    if isinstance(specific, dict):
        label = _LABELS.get(str(specific.get("severity", "")).lower())
        if label:
            return label
    scores = [
        score
        for entry in record.get("severity") or []
        if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS_V3")
        for score in [cvss3_base_score(str(entry.get("score", "")))]
        if score is not None
    ]
    if not scores:
        return None
    top = max(scores)
    if top >= 9.0:
        return "critical"
    if top >= 7.0:
        return "high"
    if top >= 4.0:
        return "medium"
    return "low"  # 0.0 is "none" in CVSS; still an advisory, so the lowest band


_CVSS_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS v3.0/3.1 base score of a vector such as ``CVSS:3.1/AV:N/AC:L/...``; None if bad."""
    parts = vector.strip().split("/")
    if not parts or not parts[0].startswith("CVSS:3"):
        return None
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        changed = {"U": False, "C": True}[metrics["S"]]
        pr = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}
        av, ac, ui = (_CVSS_WEIGHTS[m][metrics[m]] for m in ("AV", "AC", "UI"))
        c, i, a = (_CVSS_WEIGHTS[m][metrics[m]] for m in ("C", "I", "A"))
        privileges = pr[metrics["PR"]]
    except KeyError:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    exploitability = 8.22 * av * ac * privileges * ui
    total = (1.08 if changed else 1.0) * (impact + exploitability)
    return _roundup(min(total, 10.0))


def _roundup(value: float) -> float:
    # CVSS 3.1 Appendix A: round up to one decimal without floating-point surprises.
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000.0
    return (math.floor(scaled / 10_000) + 1) / 10.0


# --- the local OSV endpoint -----------------------------------------------------------------

_PIP_AUDIT_TIMES = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")


def for_pip_audit(record: Record) -> Record:
    """A copy of ``record`` that pip-audit 2.x can read without crashing.

    pip-audit matches ``affected[].package.name`` to the normalised name by plain equality (a
    ``PyYAML`` entry would lose its fix versions), calls ``Version()`` on every ``fixed`` event
    of the first ECOSYSTEM range (one non-PEP 440 value aborts the whole audit) and parses
    ``published`` with two strptime formats only. Those fields are normalised or dropped here.
    """
    served = copy.deepcopy(record)
    for affected in served.get("affected", []):
        package = affected.get("package")
        if isinstance(package, dict) and "name" in package:
            package["name"] = canonicalize_name(str(package["name"]))
        for rng in affected.get("ranges") or []:
            if isinstance(rng, dict) and rng.get("type") == "ECOSYSTEM":
                rng["events"] = [
                    e for e in rng.get("events") or [] if "fixed" not in e or _pep440(e["fixed"])
                ]
    if "published" in served and not _pip_audit_time(served["published"]):
        del served["published"]
    return served


def _pep440(raw: Any) -> bool:
    try:
        Version(str(raw))
    except InvalidVersion:
        return False
    return True


def _pip_audit_time(raw: Any) -> bool:
    for fmt in _PIP_AUDIT_TIMES:
        try:
            datetime.strptime(str(raw), fmt)
        except ValueError:
            continue
        return True
    return False


class _OsvServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mirror: AdvisoryMirror) -> None:
        super().__init__(("127.0.0.1", 0), _OsvHandler)
        self.mirror = mirror


class _OsvHandler(BaseHTTPRequestHandler):
    server: _OsvServer
    server_version = "neuroerp-ci-osv-mirror"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?", 1)[0] != "/v1/query":
            # pip-audit 2.x only calls /v1/query, one package per request (no querybatch).
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            return
        try:
            name, version = self._read_query()
        except ValueError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        try:
            vulns = [for_pip_audit(r) for r in self.server.mirror.query(name, version)]
        except ToolError as exc:  # also kept in mirror.errors
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
            return
        # Everything in one page: no next_page_token, which pip-audit would ignore anyway.
        self._reply(HTTPStatus.OK, {"vulns": vulns})

    def do_GET(self) -> None:  # noqa: N802
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use POST /v1/query"})

    def _read_query(self) -> tuple[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY_BYTES:
            raise ValueError(f"body must be 1..{MAX_BODY_BYTES} bytes, got {length}")
        try:
            body = json.loads(self.rfile.read(length))
            package, version = body["package"], body["version"]
            name, ecosystem = package["name"], package.get("ecosystem", ECOSYSTEM)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"expected {{package: {{name, ecosystem}}, version}}: {exc}") from exc
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise ValueError("package.name and version must be non-empty strings")
        if ecosystem != ECOSYSTEM:
            raise ValueError(f"only the {ECOSYSTEM} ecosystem is mirrored, not {ecosystem!r}")
        return name, version

    def _reply(self, status: HTTPStatus, payload: Record) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Silent: a request log on stderr would only drown the tool's own output."""


@contextmanager
def serve_osv(mirror: AdvisoryMirror) -> Iterator[str]:
    """Serve ``mirror`` as an OSV API on 127.0.0.1 (a free port) while the block runs.

    Yields the base URL, e.g. ``http://127.0.0.1:41234``; pip-audit wants ``<url>/v1/query``.
    A mirror error met while serving is answered with HTTP 500 and kept in ``mirror.errors``.
    The server stops and its port is closed when the block exits.
    """
    server = _OsvServer(mirror)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
