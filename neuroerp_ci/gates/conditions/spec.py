"""One gate condition as a stage of the pipeline file writes it: :class:`ConditionSpec`.

The keys every condition shares are the model's fields; the rest select ONE condition form
from :data:`~neuroerp_ci.gates.conditions.registry.FORMS` and are validated by that form's
parameter model. No code here names a form: a form added to the registry is accepted by the
pipeline file, and the messages below list its keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails

from neuroerp_ci.gates.conditions.interface import ConditionForm, FormParams
from neuroerp_ci.gates.conditions.registry import FORMS
from neuroerp_ci.model import InconclusivePolicy, Policy, Severity


class ConditionSpec(BaseModel):
    """One gate condition: the keys below, plus the keys of ONE condition form (an absolute
    ``max`` / ``min``, a limit against the baseline, a ``regression`` test, a ``findings``
    limit: see the condition forms), which pick the form and are validated by its model.

    ``on_no_baseline`` says what a condition against the baseline concludes while there is
    no baseline yet (default ``warn``: reported, never a silent pass). ``on_inconclusive``
    says what an INCONCLUSIVE outcome (a machine too busy to tell, too few samples for the
    effect that matters) counts as: ``warn`` (default) or ``fail``, never a pass.

    Timing conditions (a metric of a measurement check: http, load, database, network,
    frontend) re-measure their check before a breach counts (``confirm``, default 1 time): a
    breach the re-measurement does not repeat is INCONCLUSIVE, not a FAIL. A load check's
    absolute limit may stop locust as soon as it is breached beyond doubt
    (``abort_on_fail``, after ``delay_s`` seconds of the run).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    check: str  # the id of the check whose result the condition judges
    metric: str | None = None  # the metric it limits (a findings limit names none)
    severity: Severity | None = None  # default: from the check's priority
    on_missing: Policy = "fail"  # the check was skipped, or did not measure the metric
    on_error: Policy = "fail"  # the check errored
    on_no_baseline: Policy = "warn"  # a condition against the baseline, while there is none
    on_inconclusive: InconclusivePolicy = "warn"  # what an INCONCLUSIVE outcome counts as
    # re-measurements of a breached timing condition's check before it counts (0: none)
    confirm: int = Field(default=1, ge=0, le=5)
    abort_on_fail: bool = False  # a load check's absolute limit: stop locust once breached
    delay_s: float = Field(default=0.0, ge=0)  # with abort_on_fail: judge only after this long

    _form: ConditionForm[Any] = PrivateAttr()
    _params: FormParams = PrivateAttr()

    @property
    def form(self) -> ConditionForm[Any]:
        """The condition's form (:data:`~neuroerp_ci.gates.conditions.registry.FORMS`)."""
        return self._form

    @property
    def params(self) -> FormParams:
        """The form's keys, as its parameter model."""
        return self._params

    @property
    def uses_baseline(self) -> bool:
        """Whether the condition compares with the baseline (its form's ``needs_baseline``)."""
        return self._form.needs_baseline

    @model_validator(mode="wrap")
    @classmethod
    def _pick_form(
        cls, data: Any, handler: ModelWrapValidatorHandler[ConditionSpec]
    ) -> ConditionSpec:
        if not isinstance(data, dict):
            return handler(data)  # a ConditionSpec already, or pydantic's "a table" error
        shared = {k: v for k, v in data.items() if k in cls.model_fields}
        rest = {k: v for k, v in data.items() if k not in cls.model_fields}
        form, params = _form_of(data, rest)
        spec = handler(shared)
        spec._form, spec._params = form, params
        return spec

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield from super().__repr_args__()
        params = (self.__pydantic_private__ or {}).get("_params")
        if params is not None:  # None while a failed validation is being reported
            yield from params.__repr_args__()

    @model_serializer(mode="wrap")
    def _as_written(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        """As in the pipeline file: the form's keys beside the shared ones."""
        shared: dict[str, Any] = handler(self)
        return {**shared, **self._params.model_dump(mode=info.mode)}


def _form_of(data: dict[str, Any], rest: dict[str, Any]) -> tuple[ConditionForm[Any], FormParams]:
    """The form the condition's own keys select, and those keys validated by it."""
    known = {key for form in FORMS.values() for key in form.params_model.model_fields}
    unknown = [k for k in rest if k not in known]
    if unknown:
        raise ValidationError.from_exception_data(
            ConditionSpec.__name__, [_unknown_key(k, rest[k], known) for k in unknown]
        )
    given = {k: v for k, v in rest.items() if v is not None}
    form = _select(data.get("metric"), set(given))
    if any(k not in form.params_model.model_fields for k in given):
        own = ", ".join(repr(k) for k in form.params_model.model_fields)
        raise ValueError(form.usage or f"a {form.name} condition takes {own} and nothing else")
    params = form.params_model.model_validate(given)
    if "on_no_baseline" in data and not form.compares_with_baseline(params):
        keys = [k for f in FORMS.values() if f.needs_baseline for k in f.keys]
        raise ValueError(
            "'on_no_baseline' only applies to conditions against the baseline ("
            + ", ".join(keys)
            + ", findings with new = true)"
        )
    return form, params


def _unknown_key(key: str, value: Any, form_keys: set[str]) -> InitErrorDetails:
    """pydantic's "unknown key" error, with the closest key any condition takes if one is close."""
    keys = sorted(form_keys | set(ConditionSpec.model_fields))
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not close:
        return InitErrorDetails(type="extra_forbidden", loc=(key,), input=value)
    problem = ValueError(f"unknown key; did you mean {close[0]!r}?")
    return InitErrorDetails(type="value_error", loc=(key,), input=value, ctx={"error": problem})


def _select(metric: Any, given: set[str]) -> ConditionForm[Any]:
    """The one form whose keys are ``given``; a ValueError saying what to write otherwise."""
    metric_forms = [f for f in FORMS.values() if f.subject == "metric"]
    named = [f for f in FORMS.values() if f.subject != "metric" and given & set(f.keys)]
    if (metric is None) == (not named):
        subjects = ["metric", *(k for f in FORMS.values() if f.subject != "metric" for k in f.keys)]
        raise ValueError("give exactly one of " + _either(subjects))
    chosen = named or [f for f in metric_forms if given & set(f.keys)]
    if not chosen:
        plain = [k for f in metric_forms if not f.needs_baseline for k in f.keys]
        against = [k for f in metric_forms if f.needs_baseline for k in f.keys]
        needs = _either(plain) if plain else "a limit"
        if against:
            needs += ", or a limit against the baseline: one of " + _either(against)
        raise ValueError(f"metric {metric!r} needs {needs}")
    if len(chosen) > 1:
        shown = " and ".join(
            f"{f.name} ({', '.join(k for k in f.keys if k in given)})" for f in chosen
        )
        subject = f"metric {metric!r}: " if metric is not None else ""
        raise ValueError(
            f"{subject}one kind of limit per condition, got {shown}; write one condition for each"
        )
    return chosen[0]


def _either(keys: list[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    quoted = [repr(k) for k in keys]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
