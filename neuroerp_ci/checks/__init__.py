"""Check kinds: one module per kind, one registry line each."""

from __future__ import annotations

from neuroerp_ci.checks.a11y import A11yCheck
from neuroerp_ci.checks.bandit import BanditCheck
from neuroerp_ci.checks.command import CommandCheck
from neuroerp_ci.checks.database import DatabaseCheck
from neuroerp_ci.checks.detect_secrets import SecretsCheck
from neuroerp_ci.checks.frontend import FrontendCheck
from neuroerp_ci.checks.http import HttpProbeCheck
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    execute_check,
    skipped,
)
from neuroerp_ci.checks.licenses import LicensesCheck
from neuroerp_ci.checks.load import LocustLoadCheck
from neuroerp_ci.checks.network import NetworkCheck
from neuroerp_ci.checks.pip_audit import PipAuditCheck
from neuroerp_ci.checks.pytest import PytestCheck

KINDS: dict[str, CheckKind] = {
    kind.name: kind
    for kind in (
        PytestCheck(),
        BanditCheck(),
        PipAuditCheck(),
        HttpProbeCheck(),
        CommandCheck(),
        LocustLoadCheck(),
        DatabaseCheck(),
        SecretsCheck(),
        NetworkCheck(),
        FrontendCheck(),
        LicensesCheck(),
        A11yCheck(),
    )
}

__all__ = [
    "KINDS",
    "Check",
    "CheckContext",
    "CheckKind",
    "KindSettings",
    "execute_check",
    "skipped",
]
