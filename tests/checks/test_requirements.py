"""Reading requirements files as pip does: nesting, comments, options, markers, pins."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from neuroerp_ci.checks._requirements import NamedRequirement, read_lock, read_requirements
from neuroerp_ci.errors import ToolError

OTHER_PYTHON = f'python_version < "{sys.version_info[0]}.{sys.version_info[1]}"'


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def names(reqs: tuple[NamedRequirement, ...]) -> list[tuple[str | None, str]]:
    return [(r.name, r.origin) for r in reqs]


def test_nested_files_relative_to_the_including_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "idna==3.10\n-r requirements/dev.txt\n--constraint c.txt\n",
            "requirements/dev.txt": "--requirement=test.txt\nPyYAML==6.0.2\n",
            "requirements/test.txt": "-rdev.txt\npytest==8.3.3\n",  # a cycle: read once
            "c.txt": "six==1.16.0\n-r more-constraints.txt\n",
            "more-constraints.txt": "attrs==24.2.0\n",
        },
    )

    read = read_requirements([tmp_path / "requirements.txt"], tmp_path)

    assert [p.relative_to(tmp_path).as_posix() for p in read.files] == [
        "requirements.txt", "requirements/dev.txt", "requirements/test.txt",
    ]  # fmt: skip
    assert names(read.requirements) == [
        ("idna", "requirements.txt:1"),
        ("pytest", "requirements/test.txt:2"),
        ("pyyaml", "requirements/dev.txt:2"),
    ]
    # Constraints, and files a constraints file includes, install nothing.
    assert names(read.constraints) == [("six", "c.txt:1"), ("attrs", "more-constraints.txt:1")]
    assert len(read.constraint_files) == 2


def test_comments_continuations_extras_markers_hashes_and_options(tmp_path: Path) -> None:
    text = (
        "# a comment\n"
        "\n"
        "-i https://pypi.example/simple  # global options name no package\n"
        "--pre\n"
        "PyYAML[libyaml]==6.0.2  # trailing comment\n"
        "click==8.1.7 \\\n"
        "    --hash=sha256:ae74fb96c20a0277a1d615f1e4d73c8414f5a98db8b799a7931d1582f3390c28\n"
        f"greenlet==3.0.0 ; {OTHER_PYTHON}\n"
        "wheel @ https://files.example/wheel-0.44.0-py3-none-any.whl#sha256=abc\n"
    )
    write(tmp_path, {"r.txt": "\ufeff" + text})

    reqs = read_requirements([tmp_path / "r.txt"], tmp_path).requirements

    yaml, click, greenlet, wheel = reqs
    assert (yaml.name, yaml.text, str(yaml.pinned), yaml.origin) == (
        "pyyaml", "PyYAML[libyaml]==6.0.2", "6.0.2", "r.txt:5",
    )  # fmt: skip
    assert (click.name, click.hashed, click.origin) == ("click", True, "r.txt:6")
    assert (greenlet.applies(), greenlet.why_not_auditable()) == (False, None)
    assert wheel.url is not None and wheel.why_not_auditable() == "a URL, no version"
    assert wheel.text.endswith("#sha256=abc")  # "#" without a blank before is no comment


@pytest.mark.parametrize(
    ("line", "pinned"),
    [
        ("a==1.0", "1.0"),
        ("a == 1.0.0", "1.0.0"),
        ("a==1.*", None),
        ("a===1.0", None),
        ("a>=1", None),
        ("a==1.0,>=0.9", None),
        ("a", None),
    ],
)
def test_only_one_exact_version_is_a_pin(tmp_path: Path, line: str, pinned: str | None) -> None:
    write(tmp_path, {"r.txt": line + "\n"})
    (req,) = read_requirements([tmp_path / "r.txt"], tmp_path).requirements
    assert (None if req.pinned is None else str(req.pinned)) == pinned
    assert (req.why_not_auditable() is None) == (pinned is not None)


def test_editable_and_local_paths_cannot_be_audited(tmp_path: Path) -> None:
    write(
        tmp_path, {"r.txt": "-e .\n--editable=git+https://x.example/p.git#egg=Pkg\n./dist/x.whl\n"}
    )

    reqs = read_requirements([tmp_path / "r.txt"], tmp_path).requirements

    assert [(r.text, r.name, r.why_not_auditable()) for r in reqs] == [
        ("-e .", None, "editable"),
        ("--editable git+https://x.example/p.git#egg=Pkg", "pkg", "editable"),
        ("./dist/x.whl", None, "a path or URL, no version"),
    ]


def test_require_hashes_option(tmp_path: Path) -> None:
    write(tmp_path, {"r.txt": "--require-hashes\nidna==3.10\n"})
    assert read_requirements([tmp_path / "r.txt"], tmp_path).require_hashes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-r missing.txt\n", r"requirements file missing\.txt not found \(included by r\.txt:1\)"),
        ("-r https://x.example/r.txt\n", r"r\.txt:1: remote requirements file"),
        ("--frobnicate\n", r"r\.txt:1: unknown option '--frobnicate'"),
        ("idna==3.10 --frobnicate\n", r"r\.txt:1: unknown option '--frobnicate' after"),
        ("idna=3.10\n", r"r\.txt:1: not a requirement pip can read: 'idna=3.10'"),
        ("-r\n", r"r\.txt:1: -r needs a file name"),
    ],
)
def test_lines_it_does_not_understand_are_errors(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, {"r.txt": text})
    with pytest.raises(ToolError, match=message):
        read_requirements([tmp_path / "r.txt"], tmp_path)


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_bytes(b"idna==3.10\n\xff\xfe\n")
    with pytest.raises(ToolError, match=r"requirements file r\.txt is unreadable"):
        read_requirements([tmp_path / "r.txt"], tmp_path)


# --- pylock.toml (PEP 751) ------------------------------------------------------------------

LOCK = f"""\
lock-version = "1.0"
created-by = "hand"

[[packages]]
name = "urllib3"
version = "1.26.4"
wheels = [{{ url = "https://files.example/urllib3-1.26.4-py2.py3-none-any.whl" }}]

[[packages]]
name = "pywin32"
version = "306"
marker = '{OTHER_PYTHON}'

[[packages]]
name = "my-app"
directory = {{ path = ".", editable = true }}

[[packages]]
name = "forked"
vcs = {{ type = "git", url = "https://git.example/forked.git", commit-id = "abc" }}
"""


def test_lock_packages_are_pins_the_project_is_named(tmp_path: Path) -> None:
    write(tmp_path, {"pylock.toml": LOCK})
    generated = tmp_path / "work" / "lock.txt"
    read = read_lock(tmp_path / "pylock.toml", tmp_path, generated)
    assert [(r.text, r.origin) for r in read.requirements] == [
        ("urllib3==1.26.4", "pylock.toml: packages[0]"),
        (f"pywin32==306 ; {OTHER_PYTHON}", "pylock.toml: packages[1]"),
        ("forked @ https://git.example/forked.git", "pylock.toml: packages[3]"),
    ]
    assert [r.applies() for r in read.requirements[:2]] == [True, False]
    assert read.requirements[2].why_not_auditable() == "a URL, no version"
    assert read.project == ("my-app (pylock.toml: packages[2])",)
    # pip-audit reads the pins, markers kept; what has no version is not written
    assert generated.read_text("utf-8").splitlines()[1:] == [
        "urllib3==1.26.4",
        f"pywin32==306 ; {OTHER_PYTHON}",
    ]
    assert read.files == (generated,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('lock-version = "2.0"\n[[packages]]\nname = "a"\n', r"lock-version 2\.0 is not 1\.x"),
        ("[[packages]]\nname = 'a'\n", r"lock-version \(missing\)"),
        ('lock-version = "1.0"\n', r"no \[\[packages\]\]"),
        ('lock-version = "1.0"\n[[packages]]\nversion = "1"\n', r"packages\[0\] has no name"),
        ("lock-version = [", r"pylock\.toml is unreadable"),
    ],
)
def test_a_lock_it_cannot_read_is_an_error(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, {"pylock.toml": text})
    with pytest.raises(ToolError, match=message):
        read_lock(tmp_path / "pylock.toml", tmp_path, tmp_path / "out.txt")


def test_a_missing_lock_is_named(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"lock file pylock\.toml not found"):
        read_lock(tmp_path / "pylock.toml", tmp_path, tmp_path / "out.txt")
