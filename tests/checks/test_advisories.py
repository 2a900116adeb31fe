"""The offline advisory mirror: range evaluation, lookup, severity and the local OSV endpoint."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from datetime import date
from pathlib import Path

import httpx
import pytest
from packaging.version import Version

from neuroerp_ci.checks.advisories import (
    AdvisoryMirror,
    MirrorFolder,
    SnapshotDate,
    cvss3_base_score,
    for_pip_audit,
    in_range,
    mirror_problem,
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


# --- several folders, other layouts, subsets ------------------------------------------------

TODAY = date(2026, 12, 1)


@pytest.fixture
def ghsa(assets: Path) -> Path:
    """GitHub-advisory-style OSV JSON records in dated folders, as github/advisory-database."""
    return assets / "pip_audit" / "ghsa-export"


def record(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_tree_of_json_records_is_indexed_by_package(ghsa: Path) -> None:
    tree = AdvisoryMirror(ghsa)
    assert not tree.folders[0].pypa_layout
    assert ids(tree.query("pyyaml", "6.0")) == ["GHSA-TEST-0001"]
    assert ids(tree.query("PyYAML", "5.3")) == ["GHSA-TEST-0001", "PYSEC-TEST-1"]
    # the npm record names "pyyaml" too, in another ecosystem; .github/garbage.json is hidden
    assert "GHSA-TEST-NPM" not in ids(tree.records("pyyaml"))
    assert tree.errors == []


def test_merged_folders_newer_modified_wins(
    mirror: AdvisoryMirror, assets: Path, ghsa: Path
) -> None:
    merged = AdvisoryMirror(assets / "pip_audit" / "mirror", ghsa)
    # PYSEC-TEST-1 is in both: the JSON copy is newer (modified 2026-11-21) and fixed in 5.9
    assert ids(merged.query("pyyaml", "5.9.5")) == ["GHSA-TEST-0001"]
    assert ids(mirror.query("pyyaml", "5.9.5")) == ["PYSEC-TEST-1"]  # the older copy alone
    assert ids(merged.query("pyyaml", "5.3")) == ["PYSEC-TEST-1", "GHSA-TEST-0001"]
    # an advisory only GitHub published is found next to the PyPA records
    assert ids(merged.query("pyyaml", "6.0")) == ["GHSA-TEST-0001"]
    assert merged.snapshot.startswith("Hand-written OSV samples") and "; Hand-written GitHub" in (
        merged.snapshot
    )


def test_related_records_give_the_highest_rating(assets: Path, ghsa: Path) -> None:
    merged = AdvisoryMirror(assets / "pip_audit" / "mirror", ghsa)
    both = merged.related("oddver", {"PYSEC-TEST-5"})
    assert sorted(r["id"] for r in both) == ["GHSA-TEST-0005", "PYSEC-TEST-5"]
    assert [severity_label(r) for r in both if r["id"] == "GHSA-TEST-0005"] == ["high"]


def test_a_broken_record_in_a_tree_fails_every_query(tmp_path: Path) -> None:
    # In a tree any record may be about any package: one unreadable PyPI file stops them all.
    record(tmp_path / "a" / "GOOD-1.json", json.dumps({"id": "GOOD-1", "affected": []}))
    record(tmp_path / "b" / "BAD-1.json", '{"id": "BAD-1", "affected": [{"package": "PyPI"')
    tree = AdvisoryMirror(tmp_path)
    with pytest.raises(ToolError, match=r"cannot read .*BAD-1\.json"):
        tree.query("anything", "1.0")
    assert len(tree.errors) == 1


def test_a_subset_knows_only_its_packages(tmp_path: Path) -> None:
    record(tmp_path / "vulns" / "idna" / "PYSEC-X.yaml", "id: PYSEC-X\naffected: []\n")
    (tmp_path / "PACKAGES.txt").write_text("# comment\nidna\nSix  # no advisory at all\n")
    subset = AdvisoryMirror(tmp_path)
    assert subset.folders[0].subset and subset.folders[0].packages == {"idna", "six"}
    assert ids(subset.records("IDNA")) == ["PYSEC-X"]
    assert subset.records("six") == []  # covered: it really has none
    with pytest.raises(ToolError) as caught:
        subset.query("requests", "2.32.3")
    assert "no advisory data for 'requests'" in str(caught.value)
    assert "(2 packages) does not cover it" in str(caught.value)
    assert subset.errors == [str(caught.value)]


def test_a_subset_next_to_a_full_mirror_is_no_limit(tmp_path: Path, assets: Path) -> None:
    record(tmp_path / "vulns" / "idna" / "PYSEC-X.yaml", "id: PYSEC-X\naffected: []\n")
    (tmp_path / "PACKAGES.txt").write_text("idna\n")
    both = AdvisoryMirror(tmp_path, assets / "pip_audit" / "mirror")
    assert ids(both.query("pyyaml", "5.3")) == ["PYSEC-TEST-1"]


def test_mirror_problem_names_what_is_missing(tmp_path: Path, assets: Path, ghsa: Path) -> None:
    assert mirror_problem(assets / "pip_audit" / "mirror") is None
    assert mirror_problem(ghsa) is None
    assert "no vulns/ folder and no OSV records" in str(mirror_problem(tmp_path))
    assert "no vulns/ folder" in str(mirror_problem(tmp_path / "nowhere"))


# --- how old the data is --------------------------------------------------------------------


def test_date_from_snapshot_file_or_newest_record(assets: Path, ghsa: Path) -> None:
    # the test mirror's SNAPSHOT.txt has no date: its newest record says 2024-01-02
    samples = MirrorFolder(assets / "pip_audit" / "mirror")
    assert samples.snapshot_date(TODAY) == SnapshotDate(date(2024, 1, 2), "newest record modified")
    # SNAPSHOT.txt says 2026-11-18, a record was modified 2026-11-21 (the npm one, 11-22, too:
    # any record shows how fresh the folder is)
    export = MirrorFolder(ghsa)
    assert export.snapshot_date(TODAY) == SnapshotDate(date(2026, 11, 22), "newest record modified")
    assert export.snapshot_date(TODAY).age_days(TODAY) == 9  # type: ignore[union-attr]
    # a date after "today" is not believed: the next older one counts
    assert export.snapshot_date(date(2026, 11, 18)) == SnapshotDate(
        date(2026, 11, 18), "SNAPSHOT.txt"
    )
    assert export.snapshot_date(date(2026, 11, 1)) is None


def test_snapshot_file_wins_a_tie_and_a_later_date(tmp_path: Path) -> None:
    record(
        tmp_path / "vulns" / "p" / "X.yaml",
        "id: X\nmodified: '2024-05-01T00:00:00Z'\naffected: []\n",
    )
    (tmp_path / "SNAPSHOT.txt").write_text("Some mirror, snapshot taken 2024-06-30 (commit abc)\n")
    assert MirrorFolder(tmp_path).snapshot_date(TODAY) == SnapshotDate(
        date(2024, 6, 30), "SNAPSHOT.txt"
    )


def test_no_date_at_all_is_none(tmp_path: Path) -> None:
    record(tmp_path / "vulns" / "p" / "X.yaml", "id: X\naffected: []\n")
    assert MirrorFolder(tmp_path).snapshot_date(TODAY) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_git_checkout_is_dated_by_its_head_commit(tmp_path: Path) -> None:
    record(
        tmp_path / "vulns" / "p" / "X.yaml",
        "id: X\nmodified: '2024-05-01T00:00:00Z'\naffected: []\n",
    )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_AUTHOR_DATE": "2025-03-04T05:06:07Z", "GIT_COMMITTER_DATE": "2025-03-04T05:06:07Z",
    }  # fmt: skip
    for argv in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(["git", *argv], cwd=tmp_path, env=env, check=True, timeout=30)
    assert MirrorFolder(tmp_path).snapshot_date(TODAY) == SnapshotDate(
        date(2025, 3, 4), "git HEAD commit"
    )


def test_a_folder_inside_another_checkout_is_not_dated_by_it(assets: Path) -> None:
    # tests/assets lives in neuroerp-ci's own checkout: its commits say nothing about the data
    assert MirrorFolder(assets / "pip_audit" / "mirror").snapshot_date(TODAY) == SnapshotDate(
        date(2024, 1, 2), "newest record modified"
    )


def test_real_mirror_is_the_2024_10_10_snapshot(advisory_mirror: Path) -> None:
    snapshot = MirrorFolder(advisory_mirror).snapshot_date()
    assert snapshot is not None and snapshot.day == date(2024, 10, 10), snapshot
    assert snapshot.age_days(TODAY) == 782


# --- the demo's advisory subset -------------------------------------------------------------

DEMO = Path(__file__).resolve().parents[2] / "neuroerp_ci" / "demo" / "project"


def test_demo_subset_covers_the_demo_pins_and_keeps_its_licence() -> None:
    subset = MirrorFolder(DEMO / "advisories")
    pins = {
        line.split("==")[0].strip().lower()
        for line in (DEMO / "requirements.txt").read_text("utf-8").splitlines()
        if "==" in line
    }
    assert subset.packages is not None and pins | {"urllib3"} == set(subset.packages)
    assert subset.snapshot_date(TODAY) == SnapshotDate(date(2024, 10, 10), "SNAPSHOT.txt")
    assert "Attribution 4.0 International" in (DEMO / "advisories" / "LICENSE").read_text("utf-8")
    notice = (DEMO / "advisories" / "NOTICE.md").read_text("utf-8")
    assert "CC-BY-4.0" in notice and "2024-10-10" in notice and "pypa/advisory-database" in notice


def test_demo_subset_is_the_snapshot_unchanged(advisory_mirror: Path) -> None:
    # every advisory the snapshot holds for a covered package, byte for byte, and nothing else
    subset = MirrorFolder(DEMO / "advisories")
    assert subset.packages is not None
    full = MirrorFolder(advisory_mirror)
    for package in sorted(subset.packages):
        expected = {r["id"] for r in full.records(package)}
        assert {r["id"] for r in subset.records(package)} == expected, package
    for copy in (DEMO / "advisories" / "vulns").glob("*/*.yaml"):
        original = advisory_mirror / "vulns" / copy.parent.name / copy.name
        assert copy.read_bytes() == original.read_bytes(), copy
