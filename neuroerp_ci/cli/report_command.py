"""``neuroerp-ci report``: rebuild (or open) a run's ``report.html``, or draw a stage's trends.

A run's page is drawn again from the files the run left (``report.json``, ``samples.json``)
and the history store as it is now, so its trend charts take in the runs since. The trends
page covers the newest runs of one stage. Nothing here changes the history.
"""

from __future__ import annotations

import json
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from neuroerp_ci.cli.store_access import open_history
from neuroerp_ci.config import Pipeline, load_pipeline, resolve_config_path
from neuroerp_ci.errors import UsageError
from neuroerp_ci.model import StageReport
from neuroerp_ci.reports.html import render_html, render_trends
from neuroerp_ci.reports.json_report import report_from_dict
from neuroerp_ci.reports.registry import HTML_PAGE
from neuroerp_ci.reports.writer import default_output_dir, write_atomically
from neuroerp_ci.run.report_history import TREND_RUNS, report_context, trends_of
from neuroerp_ci.store import HistoryStore, StoreError
from neuroerp_ci.support.state_dir import ensure_state_dir


def report(
    run: Annotated[
        str | None,
        typer.Argument(
            help="A run id of the pipeline's history, or a run folder (default: the newest run)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Pipeline file (default: ./neuroerp-ci.toml)."),
    ] = None,
    trends: Annotated[
        str | None,
        typer.Option("--trends", metavar="STAGE", help="Draw the trends page of this stage."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The HTML file to write (default: the run folder's report.html; "
            ".neuroerp-ci/trends/STAGE.html for --trends).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=2, help="How many runs the trends cover.")
    ] = TREND_RUNS,
    open_it: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
) -> None:
    """Rebuild a run's report.html (with the stage's trends as they are now), or --trends."""
    pipeline = load_pipeline(resolve_config_path(config))
    with open_history(pipeline) as store:
        if trends is not None:
            if run is not None:
                raise UsageError("give a run or --trends STAGE, not both")
            page = _trends_page(pipeline, store, trends, output, limit)
        else:
            page = _run_page(pipeline, store, run, output, limit)
    typer.echo(str(page))
    if open_it:
        webbrowser.open(page.resolve().as_uri())


def _run_page(
    pipeline: Pipeline, store: HistoryStore, run: str | None, output: Path | None, limit: int
) -> Path:
    folder = _run_folder(pipeline, store, run)
    report = read_run_report(folder)
    context, problem = report_context(report, folder, store, limit)
    if problem:
        typer.echo(f"neuroerp-ci: warning: {problem}", err=True)
    return _write(output or folder / HTML_PAGE, render_html(report, context))


def _trends_page(
    pipeline: Pipeline, store: HistoryStore, stage: str, output: Path | None, limit: int
) -> Path:
    if stage not in pipeline.stages:
        known = ", ".join(pipeline.stages)
        raise UsageError(f"--trends {stage}: no such stage in {pipeline.path} (stages: {known})")
    target = pipeline.target.name
    with _store_errors():
        runs = store.runs(stage=stage, target=target, limit=limit)
        series = trends_of(store, stage, target, limit)
    default = ensure_state_dir(pipeline.project_dir) / "trends" / f"{stage}.html"
    return _write(output or default, render_trends(stage, target, series, runs))


def _run_folder(pipeline: Pipeline, store: HistoryStore, run: str | None) -> Path:
    """The folder of ``run``: a folder given as a path, else the run id's default folder;
    no run: the newest run of the history."""
    if run is not None and ("/" in run or Path(run).is_dir()):
        folder = Path(run)
    else:
        if run is None:
            with _store_errors():
                newest = store.runs(target=pipeline.target.name, limit=1)
            if not newest:
                raise UsageError(f"no run of {pipeline.target.name} recorded in {store.name}")
            run = newest[0].run_id
        folder = default_output_dir(pipeline.project_dir, run)
    if not (folder / "report.json").is_file():
        raise UsageError(f"{folder}: no report.json there (a run folder holds one)")
    return folder


def read_run_report(folder: Path) -> StageReport:
    """The run's report from its ``report.json`` and ``samples.json`` (if there)."""
    path = folder / "report.json"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        samples_path = folder / "samples.json"
        samples = (
            json.loads(samples_path.read_text(encoding="utf-8")) if samples_path.is_file() else {}
        )
        return report_from_dict(data, samples if isinstance(samples, dict) else {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable report: {exc}") from None


def _write(path: Path, text: str) -> Path:
    if path.is_dir():
        raise UsageError(f"--output {path}: is a folder; name the HTML file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomically(path, text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write it: {exc.strerror or exc}") from None


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except StoreError as exc:
        raise UsageError(f"the history store cannot be read: {exc}") from None
