"""The recipe for a new condition form, followed: one class, one registry line, and the pipeline
file, the gate and the plan know it, with no edit to config, the dispatcher, planning or
reports. Then: every registered form is complete (like pip-audit's "every enum choice maps to
an implementation").
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from baseline_fakes import DictBaselines, make_baseline, make_check, metric, result_with
from pydantic import Field, ValidationError

from neuroerp_ci.cli.planning import conditions_text
from neuroerp_ci.config import ConditionSpec, load_pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.gates import describe, evaluate, evaluate_stage
from neuroerp_ci.gates.conditions import (
    FORMS,
    ConditionForm,
    Evidence,
    FormParams,
    Judgement,
    dispatch,
    spec,
)
from neuroerp_ci.model import Finding, FindingSeverity, OutcomeStatus
from neuroerp_ci.support.formatting import format_value

# --- the new form: what a module neuroerp_ci/gates/conditions/band.py would hold -------------


class BandParams(FormParams):
    """The metric within ``tolerance`` of ``around``."""

    around: float  # the value the metric should have
    tolerance: float = Field(default=0.0, ge=0)  # how far from it is still fine


class Band(ConditionForm[BandParams]):
    """``{ metric = "rows", around = 100, tolerance = 5 }``: 95 <= rows <= 105."""

    name = "band"
    keys = ("around",)
    params_model = BandParams

    def describe(self, params: BandParams, metric: str | None) -> tuple[str, str]:
        target = f"{format_value(params.around)} ± {format_value(params.tolerance)}"
        return f"{metric} within {target}", target

    def judge(self, params: BandParams, evidence: Evidence) -> Judgement:
        assert evidence.metric is not None
        value = evidence.metric.value
        _, target = self.describe(params, evidence.metric.name)
        off = abs(value - params.around) > params.tolerance
        shown = f"{evidence.check_id}: {evidence.metric.name} {format_value(value)}"
        reason = f"{shown} {'outside' if off else 'within'} {target}"
        return Judgement("breached" if off else "met", value, target, reason)


@pytest.fixture
def band(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FORMS, Band.name, Band())  # the registry line


PIPELINE = """
[[checks]]
id = "count"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "print(1)"], metrics_json = true }}

[stages.dev]
conditions = [{conditions}]
"""


def pipeline_file(tmp_path: Path, conditions: str) -> Path:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(PIPELINE.format(conditions=conditions), encoding="utf-8")
    return path


def rows(value: float) -> Any:
    return result_with(metric("rows", value), check_id="count")


def test_the_pipeline_file_the_gate_and_the_plan_know_a_registered_form(
    tmp_path: Path, band: None
) -> None:
    path = pipeline_file(
        tmp_path, '{ check = "count", metric = "rows", around = 100, tolerance = 5 }'
    )
    pipeline = load_pipeline(path)
    stage = pipeline.stage("dev")
    [cond] = stage.conditions
    assert isinstance(cond.form, Band) and cond.params == BandParams(around=100, tolerance=5)
    assert describe(cond) == ("rows within 100 ± 5", "100 ± 5")
    check = pipeline.checks["count"]

    passed = evaluate(cond, check, rows(103))
    assert (passed.status, passed.reason) == (OutcomeStatus.PASS, "count: rows 103 within 100 ± 5")
    failed = evaluate(cond, check, rows(94))
    assert (failed.status, failed.reason) == (OutcomeStatus.FAIL, "count: rows 94 outside 100 ± 5")
    assert (failed.condition, failed.value, failed.target) == ("rows within 100 ± 5", 94, "100 ± 5")

    # what every form gets from the dispatcher: on_missing, the stage, the plan
    [missing] = evaluate_stage(
        "dev",
        stage.conditions_by_check(),
        pipeline.checks,
        {"count": result_with(check_id="count")},
    )
    assert missing.status is OutcomeStatus.FAIL and "'rows' was not measured" in missing.reason
    assert conditions_text(pipeline, "dev") == [
        "Conditions of stage dev:",
        "  count: rows within 100 ± 5 [blocking]",
    ]


@pytest.mark.parametrize(
    ("conditions", "key", "problem"),
    [
        (
            '{ check = "count", metric = "rows", around = 1, tolerance = -1 }',
            "stages.dev.conditions[0].tolerance",
            "must be at least 0 (got -1)",
        ),
        (
            '{ check = "count", metric = "rows", max = 1, around = 1 }',
            "stages.dev.conditions[0]",
            "metric 'rows': one kind of limit per condition, got absolute (max) and band"
            " (around); write one condition for each",
        ),
        (
            '{ check = "count", metric = "rows", tolerance = 1 }',
            "stages.dev.conditions[0]",
            "metric 'rows' needs 'max', 'min' or 'around', or a limit against the baseline:"
            " one of 'max_increase_pct', 'max_decrease_pct', 'max_increase', 'max_decrease'"
            " or 'regression'",
        ),
        (
            '{ check = "count", metric = "rows", around = 1, on_no_baseline = "fail" }',
            "stages.dev.conditions[0]",
            "'on_no_baseline' only applies to conditions against the baseline",
        ),
    ],
)
def test_a_registered_forms_keys_are_validated_like_every_forms(
    tmp_path: Path, band: None, conditions: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline(pipeline_file(tmp_path, conditions))
    assert info.value.key == key
    assert info.value.problem.startswith(problem), info.value.problem


def test_an_unregistered_form_is_an_unknown_key(tmp_path: Path) -> None:
    path = pipeline_file(tmp_path, '{ check = "count", metric = "rows", around = 100 }')
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert (info.value.key, info.value.problem) == (
        "stages.dev.conditions[0].around",
        "unknown key",
    )


def test_the_generic_parts_name_no_form() -> None:
    """The spec and the dispatcher import no form module: the registry is their only source."""
    forms = {type(f).__module__ for f in FORMS.values()}
    for module in (spec, dispatch):
        tree = ast.parse(inspect.getsource(module))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & forms, module.__name__


# --- every registered form is complete ---------------------------------------------------------

# One condition per registered form, and what it concludes on EVIDENCE (below).
EXAMPLES: dict[str, tuple[dict[str, Any], OutcomeStatus]] = {
    "absolute": ({"metric": "p95_ms", "max": 250}, OutcomeStatus.FAIL),
    "relative": ({"metric": "p95_ms", "max_increase_pct": 10}, OutcomeStatus.FAIL),
    "regression": ({"metric": "p95_ms", "regression": {"min_samples": 5}}, OutcomeStatus.FAIL),
    "findings": ({"findings": "high", "max": 0}, OutcomeStatus.FAIL),
}


def evidence() -> tuple[Any, DictBaselines]:
    slow = [300.0 + i for i in range(30)]
    result = result_with(metric("p95_ms", 320, slow))
    result.findings = [Finding("bandit", "B602", FindingSeverity.HIGH, "shell=True", "a.py:1")]
    fast = [100.0 + i for i in range(30)]
    return result, DictBaselines(make_baseline("p95_ms", (110.0,), fast))


def test_every_registered_form_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(FORMS)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_every_registered_form_is_complete(name: str) -> None:
    form = FORMS[name]
    assert form.name == name
    assert type(form).__module__ == f"neuroerp_ci.gates.conditions.{name}"  # one module each
    assert not inspect.isabstract(type(form))  # describe and judge implemented
    assert issubclass(form.params_model, FormParams)
    assert form.keys and set(form.keys) <= set(form.params_model.model_fields)
    assert form.subject == "metric" or not form.needs_baseline  # baselines are per metric
    others = [f for f in FORMS.values() if f is not form and f.subject == form.subject]
    assert not any(set(form.keys) & set(f.keys) for f in others), "keys select one form"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_registered_form_parses_describes_and_judges(name: str) -> None:
    keys, expected = EXAMPLES[name]
    cond = ConditionSpec.model_validate({"check": "api", **keys})
    assert cond.form is FORMS[name] and cond.uses_baseline is cond.form.needs_baseline
    text, target = describe(cond)
    assert text and target
    result, baselines = evidence()
    outcome = evaluate(cond, make_check(), result, baselines)
    assert outcome.status is expected, outcome.reason
    assert outcome.reason.startswith("api: ") and outcome.condition == text


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_registered_form_refuses_unknown_keys(name: str) -> None:
    keys, _ = EXAMPLES[name]
    with pytest.raises(ValidationError) as info:
        ConditionSpec.model_validate({"check": "api", **keys, "banana": 1})
    [error] = info.value.errors()
    assert (error["type"], error["loc"]) == ("extra_forbidden", ("banana",))
