"""Pipeline-file sections for production rollout and notifications.

These are parts of the pipeline file (see :mod:`neuroerp_ci.config`) kept in their own module
so the rollout and notification code can read them without importing the loader. Only the
``rollout`` flow runs a stage with ``approval``, ``hooks`` or ``canary``; ``stage-gate``
refuses it, so nothing skips the approval.

Example::

    [stages.production]
    requires = "staging"
    approval = { timeout_s = 3600, approvers = ["alice", "bob"] }
    checks = ["api-baseline", "smoke"]

    [stages.production.hooks]
    backup = { argv = ["{python}", "ops/backup.py"], timeout_s = 300 }
    deploy = { url = "http://127.0.0.1:9000/deploy", retries = 2 }
    rollback = { argv = ["{python}", "ops/rollback.py"], timeout_s = 300 }

    [stages.production.lock]          # optional; the default is mode = "refuse"
    mode = "wait"
    wait_timeout_s = 1800

    [notify]
    metrics_file = ".neuroerp-ci/metrics/neuroerp_ci.prom"
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neuroerp_ci.support.hosts import http_url_problem
from neuroerp_ci.support.secrets import WEBHOOK_ENV


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str | None) -> str | None:
    problem = http_url_problem(value) if value is not None else None
    if problem:
        raise ValueError(f"must be an http:// or https:// URL: {problem}")
    return value


class ApprovalSpec(_Strict):
    """A person must approve in the Prefect UI (or API) before anything is changed."""

    timeout_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)  # then the stage fails
    approvers: list[str] = Field(default_factory=list)  # empty: anyone who may resume the run


class HookSpec(_Strict):
    """One rollout hook: a command (``argv``, no shell) or an HTTP call (``url``).

    Commands get ``NEUROERP_CI_VERSION``, ``NEUROERP_CI_STAGE``, ``NEUROERP_CI_HOOK`` and
    ``NEUROERP_CI_RUN_ID`` in their environment; an HTTP call sends them as JSON keys
    (``version``, ``stage``, ``hook``, ``run_id``) merged over ``body``. An HTTP hook's host
    must be in the target's ``allowed_hosts``. A hook is tried ``1 + retries`` times.
    """

    argv: list[str] | None = Field(default=None, min_length=1)  # a command, run without a shell
    cwd: str | None = None  # relative to the project
    env: dict[str, str] = Field(default_factory=dict)  # added to the command's environment
    ok_codes: list[int] = Field(default_factory=lambda: [0], min_length=1)  # exits that succeed
    url: str | None = None  # an HTTP call instead of a command
    method: Literal["POST", "PUT", "GET"] = "POST"
    body: dict[str, Any] = Field(default_factory=dict)  # JSON sent, with the run's keys
    expect_status: list[int] = Field(default_factory=list)  # empty: any 2xx
    timeout_s: float = Field(default=60.0, gt=0)  # seconds, per try
    retries: int = Field(default=0, ge=0, le=10)  # tries after the first
    retry_delay_s: float = Field(default=2.0, ge=0, le=600)  # seconds between tries

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @model_validator(mode="after")
    def _one_form(self) -> HookSpec:
        if (self.argv is None) == (self.url is None):
            raise ValueError("give exactly one of 'argv' (a command) or 'url' (an HTTP call)")
        return self


class HooksSpec(_Strict):
    """``backup`` before, ``deploy`` (blue/green switch or canary start), ``switch`` (the full
    switch after a canary passed) and ``rollback`` on any FAIL or hook error."""

    backup: HookSpec | None = None
    deploy: HookSpec | None = None
    switch: HookSpec | None = None
    rollback: HookSpec | None = None

    @model_validator(mode="after")
    def _rollback_for_changes(self) -> HooksSpec:
        if (self.deploy or self.switch) and self.rollback is None:
            raise ValueError("a stage that deploys ('deploy' or 'switch') needs a 'rollback' hook")
        return self


class CanarySpec(_Strict):
    """Compare the canary with the stable target in the same window before the full switch.

    ``samples`` requests per path go to each side, interleaved, so both see the same load and
    the same moment. The canary fails on an error rate above ``max_error_rate`` or on a latency
    regression: a one-sided Mann-Whitney test with ``p < alpha`` AND a Hodges-Lehmann shift
    whose whole confidence interval lies beyond ``min_effect_pct`` of the stable median.
    """

    canary_url: str  # the new version, deployed beside the stable one
    stable_url: str  # the version in service
    paths: list[str] = Field(default_factory=lambda: ["/health"], min_length=1)  # under each URL
    samples: int = Field(default=30, ge=5, le=10_000)  # requests per path and side
    request_timeout_s: float = Field(default=10.0, gt=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)  # of the canary's requests
    alpha: float = Field(default=0.01, gt=0, lt=0.5)  # significance of the rank test
    min_effect_pct: float = Field(default=10.0, ge=0)  # smallest latency shift that fails

    @field_validator("canary_url", "stable_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _http_url(value) or value


class LockSpec(_Strict):
    """One rollout of a stage and target at a time: the rollout lock in the history store.

    A rollout takes the lock before it asks for approval and holds it to its end (after any
    rollback). A second rollout of the same stage and target meanwhile is refused at once
    (``mode = "refuse"``, the default: FAIL, nothing deployed, naming the run that holds it)
    or waits up to ``wait_timeout_s`` for it (``mode = "wait"``), then fails the same way.
    The holder renews a lease of ``lease_s`` while it lives; a run that crashed stops
    renewing, and once its lease ran out the next rollout takes the lock over.
    ``lock = "wait"`` is short for ``lock = { mode = "wait" }``.
    """

    mode: Literal["refuse", "wait"] = "refuse"  # while another rollout holds the lock
    wait_timeout_s: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)  # then FAIL
    poll_s: float = Field(default=5.0, gt=0, le=600)  # how often a waiting rollout looks again
    lease_s: float = Field(default=60.0, ge=5, le=3600)  # renewed every lease_s / 3

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value


NotifyOn = Literal["PASS", "WARN", "FAIL"]


def _on_fail() -> list[NotifyOn]:
    return ["FAIL"]


class NotifySpec(_Strict):
    """Where a stage's outcome goes besides its reports.

    The webhook URL is a secret: it is read from the environment variable ``webhook_env`` or
    the Prefect Secret block ``webhook_secret_block``, never from this file, and never printed.
    """

    webhook_env: str = WEBHOOK_ENV  # the environment variable holding the webhook URL
    webhook_secret_block: str | None = None  # else this Prefect Secret block
    on: list[NotifyOn] = Field(default_factory=_on_fail)  # verdicts that call the webhook
    timeout_s: float = Field(default=10.0, gt=0)  # seconds per webhook or Pushgateway call
    retries: int = Field(default=2, ge=0, le=10)
    metrics_file: str | None = None  # Prometheus text file, relative to the pipeline file
    pushgateway_url: str | None = None  # Prometheus Pushgateway (text format)
    job: str = Field(default="neuroerp_ci", pattern=r"^[A-Za-z0-9_.-]+$")  # Pushgateway job

    @field_validator("pushgateway_url")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        return _http_url(value)
