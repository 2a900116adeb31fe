"""One stage's gate, whoever runs it: the version resolved, the promotion rule decided against
the history, then the stage run on exactly the tree of that version (or the refusal written
and recorded). The Prefect flow ``stage-gate`` and the command line's server-less path both
call :func:`gate_stage`; only the executor (Prefect tasks or a thread pool) differs.

Example::

    options = run_options(pipeline, stage, version.id, None, None, None)
    with history(pipeline) as store, ThreadPoolExecutor(MAX_CONCURRENT_CHECKS) as pool:
        outcome = gate_stage(pipeline, stage, version, options, ThreadExecutor(pool), store)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from neuroerp_ci.config import Pipeline, Stage
from neuroerp_ci.project.versioning import UNVERSIONED, Version, resolve_version
from neuroerp_ci.release.promotion import PromotionDecision, check_promotion, refusal_report
from neuroerp_ci.reports.writer import default_output_dir, new_run_id
from neuroerp_ci.run.checkout import identity, pipeline_for_version
from neuroerp_ci.run.runner import (
    CheckExecutor,
    RunObserver,
    RunOptions,
    StageOutcome,
    run_stage,
    split_mirrors,
    write_and_record,
)
from neuroerp_ci.store import HistoryStore, open_store, store_url
from neuroerp_ci.support.secrets import SecretLoader

H = TypeVar("H")


def requested_version(pipeline: Pipeline, version: str | None) -> Version:
    """The version named, resolved to its full form; the checkout's HEAD when none is named
    (a Quick run from the UI), never a silent "unversioned" for a git checkout."""
    named = None if version is None or version.strip() in ("", UNVERSIONED) else version
    return resolve_version(pipeline.project_dir, named)


def run_options(
    pipeline: Pipeline,
    stage: Stage,
    version: str,
    output_dir: str | Path | None,
    advisories: str | None,
    run_id: str | None,
    load_secret: SecretLoader | None = None,
    use_cache: bool = True,
) -> RunOptions:
    """What :func:`run_stage` is given: ``advisories`` as one ``os.pathsep``-joined string;
    ``use_cache`` False runs every check (see :mod:`neuroerp_ci.run.cache`)."""
    the_id = run_id or new_run_id()
    return RunOptions(
        stage=stage.name,
        version=version,
        output_dir=(
            Path(output_dir) if output_dir else default_output_dir(pipeline.project_dir, the_id)
        ),
        run_id=the_id,
        advisories=split_mirrors(advisories),
        load_secret=load_secret,
        use_cache=use_cache,
    )


@contextmanager
def history(pipeline: Pipeline) -> Iterator[HistoryStore]:
    """The pipeline's history store (default: SQLite in the project), open for one run."""
    with open_store(store_url(pipeline.store_url, pipeline.project_dir)) as store:
        yield store


def gate_stage(
    pipeline: Pipeline,
    stage: Stage,
    version: Version,
    options: RunOptions,
    executor: CheckExecutor[H],
    observer: RunObserver | None,
    store: HistoryStore,
) -> StageOutcome:
    """Decide the promotion rule, then run the stage on ``version``'s tree, or refuse."""
    decision = check_promotion(pipeline, stage, version.id, store)
    if not decision.allowed:
        return refuse(pipeline, options, decision, store)
    with pipeline_for_version(pipeline, version) as tested:
        options = replace(options, identity=identity(version, pipeline, tested))
        return run_stage(tested, options, executor, observer, store=store)


def refuse(
    pipeline: Pipeline,
    options: RunOptions,
    decision: PromotionDecision,
    store: HistoryStore,
) -> StageOutcome:
    """A refused stage: a FAIL report with the reason, written and recorded; nothing ran."""
    report = refusal_report(decision, pipeline.target.name, options.run_id)
    out_dir = options.output_dir or default_output_dir(pipeline.project_dir, options.run_id)
    report, files = write_and_record(report, out_dir, store)
    return StageOutcome(report, out_dir, files)
