"""The one allowed-hosts rule: may neuroerp-ci contact the host a URL names?

Every URL neuroerp-ci contacts (the target's base and health URLs, endpoints, page assets,
network hosts, load targets, rollout hooks, database URLs with their driver parameters) is
decided here, before any traffic, and clients re-check the host they actually connect to
(:class:`AllowedHostsTransport` for httpx, the locust wrapper's resolver guard for locust).

The rule compares normalised forms, never resolved ones (no DNS lookup decides anything, so a
name cannot be re-pointed between the check and the connection):

- A **name** matches the same name in ``allowed_hosts``: case-folded, one trailing dot
  dropped (``LOCALHOST.`` is ``localhost``), non-ASCII names in their IDNA form.
- An **address** matches the same address, in whatever form a resolver reads it:
  ``127.1``, ``2130706433``, ``0x7f.0.0.1`` and ``0177.0.0.1`` are all ``127.0.0.1``
  (inet_aton's forms, which getaddrinfo and WHATWG URL parsing accept), and an IPv4-mapped
  IPv6 address (``[::ffff:127.0.0.1]``) is its IPv4 address.
- ``localhost`` is a name and ``127.0.0.1`` an address: neither allows the other. The
  default list, :data:`LOOPBACK_HOSTS`, holds both and ``::1``.
- A Unix socket (a database ``host=/run/postgresql``) matches only the same path listed in
  ``allowed_hosts``.

Anything that parsers read differently is refused rather than guessed: user information
(``http://127.0.0.1@evil.example/``), backslashes, whitespace and control characters,
percent-encoding in the host, empty or non-numeric ports, and names that look like an
address but are none (``127.0.0.08``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
import idna
from sqlalchemy.engine import URL

from neuroerp_ci.errors import TargetError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
HTTP_SCHEMES = ("http", "https")

# One DNS label: letters, digits, "_" and "-" (not at either end), at most 63 characters.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# An IPv4 number part as inet_aton and WHATWG read it: 0x.. hex, 0.. octal, else decimal.
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")
# host (a bracketed IPv6 literal or anything without ':') and an optional all-digit port.
_AUTHORITY = re.compile(r"(?P<host>\[[^\[\]]*\]|[^\[\]:]*)(?::(?P<port>[0-9]{1,5}))?")
_PORT_PLACEHOLDER = re.compile(r":\{[^{}]*\}")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\]")
# libpq / driver parameters that name where to connect, and those that read it elsewhere.
_HOST_PARAMS = frozenset({"host", "hostaddr", "unix_socket"})
_INDIRECT_PARAMS = frozenset(
    {"service", "servicefile", "dsn", "read_default_file", "read_default_group", "odbc_connect"}
)
# libpq's environment defaults that can point a connection elsewhere than the URL says.
_LIBPQ_ENV = {"hostaddr": "PGHOSTADDR"}
_LIBPQ_INDIRECT_ENV = ("PGSERVICE",)


@dataclass(frozen=True)
class HttpUrl:
    """An http(s) URL split the one way every client here agrees on."""

    url: str
    scheme: str
    host: str  # canonical: see canonical_host()
    port: int  # explicit, or 80 / 443
    explicit_port: bool
    target: str  # path and query, "/" when empty

    @property
    def authority(self) -> str:
        """``host[:port]`` for a Host header (IPv6 in brackets)."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}" if self.explicit_port else shown


def canonical_host(text: str) -> str:
    """The normalised form of a host name, address or socket path; ValueError if invalid.

    >>> [canonical_host(h) for h in ("LocalHost.", "127.1", "0x7f.0.0.1", "[::ffff:7f00:1]")]
    ['localhost', '127.0.0.1', '127.0.0.1', '127.0.0.1']
    """
    if text.startswith("/"):
        if _UNSAFE.search(text):
            raise ValueError(f"socket path {text!r} contains whitespace or control characters")
        return text.rstrip("/") or "/"
    if not text:
        raise ValueError("empty host")
    if _UNSAFE.search(text) or any(c in text for c in "%@/?#"):
        raise ValueError(
            f"host {text!r} contains whitespace, control characters, '\\', '%', '@', '/', '?'"
            " or '#'"
        )
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if ":" in host or "[" in host or "]" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"host {text!r} is not a valid IPv6 address") from None
        return str(address.ipv4_mapped or address)
    if host != text:
        raise ValueError(f"host {text!r}: only IPv6 addresses go in brackets")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"host {text!r} is not a valid international name: {exc}") from None
    host = host.lower()
    dotted = host.endswith(".")
    if dotted:
        host = host[:-1]
    labels = host.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        # Ends in a number: an IPv4 address in one of its forms, or nothing at all. With a
        # trailing dot, resolvers send it to DNS as a name: refused as well.
        quad = None if dotted else _ipv4(labels)
        if quad is None:
            raise ValueError(f"host {text!r} looks like an IPv4 address but is not a valid one")
        return quad
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {text!r} is not a valid host name")
    return host


def _ipv4(labels: Sequence[str]) -> str | None:
    """``a``, ``a.b``, ``a.b.c`` or ``a.b.c.d`` (dec/oct/hex parts) as dotted quad, else None."""
    if not 1 <= len(labels) <= 4 or not all(_NUMBER.fullmatch(p) for p in labels):
        return None
    numbers = []
    for part in labels:
        if part[:2].lower() == "0x":
            value = int(part[2:], 16)
        elif len(part) > 1 and part.startswith("0"):
            if not all(c in "01234567" for c in part):
                return None  # "08": neither octal nor, for inet_aton, decimal
            value = int(part, 8)
        else:
            value = int(part)
        numbers.append(value)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    total = last
    for i, n in enumerate(head):
        total += n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(total))


@lru_cache(maxsize=64)
def _allowed_set(allowed_hosts: tuple[str, ...]) -> frozenset[str]:
    return frozenset(canonical_host(h) for h in allowed_hosts)


def allowed_set(allowed_hosts: Iterable[str]) -> frozenset[str]:
    """The canonical forms of ``allowed_hosts``; ValueError naming an entry that is invalid."""
    hosts = tuple(allowed_hosts)
    for entry in hosts:
        try:
            canonical_host(entry)
        except ValueError as exc:
            raise ValueError(f"allowed_hosts entry {entry!r}: {exc}") from None
    return _allowed_set(hosts)


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether ``host`` (any form) is one of ``allowed_hosts``; an invalid host is not."""
    try:
        return canonical_host(host) in allowed_set(allowed_hosts)
    except ValueError:
        return False


def parse_http_url(url: str) -> HttpUrl:
    """``url`` split into scheme, canonical host, port and target; ValueError if it is not an
    unambiguous absolute http(s) URL (see the module docstring for what is refused)."""
    if _UNSAFE.search(url):
        raise ValueError(
            f"{url!r} contains whitespace, control characters or a backslash, which URL"
            " parsers read differently"
        )
    parts = urlsplit(url)
    if parts.scheme not in HTTP_SCHEMES or not url.lower().startswith(parts.scheme + "://"):
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    netloc = parts.netloc
    if "@" in netloc:
        raise ValueError(
            f"{url!r} has user information before the host ('...@'): put credentials in headers"
        )
    match = _AUTHORITY.fullmatch(netloc)
    if match is None or not match.group("host"):
        raise ValueError(f"{url!r} has no valid host[:port]")
    port_text = match.group("port")
    port = int(port_text) if port_text else (443 if parts.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise ValueError(f"{url!r} has port {port}, outside 1..65535")
    host = canonical_host(match.group("host"))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return HttpUrl(url, parts.scheme, host, port, port_text is not None, target)


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL this rule accepts, or None.

    For validators of the pipeline file: a ``{placeholder}`` stands for a port after ``:``
    and for a word elsewhere; the expanded URL is checked again before it is contacted.
    """
    try:
        parse_http_url(_PLACEHOLDER.sub("x", _PORT_PLACEHOLDER.sub(":1", url)))
    except ValueError as exc:
        return str(exc)
    return None


def ensure_allowed(url: str, allowed_hosts: Sequence[str], what: str = "URL") -> HttpUrl:
    """``url`` split, or TargetError unless it is http(s) and its host is in ``allowed_hosts``.

    Called before any traffic, so a mistyped or hostile URL is never contacted.
    """
    try:
        parsed = parse_http_url(url)
        allowed = allowed_set(allowed_hosts)
    except ValueError as exc:
        raise TargetError(f"{what} {exc}") from None
    if parsed.host not in allowed:
        raise TargetError(
            f"{what} host {parsed.host!r} ({url}) is not in allowed_hosts {list(allowed_hosts)}"
        )
    return parsed


class AllowedHostsTransport(httpx.BaseTransport):
    """An httpx transport that refuses any request whose host is not allowed.

    The host checked is the one httpx itself parsed and will connect to, so no difference
    between URL parsers and no redirect (were one followed) can reach another host.
    """

    def __init__(self, inner: httpx.BaseTransport, allowed_hosts: Sequence[str]) -> None:
        self._inner = inner
        self._allowed_hosts = tuple(allowed_hosts)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.raw_host.decode("ascii", errors="replace")  # what httpx dials
        if not host_allowed(host, self._allowed_hosts):
            raise TargetError(
                f"refused a request to {host!r} ({request.url}): not in allowed_hosts"
                f" {list(self._allowed_hosts)}"
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def guarded_client(
    allowed_hosts: Sequence[str],
    *,
    transport: httpx.BaseTransport | None = None,
    verify: bool = True,
    **options: Any,
) -> httpx.Client:
    """The one way to build an httpx client that talks to allowed hosts only.

    No redirects are followed (a redirect is an answer, recorded as its status) and no proxy
    is taken from the environment (a proxy would see the traffic and bypass the rule).
    """
    inner = transport or httpx.HTTPTransport(verify=verify, trust_env=False)
    return httpx.Client(
        transport=AllowedHostsTransport(inner, allowed_hosts),
        follow_redirects=False,
        trust_env=False,
        **options,
    )


def database_hosts(url: URL, env: Mapping[str, str]) -> list[str]:
    """Every host, address or socket a connection to ``url`` may use, driver parameters and
    libpq's environment included; ValueError for a URL whose destination cannot be known.

    SQLite connects nowhere. PostgreSQL (libpq) reads ``host`` (comma-separated lists,
    ``host:port`` pairs), ``hostaddr``, ``service`` and, for what the URL leaves out, the
    environment (``PGHOST``, ``PGHOSTADDR``, ``PGSERVICE``): the URL must name its host
    itself, a service (``service=``, ``PGSERVICE``) is refused because its file can name any
    host, and ``PGHOSTADDR`` counts as a host. Other backends: ``host``, ``hostaddr`` and
    ``unix_socket`` parameters count; ``dsn``, ``service`` and option files are refused.
    """
    backend = url.get_backend_name()
    query = {key.lower(): _values(value) for key, value in url.query.items()}
    if backend == "sqlite":
        if url.host:
            raise ValueError(f"an SQLite URL names no host, got {url.host!r}")
        return []
    indirect = sorted(_INDIRECT_PARAMS & set(query))
    if indirect:
        raise ValueError(
            f"parameter {indirect[0]!r} makes the driver read the host from elsewhere;"
            " name host and port in the URL"
        )
    hosts = [h for value in ([url.host] if url.host else []) for h in _split_hosts(value)]
    for key in sorted(_HOST_PARAMS & set(query)):
        hosts += [h for value in query[key] for h in _split_hosts(value)]
    if backend == "postgresql":
        for name in _LIBPQ_INDIRECT_ENV:
            if env.get(name) and "service" not in query:
                raise ValueError(f"{name} is set: libpq would read the host from its service file")
        for key, name in _LIBPQ_ENV.items():
            if env.get(name) and key not in query:
                hosts += _split_hosts(env[name])
    if not hosts:
        raise ValueError("the URL names no host: the driver would pick one (environment, socket)")
    return hosts


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _split_hosts(value: str) -> list[str]:
    """``"a,b:5433,[::1]:5432"`` -> ``["a", "b", "::1"]``; an empty entry is an error."""
    hosts = []
    for entry in value.split(","):
        if not entry:
            raise ValueError(f"empty host in {value!r}: the driver would use its default")
        if entry.startswith("/") or entry.startswith("@"):
            hosts.append(entry)  # a Unix socket directory (or an abstract one)
        elif entry.startswith("[") and "]" in entry:
            hosts.append(entry[: entry.index("]") + 1])
        elif entry.count(":") == 1:
            hosts.append(entry.split(":", 1)[0])
        else:
            hosts.append(entry)
    return hosts


def ensure_database_allowed(
    url: URL, allowed_hosts: Sequence[str], env: Mapping[str, str], shown: str
) -> None:
    """TargetError unless every host :func:`database_hosts` finds is in ``allowed_hosts``.

    ``shown`` is the URL as it may appear in the message (password masked).
    """
    try:
        hosts = database_hosts(url, env)
        allowed = allowed_set(allowed_hosts)
    except ValueError as exc:
        raise TargetError(f"database url {shown}: {exc}") from None
    for host in hosts:
        try:
            canonical = canonical_host(host)
        except ValueError as exc:
            raise TargetError(f"database url {shown}: {exc}") from None
        if canonical not in allowed:
            raise TargetError(
                f"database host {host!r} ({shown}) is not in allowed_hosts {list(allowed_hosts)}"
            )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def join_url(base_url: str, path: str) -> str:
    """``path`` appended to ``base_url`` (a base path prefix such as ``/api`` is kept)."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def resolve_url(url_or_path: str, base_url: str | None, what: str = "URL") -> str:
    """An absolute URL as is, a path joined to ``base_url`` (TargetError without one)."""
    if urlsplit(url_or_path).scheme:
        return url_or_path
    if base_url is None:
        raise TargetError(f"{what} {url_or_path!r} is a relative path but there is no base_url")
    return join_url(base_url, url_or_path)
