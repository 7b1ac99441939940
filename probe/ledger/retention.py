"""Retention of raw results: rows older than ``storage.retention`` are rolled up, then pruned.

The roll-up keeps per day, endpoint, check and outcome how many results there were, their
latency sum and maximum, and the first and last row ids, so long-range questions ("how
often was this pod down in March?") survive the raw rows. Ledger entries are never
pruned: the ledger's triggers would refuse it anyway. Work is done in chunks so the
writer lock is never held for long.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

ROLLUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS results_rollup (
    day TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    check_name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    results INTEGER NOT NULL,
    latency_s_sum REAL NOT NULL,
    latency_s_max REAL NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (day, endpoint, check_name, outcome)
)
"""
_ROLLUP = """
INSERT INTO results_rollup
SELECT substr(ts, 1, 10), endpoint, check_name, outcome, COUNT(*),
       COALESCE(SUM(latency_s), 0), COALESCE(MAX(latency_s), 0), MIN(id), MAX(id)
FROM results WHERE id IN (SELECT value FROM json_each(?))
GROUP BY 1, 2, 3, 4
ON CONFLICT (day, endpoint, check_name, outcome) DO UPDATE SET
    results = results + excluded.results,
    latency_s_sum = latency_s_sum + excluded.latency_s_sum,
    latency_s_max = MAX(latency_s_max, excluded.latency_s_max),
    first_id = MIN(first_id, excluded.first_id),
    last_id = MAX(last_id, excluded.last_id)
"""
CHUNK = 5000


def cutoff(now: datetime, retention_s: float) -> str:
    """Results are stored with ISO UTC times, so a string compare is a time compare."""
    return (now - timedelta(seconds=retention_s)).astimezone(UTC).isoformat(
        timespec="milliseconds")


def prune_results(conn: sqlite3.Connection, retention_s: float,
                  now: datetime | None = None) -> int:
    """Roll up and delete results older than ``retention_s``; return how many went."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'results'").fetchone():
        return 0
    conn.execute(ROLLUP_SCHEMA)
    before = cutoff(now or datetime.now(UTC), retention_s)
    pruned = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # The newest row always stays: the store numbers new results from MAX(id), and
            # ledger entries cite row ids, so ids must never be handed out twice.
            ids = [row[0] for row in conn.execute(
                "SELECT id FROM results WHERE ts < ? AND id < (SELECT MAX(id) FROM results) "
                "ORDER BY id LIMIT ?", (before, CHUNK))]
            if ids:
                as_json = "[" + ",".join(map(str, ids)) + "]"
                conn.execute(_ROLLUP, (as_json,))
                conn.execute("DELETE FROM results WHERE id IN (SELECT value FROM json_each(?))",
                             (as_json,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        pruned += len(ids)
        if len(ids) < CHUNK:
            return pruned


class Pruner:
    """Runs ``prune_results`` from the ledger writer at most every ``every_s`` seconds."""

    def __init__(self, retention_s: float, every_s: float = 3600.0) -> None:
        self.retention_s = retention_s
        self.every_s = every_s
        self.pruned_total = 0
        self._last: float | None = None

    def __call__(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every_s:
            return
        self._last = now
        pruned = prune_results(conn, self.retention_s)
        self.pruned_total += pruned
        if pruned:
            log.info("retention: rolled up and pruned %d results older than %gs", pruned,
                     self.retention_s)
