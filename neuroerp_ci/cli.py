"""The ``neuroerp-ci`` command line.

Exit codes (see :mod:`neuroerp_ci.exit_codes`): 0 PASS or WARN, 1 FAIL, 2 bad pipeline file
or usage (one line, no traceback), 3 internal error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console

from neuroerp_ci.config import Pipeline, load_pipeline, resolve_config_path
from neuroerp_ci.errors import ConfigError, NeuroErpCiError, UsageError
from neuroerp_ci.exit_codes import ExitCode, for_verdict

# Before Prefect is imported (lazily, in the commands that run a flow): no telemetry, no
# shutdown tracebacks from the temporary server, only warnings from Prefect's own loggers.
for _key, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(_key, _value)

app = typer.Typer(
    name="neuroerp-ci",
    help="Release quality gates for VALEO-NeuroERP, orchestrated by Prefect.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Pipeline file (default: ./neuroerp-ci.toml)."),
]
AdvisoriesOpt = Annotated[
    Path | None,
    typer.Option(
        "--advisories",
        help="Offline OSV advisory mirror directory for pip-audit checks "
        "(also NEUROERP_CI_ADVISORIES).",
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Report directory (default: .neuroerp-ci/runs/<run-id>/)."),
]


@app.command()
def run(
    stage: Annotated[str, typer.Argument(help="Stage to run, e.g. development.")],
    config: ConfigOpt = None,
    output: OutputOpt = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Version under test (default: git SHA).")
    ] = None,
    advisories: AdvisoriesOpt = None,
) -> None:
    """Run one stage's quality gate and print its verdict."""
    pipeline = load_pipeline(resolve_config_path(config))
    pipeline.stage(stage)  # unknown stage: exit 2 before anything starts
    raise typer.Exit(_run_stage(pipeline, stage, output, version, advisories))


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Where to write the demo project.")] = Path(
        "neuroerp-demo"
    ),
    output: OutputOpt = None,
    advisories: AdvisoriesOpt = None,
) -> None:
    """Write the bundled demo ERP project (if absent) and run its development stage."""
    from neuroerp_ci.demo import DEMO_PIPELINE, write_demo

    pipeline_file = directory / DEMO_PIPELINE
    if pipeline_file.is_file():
        out.print(f"Using the existing demo project in {directory}")
    else:
        write_demo(directory)
        out.print(f"Wrote the demo project to {directory}")
    pipeline = load_pipeline(pipeline_file)
    raise typer.Exit(_run_stage(pipeline, "development", output, None, advisories))


@app.command()
def validate(config: ConfigOpt = None) -> None:
    """Check a pipeline file and print what it defines."""
    path = resolve_config_path(config)
    pipeline = load_pipeline(path)
    stages = ", ".join(
        f"{s.name} ({len(s.checks)} checks, {len(s.conditions)} conditions)"
        for s in pipeline.stages.values()
    )
    out.print(f"{path}: valid — {len(pipeline.checks)} checks; stages: {stages}")


@app.command()
def plan(
    stage: Annotated[str, typer.Argument(help="Stage to plan.")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show the execution plan: order, parallel layers, critical path and Mermaid text."""
    from neuroerp_ci.planning import stage_plan

    pipeline = load_pipeline(resolve_config_path(config))
    the_plan = stage_plan(pipeline, stage)
    if as_json:
        out.print_json(json.dumps(the_plan.to_dict()))
    else:
        out.print(the_plan.to_text(), markup=False)


def _run_stage(
    pipeline: Pipeline,
    stage: str,
    output: Path | None,
    version: str | None,
    advisories: Path | None,
) -> int:
    from neuroerp_ci.progress import ConsoleProgress
    from neuroerp_ci.reports.json_report import report_from_dict
    from neuroerp_ci.reports.writer import default_output_dir, new_run_id
    from neuroerp_ci.versioning import detect_version

    if advisories is not None and not (advisories / "vulns").is_dir():
        raise UsageError(f"--advisories {advisories}: not an OSV mirror (no vulns/ folder)")
    run_id = new_run_id()
    out_dir = (output or default_output_dir(pipeline.project_dir, run_id)).resolve()
    version = version or detect_version(pipeline.project_dir)
    checks = [pipeline.checks[c] for c in pipeline.stage(stage).checks]
    out.print(f"Running stage [bold]{stage}[/] of {pipeline.path} for version {version}")
    with ConsoleProgress(out, checks) as progress:
        from neuroerp_ci.orchestration import set_observer, stage_gate

        set_observer(progress)
        try:
            stage_gate(
                stage=stage,
                config=str(pipeline.path),
                version=version,
                output_dir=str(out_dir),
                advisories=str(advisories) if advisories else None,
                run_id=run_id,
                return_state=True,
            )
        finally:
            set_observer(None)
    report_file = out_dir / "report.json"
    if not report_file.is_file():
        err.print(f"neuroerp-ci: error: the stage ran but wrote no report in {out_dir}")
        return ExitCode.INTERNAL
    report = report_from_dict(json.loads(report_file.read_text(encoding="utf-8")))
    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}[report.verdict.value]
    out.print(f"[bold {colour}]{report.verdict.value}[/] {report.summary}", soft_wrap=True)
    out.print(f"Reports: {out_dir}", soft_wrap=True)
    return for_verdict(report.verdict)


def main(argv: list[str] | None = None) -> None:
    """Entry point: map every error to one line and a distinct exit code."""
    command = typer.main.get_command(app)
    try:
        code: Any = command.main(
            args=argv if argv is not None else sys.argv[1:],
            prog_name="neuroerp-ci",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        err.print("neuroerp-ci: aborted")
        code = 130
    except click.UsageError as exc:
        err.print(f"neuroerp-ci: usage error: {exc.format_message()}", markup=False)
        code = ExitCode.BAD_INPUT
    except click.ClickException as exc:
        err.print(f"neuroerp-ci: error: {exc.format_message()}", markup=False)
        code = ExitCode.BAD_INPUT
    except (ConfigError, UsageError) as exc:
        err.print(f"neuroerp-ci: error: {exc}", markup=False, soft_wrap=True)
        code = ExitCode.BAD_INPUT
    except NeuroErpCiError as exc:
        err.print(f"neuroerp-ci: error: {exc}", markup=False, soft_wrap=True)
        code = ExitCode.INTERNAL
    sys.exit(int(code or 0))
