"""The licenses kind: licence metadata normalised to SPDX, judged on the expression tree, and
real runs over a venv whose distributions are written by hand (a ``.dist-info`` folder with
METADATA is all ``importlib.metadata`` reads).

The real runs show that the target's interpreter is the one examined (the project's own
install left out), that every distribution becomes a component, and that an interpreter
which is missing, crashes, prints garbage or has nothing installed is an error, not a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import KINDS, Check, CheckContext, execute_check
from neuroerp_ci.checks._environment import Environment, InstalledPackage
from neuroerp_ci.checks._spdx import (
    ALIASES,
    BSD_FAMILY,
    CLASSIFIERS,
    judge,
    normalise,
    read_license,
    spdx_id,
)
from neuroerp_ci.checks.licenses import (
    LicensesCheck,
    LicensesSettings,
    examine,
    package_finding,
    purl,
    report_reason,
    require_readable,
)
from neuroerp_ci.config import ConditionSpec, parse_pipeline
from neuroerp_ci.errors import ConfigError, ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    FindingSeverity,
    Outcome,
    OutcomeStatus,
    Priority,
)

# --- normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "license", "classifiers", "expected", "source"),
    [
        ("MIT OR GPL-3.0-only", None, (), "MIT OR GPL-3.0-only", "License-Expression"),
        ("mit and (isc or bsd-3-clause)", None, (), "MIT AND (ISC OR BSD-3-Clause)", None),
        ("Apache-2.0 WITH LLVM-exception", None, (), "Apache-2.0 WITH LLVM-exception", None),
        ("LicenseRef-Acme-1.0", None, (), "LicenseRef-Acme-1.0", None),
        # a LicenseRef is the distribution's own: not ScanCode's guess of it (MIT)
        ("LicenseRef-MIT-Discord", None, (), "LicenseRef-MIT-Discord", None),
        (None, "MIT", (), "MIT", "License"),
        (None, "MIT License", (), "MIT", "License"),
        (None, "Apache 2.0", (), "Apache-2.0", "License"),
        (None, "Apache License 2.0", (), "Apache-2.0", "License"),
        (None, "BSD-3", (), "BSD-3-Clause", "License"),
        (None, "GPL-3.0+", (), "GPL-3.0-or-later", "License"),  # deprecated id, replaced
        (None, "BSD", (), BSD_FAMILY, "License"),
        (None, None, ("License :: OSI Approved :: MIT License",), "MIT", "classifiers"),
        (
            None,
            None,
            ("License :: OSI Approved", "License :: OSI Approved :: BSD License"),
            BSD_FAMILY,
            "classifiers",
        ),
        (
            None,
            None,
            (
                "License :: OSI Approved :: Apache Software License",
                "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)",
            ),
            "Apache-2.0 AND GPL-3.0-or-later",  # alternatives or both? both must pass
            "classifiers",
        ),
        # the first usable source wins; an unusable one is passed over
        ("MIT", "GPLv3", ("License :: OSI Approved :: ISC License (ISCL)",), "MIT", None),
        ("not spdx", "ISC", (), "ISC", "License"),
        (
            None,
            "Copyright (c) Acme\nAll rights reserved.",
            ("License :: OSI Approved :: MIT License",),
            "MIT",
            "classifiers",
        ),  # noqa: E501
    ],
)
def test_metadata_is_normalised_to_spdx(
    expression: str | None,
    license: str | None,
    classifiers: tuple[str, ...],
    expected: str,
    source: str | None,
) -> None:
    reading = read_license(expression, license, classifiers)
    assert reading.expression == expected, reading
    if source is not None:
        assert reading.source == source
    assert reading.problem == ""


@pytest.mark.parametrize(
    ("expression", "license", "classifiers", "problem"),
    [
        (None, None, (), "no licence metadata"),
        (None, "UNKNOWN", (), "no licence metadata"),  # what old setuptools wrote
        ("MIT AND (", None, (), "License-Expression: not an SPDX expression"),
        ("Apache 2.0", None, (), "License-Expression: 'Apache 2.0' is not an SPDX licence id"),
        ("MIT WITH GPL-3.0-only", None, (), "License-Expression: not an SPDX expression"),
        ("Classpath-exception-2.0", None, (), "License-Expression: not an SPDX expression"),
        (None, "MIT/Apache-2.0", (), "License: 'MIT/Apache-2.0' is neither an SPDX expression"),
        (None, "Copyright (c) 2005, Acme.\nAll rights reserved.", (), "License: a licence text"),
        (None, "x" * 150, (), "License: a licence text, not a licence name"),
        (None, None, ("License :: Other/Proprietary License",), "classifiers: classifier 'Other"),
        # one classifier without an id makes the classifiers unusable, not half-read
        (
            None,
            None,
            ("License :: OSI Approved :: MIT License", "License :: Freeware"),
            "classifiers: classifier 'Freeware' has no SPDX id",
        ),
        (None, None, ("License :: OSI Approved",), "classifiers: no classifier names a licence"),
    ],
)
def test_garbage_is_unknown_and_says_why(
    expression: str | None, license: str | None, classifiers: tuple[str, ...], problem: str
) -> None:
    reading = read_license(expression, license, classifiers)
    assert not reading.known and reading.expression == "" and reading.source == ""
    assert reading.problem.startswith(problem), reading.problem


def test_every_table_entry_is_an_spdx_id_or_the_bsd_family() -> None:
    for name, license_id in {**ALIASES, **CLASSIFIERS}.items():
        assert license_id == BSD_FAMILY or spdx_id(license_id) == license_id, name
    assert all(name == " ".join(name.lower().split()) for name in ALIASES)


def test_unknown_keeps_what_the_metadata_said_first() -> None:
    reading = read_license("nope nope", "Copyright\nAcme", ("License :: Freeware",))
    assert reading.declared == "nope nope"
    assert reading.problem.count("; ") == 2  # one problem per source read


def test_normalise_refuses_an_unknown_id() -> None:
    assert normalise("gpl-2.0 or mit") == "GPL-2.0-only OR MIT"
    with pytest.raises(ValueError, match="'Foo-1.0' is not an SPDX licence id"):
        normalise("MIT OR Foo-1.0")


# --- evaluation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "allow", "deny", "denied", "not_allowed"),
    [
        ("MIT OR GPL-3.0-only", ["MIT"], [], (), ()),
        ("MIT OR GPL-3.0-only", [], ["GPL-3.0-only"], (), ()),
        ("MIT AND GPL-3.0-only", [], ["GPL-3.0-only"], ("GPL-3.0-only",), ()),
        ("MIT AND GPL-3.0-only", ["MIT"], [], (), ("GPL-3.0-only",)),
        ("MIT OR GPL-3.0-only", [], ["MIT", "GPL-3.0-only"], ("MIT", "GPL-3.0-only"), ()),
        ("MIT AND (ISC OR GPL-3.0-only)", ["MIT", "ISC"], [], (), ()),
        ("MIT AND (ISC OR GPL-3.0-only)", [], ["ISC", "GPL-3.0-only"], ("ISC", "GPL-3.0-only"), ()),
        # WITH judges the licence: the exception only grants more
        ("GPL-2.0-only WITH Classpath-exception-2.0", [], ["GPL-2.0-only"], ("GPL-2.0-only",), ()),
        ("Apache-2.0 WITH LLVM-exception", ["Apache-2.0"], [], (), ()),
        # ids are exact: or-later is another licence than only
        ("GPL-3.0-or-later", [], ["GPL-3.0-only"], (), ()),
        (BSD_FAMILY, ["BSD-3-Clause"], [], (), (BSD_FAMILY,)),
        (BSD_FAMILY, [BSD_FAMILY.lower()], [], (), ()),
        ("MIT AND ISC", ["ISC"], ["MIT"], ("MIT",), ()),
        ("MIT", [], [], (), ()),
    ],
)
def test_the_expression_tree_is_judged(
    expression: str,
    allow: list[str],
    deny: list[str],
    denied: tuple[str, ...],
    not_allowed: tuple[str, ...],
) -> None:
    judgement = judge(expression, allow, deny)
    assert (judgement.denied, judgement.not_allowed) == (denied, not_allowed)
    assert judgement.passes is (not denied and not not_allowed)


# --- settings -----------------------------------------------------------------------------


def test_settings_ids_are_spdx_ids_in_their_canonical_spelling() -> None:
    settings = LicensesSettings(allow=["mit", "Apache-2.0", BSD_FAMILY], deny=["GPL-3.0"])
    assert settings.allow == ["MIT", "Apache-2.0", BSD_FAMILY]
    assert settings.deny == ["GPL-3.0-only"]
    assert settings.unknown == "warning"
    assert spdx_id("gpl-3.0+") == "GPL-3.0-or-later"


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["Apache 2.0"], "'Apache 2.0' is not an SPDX licence id; did you mean 'Apache-2.0'?"),
        (
            ["GPL-3.0-onyl"],
            "'GPL-3.0-onyl' is not an SPDX licence id; did you mean 'GPL-3.0-only'?",
        ),
        (["Acme Public Licence"], "'Acme Public Licence' is not an SPDX licence id"),
        (["MIT OR ISC"], "'MIT OR ISC' is an expression: list each licence id on its own"),
        (["Classpath-exception-2.0"], "'Classpath-exception-2.0' is a licence exception"),
        (["Apache-2.0 WITH LLVM-exception"], "has an exception: list its licence alone"),
    ],
)
def test_a_bad_id_is_named(ids: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("?", r"\?")):
        LicensesSettings(deny=ids)


def test_settings_refuse_contradictions_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="'MIT' is both allowed and denied"):
        LicensesSettings(allow=["MIT", "ISC"], deny=["mit"])
    with pytest.raises(ValidationError, match="unknown"):
        LicensesSettings(unknown="fatal")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Extra inputs"):
        LicensesSettings.model_validate({"packages_ignore": ["x"]})  # waivers do that


def test_the_pipeline_file_names_the_bad_id_in_one_line(tmp_path: Path) -> None:
    document: dict[str, Any] = {
        "checks": [{"id": "lic", "kind": "licenses", "settings": {"deny": ["MIT", "GPLv3"]}}],
        "stages": {"dev": {"checks": ["lic"]}},
    }
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(document, tmp_path / "neuroerp-ci.toml")
    text = str(caught.value)
    assert "checks[lic].settings.deny" in text and "'GPLv3' is not an SPDX licence id" in text
    assert "\n" not in text
    document["checks"][0]["settings"] = {"deny": ["GPL-3.0-only"]}
    parse_pipeline(document, tmp_path / "neuroerp-ci.toml")  # and a good one loads


def test_the_kind_is_registered_and_reads_the_target_interpreter() -> None:
    kind = KINDS["licenses"]
    assert isinstance(kind, LicensesCheck)
    assert kind.runs_target_python(check_of(LicensesSettings()))
    names = kind.metric_names(LicensesSettings())
    assert names.findings and names.fixed == {"packages", "denied", "not_allowed", "unknown"}


# --- findings, components, default conditions ---------------------------------------------


def package(name: str, version: str = "1.0", **licence: Any) -> InstalledPackage:
    return InstalledPackage(name, name, version, f"/site/{name}-{version}.dist-info", **licence)


def test_findings_name_package_licence_and_id() -> None:
    settings = LicensesSettings(deny=["GPL-3.0-only"], allow=["MIT", "ISC"])
    denied = package_finding(
        examine(package("gpl-thing", license_expression="MIT AND GPL-3.0-only"), settings),
        settings,
    )
    assert denied is not None
    assert (denied.tool, denied.rule, denied.severity) == (
        "licenses",
        "license-denied",
        FindingSeverity.HIGH,
    )
    assert denied.message == "gpl-thing 1.0: licence MIT AND GPL-3.0-only is denied (GPL-3.0-only)"
    assert denied.location == "gpl-thing==1.0" and denied.path is None
    assert denied.help_url == "https://spdx.org/licenses/GPL-3.0-only.html"

    other = package_finding(
        examine(package("apache-thing", license="Apache 2"), settings), settings
    )
    assert other is not None and other.rule == "license-not-allowed"
    assert other.message == (
        "apache-thing 1.0: licence Apache-2.0 is not allowed (Apache-2.0 not on the allow list)"
    )
    assert other.severity is FindingSeverity.HIGH

    fine = examine(package("dual", license_expression="GPL-3.0-only OR MIT"), settings)
    assert package_finding(fine, settings) is None


def test_unknown_is_low_high_or_nothing_as_configured() -> None:
    text = "Copyright (c) 2024 Acme Corporation.\n" + "All rights reserved. " * 40
    mystery = package("mystery", license=text)
    for unknown, severity in (("warning", FindingSeverity.LOW), ("error", FindingSeverity.HIGH)):
        settings = LicensesSettings(unknown=unknown)  # type: ignore[arg-type]
        finding = package_finding(examine(mystery, settings), settings)
        assert finding is not None and finding.severity is severity
        assert finding.rule == "license-unknown"
        assert finding.message.startswith(
            "mystery 1.0: licence unknown (License: a licence text, not a licence name "
            "('Copyright (c) 2024 Acme Corporation. All rights reserved."
        )
        assert "\n" not in finding.message and len(finding.message) <= 200
    ignored = LicensesSettings(unknown="ignore")
    assert package_finding(examine(mystery, ignored), ignored) is None


def test_a_component_per_distribution_with_a_purl() -> None:
    settings = LicensesSettings()
    examined = examine(
        InstalledPackage(
            "zope-interface", "zope.interface", "6.0+local.1", "/x", license="ZPL 2.1"
        ),
        settings,
    )
    component = examined.component()
    assert component.name == "zope.interface" and component.version == "6.0+local.1"
    assert component.purl == "pkg:pypi/zope-interface@6.0%2Blocal.1"
    assert (component.license, component.license_declared) == ("ZPL-2.1", "ZPL 2.1")
    assert purl(package("idna", "3.10")) == "pkg:pypi/idna@3.10"
    unknown = examine(package("anon"), settings).component()
    assert (unknown.license, unknown.license_declared) == ("", "")


def test_unreadable_licence_metadata_is_an_error_not_unknown() -> None:
    environment = Environment(
        "py", "3.11.7", "/py", (package("ok"), package("bad", license_error="KeyError('x')")), ()
    )
    with pytest.raises(ToolError, match=r"could not read the licence metadata of 1 .*bad 1.0"):
        require_readable(environment)


def test_reason_counts_and_names_what_was_left_out() -> None:
    own = InstalledPackage("my-app", "my-app", "0.1.0", "/x", editable=True)
    environment = Environment("py", "3.11.7", "/py", (), (own,))
    settings = LicensesSettings()
    examined = [examine(package("a", license="MIT"), settings), examine(package("b"), settings)]
    assert report_reason(examined, environment, settings) == (
        "licences of 2 distributions installed in py (Python 3.11.7): 0 denied, 0 not allowed, "
        "1 unknown (no allow or deny list: only unknown licences can be findings); "
        "not examined, the project itself: my-app 0.1.0 (editable)"
    )


def outcomes(result: CheckResult, settings: LicensesSettings) -> dict[str, Outcome]:
    check = check_of(settings)
    found = [
        evaluate(ConditionSpec.model_validate({"check": "lic", **d}), check, result, default=True)
        for d in LicensesCheck().default_conditions(settings)
    ]
    return {o.condition: o for o in found}


@pytest.mark.parametrize(
    ("unknown", "expected"),
    [
        (
            "warning",
            {"findings(high+) <= 0 (default)": "fail", "findings(low+) <= 0 (default)": "warn"},
        ),  # noqa: E501
        ("error", {"findings(high+) <= 0 (default)": "fail"}),
        ("ignore", {"findings(high+) <= 0 (default)": "pass"}),
    ],
)
def test_default_conditions_block_on_high_and_warn_on_unknown(
    unknown: str, expected: dict[str, str]
) -> None:
    settings = LicensesSettings(deny=["GPL-3.0-only"], unknown=unknown)  # type: ignore[arg-type]
    result = CheckResult("lic", "licenses", CheckStatus.OK)
    packages = [package("mystery")]
    if unknown != "ignore":
        packages.append(package("gpl-thing", license_expression="GPL-3.0-only"))
    result.findings = [
        f for p in packages if (f := package_finding(examine(p, settings), settings)) is not None
    ]
    got = {name: o.status.value for name, o in outcomes(result, settings).items()}
    assert got == expected
    if unknown == "warning":  # only the unknown one: a warning, not a block
        result.findings = [f for f in result.findings if f.rule == "license-unknown"]
        statuses = {o.status for o in outcomes(result, settings).values()}
        assert statuses == {OutcomeStatus.PASS, OutcomeStatus.WARN}


# --- real interpreters --------------------------------------------------------------------

DISTRIBUTIONS: dict[str, dict[str, Any]] = {
    "gpl-thing": {"version": "1.0", "fields": ["License-Expression: GPL-3.0-only"]},
    "dual-thing": {"version": "2.0", "fields": ["License-Expression: MIT OR GPL-3.0-only"]},
    "classic-thing": {
        "version": "0.3",
        "fields": ["License: UNKNOWN", "Classifier: License :: OSI Approved :: MIT License"],
    },
    "apache-thing": {"version": "4.1", "fields": ["License: Apache License 2.0"]},
    "mystery-thing": {
        "version": "0.1",
        "fields": [
            "License: Copyright (c) 2024 Acme.\n        All rights reserved.\n        No use.",
            "Classifier: Programming Language :: Python :: 3",
        ],
    },
}
APP = '[project]\nname = "my-app"\nversion = "0.1.0"\n'


def write_distribution(
    site: Path, name: str, version: str, fields: list[str], direct_url: str | None = None
) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    header = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", *fields]
    (info / "METADATA").write_text("\n".join(header) + "\n\n", encoding="utf-8")
    if direct_url is not None:
        (info / "direct_url.json").write_text(direct_url, encoding="utf-8")


def new_venv(root: Path) -> tuple[Path, Path]:
    """A venv without pip (fast) and its site-packages folder."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120
    )
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return python, Path(site)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real venv with hand-written distributions and the project installed editable."""
    root = tmp_path_factory.mktemp("licenses")
    project = root / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(APP, encoding="utf-8")
    python, site = new_venv(root / "venv")
    for name, spec in DISTRIBUTIONS.items():
        write_distribution(site, name, spec["version"], spec["fields"])
    direct = json.dumps({"url": project.as_uri(), "dir_info": {"editable": True}})
    write_distribution(site, "my-app", "0.1.0", ["License-Expression: LicenseRef-Own"], direct)
    return python, project


def check_of(settings: LicensesSettings) -> Check:
    return Check("lic", "licences", "licenses", Priority.HIGH, (), 60, settings)


def run(python: Path | str, project: Path, work: Path, **settings: Any) -> CheckResult:
    ctx = CheckContext(project, work, str(python), dict(os.environ))
    return execute_check(LicensesCheck(), check_of(LicensesSettings(**settings)), ctx)


@pytest.mark.integration
def test_a_denied_licence_is_a_finding_naming_package_and_licence(
    venv: tuple[Path, Path], tmp_path: Path
) -> None:
    python, project = venv
    result = run(python, project, tmp_path / "work", deny=["GPL-3.0-only"])
    assert result.status is CheckStatus.OK, result.reason
    by_rule = {f.rule: f for f in result.findings}
    assert set(by_rule) == {"license-denied", "license-unknown"}  # dual-thing passes on MIT
    denied = by_rule["license-denied"]
    assert denied.location == "gpl-thing==1.0" and denied.severity is FindingSeverity.HIGH
    assert denied.message == "gpl-thing 1.0: licence GPL-3.0-only is denied (GPL-3.0-only)"
    unknown = by_rule["license-unknown"]
    assert unknown.location == "mystery-thing==0.1" and unknown.severity is FindingSeverity.LOW
    assert "'Copyright (c) 2024 Acme. All rights reserved. No use.'" in unknown.message
    # every distribution but the project is a component, with what its metadata said
    components = {c.name: c for c in result.components}
    assert set(components) == set(DISTRIBUTIONS)
    assert components["classic-thing"].license == "MIT"
    assert components["classic-thing"].license_declared == (
        "License :: OSI Approved :: MIT License"
    )
    assert components["apache-thing"].license == "Apache-2.0"
    assert components["dual-thing"].purl == "pkg:pypi/dual-thing@2.0"
    assert components["mystery-thing"].license == ""
    metrics = {name: m.value for name, m in result.metrics.items()}
    assert metrics == {"packages": 5, "denied": 1, "not_allowed": 0, "unknown": 1}
    assert result.reason.startswith(f"licences of 5 distributions installed in {python} (Python ")
    assert result.reason.endswith("not examined, the project itself: my-app 0.1.0 (editable)")
    table = json.loads(Path(result.artifacts["licenses_json"]).read_text(encoding="utf-8"))
    assert {row["name"]: row["verdict"] for row in table}["gpl-thing"] == "denied"
    assert result.tool_versions["python"] == result.reason.split("(Python ")[1].split(")")[0]
    assert result.tool_versions["license-expression"]
    statuses = {c: o.status for c, o in outcomes(result, LicensesSettings()).items()}
    assert statuses["findings(high+) <= 0 (default)"] is OutcomeStatus.FAIL
    assert statuses["findings(low+) <= 0 (default)"] is OutcomeStatus.WARN


@pytest.mark.integration
def test_an_allow_list_flags_what_it_does_not_name(venv: tuple[Path, Path], tmp_path: Path) -> None:
    python, project = venv
    result = run(python, project, tmp_path / "work", allow=["MIT"], unknown="ignore")
    assert result.status is CheckStatus.OK, result.reason
    assert sorted((f.location, f.rule) for f in result.findings) == [
        ("apache-thing==4.1", "license-not-allowed"),
        ("gpl-thing==1.0", "license-not-allowed"),
    ]
    assert result.metrics["unknown"].value == 1  # ignored, still counted
    assert result.metrics["not_allowed"].value == 2


@pytest.mark.integration
def test_unknown_as_error_is_high(venv: tuple[Path, Path], tmp_path: Path) -> None:
    python, project = venv
    result = run(python, project, tmp_path / "work", unknown="error")
    assert result.status is CheckStatus.OK, result.reason
    assert [(f.location, f.severity) for f in result.findings] == [
        ("mystery-thing==0.1", FindingSeverity.HIGH)
    ]


@pytest.mark.integration
def test_a_bogus_interpreter_is_an_error(venv: tuple[Path, Path], tmp_path: Path) -> None:
    _, project = venv
    result = run(tmp_path / "no" / "python", project, tmp_path / "work")
    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith(f"tool '{tmp_path}/no/python' not found")
    assert result.components == [] and result.findings == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("echo 'not json'", "did not list its installed packages"),
        ('echo \'{"python": "3.11"}\'', "did not list its installed packages"),
        ("echo 'Traceback: boom' >&2; exit 1", "exited 1: Traceback: boom"),
    ],
)
def test_an_interpreter_that_crashes_or_prints_garbage_is_an_error(
    venv: tuple[Path, Path], tmp_path: Path, script: str, reason: str
) -> None:
    _, project = venv
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    fake.chmod(0o755)
    result = run(fake, project, tmp_path / "work")
    assert result.status is CheckStatus.ERROR
    assert reason in result.reason


@pytest.mark.integration
def test_an_interpreter_with_nothing_installed_examined_nothing(tmp_path: Path) -> None:
    python, _ = new_venv(tmp_path / "empty")
    result = run(python, tmp_path, tmp_path / "work")
    assert result.status is CheckStatus.ERROR
    assert "no installed package" in result.reason
