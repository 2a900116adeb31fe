from __future__ import annotations

import copy
import gc
import math
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.checks import KINDS
from neuroerp_ci.config import load_pipeline, parse_pipeline
from neuroerp_ci.demo import DEMO_PIPELINE
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import Priority
from neuroerp_ci.support.placeholders import expand_all, placeholder_names

GOOD = """
[target]
base_url = "http://127.0.0.1:{port}"
start = ["{python}", "-m", "http.server", "{port}"]
health_url = "/"

[[checks]]
id = "unit-tests"
kind = "pytest"
settings = { markers = "unit" }

[[checks]]
id = "smoke"
kind = "command"
priority = "low"
dependencies = ["unit-tests"]
settings = { argv = ["{python}", "-c", "print(1)"] }

[stages.development]
conditions = [
  { check = "unit-tests", metric = "failed", max = 0 },
  { check = "smoke", metric = "exit_code", max = 0, severity = "warning" },
]

[stages.staging]
checks = ["unit-tests"]
requires = "development"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    return info.value


def test_good_pipeline_loads(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD))
    assert list(pipeline.checks) == ["unit-tests", "smoke"]
    assert pipeline.checks["smoke"].priority is Priority.LOW
    assert pipeline.checks["smoke"].dependencies == ("unit-tests",)
    assert pipeline.checks["unit-tests"].title == "unit-tests"
    assert pipeline.stages["development"].checks == ("unit-tests", "smoke")
    assert pipeline.stages["staging"].requires == "development"
    assert pipeline.project_dir == tmp_path.resolve()


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD + "\n[[checks]\n")
    assert "TOML syntax error" in exc.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline(tmp_path / "nope.toml")


def test_unknown_kind_names_check_and_known_kinds(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('kind = "command"', 'kind = "comand"'))
    assert exc.key == "checks[smoke].kind"
    assert "unknown kind 'comand'" in exc.problem and "command" in exc.problem


def test_unknown_dependency(tmp_path: Path) -> None:
    exc = error_for(
        tmp_path, GOOD.replace('dependencies = ["unit-tests"]', 'dependencies = ["unit"]')
    )
    assert exc.key == "checks[smoke].dependencies"
    assert "unknown dependency 'unit'" in exc.problem


def test_cycle_is_named(tmp_path: Path) -> None:
    text = GOOD.replace(
        'settings = { markers = "unit" }',
        'dependencies = ["smoke"]\nsettings = { markers = "unit" }',
    )
    exc = error_for(tmp_path, text)
    assert "cycle" in exc.problem
    assert (
        "unit-tests -> smoke -> unit-tests" in exc.problem
        or "smoke -> unit-tests -> smoke" in exc.problem
    )


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('kind = "pytest"', 'kind = "pytest"\ntimeout = "soon"'))
    assert exc.key == "checks[unit-tests].timeout"


def test_bad_settings_key_is_named(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('{ markers = "unit" }', '{ marker = "unit" }'))
    assert exc.key == "checks[unit-tests].settings.marker"
    assert exc.problem == "unknown key"


@pytest.mark.parametrize(
    ("condition", "needle"),
    [
        ('{ check = "unit-tests", metric = "failed" }', "needs 'max' or 'min'"),
        ('{ check = "unit-tests", metric = "failed", min = 5, max = 1 }', "greater than"),
        ('{ check = "unit-tests", findings = "high", max = -1 }', "whole number"),
        ('{ check = "unit-tests", findings = "high", max = 0.5 }', "whole number"),
        ('{ check = "unit-tests", metric = "x", findings = "high", max = 0 }', "exactly one"),
        ('{ check = "unit-tests", findings = "severe", max = 0 }', "severe"),
        ('{ check = "unit-tests", metric = "failed", max = "zero" }', "max"),
    ],
)
def test_bad_thresholds(tmp_path: Path, condition: str, needle: str) -> None:
    text = GOOD.replace('{ check = "unit-tests", metric = "failed", max = 0 }', condition)
    exc = error_for(tmp_path, text)
    assert exc.key.startswith("stages.development.conditions[0]")
    assert needle in str(exc)


def test_condition_on_check_outside_stage(tmp_path: Path) -> None:
    text = GOOD + (
        '\n[stages.nightly]\nchecks = ["unit-tests"]\n'
        'conditions = [{ check = "smoke", metric = "x", max = 1 }]\n'
    )
    exc = error_for(tmp_path, text)
    assert exc.key == "stages.nightly.conditions[0].check"


def test_stage_missing_a_dependency(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('checks = ["unit-tests"]', 'checks = ["smoke"]'))
    assert exc.key == "stages.staging.checks"
    assert "depends on 'unit-tests'" in exc.problem


def test_unknown_required_stage(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('requires = "development"', 'requires = "dev"'))
    assert exc.key == "stages.staging.requires"


def test_target_host_must_be_allowed(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace("http://127.0.0.1:{port}", "http://erp.example.com"))
    assert exc.key == "target"
    assert "allowed_hosts" in exc.problem


def test_duplicate_check_id(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('id = "smoke"', 'id = "unit-tests"'))
    assert "duplicate" in exc.problem


def test_unknown_stage_lookup(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="no stage 'prod'"):
        pipeline.stage("prod")


# --- no silent defaults: a check without conditions gets its kind's ------------------------


def test_a_check_without_conditions_gets_its_kinds_defaults(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD))
    staging = pipeline.stages["staging"]  # unit-tests, no condition of its own
    assert staging.conditions == ()
    assert [(c.check, c.metric, c.params.max) for c in staging.defaults] == [
        ("unit-tests", "failed", 0),
        ("unit-tests", "errors", 0),
    ]
    assert staging.conditions_by_check() == {"unit-tests": (staging.defaults, True)}
    # its own condition in development replaces the defaults; a command has none
    development = pipeline.stages["development"]
    assert development.defaults == ()
    by_check = development.conditions_by_check()
    assert [c.metric for c in by_check["unit-tests"][0]] == ["failed"]
    assert by_check["unit-tests"][1] is False


@pytest.mark.parametrize(
    "opt_out",
    [
        ('requires = "development"', 'requires = "development"\ndefault_conditions = false'),
        (
            'settings = { markers = "unit" }',
            'settings = { markers = "unit" }\ndefault_conditions = false',
        ),
    ],
    ids=["stage", "check"],
)
def test_default_conditions_false_opts_out(tmp_path: Path, opt_out: tuple[str, str]) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD.replace(*opt_out)))
    staging = pipeline.stages["staging"]
    assert staging.defaults == ()
    assert staging.conditions_by_check() == {"unit-tests": ((), False)}  # only "completed"


def test_a_check_listed_twice_in_a_stage(tmp_path: Path) -> None:
    exc = error_for(
        tmp_path, GOOD.replace('checks = ["unit-tests"]', 'checks = ["unit-tests", "unit-tests"]')
    )
    assert exc.key == "stages.staging.checks" and "listed twice" in exc.problem


# --- bad input anywhere in the demo's file: every key of it is tried ------------------------

DEMO_FILE = Path(__file__).resolve().parents[1] / "neuroerp_ci" / "demo" / "project" / DEMO_PIPELINE
DEMO = tomllib.loads(DEMO_FILE.read_text(encoding="utf-8"))
# What pydantic says in its own words; none of it may reach a person.
INTERNALS = ("Input should", "str-enum", "literal[", "function-", "instance of", "[type=",
             "pydantic", "union[", "lax-or-strict", "Value error")  # fmt: skip


def nodes(node: Any, loc: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every value of a parsed TOML document (tables and lists too) with its location."""
    found: list[tuple[tuple[Any, ...], Any]] = [(loc, node)] if loc else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        found += nodes(value, (*loc, key))
    return found


def replaced(loc: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """The demo's document with the value at ``loc`` replaced."""
    document = copy.deepcopy(DEMO)
    node: Any = document
    for part in loc[:-1]:
        node = node[part]
    node[loc[-1]] = value
    return document


def outcome_of(document: dict[str, Any]) -> ConfigError | None:
    try:
        parse_pipeline(document, DEMO_FILE)
    except ConfigError as exc:
        return exc
    return None


def test_the_demo_file_is_valid() -> None:
    assert outcome_of(DEMO) is None


def test_every_wrong_type_anywhere_is_one_plain_line() -> None:
    tried = 0
    for loc, value in nodes(DEMO):
        wrong: list[Any] = ["zz-bogus"] if not isinstance(value, str) else [12345, ["x"], {"x": 1}]
        for bad in wrong:
            exc = outcome_of(replaced(loc, bad))
            tried += 1
            if exc is None:
                continue
            message = str(exc)
            assert "\n" not in message and message.startswith(f"{DEMO_FILE}: "), message
            assert not [w for w in INTERNALS if w in message], (loc, message)
            if "must be one of" in exc.problem:
                assert exc.problem.endswith(")") and " (got " in exc.problem, (loc, message)
    assert tried > 300


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused_everywhere(bad: float) -> None:
    numbers = [
        loc for loc, v in nodes(DEMO) if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    assert len(numbers) > 40
    for loc in numbers:
        exc = outcome_of(replaced(loc, bad))
        assert exc is not None, loc
        assert exc.problem == f"must be a finite number (got {bad})", (loc, str(exc))
        assert exc.key.endswith(str(loc[-1]) if isinstance(loc[-1], str) else f"[{loc[-1]}]"), (
            exc.key
        )


def test_non_finite_numbers_in_free_form_values_too(tmp_path: Path) -> None:
    exc = error_for(
        tmp_path, GOOD.replace('{ markers = "unit" }', '{ markers = "unit", args = [], x = nan }')
    )
    assert exc.key == "checks[unit-tests].settings.x" and "finite" in exc.problem


def test_every_misspelt_placeholder_is_refused() -> None:
    uses = [(loc, v) for loc, v in nodes(DEMO) if isinstance(v, str) and placeholder_names(v)]
    assert {loc[0] for loc, _ in uses} >= {"target", "checks"}
    for loc, value in uses:
        for name in placeholder_names(value):
            typo = name[:-1] + name[-1].upper()  # {pythoN}
            exc = outcome_of(replaced(loc, value.replace("{" + name + "}", "{" + typo + "}", 1)))
            assert exc is not None, (loc, value)
            assert f"unknown placeholder {{{typo}}}" in exc.problem, str(exc)
            assert f"did you mean {{{name}}}?" in exc.problem, str(exc)


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        (
            '"{port}"]',
            '"{prot}"]',
            "target.start[3]",
            "unknown placeholder {prot}; did you mean {port}?",
        ),
        (
            '"-c", "print(1)"',
            '"-c", "print({x})"',
            "checks[smoke].settings.argv[2]",
            "known here: {base_url}, {port}, {project}, {python}",
        ),
        (
            'http://127.0.0.1:{port}"',
            'http://127.0.0.1:{base_url}"',
            "target.base_url",
            "{base_url} is not replaced in this field",
        ),
        (
            'health_url = "/"',
            'health_url = "/{prot}"',
            "target.health_url",
            "unknown placeholder {prot}",
        ),
    ],
)
def test_placeholder_errors_name_the_key(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    assert GOOD.count(old) == 1, old
    exc = error_for(tmp_path, GOOD.replace(old, new))
    assert exc.key == key and problem in exc.problem, str(exc)


def test_doubled_braces_are_a_literal_word(tmp_path: Path) -> None:
    text = GOOD.replace('"-c", "print(1)"', '"-c", "v = 1; print(f\'{{v}}\', {1: 2})"')
    argv = load_pipeline(write(tmp_path, text)).checks["smoke"].settings.model_dump()["argv"]
    assert expand_all(argv, {"python": "py"}) == ["py", "-c", "v = 1; print(f'{v}', {1: 2})"]


def test_a_placeholder_in_a_url_that_is_not_expanded(tmp_path: Path) -> None:
    text = GOOD + (
        '\n[[checks]]\nid = "api"\nkind = "http"\n'
        'settings = { endpoints = [{ name = "x", url = "http://127.0.0.1:{port}/x" }] }\n'
    )
    exc = error_for(tmp_path, text)
    assert exc.key == "checks[api].settings.endpoints[0].url"
    assert "{port} is not replaced in this field" in exc.problem


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("findings", "hgih", "critical, high, medium, low, unknown, any"),
        ("severity", "fatal", "blocking, warning, info"),
        ("on_missing", "pass", "fail, warn, ignore"),
        ("on_error", "pass", "fail, warn, ignore"),
    ],
)
def test_enum_messages_list_every_allowed_value(
    tmp_path: Path, field: str, value: str, allowed: str
) -> None:
    condition = {"findings": f'findings = "{value}", max = 0'}.get(
        field, f'metric = "failed", max = 0, {field} = "{value}"'
    )
    text = GOOD.replace(
        '{ check = "unit-tests", metric = "failed", max = 0 }',
        f'{{ check = "unit-tests", {condition} }}',
    )
    exc = error_for(tmp_path, text)
    assert exc.key == f"stages.development.conditions[0].{field}"
    assert exc.problem == f"must be one of {allowed} (got {value!r})"


def test_priority_and_a_union_of_number_and_word(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('priority = "low"', 'priority = "urgent"'))
    assert (exc.key, exc.problem) == (
        "checks[smoke].priority",
        "must be one of high, medium, low (got 'urgent')",
    )
    load = '\n[[checks]]\nid = "load"\nkind = "load"\n'
    load += 'settings = { duration_s = 5, workers = "many" }\n'
    exc = error_for(tmp_path, GOOD + load)
    assert exc.key == "checks[load].settings.workers"
    assert exc.problem == "must be a whole number or 'external' (got 'many')"


# --- conditions must name what their check can measure ---------------------------------------


def test_every_check_of_the_demo_refuses_a_misspelt_metric() -> None:
    pipeline = parse_pipeline(DEMO, DEMO_FILE)
    for check in pipeline.checks.values():
        declared = KINDS[check.kind].metric_names(check.settings)
        if declared.any_name:
            continue
        real = sorted(declared.fixed) or sorted(
            f"{i}.{s}" for i in declared.items or () for s in declared.per_item
        )
        typo = real[0][:-1]
        document = copy.deepcopy(DEMO)
        conditions = [{"check": check.id, "metric": typo, "max": 1}]
        document["stages"]["audit"] = {"conditions": conditions}  # all checks
        exc = outcome_of(document)
        assert exc is not None, (check.id, typo)
        assert exc.key == "stages.audit.conditions[0].metric", str(exc)
        assert f"never measures {typo!r}; did you mean {real[0]!r}?" in exc.problem, str(exc)


@pytest.mark.parametrize("limit", ["max = 1", "max_increase_pct = 10", "regression = {}"])
def test_every_form_of_condition_is_checked(tmp_path: Path, limit: str) -> None:
    text = GOOD.replace(
        '{ check = "unit-tests", metric = "failed", max = 0 }',
        f'{{ check = "unit-tests", metric = "p95_ms", {limit} }}',
    )
    exc = error_for(tmp_path, text)
    assert exc.key == "stages.development.conditions[0].metric"
    assert "check 'unit-tests' (pytest) never measures 'p95_ms'" in exc.problem


def test_a_findings_limit_on_a_kind_without_findings(tmp_path: Path) -> None:
    text = GOOD.replace(
        '{ check = "smoke", metric = "exit_code", max = 0, severity = "warning" }',
        '{ check = "smoke", findings = "high", max = 0 }',
    )
    exc = error_for(tmp_path, text)
    assert exc.key == "stages.development.conditions[1].findings"
    assert "check 'smoke' (command) reports no findings" in exc.problem


# --- linear in the file's size ----------------------------------------------------------------


def chained_pipeline(n: int) -> dict[str, Any]:
    """n checks, each depending on the next (deepest first), each with a condition."""
    checks = [
        {"id": f"c{i}", "kind": "command", "settings": {"argv": ["{python}", "x"]},
         "dependencies": [f"c{i + 1}"] if i + 1 < n else []}
        for i in range(n)
    ]  # fmt: skip
    conditions = [{"check": f"c{i}", "metric": "exit_code", "max": 0} for i in range(0, n, 2)]
    return {
        "checks": checks,
        "stages": {"dev": {"checks": [c["id"] for c in checks], "conditions": conditions}},
    }


def test_validation_time_grows_linearly_with_the_number_of_checks(tmp_path: Path) -> None:
    def cost(n: int) -> float:
        document = chained_pipeline(n)
        best = math.inf
        gc.collect()
        gc.disable()  # a collection's cost grows with everything else the test session holds
        try:
            for _ in range(5):  # the best of five: a busy neighbour only adds time
                started = time.process_time()
                parse_pipeline(document, tmp_path / "neuroerp-ci.toml")
                best = min(best, time.process_time() - started)
        finally:
            gc.enable()
        return max(best, 1e-6)

    small, large = cost(500), cost(5000)
    # Linear: about 10 times as long; the quadratic loops this replaced made it 50 times.
    assert large < 25 * small, (small, large)
