"""``neuroerp-ci init``: what it detects in projects of several shapes, the file it renders
(loaded with the real loader, commented-out parts included), and the command's refusals."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from neuroerp_ci.cli import init_command, main
from neuroerp_ci.config import DEFAULT_FILE, Pipeline, load_pipeline
from neuroerp_ci.config.template import render_pipeline
from neuroerp_ci.project.detect import (
    ProjectDetection,
    detect_project,
    missing_modules,
    probe_venv,
)

TEST_FILE = "def test_one():\n    assert 1 + 1 == 2\n"


def make(root: Path, files: dict[str, str]) -> Path:
    """``root`` with ``files`` (relative path -> text) written into it."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def src_layout(root: Path) -> Path:
    return make(
        root,
        {
            "pyproject.toml": '[project]\nname = "Shop-Cart"\ndependencies = ["httpx>=0.27"]\n'
            '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "src/shop_cart/__init__.py": "",
            "src/shop_cart/core.py": "VALUE = 1\n",
            "src/helpers/__init__.py": "",
            "tests/test_core.py": TEST_FILE,
            "requirements.txt": "httpx==0.27.2  # via pip-compile\nidna==3.10\n",
        },
    )


def flat_layout(root: Path) -> Path:
    return make(
        root,
        {
            "ledger/__init__.py": "",
            "tests/__init__.py": "",
            "tests/unit/test_ledger.py": TEST_FILE,
            "docs/__init__.py": "",
        },
    )


def written(tmp_path: Path, detection: ProjectDetection) -> tuple[str, Pipeline]:
    """The rendered text, and the pipeline the real loader makes of it in the project."""
    text = render_pipeline(detection)
    path = detection.directory / DEFAULT_FILE
    path.write_text(text, encoding="utf-8")
    return text, load_pipeline(path)


def uncommented(text: str) -> str:
    """``text`` with every commented-out TOML line (``# key = ...``, ``# [table]``) live."""
    toml_line = re.compile(r"^# (\[\[?[a-z][a-z._-]*\]\]?$|[a-z_]+ = )")
    return "\n".join(line[2:] if toml_line.match(line) else line for line in text.splitlines())


def checks_of(text: str) -> dict[str, dict[str, object]]:
    return {c["id"]: c for c in tomllib.loads(text)["checks"]}


# --- detection --------------------------------------------------------------------------------


def test_src_layout_is_detected(tmp_path: Path) -> None:
    found = detect_project(src_layout(tmp_path))
    assert found.distribution == "Shop-Cart"
    # the distribution's package first, then the others, all under src/
    assert [(p.name, p.path, p.layout) for p in found.packages] == [
        ("shop_cart", "src/shop_cart", "src"),
        ("helpers", "src/helpers", "src"),
    ]
    assert found.tests is not None and found.tests.paths == ("tests",)
    assert found.pytest_config is not None and found.pytest_config.testpaths == ("tests",)
    assert [(r.path, r.auditable) for r in found.requirements] == [("requirements.txt", True)]
    assert found.requirements[0].pins == {"httpx": "0.27.2", "idna": "3.10"}
    assert found.declared_dependencies == ("httpx>=0.27",)
    assert found.venv is None
    assert found.git_root is None


def test_flat_layout_leaves_out_tests_and_docs(tmp_path: Path) -> None:
    found = detect_project(flat_layout(tmp_path))
    assert [(p.name, p.layout) for p in found.packages] == [("ledger", "flat")]
    assert found.tests is not None and found.tests.files == 1
    assert found.distribution is None and found.name == tmp_path.name
    assert dict(found.found())["pytest config"].startswith("not found: ")


def test_single_module_named_by_setup_py(tmp_path: Path) -> None:
    make(tmp_path, {"setup.py": "setup(name='tiny-six', version='1')\n", "tiny_six.py": ""})
    found = detect_project(tmp_path)
    assert found.distribution == "tiny-six"
    assert [(p.name, p.path) for p in found.packages] == [("tiny_six", "tiny_six.py")]


def test_nothing_found_says_so(tmp_path: Path) -> None:
    make(tmp_path, {"tests/conftest.py": "", "notes.txt": "hello\n"})
    found = detect_project(tmp_path)
    assert found.packages == () and found.tests is None
    assert found.empty_test_dirs == ("tests/",)
    lines = dict(found.found())
    assert set(lines) == {
        "package", "tests", "pytest config", "requirements", "virtual env", "git repository",
    }  # fmt: skip
    assert all(text.startswith("not found: ") for text in lines.values()), lines
    assert "tests/ holds none" in lines["tests"]


@pytest.mark.parametrize(
    ("name", "text", "section"),
    [
        ("pytest.ini", "[pytest]\ntestpaths = checks\n", "[pytest]"),
        ("tox.ini", "[tox]\n[pytest]\ntestpaths = checks\n", "[pytest]"),
        ("setup.cfg", "[metadata]\nname = x\n[tool:pytest]\ntestpaths = checks\n", "[tool:pytest]"),
    ],
)
def test_pytest_configuration_names_the_tests(
    tmp_path: Path, name: str, text: str, section: str
) -> None:
    make(tmp_path, {name: text, "checks/test_a.py": TEST_FILE, "tests/test_b.py": TEST_FILE})
    found = detect_project(tmp_path)
    assert found.pytest_config is not None and found.pytest_config.where() == f"{name} {section}"
    assert found.tests is not None and found.tests.paths == ("checks",)


def test_requirements_pins_follow_includes(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "requirements.txt": "-r requirements/base.txt\nrich==13.7.1 \\\n    --hash=sha256:ab\n",
            "requirements/base.txt": "# base\nidna==3.10\nold==1.0; python_version < '3'\n",
            "requirements-dev.txt": "-e .\npytest>=8\n--index-url https://example.invalid\n",
        },
    )
    found = {r.path: r for r in detect_project(tmp_path).requirements}
    assert list(found) == ["requirements.txt", "requirements-dev.txt", "requirements/base.txt"]
    assert found["requirements.txt"].pins == {"idna": "3.10", "rich": "13.7.1"}
    assert found["requirements.txt"].auditable
    assert found["requirements-dev.txt"].not_pinned == ("-e .", "pytest>=8")
    assert not found["requirements-dev.txt"].auditable


def test_venv_is_detected_by_its_pyvenv_cfg(tmp_path: Path) -> None:
    make(
        tmp_path, {"venv/pyvenv.cfg": "home = /usr/bin\nversion = 3.11.7\n", "venv/bin/python": ""}
    )
    make(tmp_path, {".venv/bin/python": ""})  # no pyvenv.cfg: not an environment
    found = detect_project(tmp_path)
    assert found.venv is not None
    assert (found.venv.folder, found.venv.python, found.venv.version) == (
        "venv", "venv/bin/python", "3.11.7",
    )  # fmt: skip


def test_git_repository_above_the_project(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    project = make(tmp_path / "service", {"app/__init__.py": ""})
    assert detect_project(project).git_root == tmp_path.resolve()
    assert dict(detect_project(project).found())["git repository"] == f"yes, {tmp_path.resolve()}"


def test_missing_modules_asks_the_interpreter(tmp_path: Path) -> None:
    python = Path(sys.executable)
    assert missing_modules(python) == ()  # pytest and pytest-cov run this very test
    assert missing_modules(python, ("pytest", "no_such_module_here")) == ("no_such_module_here",)
    assert missing_modules(tmp_path / "no-python") is None


def test_probe_fills_in_what_the_venv_lacks(tmp_path: Path) -> None:
    make(tmp_path, {".venv/pyvenv.cfg": "version = 3.11\n"})
    (tmp_path / ".venv/bin").mkdir()
    (tmp_path / ".venv/bin/python").symlink_to(sys.executable)
    probed = probe_venv(detect_project(tmp_path))
    assert probed.venv is not None and probed.venv.missing is not None


# --- the rendered file ------------------------------------------------------------------------


def test_src_layout_file_loads_and_runs_the_right_checks(tmp_path: Path) -> None:
    text, pipeline = written(tmp_path, detect_project(src_layout(tmp_path)))
    stage = pipeline.stage("development")
    assert list(stage.checks) == [
        "unit-tests", "dependency-audit", "static-security", "secret-scan", "licences",
    ]  # fmt: skip
    checks = checks_of(text)
    assert checks["unit-tests"]["settings"] == {
        "paths": ["tests"],
        "cov": ["shop_cart", "helpers"],
    }
    assert checks["unit-tests"]["env"] == {"PYTHONPATH": "{project}/src"}
    assert checks["dependency-audit"]["settings"] == {"requirements": ["requirements.txt"]}
    assert checks["static-security"]["settings"] == {"paths": ["src/shop_cart", "src/helpers"]}
    assert pipeline.target.name == "Shop-Cart"
    assert "python" not in tomllib.loads(text)["target"]  # no venv: the default, and its WARN
    assert "# python = " in text and "not found: no .venv/ or venv/" in text
    assert "git-tracked" not in text and "not a git repository" in text
    conditions = {(c.check, c.metric) for c in stage.conditions}
    assert ("unit-tests", "coverage_pct") in conditions
    assert ("dependency-audit", "advisory_age_days") in conditions
    assert ("secret-scan", None) in conditions  # a findings limit


def test_pythonpath_is_left_to_a_pytest_config_that_sets_it(tmp_path: Path) -> None:
    src_layout(tmp_path)
    make(tmp_path, {"pytest.ini": "[pytest]\npythonpath = src\n"})
    text, _ = written(tmp_path, detect_project(tmp_path))
    assert "env" not in checks_of(text)["unit-tests"]


def test_flat_layout_with_venv_and_git(tmp_path: Path) -> None:
    flat_layout(tmp_path)
    make(tmp_path, {".venv/pyvenv.cfg": "version = 3.12.1\n", ".venv/bin/python": ""})
    (tmp_path / ".git").mkdir()
    text, pipeline = written(tmp_path, detect_project(tmp_path))
    assert tomllib.loads(text)["target"]["python"] == ".venv/bin/python"
    assert pipeline.target.python == ".venv/bin/python"
    checks = checks_of(text)
    assert "env" not in checks["unit-tests"]
    assert checks["unit-tests"]["settings"] == {"paths": ["tests"], "cov": ["ledger"]}
    # no requirements file: the audit reads what the venv has installed
    assert checks["dependency-audit"]["settings"] == {"source": "environment"}
    assert "git-tracked files" in text


def test_no_tests_leaves_the_test_check_commented_out(tmp_path: Path) -> None:
    make(tmp_path, {"pkg/__init__.py": "", "requirements.txt": "flask>=3\n"})
    text, pipeline = written(tmp_path, detect_project(tmp_path))
    assert "unit-tests" not in pipeline.checks
    assert list(pipeline.stage("development").checks) == [
        "dependency-audit", "static-security", "secret-scan", "licences",
    ]  # fmt: skip
    assert "# Unit tests (pytest). Not found: no test_*.py" in text
    # an unpinned file cannot be audited as written: the environment is, and the file says why
    assert checks_of(text)["dependency-audit"]["settings"] == {"source": "environment"}
    assert "flask>=3" in text
    # The commented-out parts are valid too: uncommented (the test check added to the stage)
    # the file still loads.
    live = uncommented(text).replace('checks = ["', 'checks = ["unit-tests", "', 1)
    path = tmp_path / "uncommented.toml"
    path.write_text(live, encoding="utf-8")
    again = load_pipeline(path)
    assert "unit-tests" in again.stage("development").checks
    assert again.target.python == ".venv/bin/python"
    assert again.advisories == ((tmp_path / "../advisory-database").resolve(),)


def test_nothing_found_still_loads(tmp_path: Path) -> None:
    text, pipeline = written(tmp_path, detect_project(tmp_path))
    assert list(pipeline.stage("development").checks) == [
        "dependency-audit", "static-security", "secret-scan", "licences",
    ]  # fmt: skip
    assert "settings" not in checks_of(text)["static-security"]  # the whole project
    assert "cov = " not in text  # no package: nothing to measure coverage of


def test_requirements_that_clash_get_an_audit_each(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "requirements.txt": "idna==3.10\n",
            "requirements/docs.txt": "idna==3.7\nsphinx==7.4.7\n",
            "requirements/tests.txt": "idna==3.10\npytest==8.3.3\n",
        },
    )
    text, pipeline = written(tmp_path, detect_project(tmp_path))
    checks = checks_of(text)
    assert checks["dependency-audit-requirements"]["settings"] == {
        "requirements": ["requirements.txt", "requirements/tests.txt"]
    }
    assert checks["dependency-audit-docs"]["settings"] == {
        "requirements": ["requirements/docs.txt"]
    }
    assert {"dependency-audit-requirements", "dependency-audit-docs"} <= set(
        pipeline.stage("development").checks
    )


def test_every_line_fits_and_every_section_is_commented(tmp_path: Path) -> None:
    text, _ = written(tmp_path, detect_project(src_layout(tmp_path)))
    lines = text.splitlines()
    long = [line for line in lines if len(line) > 100 and not line.startswith("#")]
    assert long == []
    for index, line in enumerate(lines):
        if line.startswith("[") and index:
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"


# --- the command ------------------------------------------------------------------------------


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    code = stop.value.code
    return (code if isinstance(code, int) else -1), captured.out, captured.err


def test_init_writes_a_valid_file_and_says_what_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(src_layout(tmp_path))
    code, out, err = cli(["init"], capsys)
    assert (code, err) == (0, "")
    pipeline = load_pipeline(tmp_path / DEFAULT_FILE)
    assert "unit-tests" in pipeline.stage("development").checks
    assert "  package:        src/shop_cart, src/helpers (src layout" in out
    assert "  virtual env:    not found: " in out
    assert "Next: neuroerp-ci run development\n" in out
    assert list(tmp_path.glob(".neuroerp-ci-init-*")) == []  # the scratch copy is gone


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat_layout(tmp_path)
    existing = tmp_path / DEFAULT_FILE
    existing.write_text("# mine\n", encoding="utf-8")
    code, out, err = cli(["init", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(existing) in err and "--force" in err
    assert existing.read_text(encoding="utf-8") == "# mine\n"
    code, out, err = cli(["init", str(tmp_path), "--force"], capsys)
    assert (code, err) == (0, "")
    assert load_pipeline(existing).stage("development")
    # not from the working directory: the next command names the file
    assert f"Next: neuroerp-ci run development -c {existing}" in out


@pytest.mark.parametrize("shape", ["missing", "file"])
def test_bad_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    target = tmp_path / "project"
    if shape == "file":
        target.write_text("", encoding="utf-8")
    code, out, err = cli(["init", str(target)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(target) in err
    assert ("no such directory" if shape == "missing" else "not a directory") in err


def test_output_names_another_file_in_the_project_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat_layout(tmp_path)
    other = tmp_path / "ci.toml"
    code, out, _ = cli(["init", str(tmp_path), "--output", str(other)], capsys)
    assert code == 0 and load_pipeline(other).target.name == tmp_path.name
    assert not (tmp_path / DEFAULT_FILE).exists()
    assert f"-c {other}" in out
    elsewhere = tmp_path / "sub" / "ci.toml"
    code, _, err = cli(["init", str(tmp_path), "--output", str(elsewhere)], capsys)
    assert code == 2 and err.count("\n") == 1 and "must be in the project folder" in err


def test_a_file_the_loader_refuses_is_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flat_layout(tmp_path)
    monkeypatch.setattr(init_command, "render_pipeline", lambda _: "[target]\nnmae = 'x'\n")
    code, out, err = cli(["init", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert f"{tmp_path / DEFAULT_FILE}: target.nmae" in err and "a bug in neuroerp-ci init" in err
    assert not (tmp_path / DEFAULT_FILE).exists()
    assert list(tmp_path.glob(".neuroerp-ci-init-*")) == []
