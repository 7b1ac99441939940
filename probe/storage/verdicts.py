"""Each endpoint's verdict kept across a restart (table ``endpoint_state``): the daemon
restores them at start and saves a verdict with the ledger entries it made, in the same
transaction, so that after a crash the two agree; one whose streaks only moved on at most
once a minute (``probe.ledger.observer``), everything still waiting at a stop."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

# (endpoint, state, the verdict as JSON text)
Saved = tuple[str, str, str]


def load_states(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    return {name: json.loads(data)
            for name, data in conn.execute("SELECT endpoint, data FROM endpoint_state")}


def save_states(conn: sqlite3.Connection, gone: Sequence[tuple[str]],
                kept: Sequence[Saved]) -> None:
    """Forget ``gone`` endpoints and keep ``kept`` verdicts (the caller holds the
    transaction); one statement per kind for the whole batch."""
    conn.executemany("DELETE FROM endpoint_state WHERE endpoint = ?", gone)
    conn.executemany("INSERT OR REPLACE INTO endpoint_state VALUES (?, ?, ?)", kept)


def judged_endpoints(conn: sqlite3.Connection) -> set[str]:
    """The endpoints a verdict is kept for."""
    return {str(row[0]) for row in conn.execute("SELECT endpoint FROM endpoint_state")}
