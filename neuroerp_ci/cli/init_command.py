"""``neuroerp-ci init [DIR] [--output PATH] [--force]``: a commented pipeline file for a project.

It looks at the project (:mod:`neuroerp_ci.project.detect`), renders the file
(:mod:`neuroerp_ci.config.template`), loads the rendered text with the loader ``validate`` and
``run`` use, and only then writes it: a file init cannot load is a bug in init, reported as the
loader's one line (exit 2) with nothing written. An existing file is kept unless ``--force``.
It prints what it found and the command to run next.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from neuroerp_ci.cli.consoles import out
from neuroerp_ci.config import DEFAULT_FILE, Pipeline, load_pipeline
from neuroerp_ci.config.template import STAGE, render_pipeline
from neuroerp_ci.errors import ConfigError, UsageError
from neuroerp_ci.project.detect import ProjectDetection, detect_project, probe_venv


def init_project(
    directory: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR", help="The project to look at (default: the current directory)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help=f"The pipeline file to write (default: DIR/{DEFAULT_FILE})."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing pipeline file.")
    ] = False,
) -> None:
    """Write a commented pipeline file for the project in DIR (tests, package, requirements,
    virtual environment, git) that validates as written, and say what to run next."""
    project = project_directory(directory)
    destination = pipeline_destination(project, output, force=force)
    detection = probe_venv(detect_project(project))
    pipeline = write_validated(render_pipeline(detection), destination)
    for line in report_lines(detection, pipeline, destination):
        out.print(line)


def project_directory(directory: Path | None) -> Path:
    """DIR as given (the working directory by default); refused unless it is a directory."""
    project = directory if directory is not None else Path.cwd()
    if not project.exists():
        raise UsageError(f"{project}: no such directory")
    if not project.is_dir():
        raise UsageError(f"{project}: not a directory")
    return project


def pipeline_destination(project: Path, output: Path | None, *, force: bool) -> Path:
    """Where the file goes: ``--output`` (a file directly in the project: its folder is the
    project every path in it is relative to) or ``DIR/neuroerp-ci.toml``."""
    destination = output if output is not None else project / DEFAULT_FILE
    if destination.parent.resolve() != project.resolve():
        raise UsageError(
            f"--output {destination}: the pipeline file must be in the project folder "
            f"{project} (its folder is the project it tests)"
        )
    if destination.is_dir():
        raise UsageError(f"{destination} is a directory, not a pipeline file")
    if (destination.exists() or destination.is_symlink()) and not force:
        raise UsageError(f"{destination} exists: not overwritten (--force replaces it)")
    return destination


def write_validated(text: str, destination: Path) -> Pipeline:
    """Load ``text`` as the pipeline file at ``destination`` would be loaded, then write it.

    The loader reads a file beside ``destination`` (relative paths in it resolve the same
    way); when it refuses, nothing is written and its message is the error.
    """
    folder = destination.parent
    try:
        handle, name = tempfile.mkstemp(prefix=".neuroerp-ci-init-", suffix=".toml", dir=folder)
    except OSError as exc:
        raise UsageError(f"{destination}: cannot write in {folder}: {exc.strerror}") from None
    scratch = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            pipeline = load_pipeline(scratch)
        except ConfigError as exc:
            raise ConfigError(
                destination,
                exc.key,
                f"the file init rendered does not validate, so it was not written (a bug in "
                f"neuroerp-ci init): {exc.problem}",
            ) from None
        try:
            destination.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{destination}: cannot write: {exc.strerror}") from None
    finally:
        scratch.unlink(missing_ok=True)
    return pipeline


def report_lines(detection: ProjectDetection, pipeline: Pipeline, destination: Path) -> list[str]:
    """What init found, what it wrote, and the next command."""
    lines = [f"Looked at {detection.directory.resolve()}:"]
    lines += [f"  {what + ':':<16}{text}" for what, text in detection.found()]
    stage = pipeline.stage(STAGE)
    lines.append(
        f"Wrote {destination}: stage {STAGE} with {len(stage.checks)} checks "
        f"({', '.join(stage.checks)}), every section commented"
    )
    default = Path.cwd() / DEFAULT_FILE
    config = "" if destination.resolve() == default.resolve() else f" -c {destination}"
    if detection.venv is None:
        lines.append(
            "No virtual environment found: the checks run on neuroerp-ci's own interpreter and "
            "the verdict warns about it (create .venv, or set [target] python)"
        )
    lines.append(f"Next: neuroerp-ci run {STAGE}{config}")
    lines.append(
        f"  (neuroerp-ci validate{config} lists its conditions; without internet, the "
        "dependency audit needs --advisories DIR: see [advisories] in the file)"
    )
    return lines
