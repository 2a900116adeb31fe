"""The ``neuroerp-ci`` command line.

Exit codes (see :mod:`neuroerp_ci.cli.exit_codes`): 0 PASS or WARN, 1 FAIL, 2 bad pipeline file
or usage (one line, no traceback), 3 internal error (a history store that cannot be opened,
or a run it did not record), 130 after SIGINT, 143 after SIGTERM.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.table import Table

from neuroerp_ci.cli.consoles import err, out, wide
from neuroerp_ci.cli.exit_codes import ExitCode, for_signal
from neuroerp_ci.cli.init_command import init_project
from neuroerp_ci.cli.report_command import report as report_command
from neuroerp_ci.cli.stage_command import (
    NoCacheOpt,
    PrefectOpt,
    run_rollout_command,
    run_stage_command,
)
from neuroerp_ci.cli.store_access import open_history
from neuroerp_ci.config import load_pipeline, resolve_config_path
from neuroerp_ci.errors import ConfigError, NeuroErpCiError, UsageError
from neuroerp_ci.support.secrets import redact

if TYPE_CHECKING:
    from types import FrameType


# Before Prefect is imported (lazily, in the commands that run a flow): no telemetry, no
# shutdown tracebacks from the temporary server, only warnings from Prefect's own loggers.
for _key, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # The temporary server's 20 s default is too short on a busy 2-core CI machine (seen: 70 s).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "240",
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

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Pipeline file (default: ./neuroerp-ci.toml)."),
]
AdvisoriesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--advisories",
        help="Offline OSV advisory mirror folder for pip-audit checks; repeat it to merge "
        "several (also NEUROERP_CI_ADVISORIES, joined with the path separator).",
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
    prefect: PrefectOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Run one stage's quality gate and print its verdict.

    Runs here, without Prefect, unless a Prefect server is configured (PREFECT_API_URL) or
    --prefect is given: then as the stage-gate flow, visible in the server's UI.
    """
    pipeline = load_pipeline(resolve_config_path(config))
    spec = pipeline.stage(stage)  # unknown stage: exit 2 before anything starts
    _refuse_unwritable_output(output, pipeline.project_dir)
    raise typer.Exit(
        run_stage_command(pipeline, spec, output, version, advisories, prefect, no_cache)
    )


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Where to write the demo project.")] = Path(
        "neuroerp-demo"
    ),
    output: OutputOpt = None,
    advisories: AdvisoriesOpt = None,
    prefect: PrefectOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Write the bundled demo ERP project (if absent) and run its development stage."""
    from neuroerp_ci.demo import DEMO_PIPELINE, write_demo

    _refuse_unwritable_output(output, directory)
    pipeline_file = directory / DEMO_PIPELINE
    if pipeline_file.is_file():
        out.print(f"Using the existing demo project in {directory}")
    else:
        write_demo(directory)
        out.print(f"Wrote the demo project to {directory}")
    pipeline = load_pipeline(pipeline_file)
    development = pipeline.stage("development")
    raise typer.Exit(
        run_stage_command(pipeline, development, output, None, advisories, prefect, no_cache)
    )


app.command("init")(init_project)  # neuroerp_ci.cli.init_command
app.command("report")(report_command)  # neuroerp_ci.cli.report_command


@app.command()
def validate(config: ConfigOpt = None) -> None:
    """Check a pipeline file and print what it defines, with every stage's conditions."""
    from neuroerp_ci.cli.planning import conditions_text

    path = resolve_config_path(config)
    pipeline = load_pipeline(path)
    stages = ", ".join(
        f"{s.name} ({len(s.checks)} checks, {len(s.conditions) + len(s.defaults)} conditions"
        + (f", {len(s.defaults)} of them kind defaults" if s.defaults else "")
        + ")"
        for s in pipeline.stages.values()
    )
    out.print(f"{path}: valid — {len(pipeline.checks)} checks; stages: {stages}", markup=False)
    for name in pipeline.stages:
        out.print("\n".join(conditions_text(pipeline, name)), markup=False)


@app.command()
def plan(
    stage: Annotated[str, typer.Argument(help="Stage to plan.")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show the execution plan: order, parallel layers, critical path and Mermaid text."""
    from neuroerp_ci.cli.planning import stage_plan

    pipeline = load_pipeline(resolve_config_path(config))
    the_plan = stage_plan(pipeline, stage)
    if as_json:
        out.print_json(json.dumps(the_plan.to_dict()))
    else:
        out.print(the_plan.to_text(), markup=False)


StageFilterOpt = Annotated[
    str | None, typer.Option("--stage", "-s", help="Only runs of this stage.")
]
baseline_app = typer.Typer(
    help="Show, pin, unpin or invalidate the runs a stage is compared with.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(baseline_app, name="baseline")


@app.command()
def history(
    config: ConfigOpt = None,
    stage: StageFilterOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of runs (and nothing else).")
    ] = False,
) -> None:
    """List the recorded runs of the pipeline's target, newest first."""
    from neuroerp_ci.support.formatting import format_duration

    pipeline = load_pipeline(resolve_config_path(config))
    with open_history(pipeline) as store:
        records = store.runs(stage=stage, target=pipeline.target.name, limit=limit)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Runs of {pipeline.target.name} ({store.name})", title_justify="left")
    for column in ("run id", "stage", "version", "verdict", "status", "started", "duration"):
        table.add_column(column, no_wrap=column in ("run id", "verdict", "status", "started"))
    table.add_column("baseline", overflow="fold")
    for r in records:
        flags = ["pinned"] if r.pinned else []
        if r.invalidated_reason is not None:
            flags.append(f"invalidated: {r.invalidated_reason}")
        table.add_row(
            r.run_id,
            r.stage,
            r.version,
            r.verdict.value if r.verdict else "—",
            r.state,
            r.started_at.replace("T", " ").removesuffix("+00:00") + "Z",
            "—" if r.duration_s is None else format_duration(r.duration_s),
            "; ".join(flags),
        )
    if not records:
        out.print(f"No runs of {pipeline.target.name} recorded in {store.name}")
        return
    wide().print(table)


@baseline_app.command("show")
def baseline_show(
    stage: Annotated[str, typer.Argument(help="Stage whose baseline to show.")],
    config: ConfigOpt = None,
    check: Annotated[str | None, typer.Option("--check", help="Only this check.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Only this metric.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which runs form the baseline of each metric, and the baseline value (their median);
    then the runs left out of it because a condition on the metric did not pass, and why."""
    from neuroerp_ci.support.formatting import format_number

    pipeline = load_pipeline(resolve_config_path(config))
    pipeline.stage(stage)
    with open_history(pipeline) as store:
        provider = store.baseline_provider(
            stage,
            pipeline.target.name,
            runs=pipeline.baseline_runs,
            window_days=pipeline.baseline_window_days,
            include=pipeline.baseline_include,
        )
        pairs = [
            (c, m)
            for c, m in provider.metrics()
            if (check is None or c == check) and (metric is None or m == metric)
        ]
        baselines = [b for b in (provider.baseline(c, m) for c, m in pairs) if b is not None]
        left_out = [(c, m, gone) for c, m in pairs for gone in provider.left_out(c, m)]
        pinned = provider.pinned_run()
    if pinned is not None:
        source = f"pinned run {pinned}"
    else:
        window = pipeline.baseline_window_days
        source = f"last {pipeline.baseline_runs} passing runs" + (
            f" of the last {format_number(window)} days" if window is not None else ""
        )
        source += (
            ", every condition on the metric passed"
            if pipeline.baseline_include == "pass"
            else ", no condition on the metric failed"
        )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "stage": stage,
                    "target": pipeline.target.name,
                    "pinned": pinned,
                    "include": pipeline.baseline_include,
                    "metrics": [
                        {
                            "check": b.check,
                            "metric": b.metric,
                            "baseline": b.value,
                            "values": list(b.values),
                            "runs": list(b.runs),
                            "samples": len(b.samples),
                        }
                        for b in baselines
                    ],
                    "left_out": [
                        {
                            "check": c,
                            "metric": m,
                            "run_id": gone.run_id,
                            "verdict": gone.verdict.value,
                            "status": gone.status.value,
                            "condition": gone.condition,
                            "reason": gone.reason,
                        }
                        for c, m, gone in left_out
                    ],
                },
                indent=2,
            )
        )
        return
    if not baselines:
        out.print(f"No baseline yet for stage {stage} of {pipeline.target.name} ({source})")
    else:
        table = Table(
            title=f"Baseline of stage {stage} ({pipeline.target.name}): {source}",
            title_justify="left",
        )
        for column in ("check", "metric", "baseline", "values (newest first)", "samples", "runs"):
            table.add_column(column)
        for b in baselines:
            table.add_row(
                b.check,
                b.metric,
                format_number(b.value),
                ", ".join(format_number(v) for v in b.values),
                str(len(b.samples)),
                ", ".join(b.runs),
            )
        wide().print(table)
    for c, m, gone in left_out:  # one line each, so a person can grep for a run
        out.print(
            f"left out of {c} {m}: run {gone.run_id} ({gone.verdict.value}):"
            f" {c} {gone.condition} {gone.status.value}: {gone.reason}",
            markup=False,
        )


@baseline_app.command("pin")
def baseline_pin(
    run_id: Annotated[str, typer.Argument(help="The run to compare its stage with from now on.")],
    config: ConfigOpt = None,
) -> None:
    """Pin a passing run: its stage is compared with exactly this run until unpinned."""
    pipeline = load_pipeline(resolve_config_path(config))
    with open_history(pipeline) as store, _known_run():
        record = store.pin(run_id)
    out.print(
        f"Pinned run {record.run_id} as the baseline of stage {record.stage} ({record.target})"
    )


@baseline_app.command("unpin")
def baseline_unpin(
    stage: Annotated[str, typer.Argument(help="Stage whose pinned run to release.")],
    config: ConfigOpt = None,
) -> None:
    """Unpin the stage's baseline run: it goes back to the last passing runs."""
    pipeline = load_pipeline(resolve_config_path(config))
    pipeline.stage(stage)
    with open_history(pipeline) as store:
        record = store.unpin(stage, pipeline.target.name)
    if record is None:
        out.print(f"No run of stage {stage} ({pipeline.target.name}) was pinned")
    else:
        out.print(f"Unpinned run {record.run_id} of stage {stage} ({pipeline.target.name})")


@baseline_app.command("invalidate")
def baseline_invalidate(
    run_id: Annotated[str, typer.Argument(help="The run never to use as a baseline again.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the run).")],
    config: ConfigOpt = None,
) -> None:
    """Invalidate a run: never a baseline again, and no longer a passed stage."""
    pipeline = load_pipeline(resolve_config_path(config))
    if not reason.strip():
        raise UsageError("--reason must say why the run is invalid")
    with open_history(pipeline) as store, _known_run():
        record = store.invalidate(run_id, reason)
    out.print(f"Invalidated run {record.run_id} of stage {record.stage}: {reason.strip()}")


@app.command()
def calibrate(
    stage: Annotated[str, typer.Argument(help="Stage whose conditions to calibrate.")],
    config: ConfigOpt = None,
    budget: Annotated[
        float,
        typer.Option(
            "--budget",
            min=0,
            max=100,
            help="False-alarm budget of a blocking condition, in %.",
        ),
    ] = 5.0,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Newest passing runs to replay.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (and nothing else).")] = False,
) -> None:
    """Measure how often each condition of a stage is wrong, on the stage's own history.

    Replays the passing runs of the stage through each condition on a metric: A/A pairs
    (each run against the baseline of the runs before it) give the false-alarm rate, shifts
    of +10/+20/+50 % injected into a run give the detection rates. The figures are stored
    and shown beside each condition in every later report. Exit 0, or 1 when a blocking
    condition's false-alarm rate exceeds the budget; 2 for an unknown stage.
    """
    from neuroerp_ci.cli.calibrating import (
        calibrate_pipeline_stage,
        calibration_notes,
        calibration_table,
    )

    pipeline = load_pipeline(resolve_config_path(config))
    pipeline.stage(stage)  # unknown stage: exit 2 before the store is opened
    with open_history(pipeline) as store:
        result = calibrate_pipeline_stage(pipeline, stage, store, budget_pct=budget, limit=limit)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        if result.conditions:
            wide().print(calibration_table(result))
        for line in calibration_notes(result):
            out.print(line, markup=False)
    raise typer.Exit(ExitCode.GATE_FAILED if result.over_budget else ExitCode.OK)


# What the write probe writes (and removes) in the report directory: a device with less room
# than this would fail the run only after every check ran, when the reports are written.
OUTPUT_PROBE_BYTES = 64 * 1024


def _refuse_unwritable_output(output: Path | None, project_dir: Path) -> None:
    """A report directory the run could not write to is bad input: exit 2 now, not after
    every check ran. ``None`` stands for the default, under the project's state folder."""
    from neuroerp_ci.support.state_dir import STATE_DIR

    where = output if output is not None else project_dir / STATE_DIR / "runs"
    problem = output_problem(where)
    if problem is None:
        return
    if output is not None:
        raise UsageError(f"--output {output}: {problem}")
    raise UsageError(f"report directory {where}: {problem}; choose another with --output DIR")


def output_problem(path: Path) -> str | None:
    """Why reports could not be written under ``path`` (created if missing), or None.

    The nearest existing folder on the way must be a directory where a small file can be
    created, written to disk and removed: that catches a file in the way, missing
    permissions, a read-only and a full device, without creating anything.
    """
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        named = "" if existing == path else f"{existing} "
        return f"{named}is a file, not a directory"
    try:
        write_probe(existing)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"no space left on the device of {existing}"
        return f"cannot write in {existing} ({exc.strerror or exc})"
    return None


def write_probe(directory: Path) -> None:
    """Create, fill, flush to disk and remove a small file in ``directory``."""
    fd, name = tempfile.mkstemp(prefix=".neuroerp-ci-probe-", dir=directory)
    try:
        os.write(fd, bytes(OUTPUT_PROBE_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(name)


@contextmanager
def _known_run() -> Iterator[None]:
    """An unknown (or unusable) run id is a usage error: exit 2, one line."""
    from neuroerp_ci.store import UnknownRunError

    try:
        yield
    except UnknownRunError as exc:
        raise UsageError(str(exc)) from None


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to promote (e.g. a git SHA).")],
    to: Annotated[str, typer.Option("--to", help="The stage to promote it to, e.g. staging.")],
    config: ConfigOpt = None,
    output: OutputOpt = None,
    advisories: AdvisoriesOpt = None,
    prefect: PrefectOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Run a stage for VERSION once the stage it requires has passed for VERSION.

    Refused at once (exit 1, nothing runs) when the history has no such PASS. A stage with
    approval or hooks runs as a rollout and needs a Prefect server (PREFECT_API_URL) on
    which someone can approve it.
    """
    from neuroerp_ci.project.versioning import resolve_version
    from neuroerp_ci.release.promotion import check_promotion
    from neuroerp_ci.release.rollout import is_rollout_stage

    pipeline = load_pipeline(resolve_config_path(config))
    stage = pipeline.stage(to)
    _refuse_unwritable_output(output, pipeline.project_dir)
    version = resolve_version(pipeline.project_dir, version).id  # a prefix is its full SHA
    with open_history(pipeline) as store:
        decision = check_promotion(
            pipeline, stage, version, store, as_rollout=is_rollout_stage(stage)
        )
    if not decision.allowed:
        out.print(f"FAIL {to}: refused: {decision.reason}", markup=False, soft_wrap=True)
        raise typer.Exit(ExitCode.GATE_FAILED)
    out.print(f"Promoting {version} to {to}: {decision.reason}", markup=False, soft_wrap=True)
    if is_rollout_stage(stage):
        raise typer.Exit(run_rollout_command(pipeline, stage, output, version, advisories))
    raise typer.Exit(
        run_stage_command(pipeline, stage, output, version, advisories, prefect, no_cache)
    )


# Typer >= 0.2x vendors click (typer._click) and raises its own classes; older Typer raises
# click's. Both kinds are caught so a bad command line is always one line and exit 2.
_EXITS = (typer.Exit, click.exceptions.Exit)
_ABORTS = (typer.Abort, click.exceptions.Abort)
_COMMAND_LINE_ERRORS = (
    getattr(typer, "TyperException", click.ClickException),
    click.ClickException,
)


class Terminated(BaseException):
    """SIGTERM (or SIGHUP), raised in the main thread so that it unwinds like Ctrl-C: the
    run's tools are killed, its target stopped, the run recorded ``aborted``, and the
    interpreter exits normally, which stops Prefect's temporary server."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signal = signum  # what Prefect's TerminationSignal carries too


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_unwinding = False  # a stop signal is being handled, or the command is over


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    global _unwinding
    if _unwinding:  # asked again, or while exiting: no more waiting; the watchdog ends the rest
        os.write(2, f"neuroerp-ci: stopped by {signal.Signals(signum).name}\n".encode())
        os._exit(for_signal(signum))
    _unwinding = True
    raise Terminated(signum)


@contextmanager
def _stop_signals_unwind(restore: bool) -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` while the command runs (an ignored
    signal, e.g. under nohup, stays ignored). Afterwards the previous handlers come back when
    ``restore``; else (the process's entry point) a stop signal during the interpreter's exit
    (Prefect's server stopping, logs flushing) ends the process at once."""
    global _unwinding
    _unwinding = False
    previous = {
        sig: signal.signal(sig, _on_stop_signal)
        for sig in _STOP_SIGNALS
        if signal.getsignal(sig) is signal.SIG_DFL
    }
    try:
        yield
    finally:
        _unwinding = True
        if restore:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    """Entry point: map every error to one line and a distinct exit code."""
    command = typer.main.get_command(app)
    try:
        with _stop_signals_unwind(restore=argv is not None):
            code: Any = command.main(
                args=argv if argv is not None else sys.argv[1:],
                prog_name="neuroerp-ci",
                standalone_mode=False,
            )
    except _EXITS as exc:
        code = exc.exit_code
    except Terminated as exc:
        err.print(f"neuroerp-ci: {exc}: the run was stopped", markup=False)
        code = for_signal(exc.signal)
    except (*_ABORTS, KeyboardInterrupt):
        err.print("neuroerp-ci: interrupted (SIGINT): the run was stopped", markup=False)
        code = ExitCode.INTERRUPTED
    except _COMMAND_LINE_ERRORS as exc:
        err.print(f"neuroerp-ci: usage error: {exc.format_message()}", markup=False)
        code = ExitCode.BAD_INPUT
    except (ConfigError, UsageError) as exc:
        err.print(f"neuroerp-ci: error: {redact(str(exc))}", markup=False, soft_wrap=True)
        code = ExitCode.BAD_INPUT
    except NeuroErpCiError as exc:
        err.print(f"neuroerp-ci: error: {redact(str(exc))}", markup=False, soft_wrap=True)
        code = ExitCode.INTERNAL
    sys.exit(int(code or 0))
