"""The commented pipeline file ``neuroerp-ci init`` writes for a detected project.

:func:`render_pipeline` turns a :class:`~neuroerp_ci.project.detect.ProjectDetection` into
TOML text (no I/O): ``[target]`` with the project's interpreter, ``[advisories]`` commented out,
one ``[[checks]]`` entry per check that makes sense for what was found (unit tests with
coverage, the dependency audit, bandit, secrets, licences) and a ``development`` stage with
their conditions. Every section has a comment saying what it is and what was detected, or
"not found: ..." and what to do about it. Only keys of :mod:`neuroerp_ci.config.pipeline`
and the kinds' settings are written; the CLI loads the text with the real loader before it
writes the file.

Example::

    text = render_pipeline(detect_project(Path(".")))
    Path("neuroerp-ci.toml").write_text(text, encoding="utf-8")
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from neuroerp_ci.checks.detect_secrets import WALK_SKIPS
from neuroerp_ci.checks.pip_audit import DEFAULT_MAX_AGE_DAYS
from neuroerp_ci.project.detect import ProjectDetection, RequirementsFile

STAGE = "development"  # the stage init writes; `neuroerp-ci run development` runs it
UNIT_TESTS = "unit-tests"
STATIC_SECURITY = "static-security"
DEPENDENCY_AUDIT = "dependency-audit"
SECRET_SCAN = "secret-scan"
LICENCES = "licences"
COVERAGE_MIN_PCT = 80
_WIDTH = 99
_RULE = "# " + "-" * (_WIDTH - 2)
_COPYLEFT = ("AGPL-3.0-only", "AGPL-3.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later")


@dataclass
class _Document:
    """The file being written: lines, and the stage's checks and conditions as they come."""

    lines: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    conditions: list[tuple[str, list[str]]] = field(default_factory=list)  # (comment, rows)

    def comment(self, *paragraphs: str) -> None:
        for paragraph in paragraphs:
            self.lines += textwrap.wrap(
                paragraph, _WIDTH, initial_indent="# ", subsequent_indent="# ",
                break_long_words=False, break_on_hyphens=False,
            )  # fmt: skip

    def banner(self, *paragraphs: str) -> None:
        self.lines += ["", _RULE]
        self.comment(*paragraphs)
        self.lines.append(_RULE)

    def add(self, *lines: str) -> None:
        self.lines += lines


def render_pipeline(detection: ProjectDetection) -> str:
    """The pipeline file for ``detection``: TOML with a comment on every section."""
    doc = _Document()
    _header(doc, detection)
    _target(doc, detection)
    _advisories(doc)
    _cache(doc)
    doc.banner(
        "[[checks]]: what to measure. Each check runs one real tool and reports metrics and "
        "findings; it never decides pass or fail (the stage's conditions at the end do). "
        "`priority` (high, medium, low) sets the default severity of its conditions; `timeout` "
        "(seconds, default 600) bounds each tool."
    )
    _unit_tests(doc, detection)
    _dependency_audit(doc, detection)
    _static_security(doc, detection)
    _secret_scan(doc, detection)
    _licences(doc, detection)
    _stage(doc)
    return "\n".join(doc.lines).rstrip("\n") + "\n"


def _header(doc: _Document, detection: ProjectDetection) -> None:
    doc.comment(f"neuroerp-ci pipeline for {detection.name}, written by `neuroerp-ci init`.")
    doc.add("#")
    doc.comment(
        f"Run it in this folder with `neuroerp-ci run {STAGE}`; `neuroerp-ci validate` lists "
        f"every condition, `neuroerp-ci plan {STAGE}` the order the checks run in. Every key "
        "and its default: docs/configuration.md. A commented example of everything else (a "
        "service started for http, load and e2e checks; staging and production stages): the "
        "demo's pipeline file, which `neuroerp-ci demo` writes to ./neuroerp-demo/."
    )
    doc.add("#", "# What init found in this folder:")
    for what, text in detection.found():
        label = f"#   {what + ':':<16}"
        doc.lines += textwrap.wrap(
            text, _WIDTH, initial_indent=label, subsequent_indent="#" + " " * (len(label) - 1),
            break_long_words=False, break_on_hyphens=False,
        )  # fmt: skip


def _target(doc: _Document, detection: ProjectDetection) -> None:
    doc.banner(
        "[target]: what is tested. No service is started: the checks below need none (http, "
        "load and e2e checks need base_url, start and health_url: see the demo's [target])."
    )
    doc.add("[target]", f"name = {_q(detection.name)}")
    venv = detection.venv
    if venv is not None:
        needs = ""
        if venv.missing:
            needs = (
                f" It cannot import {', '.join(venv.missing)} yet: install pytest and pytest-cov "
                f"into it ({venv.python} -m pip install pytest pytest-cov), or the unit tests "
                "are an error."
            )
        doc.comment(
            f"The interpreter the tests and the licence check run on: the project's "
            f"{venv.folder} (found: {venv.folder}/pyvenv.cfg).{needs}"
        )
        doc.add(f"python = {_q(venv.python)}")
        return
    doc.comment(
        "The interpreter the tests and the licence check run on. Not found: no .venv/ or venv/ "
        "with a pyvenv.cfg. Unset, they run on neuroerp-ci's own interpreter (and its "
        "packages) and the verdict warns about it. Create the project's environment (python -m "
        "venv .venv, then install the project, pytest and pytest-cov into it) and neuroerp-ci "
        'uses it; or set python to the interpreter to use ("{python}": neuroerp-ci\'s own, '
        "without the warning)."
    )
    doc.add('# python = ".venv/bin/python"')


def _advisories(doc: _Document) -> None:
    doc.banner(
        "[advisories]: where the dependency audit's vulnerability data comes from. Unset, "
        "pip-audit asks the live OSV service (api.osv.dev). A machine that cannot reach it "
        "needs an offline OSV mirror, a checkout of the PyPA advisory database "
        "(https://github.com/pypa/advisory-database): name it here (relative to this file), or "
        "per run with --advisories DIR or NEUROERP_CI_ADVISORIES=DIR. With neither, the audit "
        "is an error that says so, never a silent pass. (The demo sets fallback_mirror on its "
        "check instead: a folder used only when the live service is unreachable.) The data's "
        f"age is the metric advisory_age_days: older than {DEFAULT_MAX_AGE_DAYS:g} days warns."
    )
    doc.add("# [advisories]", '# mirror = "../advisory-database"')


def _cache(doc: _Document) -> None:
    doc.banner(
        "[cache]: a test suite or scanner none of whose inputs (the files it reads, its "
        "settings, the installed packages and tools) changed since a passing run is skipped, "
        "and that run's result is judged again by this run's conditions (--no-cache runs all). "
        "Files the running project writes and no check reads (a local database, uploads) "
        "would make every run look changed: list them in ignore."
    )
    doc.add("# [cache]", '# ignore = ["data/*.sqlite3"]')


def _unit_tests(doc: _Document, detection: ProjectDetection) -> None:
    tests, packages = detection.tests, detection.packages
    settings = [f"paths = {_array(tests.paths)}"] if tests is not None else ['paths = ["tests"]']
    covered = ""
    if packages:
        settings.append(f"cov = {_array(p.name for p in packages)}")
        covered = f" and coverage_pct of {', '.join(p.name for p in packages)}"
    entry = [
        "[[checks]]",
        f'id = "{UNIT_TESTS}"',
        'title = "Unit tests with coverage"',
        'kind = "pytest"',
        f"settings = {_inline(settings)}",
    ]
    src_path = _src_pythonpath(detection)
    if src_path:
        entry.append(f'env = {{ PYTHONPATH = "{{project}}/{src_path}" }}')
    doc.add("")
    if tests is None:
        doc.comment(
            f"Unit tests (pytest). {detection.found()[1][1].capitalize()}. Add tests, then "
            f"uncomment this check and add {_q(UNIT_TESTS)} to the stage's checks at the end."
        )
        doc.add(*(f"# {line}" for line in entry))
        return
    doc.comment(
        f"Unit tests with coverage (pytest with pytest-cov, on the target's interpreter). "
        f"Found: {detection.found()[1][1]}. Metrics: tests, passed, failed, errors, skipped, "
        f'duration_s{covered}. `markers = "unit"` would run only the tests marked so; `args` '
        "adds pytest options."
        + ("" if packages else ' Coverage is not measured: no package found (cov = ["pkg"]).')
    )
    if src_path:
        doc.comment(
            f"src layout: PYTHONPATH puts {src_path}/ first, so the tests import the tree under "
            "test even where the interpreter has another copy installed."
        )
    doc.add(*entry)
    doc.checks.append(UNIT_TESTS)
    rows = [
        f'{{ check = "{UNIT_TESTS}", metric = "failed", max = 0 }}',
        f'{{ check = "{UNIT_TESTS}", metric = "errors", max = 0 }}',
    ]
    comment = "every test passes and none errors"
    if packages:
        rows.append(
            f'{{ check = "{UNIT_TESTS}", metric = "coverage_pct", min = {COVERAGE_MIN_PCT}, '
            'severity = "warning" }'
        )
        comment += (
            f"; coverage under {COVERAGE_MIN_PCT} % only warns (raise it, or drop the severity "
            "to make it block, once you know where the project stands)"
        )
    doc.conditions.append((comment, rows))


def _src_pythonpath(detection: ProjectDetection) -> str | None:
    """The src folder for PYTHONPATH, unless the pytest configuration already puts it there."""
    if not detection.src_layout:
        return None
    config = detection.pytest_config
    if config is not None and any(p.strip("./") == "src" for p in config.pythonpath):
        return None
    return "src"


def _dependency_audit(doc: _Document, detection: ProjectDetection) -> None:
    auditable = [r for r in detection.requirements if r.auditable]
    left_out = [r.describe() for r in detection.requirements if not r.auditable]
    not_audited = f" Not audited (not exact pins): {'; '.join(left_out)}." if left_out else ""
    doc.add("")
    if not auditable:
        _environment_audit(doc, detection, left_out)
        return
    groups = _without_clashes(auditable)
    for index, group in enumerate(groups):
        check_id = DEPENDENCY_AUDIT if len(groups) == 1 else _audit_id(group[0], index)
        files = [r.path for r in group]
        if index == 0:
            doc.comment(
                f"Dependency vulnerabilities (pip-audit): every exact pin of {', '.join(files)} "
                "is audited as written, nothing resolved; each vulnerable pin is a finding."
                + not_audited
                + (
                    " The files pin some packages to different versions, so each group that "
                    "agrees is audited on its own."
                    if len(groups) > 1
                    else ""
                )
                + " Every pinned file found is listed: leave out those of tools you do not "
                "ship (docs, build) if their findings should not block."
            )
        else:
            doc.add("")
        title = "Dependency vulnerabilities (pip-audit)"
        if len(groups) > 1:
            title += f": {files[0]}" + (f" and {len(files) - 1} more" if len(files) > 1 else "")
        doc.add(
            "[[checks]]",
            f"id = {_q(check_id)}",
            f"title = {_q(title)}",
            'kind = "pip-audit"',
            f"settings = {{ requirements = {_array(files)} }}",
        )
        _audit_conditions(doc, check_id, "no known vulnerability in a pinned requirement")


def _environment_audit(doc: _Document, detection: ProjectDetection, left_out: list[str]) -> None:
    if left_out:
        why = (
            f"the requirements files are not pinned exactly ({'; '.join(left_out)}), and "
            "pip-audit audits exact pins (name==version) only"
        )
    elif detection.declared_dependencies:
        why = (
            f"pyproject.toml declares {len(detection.declared_dependencies)} dependencies as "
            "ranges, not pins, and no requirements file pins them"
        )
    else:
        why = "not found: no requirements*.txt or requirements/*.txt"
    where = detection.venv.python if detection.venv else "neuroerp-ci's own (no venv found)"
    doc.comment(
        "Dependency vulnerabilities (pip-audit) of the packages installed in the target's "
        f"interpreter ({where}): {why}. Pin what you ship (pip freeze > requirements.txt, or "
        "pip-compile) and audit that instead: settings = { requirements = "
        '["requirements.txt"] }; source = "both" audits both and reports the drift.'
    )
    doc.add(
        "[[checks]]",
        f'id = "{DEPENDENCY_AUDIT}"',
        'title = "Dependency vulnerabilities (pip-audit) of the installed packages"',
        'kind = "pip-audit"',
        'settings = { source = "environment" }',
    )
    _audit_conditions(doc, DEPENDENCY_AUDIT, "no known vulnerability in an installed package")


def _audit_conditions(doc: _Document, check_id: str, what: str) -> None:
    doc.checks.append(check_id)
    doc.conditions.append(
        (
            f"{what}; advisory data older than {DEFAULT_MAX_AGE_DAYS:g} days only warns",
            [
                f'{{ check = "{check_id}", findings = "any", max = 0 }}',
                f'{{ check = "{check_id}", metric = "advisory_age_days", '
                f'max = {DEFAULT_MAX_AGE_DAYS:g}, severity = "warning" }}',
            ],
        )
    )


def _without_clashes(files: Sequence[RequirementsFile]) -> list[list[RequirementsFile]]:
    """Files in groups whose pins agree: one audit is one environment (the kind refuses a
    package pinned to two versions)."""
    groups: list[tuple[list[RequirementsFile], dict[str, str]]] = []
    for req_file in files:
        for members, pins in groups:
            if all(pins.get(name, version) == version for name, version in req_file.pins.items()):
                members.append(req_file)
                pins.update(req_file.pins)
                break
        else:
            groups.append(([req_file], dict(req_file.pins)))
    return [members for members, _ in groups]


def _audit_id(first: RequirementsFile, index: int) -> str:
    stem = first.path.rsplit("/", 1)[-1].removesuffix(".txt").lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-") or str(index + 1)
    return f"{DEPENDENCY_AUDIT}-{slug}"[:64]


def _static_security(doc: _Document, detection: ProjectDetection) -> None:
    paths = [p.path for p in detection.packages]
    scanned = (
        ", ".join(paths)
        if paths
        else 'the whole project (not found: a package, see above; paths = ["pkg"] narrows it)'
    )
    doc.add("")
    doc.comment(
        f"Static security analysis (bandit) of {scanned}: findings by severity; a file bandit "
        "cannot parse is an error, not a pass. .venv, tests, .neuroerp-ci and node_modules are "
        'left out (settings exclude); a "# nosec" comment is listed as suppressed.'
    )
    doc.add(
        "[[checks]]",
        f'id = "{STATIC_SECURITY}"',
        'title = "Static security analysis (bandit)"',
        'kind = "bandit"',
    )
    if paths:
        doc.add(f"settings = {{ paths = {_array(paths)} }}")
    doc.checks.append(STATIC_SECURITY)
    doc.conditions.append(
        (
            "no high-severity bandit finding; medium ones only warn",
            [
                f'{{ check = "{STATIC_SECURITY}", findings = "high", max = 0 }}',
                f'{{ check = "{STATIC_SECURITY}", findings = "medium", max = 0, '
                'severity = "warning" }',
            ],
        )
    )


def _secret_scan(doc: _Document, detection: ProjectDetection) -> None:
    if detection.git_root is not None:
        scanned = "the project's git-tracked files and the untracked ones git does not ignore"
    else:
        skipped = ", ".join(sorted(WALK_SKIPS))
        scanned = f"every file of the project but {skipped} (not a git repository)"
    baseline = (
        "Found .secrets.baseline: the secrets it lists are suppressed (listed, not counted)."
        if detection.secrets_baseline
        else "A .secrets.baseline (detect-secrets scan > .secrets.baseline, then audit it) would "
        'suppress the accepted ones; exclude = ["path"] leaves files out.'
    )
    doc.add("")
    doc.comment(
        f"Secrets (detect-secrets) in {scanned}. A finding names file:line and the secret's "
        f"type, never the secret. {baseline}"
    )
    doc.add(
        "[[checks]]",
        f'id = "{SECRET_SCAN}"',
        'title = "Secrets in the source (detect-secrets)"',
        'kind = "secrets"',
    )
    doc.checks.append(SECRET_SCAN)
    doc.conditions.append(
        ("no secret in the source", [f'{{ check = "{SECRET_SCAN}", findings = "any", max = 0 }}'])
    )


def _licences(doc: _Document, detection: ProjectDetection) -> None:
    where = detection.venv.python if detection.venv else "neuroerp-ci's own, until a venv is found"
    doc.add("")
    doc.comment(
        f"Licences of every distribution installed in the target's interpreter ({where}), "
        "normalised to SPDX. With no allow or deny list only a licence the metadata does not "
        "say is a finding (a warning). To block strong copyleft, uncomment the settings line below."
    )
    doc.add(
        "[[checks]]",
        f'id = "{LICENCES}"',
        'title = "Licences of the installed distributions"',
        'kind = "licenses"',
        f"# settings = {{ deny = {_array(_COPYLEFT)} }}",
    )
    doc.checks.append(LICENCES)
    doc.conditions.append(
        (
            "a denied licence fails; an unknown one warns",
            [
                f'{{ check = "{LICENCES}", findings = "high", max = 0 }}',
                f'{{ check = "{LICENCES}", findings = "low", max = 0, severity = "warning" }}',
            ],
        )
    )


def _stage(doc: _Document) -> None:
    doc.banner(
        f"[stages.{STAGE}]: what a feature branch must pass, and the conditions that decide its "
        "verdict (PASS, WARN or FAIL). A condition limits a metric ({ check, metric, max | min "
        '}) or counts findings ({ check, findings = "high" | "medium" | "low" | "any", '
        'max }); severity = "warning" makes a breach a WARN instead of a FAIL. A check listed '
        "here without a condition of its own gets its kind's defaults. Accept a finding with a "
        "[[waivers]] entry (rule, reason, owner, expires): see docs/usage.md."
    )
    doc.add(f"[stages.{STAGE}]", f"checks = {_array(doc.checks, indent='')}", "conditions = [")
    for comment, rows in doc.conditions:
        doc.lines += textwrap.wrap(
            comment, _WIDTH, initial_indent="    # ", subsequent_indent="    # ",
            break_long_words=False, break_on_hyphens=False,
        )  # fmt: skip
        doc.lines += [f"    {row}," for row in rows]
    doc.add("]")


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def _array(items: Iterable[str], indent: str = "") -> str:
    quoted = [_q(item) for item in items]
    one_line = "[" + ", ".join(quoted) + "]"
    if len(one_line) + 12 <= _WIDTH:
        return one_line
    return "[\n" + "".join(f"{indent}    {item},\n" for item in quoted) + f"{indent}]"


def _inline(pairs: Sequence[str]) -> str:
    return "{ " + ", ".join(pairs) + " }"
