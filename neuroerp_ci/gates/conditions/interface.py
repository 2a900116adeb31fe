"""What a condition form is: the keys that select it, its parameters, its text and its judgement.

A gate condition in the pipeline file is the keys every condition shares (``check``,
``metric``, ``severity``, ``on_missing``, ``on_error``, ``on_no_baseline``: see
:class:`~neuroerp_ci.gates.conditions.spec.ConditionSpec`) plus the keys of ONE form: an
absolute limit (``max = 250``), a limit against the baseline (``max_increase_pct = 10``), a
statistical ``regression`` test, a ``findings`` limit. A form is one class:

- ``keys``: the pipeline-file keys that select it (no two forms of one subject share one);
- ``params_model``: a pydantic model of ALL its keys, which validates them when the file is
  loaded and documents them (``docs/configuration.md`` is generated from it);
- ``describe``: the condition as text (``p95_ms <= 250``) and its target (``<= 250``);
- ``judge``: the :class:`~neuroerp_ci.gates.conditions.judgement.Judgement` on a check's
  :class:`Evidence`.

The dispatcher does what every form shares, so a form never repeats it: a check that errored
or was skipped resolves by ``on_error`` / ``on_missing``, a metric that was not measured by
``on_missing``, a baseline form without a baseline yet by ``on_no_baseline``; only then is
:meth:`ConditionForm.judge` called. A form registers with one line in
:data:`~neuroerp_ci.gates.conditions.registry.FORMS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from neuroerp_ci.gates.conditions.judgement import Judgement
from neuroerp_ci.model import Baseline, CheckResult, Metric

# What a form limits: a metric of the check (the condition then names it with ``metric``),
# or the check's findings (it then takes no ``metric``).
Subject = Literal["metric", "findings"]


class FormParams(BaseModel):
    """Base of every form's parameters: its keys in a condition. Unknown keys are errors,
    and ``inf`` / ``nan`` limit nothing. A field's comment is its documentation."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


ParamsT = TypeVar("ParamsT", bound=FormParams)


@dataclass(frozen=True)
class Evidence:
    """What a form judges: the check's result (status ``ok``) and, when the form needs them,
    the condition's metric (measured, not NaN) and its usable baseline (never None for a
    form with ``needs_baseline``)."""

    check_id: str
    result: CheckResult
    metric: Metric | None = None
    baseline: Baseline | None = None


class ConditionForm(ABC, Generic[ParamsT]):
    """One form of gate condition; :data:`~neuroerp_ci.gates.conditions.registry.FORMS` maps
    its ``name`` to it."""

    name: ClassVar[str]  # in messages ("one kind of limit per condition, got absolute (max) ...")
    keys: ClassVar[tuple[str, ...]]  # the pipeline-file keys that select this form
    params_model: type[ParamsT]  # every key of the form, validated and documented
    subject: ClassVar[Subject] = "metric"
    # True: the dispatcher gives judge() the metric's baseline, or resolves on_no_baseline
    # itself while there is none. Baselines are per metric: only for subject "metric".
    needs_baseline: ClassVar[bool] = False
    # The message for a condition that mixes this form's keys with another form's; "" gives
    # "a <name> condition takes '<key>', ... and nothing else".
    usage: ClassVar[str] = ""

    def compares_with_baseline(self, params: ParamsT) -> bool:
        """Whether a condition of this form with ``params`` compares with the baseline, so
        ``on_no_baseline`` applies to it (a metric form: ``needs_baseline``)."""
        return self.needs_baseline

    @abstractmethod
    def describe(self, params: ParamsT, metric: str | None) -> tuple[str, str]:
        """The condition as text (``p95_ms <= 250``) and its target (``<= 250``); ``metric``
        is the condition's metric (None for a form whose subject is findings)."""

    @abstractmethod
    def judge(self, params: ParamsT, evidence: Evidence) -> Judgement:
        """Met or breached, with the value, the concrete target and a reason a person can act
        on (``api: p95_ms 412 > 250``); ``"missing"`` when the data cannot decide."""

    # A form holds no state: every instance of one class is the same form (so a condition
    # equals its copy or its unpickled self).
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
