"""``abort_on_fail`` / ``delay_s`` on stage conditions: where they may stand, and what the
check is told.

A condition with ``abort_on_fail = true`` stops its check's run as soon as it is breached
beyond doubt (:mod:`neuroerp_ci.checks._load_abort`), the way k6's ``abortOnFail`` does. That
only means something for a limit the check can watch while it runs, so the loader refuses it
anywhere else, at load time, with the reason:

- the check's kind must watch metrics live (:attr:`CheckKind.live_metrics`: the ``load`` kind);
- the condition must be an absolute limit (``max`` / ``min``): a limit against the baseline or
  a regression test is judged on the whole run's samples after it;
- its metric must be one the kind watches (aggregate latency percentiles, ``failure_ratio``,
  ``rps``);
- it must be blocking: stopping the run cuts every other condition's data short, which only a
  verdict that is FAIL anyway may do;
- ``delay_s`` only with ``abort_on_fail``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal, cast

from neuroerp_ci.checks import KINDS, Check
from neuroerp_ci.checks.interface import LiveLimit
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.gates.conditions import ConditionSpec, describe
from neuroerp_ci.gates.conditions.absolute import AbsoluteLimit, AbsoluteParams
from neuroerp_ci.model import Severity


def refuse_misplaced_abort(cond: ConditionSpec, check: Check, path: Path, where: str) -> None:
    """ConfigError when ``abort_on_fail`` / ``delay_s`` cannot work on this condition.

    ``where`` is the condition's key (``stages.staging.conditions[2]``).
    """
    if not cond.abort_on_fail:
        if "delay_s" in cond.model_fields_set:
            raise ConfigError(
                path,
                f"{where}.delay_s",
                f"{_named(cond)}: delay_s only applies with abort_on_fail = true (it delays"
                " when a breach may stop the run)",
            )
        return
    key = f"{where}.abort_on_fail"
    live = KINDS[check.kind].live_metrics
    if not live:
        raise ConfigError(
            path,
            key,
            f"{_named(cond)}: check {check.id!r} ({check.kind}) cannot be stopped early;"
            " abort_on_fail is for a load check's limits",
        )
    if cond.form.name != AbsoluteLimit.name:
        raise ConfigError(
            path,
            key,
            f"{_named(cond)}: abort_on_fail needs an absolute limit (max / min), not a"
            f" {cond.form.name} condition, which is only judged on the whole run",
        )
    if cond.metric not in live:
        raise ConfigError(
            path,
            key,
            f"{_named(cond)}: check {check.id!r} does not watch {cond.metric!r} while it"
            f" runs; abort_on_fail works on {', '.join(sorted(live))}",
        )
    severity = cond.severity or Severity.for_priority(check.priority)
    if severity is not Severity.BLOCKING:
        raise ConfigError(
            path,
            key,
            f"{_named(cond)}: abort_on_fail needs a blocking condition (this one is"
            f" {severity.value}): stopping the run cuts every other condition's data short",
        )


def abort_limits(conditions: Iterable[ConditionSpec]) -> dict[str, tuple[LiveLimit, ...]]:
    """Each check's abort limits from a stage's conditions (a band gives two: max and min).

    Only conditions :func:`refuse_misplaced_abort` let through carry ``abort_on_fail``.
    """
    found: dict[str, list[LiveLimit]] = {}
    for cond in conditions:
        if not cond.abort_on_fail or cond.metric is None:
            continue
        if cond.form.name != AbsoluteLimit.name:
            continue
        params = cast(AbsoluteParams, cond.params)  # the absolute form's own model
        bounds: tuple[tuple[Literal["max", "min"], float | None], ...] = (
            ("max", params.max),
            ("min", params.min),
        )
        for op, limit in bounds:
            if limit is not None:
                found.setdefault(cond.check, []).append(
                    LiveLimit(cond.metric, op, limit, cond.delay_s)
                )
    return {check: tuple(limits) for check, limits in found.items()}


def _named(cond: ConditionSpec) -> str:
    """``condition 'p95_ms <= 300' on 'load-test'``."""
    text, _target = describe(cond)
    return f"condition {text!r} on {cond.check!r}"
