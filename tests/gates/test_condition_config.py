"""Condition forms in the pipeline file: what parses, and the errors for mixtures."""

from __future__ import annotations

import copy
import pickle
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.config import ConditionSpec, RegressionSpec, load_pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.gates.conditions.absolute import AbsoluteParams
from neuroerp_ci.gates.conditions.findings import FindingsParams
from neuroerp_ci.gates.conditions.regression import RegressionParams
from neuroerp_ci.gates.conditions.relative import RelativeParams
from neuroerp_ci.model import FindingSeverity

PIPELINE = """
[[checks]]
id = "api-baseline"
kind = "http"
settings = {{ endpoints = [{{ name = "health", url = "http://127.0.0.1:9/health" }}] }}

[stages.staging]
conditions = [
  {condition},
]
"""


def parse(condition: str) -> ConditionSpec:
    data: dict[str, Any] = tomllib.loads(f"c = {condition}")["c"]
    return ConditionSpec.model_validate(data)


def error(condition: str) -> str:
    with pytest.raises(ValidationError) as info:
        parse(condition)
    return str(info.value)


def relative(cond: ConditionSpec) -> tuple[str, float]:
    """(the relative limit given, its amount) of a relative condition."""
    assert isinstance(cond.params, RelativeParams), cond
    return cond.params.key, cond.params.amount


def test_relative_forms_parse() -> None:
    pct = parse('{ check = "api-baseline", metric = "p95_ms", max_increase_pct = 10 }')
    assert relative(pct) == ("max_increase_pct", 10) and pct.uses_baseline
    assert pct.form.name == "relative" and pct.on_no_baseline == "warn"
    coverage = parse('{ check = "unit-tests", metric = "coverage_pct", max_decrease = 0 }')
    assert relative(coverage) == ("max_decrease", 0)
    size = parse('{ check = "frontend", metric = "total_bytes", max_increase = 5120 }')
    assert relative(size) == ("max_increase", 5120)
    drop = parse(
        '{ check = "api", metric = "rps", max_decrease_pct = 10, on_no_baseline = "fail" }'
    )
    assert relative(drop) == ("max_decrease_pct", 10) and drop.on_no_baseline == "fail"


def test_regression_form_parses_with_defaults() -> None:
    full = parse(
        '{ check = "api-baseline", metric = "p95_ms",'
        " regression = { alpha = 0.05, min_effect_pct = 3, min_samples = 30 } }"
    )
    spec = RegressionSpec(alpha=0.05, min_effect_pct=3, min_samples=30)
    assert full.params == RegressionParams(regression=spec)
    assert full.uses_baseline and full.form.name == "regression"
    defaults = parse('{ check = "api-baseline", metric = "p95_ms", regression = {} }')
    spec = RegressionSpec(alpha=0.01, min_effect_pct=5.0, min_samples=20)
    assert defaults.params == RegressionParams(regression=spec)


def test_absolute_forms_do_not_use_the_baseline() -> None:
    absolute = parse('{ check = "api", metric = "p95_ms", max = 250, min = 1 }')
    assert not absolute.uses_baseline and absolute.form.name == "absolute"
    assert absolute.params == AbsoluteParams(max=250, min=1)


def test_findings_form_takes_no_metric() -> None:
    findings = parse('{ check = "bandit", findings = "high", max = 0 }')
    assert findings.form.name == "findings" and findings.metric is None
    assert findings.params == FindingsParams(findings=FindingSeverity.HIGH, max=0)


def test_a_condition_dumps_as_written() -> None:
    written = {"check": "api", "metric": "p95_ms", "regression": {"alpha": 0.05}}
    dumped = ConditionSpec.model_validate(written).model_dump()
    assert dumped["regression"] == {"alpha": 0.05, "min_effect_pct": 5.0, "min_samples": 20}
    assert (dumped["check"], dumped["metric"]) == ("api", "p95_ms")
    assert "form" not in dumped and "params" not in dumped


def test_keyword_construction_and_equality() -> None:
    built = ConditionSpec(check="api", metric="p95_ms", max=250)  # keywords, as tests build it
    assert built == parse('{ check = "api", metric = "p95_ms", max = 250 }')
    assert built != parse('{ check = "api", metric = "p95_ms", max = 251 }')
    assert ConditionSpec.model_validate(built) is built
    assert pickle.loads(pickle.dumps(built)) == built == copy.deepcopy(built)
    assert "max=250" in repr(built)


@pytest.mark.parametrize(
    ("condition", "needle"),
    [
        (
            '{ check = "a", metric = "p95_ms", max = 250, max_increase_pct = 10 }',
            "one kind of limit per condition, got absolute (max) and relative"
            " (max_increase_pct); write one condition for each",
        ),
        (
            '{ check = "a", metric = "p95_ms", min = 1, regression = {} }',
            "got absolute (min) and regression (regression)",
        ),
        (
            '{ check = "a", metric = "p95_ms", max_increase = 5, regression = {} }',
            "got relative (max_increase) and regression (regression)",
        ),
        (
            '{ check = "a", metric = "p95_ms", max_increase_pct = 10, max_decrease_pct = 10 }',
            "one relative limit per condition, got max_increase_pct, max_decrease_pct",
        ),
        ('{ check = "a", metric = "p95_ms" }', "needs 'max' or 'min', or a limit against"),
        (
            '{ check = "a", metric = "p95_ms", max = 250, on_no_baseline = "fail" }',
            "'on_no_baseline' only applies to conditions against the baseline",
        ),
        (
            '{ check = "a", findings = "high", max = 0, on_no_baseline = "warn" }',
            "'on_no_baseline' only applies",
        ),
        (
            '{ check = "a", findings = "high", max = 0, max_increase = 1 }',
            "a findings limit takes 'max' (a count), optionally 'new' (true/false)",
        ),
        ('{ check = "a", findings = "high", regression = {} }', "takes 'max'"),
        ('{ check = "a", metric = "x", max_increase_pct = -5 }', "greater than or equal to 0"),
        ('{ check = "a", metric = "x", max_decrease_pct = 150 }', "less than or equal to 100"),
        ('{ check = "a", metric = "x", regression = { alpha = 0.6 } }', "less than 0.5"),
        ('{ check = "a", metric = "x", regression = { alpha = 0 } }', "greater than 0"),
        (
            '{ check = "a", metric = "x", regression = { min_samples = 3 } }',
            "greater than or equal to 5",
        ),
        (
            '{ check = "a", metric = "x", regression = { min_effect_pct = -1 } }',
            "greater than or equal",
        ),
        ('{ check = "a", metric = "x", regression = { alfa = 0.1 } }', "alfa"),
        ('{ check = "a", metric = "x", regression = true }', "regression"),
        (
            '{ check = "a", metric = "x", max_increase_pct = 10, on_no_baseline = "pass" }',
            "on_no_baseline",
        ),
        ('{ check = "a", metric = "x", max = inf }', "finite number"),
        ('{ check = "a", metric = "x", max_increase_pct = nan }', "finite number"),
        ('{ check = "a", metric = "x", regression = { alpha = nan } }', "finite number"),
    ],
)
def test_bad_combinations_are_clear_errors(condition: str, needle: str) -> None:
    assert needle in error(condition)


def test_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "neuroerp-ci.toml"
    condition = '{ check = "api-baseline", metric = "p95_ms", max = 1, max_increase_pct = 10 }'
    path.write_text(PIPELINE.format(condition=condition), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert info.value.key == "stages.staging.conditions[0]"
    assert "one kind of limit per condition" in str(info.value)


def test_unknown_regression_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "neuroerp-ci.toml"
    condition = '{ check = "api-baseline", metric = "p95_ms", regression = { alfa = 0.1 } }'
    path.write_text(PIPELINE.format(condition=condition), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert info.value.key == "stages.staging.conditions[0].regression.alfa"
    assert "unknown key" in str(info.value)


@pytest.mark.parametrize(
    ("condition", "key", "problem"),
    [
        (
            '{ check = "api-baseline", metric = "p95_ms", max_increse_pct = 10 }',
            "max_increse_pct",
            "unknown key; did you mean 'max_increase_pct'?",
        ),
        (
            '{ check = "api-baseline", metric = "p95_ms", max = 1, on_eror = "warn" }',
            "on_eror",
            "unknown key; did you mean 'on_error'?",
        ),
        (
            '{ check = "api-baseline", metric = "p95_ms", max = 1, banana = 2 }',
            "banana",
            "unknown key",
        ),
    ],
)
def test_unknown_condition_keys_are_named_with_the_closest_key(
    tmp_path: Path, condition: str, key: str, problem: str
) -> None:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(PIPELINE.format(condition=condition), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert (info.value.key, info.value.problem) == (f"stages.staging.conditions[0].{key}", problem)


def test_a_pipeline_with_baseline_conditions_loads(tmp_path: Path) -> None:
    path = tmp_path / "neuroerp-ci.toml"
    condition = (
        '{ check = "api-baseline", metric = "p95_ms", regression = { min_samples = 10 } },\n'
        '  { check = "api-baseline", metric = "p95_ms", max_increase_pct = 10,'
        ' on_no_baseline = "ignore" }'
    )
    path.write_text(PIPELINE.format(condition=condition), encoding="utf-8")
    conditions = load_pipeline(path).stage("staging").conditions
    assert isinstance(conditions[0].params, RegressionParams)
    assert conditions[0].params.regression.min_samples == 10
    assert conditions[1].on_no_baseline == "ignore"


def test_a_baseline_condition_on_a_metric_the_check_never_measures(tmp_path: Path) -> None:
    path = tmp_path / "neuroerp-ci.toml"
    condition = '{ check = "api-baseline", metric = "health.p95", regression = {} }'
    path.write_text(PIPELINE.format(condition=condition), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert info.value.key == "stages.staging.conditions[0].metric"
    assert "did you mean 'health.p95_ms'?" in info.value.problem
