"""The one allowed-hosts rule (neuroerp_ci.support.hosts): every form a host or address can take,
URLs that parsers read differently, database URLs with their driver parameters, and the
httpx guard that re-checks the host a client dials."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from neuroerp_ci.config import TargetSpec
from neuroerp_ci.errors import TargetError
from neuroerp_ci.support.hosts import (
    LOOPBACK_HOSTS,
    allowed_set,
    canonical_host,
    database_hosts,
    ensure_allowed,
    ensure_database_allowed,
    guarded_client,
    host_allowed,
    http_url_problem,
    parse_http_url,
)


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ("::ffff:7f00:1", "127.0.0.1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("::1", "::1"),
        ("LOCALHOST", "localhost"),
        ("localhost.", "localhost"),
        ("ｌｏｃａｌｈｏｓｔ", "localhost"),  # fullwidth: IDNA maps it to ASCII
        ("127。0。0。1", "127.0.0.1"),  # ideographic full stops
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("db_primary.internal", "db_primary.internal"),
        ("/run/postgresql/", "/run/postgresql"),
    ],
)
def test_canonical_forms(host: str, canonical: str) -> None:
    assert canonical_host(host) == canonical


@pytest.mark.parametrize(
    "host",
    [
        "", "127.0.0.1.", "127.0.0.08", "1.2.3.4.5", "127.0.0.256", "0x100.0.0.1",
        "127.0.0.1 ", " localhost", "local\thost", "evil.example\\", "127.0.0.1%2e",
        "user@127.0.0.1", "[127.0.0.1]", "fe80::1%eth0", "a..b", "-a.example", "a" * 64,
        "ex ample", "loc\x00alhost",
    ],
)
def test_invalid_or_ambiguous_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        canonical_host(host)
    assert not host_allowed(host, LOOPBACK_HOSTS)


def test_names_and_addresses_do_not_allow_each_other() -> None:
    assert host_allowed("127.1", ["127.0.0.1"]) and not host_allowed("localhost", ["127.0.0.1"])
    assert host_allowed("LOCALHOST.", ["localhost"])
    assert not host_allowed("127.0.0.1", ["localhost"])
    assert host_allowed("::ffff:127.0.0.1", ["127.0.0.1"])
    assert not host_allowed("::1", ["127.0.0.1"])
    assert not host_allowed("localhost.evil.example", LOOPBACK_HOSTS)
    assert allowed_set(["[::1]", "LocalHost"]) == {"::1", "localhost"}
    with pytest.raises(ValueError, match="allowed_hosts entry 'bad host'"):
        allowed_set(["127.0.0.1", "bad host"])


@pytest.mark.parametrize(
    ("url", "host", "port", "target"),
    [
        ("http://127.1:8000/api?x=1", "127.0.0.1", 8000, "/api?x=1"),
        ("HTTPS://LOCALHOST.", "localhost", 443, "/"),
        ("http://[::ffff:127.0.0.1]/a#frag", "127.0.0.1", 80, "/a"),
        ("http://0x7f.0.0.1:1/", "127.0.0.1", 1, "/"),
    ],
)
def test_parse_http_url(url: str, host: str, port: int, target: str) -> None:
    parsed = parse_http_url(url)
    assert (parsed.host, parsed.port, parsed.target) == (host, port, target)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1@evil.example/", "user information"),
        ("http://evil.example\\@127.0.0.1/", "backslash"),  # urllib3 dials evil.example
        ("http://127.0.0.1\\@evil.example/", "backslash"),  # urllib3 dials 127.0.0.1
        (" http://evil.example/", "whitespace"),
        ("http://127.0.0.1\t.evil.example/", "whitespace"),
        ("http://127.0.0.1%2eevil.example/", "'%'"),  # urllib3 decodes it: a DNS name
        ("http://127.0.0.1:80:80/", "no valid host"),
        ("http://127.0.0.1:/", "no valid host"),
        ("http://127.0.0.1:+80/", "no valid host"),
        ("http://127.0.0.1:99999/", "outside 1..65535"),
        ("http:127.0.0.1/", "not an http"),
        ("ftp://127.0.0.1/", "not an http"),
        ("http:///path", "no valid host"),
        ("http://127.0.0.08/", "not a valid one"),
    ],
)
def test_urls_parsers_read_differently_are_refused(url: str, why: str) -> None:
    problem = http_url_problem(url)
    assert problem is not None and why in problem
    with pytest.raises(TargetError):
        ensure_allowed(url, LOOPBACK_HOSTS)


def test_fragment_and_query_tricks_name_the_real_host() -> None:
    for url in ("http://evil.example#@127.0.0.1", "http://evil.example?@127.0.0.1/"):
        with pytest.raises(TargetError, match="host 'evil.example'"):
            ensure_allowed(url, LOOPBACK_HOSTS, "endpoint")


def test_placeholders_are_checked_as_a_port_or_a_word() -> None:
    assert http_url_problem("http://127.0.0.1:{port}/x") is None
    assert http_url_problem("http://{env:API_HOST}/x") is None
    assert http_url_problem("ftp://{env:API_HOST}/x") is not None


@pytest.mark.parametrize(
    ("url", "env", "hosts"),
    [
        ("postgresql+psycopg://u@127.0.0.1:5432/db", {}, ["127.0.0.1"]),
        ("postgresql+psycopg://u@127.0.0.1/db?host=10.0.0.9", {}, ["127.0.0.1", "10.0.0.9"]),
        ("postgresql+psycopg://u@/db?host=h1:5432&host=h2:5433", {}, ["h1", "h2"]),
        ("postgresql+psycopg://u@a,b/db", {}, ["a", "b"]),
        ("postgresql+psycopg://u@127.0.0.1/db?host=a,[::1]:5", {}, ["127.0.0.1", "a", "[::1]"]),
        ("postgresql+psycopg://u@127.0.0.1/db?hostaddr=10.1.1.1", {}, ["127.0.0.1", "10.1.1.1"]),
        ("postgresql+psycopg://u@127.0.0.1/db", {"PGHOSTADDR": "10.2.2.2"},
         ["127.0.0.1", "10.2.2.2"]),
        ("postgresql+psycopg://u@/db?host=/run/postgresql", {}, ["/run/postgresql"]),
        ("mysql+pymysql://u@db/x?unix_socket=/tmp/m.sock", {}, ["db", "/tmp/m.sock"]),
        ("sqlite:///x.db", {"PGHOST": "evil"}, []),
    ],
)
def test_database_hosts(url: str, env: dict[str, str], hosts: list[str]) -> None:
    assert database_hosts(make_url(url), env) == hosts


@pytest.mark.parametrize(
    ("url", "env", "why"),
    [
        ("postgresql+psycopg://u@/db", {}, "names no host"),
        ("postgresql+psycopg://u@127.0.0.1/db?service=prod", {}, "'service'"),
        ("postgresql+psycopg://u@127.0.0.1/db", {"PGSERVICE": "prod"}, "PGSERVICE"),
        ("postgresql+psycopg://u@127.0.0.1/db?host=,b", {}, "empty host"),
        ("mysql+pymysql://u@db/x?read_default_file=/etc/my.cnf", {}, "read_default_file"),
    ],
)
def test_database_urls_whose_host_cannot_be_known_are_refused(
    url: str, env: dict[str, str], why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        database_hosts(make_url(url), env)


def test_every_database_host_must_be_allowed() -> None:
    url = make_url("postgresql+psycopg://u:pw@127.0.0.1/db?host=127.0.0.1,127.0.0.2")
    with pytest.raises(TargetError, match=r"database host '127.0.0.2' \(x\) is not in"):
        ensure_database_allowed(url, LOOPBACK_HOSTS, {}, "x")
    ensure_database_allowed(make_url("postgresql+psycopg://u@127.1/db"), ["127.0.0.1"], {}, "x")
    socket_url = make_url("postgresql+psycopg://u@/db?host=/run/postgresql")
    with pytest.raises(TargetError, match="'/run/postgresql'"):
        ensure_database_allowed(socket_url, LOOPBACK_HOSTS, {}, "x")
    ensure_database_allowed(socket_url, [*LOOPBACK_HOSTS, "/run/postgresql/"], {}, "x")


def test_guarded_client_refuses_hosts_the_client_would_dial_and_follows_no_redirect() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://127.0.0.2/"})

    with guarded_client(["127.0.0.1"], transport=httpx.MockTransport(answer)) as client:
        assert client.get("http://127.1/x").status_code == 302  # the redirect is an answer
        with pytest.raises(TargetError, match="refused a request to '127.0.0.2'"):
            client.get("http://127.0.0.2/")
    assert seen == ["http://127.1/x"]


def test_the_pipeline_files_base_url_follows_the_same_rule() -> None:
    assert TargetSpec(base_url="http://127.1:{port}", allowed_hosts=["127.0.0.1"]).base_url
    assert TargetSpec(base_url="http://{env:API_HOST}:{port}").base_url  # checked once expanded
    for bad, why in (
        ("http://127.0.0.2:{port}\\@127.0.0.1", "backslash"),
        ("http://127.0.0.1@evil.example", "user information"),
        ("http://evil.example:{port}", "not in allowed_hosts"),
        ("ftp://127.0.0.1", "not an http"),
    ):
        with pytest.raises(ValidationError, match=why):
            TargetSpec(base_url=bad)
    with pytest.raises(ValidationError, match="allowed_hosts entry 'bad host'"):
        TargetSpec(allowed_hosts=["127.0.0.1", "bad host"])
