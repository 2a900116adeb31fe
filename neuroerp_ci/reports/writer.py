"""The one place that decides where reports go and writes them.

Every renderer in :data:`~neuroerp_ci.reports.registry.RENDERERS` is rendered first, then each
file is written atomically (a temporary file in the same directory, then :func:`os.replace`),
so a reader never sees half a report and a renderer that raises leaves no file behind. Every text
written here is redacted (:mod:`neuroerp_ci.support.secrets`) whatever the report held.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from neuroerp_ci.errors import UsageError
from neuroerp_ci.model import StageReport
from neuroerp_ci.reports.interface import Renderer
from neuroerp_ci.reports.registry import RENDERERS
from neuroerp_ci.support.secrets import redact
from neuroerp_ci.support.state_dir import ensure_state_dir

# A run id becomes a directory name: no separators, no "..", nothing hidden.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC time plus six random hex digits.

    >>> new_run_id(datetime(2026, 11, 28, 10, 45, 1, tzinfo=UTC))[:17]
    '20261128T104501Z-'

    A naive ``now`` is taken to be UTC already.
    """
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def default_output_dir(project_dir: Path, run_id: str) -> Path:
    """``<project_dir>/.neuroerp-ci/runs/<run_id>``; refuses run ids that are not one name."""
    if not _RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"run id {run_id!r} cannot name a directory: use letters, digits, '.', '_' and '-'"
        )
    return ensure_state_dir(project_dir) / "runs" / run_id


def write_reports(
    report: StageReport, out_dir: Path, renderers: Mapping[str, Renderer] | None = None
) -> dict[str, Path]:
    """Render every report format and write it into ``out_dir`` (created if missing).

    Returns file name -> path of each file written. ``renderers`` defaults to the registry.
    """
    if renderers is None:
        renderers = RENDERERS
    texts = {name: render(report) for name, render in renderers.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: write_atomically(out_dir / name, text) for name, text in texts.items()}


def write_atomically(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` so readers see the old file or the new one, never half.

    The text is redacted: no secret reaches a file through here.
    """
    text = redact(text)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a report is for everyone to read
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
