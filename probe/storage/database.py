"""The one way into the database: a connection with explicit transactions, WAL, a busy
timeout and the schema migrated to the current version."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from probe.storage.migrations import migrate


def open_database(path: Path, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """A connection in autocommit mode (``transaction`` groups writes), the file migrated.
    Raises ``StorageError`` for a file written by a newer release."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
