"""The offline advisory mirror: range evaluation, lookup, severity and the local OSV endpoint."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
from packaging.version import Version

from neuroerp_ci.advisories import (
    AdvisoryMirror,
    cvss3_base_score,
    for_pip_audit,
    in_range,
    serve_osv,
    severity_label,
)
from neuroerp_ci.errors import ToolError


@pytest.fixture
def mirror(assets: Path) -> AdvisoryMirror:
    return AdvisoryMirror(assets / "pip_audit" / "mirror")


def ids(records: list[dict[str, object]]) -> list[object]:
    return [r["id"] for r in records]


# --- loading --------------------------------------------------------------------------------


def test_directory_without_vulns_folder_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="no vulns/ folder"):
        AdvisoryMirror(tmp_path)


def test_vulns_folder_without_yaml_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "vulns" / "pkg").mkdir(parents=True)
    (tmp_path / "vulns" / "pkg" / "README.md").write_text("nothing here")
    with pytest.raises(ToolError, match="holds no"):
        AdvisoryMirror(tmp_path)


def test_snapshot_names_the_data(mirror: AdvisoryMirror, tmp_path: Path) -> None:
    assert mirror.snapshot.startswith("Hand-written OSV samples")
    (tmp_path / "vulns" / "p").mkdir(parents=True)
    (tmp_path / "vulns" / "p" / "X.yaml").write_text("id: X\naffected: []\n")
    assert AdvisoryMirror(tmp_path).snapshot == str(tmp_path.resolve())


def test_scalars_stay_strings(mirror: AdvisoryMirror) -> None:
    # Unquoted 5.10 would be the float 5.1 with plain YAML, and the date a datetime.
    record = mirror.records("pyyaml")[0]
    assert record["affected"][0]["ranges"][1]["events"][1] == {"fixed": "5.10"}
    assert record["published"] == "2024-01-02T03:04:05Z"


def test_malformed_file_fails_its_package_closed(assets: Path) -> None:
    broken = AdvisoryMirror(assets / "pip_audit" / "broken-mirror")
    with pytest.raises(ToolError, match=r"cannot read .*PYSEC-BAD-1\.yaml"):
        broken.query("broken", "1.0")
    with pytest.raises(ToolError, match=r"PYSEC-BAD-2\.yaml is not an OSV record"):
        broken.query("notosv", "1.0")
    assert len(broken.errors) == 2
    # Other packages of the same mirror are unaffected.
    assert ids(broken.query("fine", "0.5")) == ["PYSEC-OK-1"]


# --- lookup and ranges ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PyYAML", ["PYSEC-TEST-1"]),
        ("pyyaml", ["PYSEC-TEST-1"]),
        ("PYYAML", ["PYSEC-TEST-1"]),
        ("py_yaml", []),  # normalises to "py-yaml", another project
    ],
)
def test_names_are_pep503_normalised(
    mirror: AdvisoryMirror, name: str, expected: list[str]
) -> None:
    assert ids(mirror.query(name, "5.4")) == expected


def test_folder_names_are_normalised_too(mirror: AdvisoryMirror) -> None:
    # The folder is "Demo.Pkg", the records say "demo_pkg" and "demo-pkg".
    assert ids(mirror.query("demo-pkg", "1.2")) == ["PYSEC-TEST-3"]
    assert ids(mirror.query("Demo_Pkg", "1.2")) == ["PYSEC-TEST-3"]


@pytest.mark.parametrize(
    ("version", "affected"),
    [("0.1", True), ("5.4", True), ("5.9.9", True), ("5.10", False), ("6.0.2", False)],
)
def test_introduced_zero_until_fixed(mirror: AdvisoryMirror, version: str, affected: bool) -> None:
    assert ("PYSEC-TEST-1" in ids(mirror.query("pyyaml", version))) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("0.9", False),
        ("1.0", True),
        ("1.4.9", True),
        ("1.5", False),
        ("1.9", False),
        ("2.0", True),
        ("2.5", False),
        ("2.5.post1", False),
    ],
)
def test_several_windows_in_any_order(mirror: AdvisoryMirror, version: str, affected: bool) -> None:
    assert ("PYSEC-TEST-3" in ids(mirror.query("demo-pkg", version))) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [("2.9", False), ("3.0", True), ("3.2", True), ("3.2.0", True), ("3.2.1", False)],
)
def test_last_affected_is_inclusive(mirror: AdvisoryMirror, version: str, affected: bool) -> None:
    assert ("PYSEC-TEST-4" in ids(mirror.query("demo-pkg", version))) is affected


def test_versions_list_adds_releases(mirror: AdvisoryMirror) -> None:
    assert ids(mirror.query("demo-pkg", "0.9.1")) == ["PYSEC-TEST-4"]
    assert ids(mirror.query("demo-pkg", "0.9.1.0")) == ["PYSEC-TEST-4"]  # PEP 440 equal
    assert ids(mirror.query("demo-pkg", "0.9.2")) == []


def test_entry_for_another_package_in_the_same_record(mirror: AdvisoryMirror) -> None:
    # PYSEC-TEST-4 also lists other-pkg 7.0, but it lives in demo-pkg's folder.
    assert ids(mirror.query("demo-pkg", "7.0")) == []


def test_range_with_unorderable_version_is_skipped(mirror: AdvisoryMirror) -> None:
    # "fixed: 2019-09-12" is not PEP 440: the range is ignored, the versions list is not.
    assert ids(mirror.query("oddver", "0.1")) == []
    assert ids(mirror.query("oddver", "0.3")) == ["PYSEC-TEST-5"]
    # An invalid queried version can only match the versions list, as a string.
    assert ids(mirror.query("oddver", "build-7")) == ["PYSEC-TEST-5"]
    assert ids(mirror.query("oddver", "build-8")) == []


def test_withdrawn_and_unknown_never_match(mirror: AdvisoryMirror) -> None:
    assert "PYSEC-TEST-2" not in ids(mirror.query("pyyaml", "1.0"))
    assert mirror.query("no-such-package", "1.0") == []


def test_in_range_edge_cases() -> None:
    assert in_range(Version("1.0"), [{"introduced": "1.0"}, {"fixed": "1.0"}]) is False
    assert in_range(Version("9.9"), [{"introduced": "1.0"}]) is True
    assert in_range(Version("1.0"), [{"introduced": "0"}, {"limit": "0.5"}]) is True
    assert in_range(Version("1.0"), [{"introduced": "not a version"}]) is None
    assert in_range(Version("1.0"), ["garbage"]) is None


def test_query_returns_copies(mirror: AdvisoryMirror) -> None:
    mirror.query("pyyaml", "1.0")[0]["id"] = "changed"
    assert ids(mirror.query("pyyaml", "1.0")) == ["PYSEC-TEST-1"]


def test_find_by_id_or_alias(mirror: AdvisoryMirror) -> None:
    found = mirror.find("PyYAML", "CVE-TEST-0001")
    assert found is not None and found["id"] == "PYSEC-TEST-1"
    assert mirror.find("pyyaml", "PYSEC-NOPE") is None


def test_real_mirror_urllib3(advisory_mirror: Path) -> None:
    real = AdvisoryMirror(advisory_mirror)
    found = ids(real.query("urllib3", "1.26.4"))
    assert "PYSEC-2021-108" in found  # fixed in 1.26.5
    assert ids(real.query("urllib3", "1.26.18")) == []


# --- severity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N", 8.1),
        ("CVSS:3.1/AV:A/AC:H/PR:H/UI:N/S:U/C:H/I:N/A:N", 4.2),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_score(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    ["", "CVSS:2.0/AV:N", "CVSS:3.1/AV:N/AC:L", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"],
)
def test_cvss3_bad_vectors(vector: str) -> None:
    assert cvss3_base_score(vector) is None


def test_severity_label(mirror: AdvisoryMirror) -> None:
    assert severity_label(mirror.records("pyyaml")[0]) == "critical"  # CVSS 9.8
    assert severity_label(mirror.records("demo-pkg")[0]) == "medium"  # "MODERATE"
    assert severity_label(mirror.records("demo-pkg")[1]) is None
    vector = "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"  # 1.8
    low = {"severity": [{"type": "CVSS_V3", "score": vector}]}
    assert severity_label(low) == "low"


# --- what pip-audit is served ---------------------------------------------------------------


def test_for_pip_audit_normalises_what_it_would_trip_on(mirror: AdvisoryMirror) -> None:
    served = for_pip_audit(mirror.records("pyyaml")[0])
    assert served["affected"][0]["package"]["name"] == "pyyaml"  # pip-audit compares ==
    odd = for_pip_audit(mirror.records("oddver")[0])
    assert odd["affected"][0]["ranges"][0]["events"] == [{"introduced": "0"}]
    assert "published" not in odd  # "2019-09-12 10:00:00" would crash pip-audit's strptime
    assert mirror.records("oddver")[0]["published"] == "2019-09-12 10:00:00"  # source intact


def test_serve_osv_answers_queries_on_loopback(mirror: AdvisoryMirror) -> None:
    with serve_osv(mirror) as url, httpx.Client(base_url=url, timeout=5) as client:
        assert url.startswith("http://127.0.0.1:")
        hit = client.post(
            "/v1/query", json={"package": {"name": "PyYAML", "ecosystem": "PyPI"}, "version": "5.3"}
        )
        miss = client.post(
            "/v1/query", json={"package": {"name": "pyyaml", "ecosystem": "PyPI"}, "version": "6.0"}
        )
        wrong_ecosystem = client.post(
            "/v1/query", json={"package": {"name": "pyyaml", "ecosystem": "npm"}, "version": "1"}
        )
        garbage = client.post("/v1/query", content=b"{not json")
        batch = client.post("/v1/querybatch", json={"queries": []})
        get = client.get("/v1/query")
    assert hit.status_code == 200
    vulns = hit.json()["vulns"]
    assert [v["id"] for v in vulns] == ["PYSEC-TEST-1"]
    assert vulns[0]["affected"][0]["package"]["name"] == "pyyaml"
    assert vulns[0]["summary"].startswith("Arbitrary code execution")
    assert miss.json() == {"vulns": []}
    assert wrong_ecosystem.status_code == 400
    assert garbage.status_code == 400
    assert batch.status_code == 404
    assert get.status_code == 405


def test_serve_osv_reports_mirror_errors_as_500(assets: Path) -> None:
    broken = AdvisoryMirror(assets / "pip_audit" / "broken-mirror")
    with serve_osv(broken) as url:
        response = httpx.post(
            f"{url}/v1/query",
            content=json.dumps({"package": {"name": "broken"}, "version": "1.0"}),
            timeout=5,
        )
    assert response.status_code == 500
    assert "PYSEC-BAD-1.yaml" in response.json()["error"]
    assert broken.errors and "PYSEC-BAD-1.yaml" in broken.errors[0]


def test_serve_osv_closes_its_port(mirror: AdvisoryMirror) -> None:
    with serve_osv(mirror) as url:
        port = int(url.rsplit(":", 1)[1])
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))
