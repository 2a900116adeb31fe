"""Shared fixtures. Every test runs with Prefect's telemetry off and no network beyond loopback."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
# What neuroerp-ci remembers between runs on a machine (tool versions, interpreters' packages,
# mirror indexes: support/stat_memo.py) goes to a folder of this session, not the user's.
if "NEUROERP_CI_CACHE_DIR" not in os.environ:
    _memo = tempfile.mkdtemp(prefix="neuroerp-ci-memo-")
    os.environ["NEUROERP_CI_CACHE_DIR"] = _memo
    atexit.register(shutil.rmtree, _memo, True)

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"


def advisory_mirror_path() -> Path | None:
    """The offline OSV mirror: $NEUROERP_CI_ADVISORIES, else ../shared/advisory-database."""
    configured = os.environ.get("NEUROERP_CI_ADVISORIES")
    path = Path(configured) if configured else REPO.parent / "shared" / "advisory-database"
    return path.resolve() if (path / "vulns").is_dir() else None


@pytest.fixture(scope="session")
def advisory_mirror() -> Path:
    path = advisory_mirror_path()
    if path is None:
        pytest.skip("no offline OSV advisory mirror (set NEUROERP_CI_ADVISORIES)")
    return path


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS
