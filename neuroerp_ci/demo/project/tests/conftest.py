"""Fixtures: every test gets its own seeded database file and no fault knobs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from neuroerp_demo import db
from neuroerp_demo.app import app
from neuroerp_demo.faults import A11Y_ENV, DELAY_ENV, DROP_HEADER_ENV, ERROR_RATE_ENV


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated and seeded database, copied for each test (seeding once is faster)."""
    path = tmp_path_factory.mktemp("template") / "erp.sqlite3"
    conn = db.connect(path)
    try:
        db.apply_migrations(conn)
        db.seed(conn)
    finally:
        conn.close()
    return path


@pytest.fixture
def db_file(
    tmp_path: Path, seeded_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    path = tmp_path / "erp.sqlite3"
    shutil.copyfile(seeded_template, path)
    monkeypatch.setenv(db.DB_ENV, str(path))
    monkeypatch.delenv(DELAY_ENV, raising=False)
    for knob in (ERROR_RATE_ENV, A11Y_ENV, DROP_HEADER_ENV):
        monkeypatch.delenv(knob, raising=False)
    return path


@pytest.fixture
def client(db_file: Path) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
