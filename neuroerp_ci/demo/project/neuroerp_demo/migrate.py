"""Migration test: ``python -m neuroerp_demo.migrate [DB_FILE]``.

Applies the schema migrations to ``DB_FILE`` (default: a fresh database in a temporary
directory), applies them a second time to prove they are idempotent, and checks every
expected table and index exists. Prints one JSON line,
``{"migrations_applied": 4, "migrations_reapplied": 0, "schema_problems": 0, "migration_ms": 3.1}``,
and exits 1 when the second pass changed something or the schema is incomplete.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from neuroerp_demo import db


def migrate(path: Path) -> dict[str, float]:
    """Migrate ``path`` twice and describe what happened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    conn = db.connect(path)
    try:
        applied = db.apply_migrations(conn)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        reapplied = db.apply_migrations(conn)
        problems = db.schema_problems(conn)
    finally:
        conn.close()
    for problem in problems:
        print(f"schema: {problem}", file=sys.stderr)
    return {
        "migrations_applied": applied,
        "migrations_reapplied": reapplied,
        "schema_problems": len(problems),
        "migration_ms": round(elapsed_ms, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1:
        print("usage: python -m neuroerp_demo.migrate [DB_FILE]", file=sys.stderr)
        return 2
    if args:
        metrics = migrate(Path(args[0]))
    else:
        with tempfile.TemporaryDirectory(prefix="neuroerp-migrate-") as tmp:
            metrics = migrate(Path(tmp) / "erp.sqlite3")
    print(json.dumps(metrics))
    return 1 if metrics["migrations_reapplied"] or metrics["schema_problems"] else 0


if __name__ == "__main__":  # pragma: no cover - exercised through main()
    sys.exit(main())
