"""Secrets: which values are secret, the environments they are kept out of, and redaction.

Each test uses its own secret values (the process-wide registry only ever grows), and a fresh
:class:`Redactor` where the registry itself is not under test.
"""

from __future__ import annotations

import json
import logging
import secrets as stdlib_secrets
import stat
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.config.secret_refs import collect_secrets
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    Outcome,
    OutcomeStatus,
    Severity,
    StageReport,
    Summary,
    Verdict,
    summary_line,
)
from neuroerp_ci.reports import RENDERERS
from neuroerp_ci.reports.writer import write_reports
from neuroerp_ci.support.placeholders import expand
from neuroerp_ci.support.secrets import (
    REDACTED,
    SECRETS,
    RedactingFilter,
    Redactor,
    encodings,
)


def fresh(prefix: str = "s3cr3t") -> str:
    """A secret no other test registered: with characters every encoding changes."""
    return f'{prefix}-{stdlib_secrets.token_hex(4)}/&"<é>?+ x'


def redactor(*values: str) -> Redactor:
    found = Redactor()
    for value in values:
        found.add(value)
    return found


# --- redaction ------------------------------------------------------------------------------


def test_every_covered_encoding_is_redacted() -> None:
    value = fresh()
    r = redactor(value)
    from urllib.parse import quote, quote_plus

    forms = [
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        "&amp;".join(value.split("&")).replace("<", "&lt;").replace(">", "&gt;"),
    ]
    for form in forms:
        assert r.redact(f"before {form} after") == f"before {REDACTED} after", form


def test_a_url_is_also_redacted_without_its_query() -> None:
    url = "https://hooks.example.test/services/T0/B0?token=abc123"
    r = redactor(url)
    assert r.redact("POST https://hooks.example.test/services/T0/B0 failed") == (
        f"POST {REDACTED} failed"
    )
    # A bare origin is no secret of its own: only the whole URL is redacted then.
    assert "https://example.test/" not in encodings("https://example.test/?token=abcdef")


def test_the_longest_secret_wins_where_two_overlap() -> None:
    r = redactor("abcdefgh", "abcdefgh-longer")
    assert r.redact("x abcdefgh-longer y abcdefgh") == f"x {REDACTED} y {REDACTED}"


def test_short_values_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 6"):
        Redactor().add("12345")


def test_nothing_registered_changes_nothing() -> None:
    r = Redactor()
    assert r.redact("text") == "text" and r.redact_bytes(b"x") == b"x"
    report = leaky_report("nothing")
    assert r.redact_data(report) is report


def leaky_report(secret: str) -> StageReport:
    """A report with ``secret`` in every kind of text a report carries."""
    result = CheckResult(
        "unit", "pytest", CheckStatus.ERROR, reason=f"pytest exited 1: {secret}",
        artifacts={"log": f"/runs/{secret}/pytest.log"}, tool_versions={"pytest": "8"},
    )  # fmt: skip
    result.add_metric(Metric(f"{secret}.p95_ms", 1.0, "ms", Direction.LOWER, (1.0, 2.0)))
    result.findings.append(
        Finding("pytest", "test_x", FindingSeverity.HIGH, f"assert {secret!r} == 'x'", "t.py:1")
    )
    outcome = Outcome(
        "unit", "completed", OutcomeStatus.FAIL, Severity.BLOCKING, None, "ok",
        f"check error: {secret}",
    )  # fmt: skip
    return StageReport(
        "run-1", "dev", "v1", "erp", Verdict.FAIL, "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:01+00:00", 1.0, [result], [outcome],
        summary=Summary("dev", Verdict.FAIL, (secret,)),
    )  # fmt: skip


def test_redact_data_rewrites_every_string_of_a_report_and_keeps_the_rest() -> None:
    secret = fresh()
    r = redactor(secret)
    report = r.redact_data(leaky_report(secret))
    assert r.contains(json.dumps(leaky_report(secret).to_dict(), ensure_ascii=False))
    assert not r.contains(json.dumps(report.to_dict(), ensure_ascii=False))
    assert report.verdict is Verdict.FAIL and report.checks[0].status is CheckStatus.ERROR
    assert report.checks[0].findings[0].severity is FindingSeverity.HIGH
    assert list(report.checks[0].metrics) == [f"{REDACTED}.p95_ms"]
    assert report.checks[0].metrics[f"{REDACTED}.p95_ms"].samples == (1.0, 2.0)
    assert summary_line(report.summary) == f"dev: FAIL — {REDACTED}"


def test_every_report_format_is_written_redacted(tmp_path: Path) -> None:
    secret = fresh()
    SECRETS.add(secret)
    files = write_reports(leaky_report(secret), tmp_path)  # the report itself is NOT redacted
    assert set(files) == set(RENDERERS)
    for path in files.values():
        data = path.read_bytes()
        assert not redactor(secret).contains(data.decode()), path.name
    ElementTree.fromstring(files["junit.xml"].read_bytes())  # still well-formed
    assert REDACTED in json.loads(files["report.json"].read_text())["summary"]


def test_redact_file_rewrites_only_files_with_a_secret_and_keeps_their_mode(
    tmp_path: Path,
) -> None:
    secret = fresh()
    r = redactor(secret)
    leaky, clean = tmp_path / "a" / "tool.log", tmp_path / "clean.txt"
    leaky.parent.mkdir()
    leaky.write_bytes(f"env: {secret}\n".encode() + b"\xff binary tail")
    leaky.chmod(0o640)
    clean.write_text("nothing here")
    before = clean.stat().st_ino
    assert r.redact_tree(tmp_path) == 1
    assert leaky.read_bytes() == f"env: {REDACTED}\n".encode() + b"\xff binary tail"
    assert stat.S_IMODE(leaky.stat().st_mode) == 0o640
    assert clean.stat().st_ino == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "clean.txt", "tool.log"]


def test_the_log_filter_redacts_message_arguments_and_traceback() -> None:
    secret = fresh()
    r = redactor(secret)
    record = logging.LogRecord(
        "prefect.flow_runs", logging.ERROR, "f", 1, "got %s", (secret,), None
    )
    try:
        raise RuntimeError(f"boom {secret}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter(r).filter(record)
    text = logging.Formatter().format(record)
    assert secret not in text and f"got {REDACTED}" in text and f"boom {REDACTED}" in text


# --- which values are secret, and where they may be referenced ------------------------------

PIPELINE = """
[target]
name = "erp"
env = {{ DATABASE_URL = "postgresql://erp:{{env:{db}}}@127.0.0.1/erp" }}

[secrets]
env = ["{token}"]
[secrets.grant]
unit = {{ DB_PASSWORD = "{{env:{db}}}" }}

[[checks]]
id = "unit"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "print(1)"] }}

[[checks]]
id = "other"
kind = "command"
[checks.settings]
argv = ["{{python}}", "-c", "print(1)"]
env = {{ T = "Bearer {{secret:probe-token}}" }}

[stages.dev]
{extra}
"""


def pipeline(tmp_path: Path, extra: str = "", **names: str) -> Any:
    path = tmp_path / "neuroerp-ci.toml"
    text = PIPELINE.format(db=names.get("db", "DB_PW"), token=names.get("token", "API_TOKEN"),
                           extra=extra)  # fmt: skip
    path.write_text(text, encoding="utf-8")
    return load_pipeline(path)


def test_references_are_resolved_registered_and_kept_out_of_child_environments(
    tmp_path: Path,
) -> None:
    db, token, block, webhook = (
        fresh("db"),
        fresh("tok"),
        fresh("blk"),
        "http://127.0.0.1:9/h/" + fresh("w"),
    )
    env = {
        "DB_PW": db, "API_TOKEN": token, "NEUROERP_CI_WEBHOOK_URL": webhook,
        "COPY_OF_DB": f"prefix {db}", "PATH": "/usr/bin", "NEUROERP_CI_ADVISORIES": "/adv",
    }  # fmt: skip
    loaded: list[str] = []
    found = collect_secrets(pipeline(tmp_path), env, lambda n: loaded.append(n) or block)  # type: ignore[func-returns-value]
    assert loaded == ["probe-token"]
    assert found.values == {"env:DB_PW": db, "secret:probe-token": block}
    assert found.grants == {"unit": {"DB_PASSWORD": db}}
    assert found.child_env(env) == {"PATH": "/usr/bin", "NEUROERP_CI_ADVISORIES": "/adv"}
    for value in (db, token, block, webhook):
        assert SECRETS.redact(f"x {value} y") == f"x {REDACTED} y"
    assert (
        expand("postgresql://erp:{env:DB_PW}@h/erp", found.values) == f"postgresql://erp:{db}@h/erp"
    )


def test_an_unset_reference_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        collect_secrets(pipeline(tmp_path), {"API_TOKEN": fresh()}, lambda n: fresh())
    assert caught.value.key == "target.env.DATABASE_URL"
    assert caught.value.problem == "{env:DB_PW}: $DB_PW is not set"


def test_a_short_secret_is_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"secrets\.env: \$API_TOKEN is 3 characters long"):
        collect_secrets(
            pipeline(tmp_path), {"DB_PW": fresh(), "API_TOKEN": "abc"}, lambda n: fresh()
        )
    with pytest.raises(ConfigError, match=r"target\.env\.DATABASE_URL: \{env:DB_PW\} is 2 char"):
        collect_secrets(pipeline(tmp_path), {"DB_PW": "pw"}, lambda n: fresh())


def test_a_block_needs_prefect_and_its_failure_shows_no_value(tmp_path: Path) -> None:
    env = {"DB_PW": fresh()}
    with pytest.raises(ConfigError, match="Secret blocks are read only when the stage runs"):
        collect_secrets(pipeline(tmp_path), env)

    def broken(name: str) -> str:
        raise ValueError("the block value is hunter22 and more")

    with pytest.raises(ConfigError) as caught:
        collect_secrets(pipeline(tmp_path), env, broken)
    assert "hunter22" not in str(caught.value)
    assert caught.value.key == "checks[other].settings.env.T"
    # The CLI checks environment references before Prefect starts, blocks later.
    assert collect_secrets(pipeline(tmp_path), env, resolve_blocks=False).values.keys() == {
        "env:DB_PW"
    }


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        (
            'approval = { approvers = ["{env:X}"] }',
            "stages.dev.approval.approvers[0]",
            "{env:X}: secret references are not expanded here",
        ),
        ('[store]\nurl = "postgresql://u:{env:PG}@h/db"', "store.url", "not expanded here"),
        ('[notify]\npushgateway_url = "http://{env:GW}"', "notify.pushgateway_url", "not expanded"),
        (
            '[[checks]]\nid = "third"\nkind = "command"\n'
            'settings = { argv = ["x"], cwd = "{env:X}" }',
            "checks[third].settings.cwd",
            "not expanded here",
        ),
    ],
)
def test_a_misplaced_reference_fails_when_the_file_is_loaded(
    tmp_path: Path, extra: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        pipeline(tmp_path, extra=extra)
    assert caught.value.key == key and problem in caught.value.problem, caught.value


def test_a_grant_for_an_unknown_check_fails_when_the_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(
        '[secrets.grant]\nnope = { X = "{env:X}" }\n[[checks]]\nid = "a"\nkind = "command"\n'
        'settings = { argv = ["x"] }\n[stages.dev]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"secrets\.grant: unknown check 'nope'"):
        load_pipeline(path)


def test_a_malformed_reference_name_fails_when_the_file_is_loaded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\{env:DB-PW\}: not a valid env name"):
        pipeline(tmp_path, db="DB-PW")


def test_the_webhook_from_a_secret_block_is_a_secret_too(tmp_path: Path) -> None:
    url = "https://hooks.example.test/" + fresh("hook")
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(
        '[[checks]]\nid = "a"\nkind = "command"\nsettings = { argv = ["{python}", "-V"] }\n'
        '[stages.dev]\n[notify]\nwebhook_secret_block = "ci-hook"\n',
        encoding="utf-8",
    )
    found = collect_secrets(load_pipeline(path), {}, lambda name: url)
    assert found.values == {} and SECRETS.redact(url) == REDACTED
    assert found.child_env({"NEUROERP_CI_WEBHOOK_URL": "any-value", "HOOK_COPY": url}) == {}


SCOPED = """
[target]
env = { DB = "{env:TARGET_DB_PW}" }

[[checks]]
id = "unit"
kind = "command"
settings = { argv = ["{python}", "-V"] }

[[checks]]
id = "smoke"
kind = "command"
settings = { argv = ["{python}", "-V"], env = { T = "{env:SMOKE_TOKEN}" }, uses_target = true }

[stages.development]
checks = ["unit"]

[stages.production]
checks = ["smoke"]

[stages.production.hooks]
deploy = { argv = ["deploy"], env = { K = "{env:DEPLOY_KEY}" } }
rollback = { argv = ["rb"] }
"""


def test_a_stage_needs_only_the_references_it_expands_but_strips_them_all(
    tmp_path: Path,
) -> None:
    from neuroerp_ci.run.runner import stage_secrets

    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(SCOPED, encoding="utf-8")
    scoped = load_pipeline(path)
    deploy_key = fresh("deploy")
    env = {"DEPLOY_KEY": deploy_key, "HOME": "/root"}
    found = stage_secrets(scoped, "development", env)  # nothing it runs references a secret
    assert found.values == {} and found.child_env(env) == {"HOME": "/root"}
    assert SECRETS.redact(deploy_key) == REDACTED  # set, so redacted all the same
    with pytest.raises(ConfigError) as caught:
        stage_secrets(scoped, "production", env)  # the smoke check needs the target
    assert caught.value.key == "target.env.DB"
    env.update(TARGET_DB_PW=fresh(), SMOKE_TOKEN=fresh())
    assert stage_secrets(scoped, "production", env).values.keys() == {
        "env:TARGET_DB_PW", "env:SMOKE_TOKEN", "env:DEPLOY_KEY",
    }  # fmt: skip


def test_the_cli_refuses_an_unset_reference_with_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from neuroerp_ci.cli import main

    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(SCOPED, encoding="utf-8")
    monkeypatch.delenv("TARGET_DB_PW", raising=False)
    monkeypatch.setenv("SMOKE_TOKEN", fresh())
    monkeypatch.setenv("DEPLOY_KEY", fresh())
    with pytest.raises(SystemExit) as exited:
        main(["promote", "v1", "--to", "production", "-c", str(path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("target.env.DB: {env:TARGET_DB_PW}: $TARGET_DB_PW is not set"), err
    assert len(err.splitlines()) == 1


def test_prefect_run_logs_are_redacted_on_their_way_to_the_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from neuroerp_ci.support.secrets import install_log_redaction

    secret = fresh()
    SECRETS.add(secret)
    seen: list[str] = []

    class Api(logging.Handler):  # stands for Prefect's APILogHandler on prefect.flow_runs
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    parent = logging.getLogger("prefect.flow_runs")
    monkeypatch.setattr(parent, "handlers", [Api()])  # only ours: no run context here
    monkeypatch.setattr(parent, "propagate", False)
    install_log_redaction()
    logging.getLogger("prefect.flow_runs.child").warning("url %s", secret)
    parent.warning("Finished in state Failed(%r)", f"summary {secret}")
    assert len(seen) == 2 and not any(secret in s for s in seen), seen
    assert f"url {REDACTED}" in seen[0]


def test_references_reach_a_database_password_and_probe_headers(tmp_path: Path) -> None:
    from neuroerp_ci.checks import CheckContext
    from neuroerp_ci.checks.database import resolve_database_url
    from neuroerp_ci.checks.http import Endpoint, resolve_targets

    password = "p@ss/w0rd:" + stdlib_secrets.token_hex(3)
    values = {"env:DB_PW": password, "secret:probe-token": "tok-" + stdlib_secrets.token_hex(4)}
    ctx = CheckContext(tmp_path, tmp_path, "python", {}, secrets=values)
    url = resolve_database_url("postgresql+psycopg://ci:{env:DB_PW}@127.0.0.1:5432/erp", ctx)
    assert (url.username, url.password, url.host, url.database) == (
        "ci", password, "127.0.0.1", "erp",
    )  # fmt: skip
    endpoint = Endpoint(
        name="api", path="/api", headers={"Authorization": "Bearer {secret:probe-token}"}
    )
    (target,) = resolve_targets([endpoint], "http://127.0.0.1:1", ["127.0.0.1"], values)
    assert target.headers == {"Authorization": f"Bearer {values['secret:probe-token']}"}
    assert endpoint.headers == {"Authorization": "Bearer {secret:probe-token}"}  # as written
