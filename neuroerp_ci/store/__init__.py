"""The history store: stage runs, their metrics with samples, and baseline selection.

SQLite in the project (``.neuroerp-ci/history.sqlite3``) by default, PostgreSQL for a team;
see :mod:`neuroerp_ci.store.connect` for why it is safe with several writers at once.
"""

from __future__ import annotations

from neuroerp_ci.store.baselines import BaselineSelection, StoreBaselineProvider
from neuroerp_ci.store.connect import default_store_url, safe_url, store_url
from neuroerp_ci.store.errors import StoreError, StoreUrlError, UnknownRunError
from neuroerp_ci.store.fingerprint import (
    environment_fingerprint,
    hashed_hostname,
    report_tool_versions,
    with_tool_versions,
)
from neuroerp_ci.store.history import HistoryStore, open_store
from neuroerp_ci.store.locks import Lease, LeaseRenewer, LockAttempt, LockHolder, LockTable
from neuroerp_ci.store.records import RunRecord, RunStatus
from neuroerp_ci.store.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "BaselineSelection",
    "HistoryStore",
    "Lease",
    "LeaseRenewer",
    "LockAttempt",
    "LockHolder",
    "LockTable",
    "RunRecord",
    "RunStatus",
    "StoreBaselineProvider",
    "StoreError",
    "StoreUrlError",
    "UnknownRunError",
    "default_store_url",
    "environment_fingerprint",
    "hashed_hostname",
    "open_store",
    "report_tool_versions",
    "safe_url",
    "store_url",
    "with_tool_versions",
]
