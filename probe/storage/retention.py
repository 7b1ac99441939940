"""Retention of raw results: rows older than ``storage.retention`` are rolled up (into
``results_rollup``), then pruned.

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
    """Runs ``prune_results`` at most every ``every_s`` seconds, from the writer thread whose
    upkeep calls it with that thread's connection (migrated by ``open_database``)."""

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
