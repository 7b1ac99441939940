"""The database file made by release 0.1.0 (``tests/data/storage/make_release_db.py``),
copied where a test may change it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

RELEASE = Path(__file__).parent.parent / "data" / "storage" / "release-0.1.0"
# The file main wrote before ledger entries named their probe (schema version 3, made with
# make_release_db.py at commit b0a2fb6): every entry without an instance.
BEFORE_INSTANCE = RELEASE.with_name("before-instance")
TABLES = ("results", "ledger", "endpoint_state", "results_rollup", "maintenance",
          "uptime_hourly")


def release_copy(into: Path, release: Path = RELEASE) -> Path:
    """probe.db, its ledger anchor and LEARNING.md, copied into ``into``; the db's path."""
    for name in ("probe.db", "probe.db.ledger-head", "LEARNING.md"):
        shutil.copy(release / name, into / name)
    return into / "probe.db"


def row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in TABLES}
    finally:
        conn.close()
