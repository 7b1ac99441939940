"""Uptime over 24 hours and 7 days, per endpoint, from hourly counts kept in the database.

Uptime is the share of observations of an endpoint's availability checks (everything but
governed prompts; results that observed nothing — unknown, rate limited, skipped — do not
count, nor results inside a maintenance window) that passed. Each result adds to an
in-memory count for its endpoint and hour (O(1), in the event loop); the counts are added
to the table ``uptime_hourly`` every ``FLUSH_S`` seconds off the loop. A page reads the
table with the primary key (one range per endpoint on the page) plus what is not flushed
yet. When the table is empty at start (new: the storage package creates it) it is filled
from the stored results of the last 7 days, and from the daily rollups (``results_rollup``)
for days whose raw results retention already removed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from probe.outcome import NOT_OBSERVED, CheckRole, ProbeResult
from probe.storage.database import open_database, transaction

FLUSH_S = 30.0
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
UPSERT = """
INSERT INTO uptime_hourly (endpoint, hour, observed, failed) VALUES (?, ?, ?, ?)
ON CONFLICT (endpoint, hour) DO UPDATE SET observed = observed + excluded.observed,
                                           failed = failed + excluded.failed
"""
_NOT_OBSERVED = tuple(str(o) for o in NOT_OBSERVED)
# A stored row keeps its check's name, not its role: governed answers are stored under the
# names of the prompt family (``prompt:<name>``), which the backfill leaves out.
STORED_ANSWERS = "prompt:%"
# Backfill: raw results of the window, then rollups for days without raw results.
FROM_RESULTS = f"""
INSERT INTO uptime_hourly (endpoint, hour, observed, failed)
SELECT endpoint, substr(ts, 1, 13), COUNT(*), SUM(outcome != 'ok') FROM results
WHERE ts >= ? AND check_name NOT LIKE '{STORED_ANSWERS}'
  AND outcome NOT IN ({", ".join("?" * len(_NOT_OBSERVED))})
GROUP BY endpoint, substr(ts, 1, 13)
"""
FROM_ROLLUPS = f"""
INSERT OR IGNORE INTO uptime_hourly (endpoint, hour, observed, failed)
SELECT endpoint, day || 'T00', SUM(results), SUM(CASE WHEN outcome != 'ok' THEN results END)
FROM results_rollup
WHERE day >= ? AND check_name NOT LIKE '{STORED_ANSWERS}'
  AND outcome NOT IN ({", ".join("?" * len(_NOT_OBSERVED))})
  AND day < COALESCE((SELECT substr(MIN(ts), 1, 10) FROM results), '9999')
GROUP BY endpoint, day
"""


def hour_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def counts(result: ProbeResult) -> bool:
    """Whether ``result`` is an observation of the endpoint's availability."""
    return result.role is not CheckRole.ANSWERS and result.outcome not in NOT_OBSERVED


class UptimeBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], list[int]] = {}

    def add(self, result: ProbeResult) -> None:
        """One result (the caller has checked ``counts`` and maintenance)."""
        key = (result.endpoint, hour_of(result.started_at))
        with self._lock:
            entry = self._pending.get(key)
            if entry is None:
                entry = self._pending[key] = [0, 0]
            entry[0] += 1
            entry[1] += 0 if result.ok else 1

    def _connect(self) -> sqlite3.Connection:
        return open_database(self.path, busy_timeout_s=10.0)

    def prepare(self, now: datetime) -> bool:
        """When the table is empty (new, or nothing counted yet), fill it from what is
        stored. True if it was empty."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            with transaction(conn):
                if conn.execute("SELECT 1 FROM uptime_hourly LIMIT 1").fetchone():
                    return False
                since = now - WINDOWS["7d"] - timedelta(hours=1)
                conn.execute(FROM_RESULTS, (since.astimezone(UTC).isoformat(), *_NOT_OBSERVED))
                conn.execute(FROM_ROLLUPS, (since.astimezone(UTC).strftime("%Y-%m-%d"),
                                            *_NOT_OBSERVED))
            return True
        finally:
            conn.close()

    def flush(self) -> int:
        """Add the pending counts to the table; returns how many rows were written. On a
        failure they stay pending for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            conn = self._connect()
            try:
                with transaction(conn):
                    conn.executemany(UPSERT, [(e, h, o, f) for (e, h), (o, f) in
                                              pending.items()])
            finally:
                conn.close()
        except sqlite3.Error:
            with self._lock:
                for key, (observed, failed) in pending.items():
                    entry = self._pending.setdefault(key, [0, 0])
                    entry[0] += observed
                    entry[1] += failed
            raise
        return len(pending)

    def uptime(self, endpoints: Sequence[str], now: datetime) -> dict[str, dict[str, float | None]]:
        """Endpoint -> {"24h": ratio or None (nothing observed), "7d": ...}."""
        totals = {name: {w: [0, 0] for w in WINDOWS} for name in endpoints}
        cutoffs = {w: hour_of(now - span) for w, span in WINDOWS.items()}
        for name, hour, observed, failed in self._stored(endpoints, min(cutoffs.values())):
            self._add(totals, cutoffs, name, hour, observed, failed)
        with self._lock:
            pending = [(e, h, o, f) for (e, h), (o, f) in self._pending.items() if e in totals]
        for name, hour, observed, failed in pending:
            self._add(totals, cutoffs, name, hour, observed, failed)
        return {name: {w: (1 - f / o) if o else None for w, (o, f) in by.items()}
                for name, by in totals.items()}

    @staticmethod
    def _add(totals: dict[str, dict[str, list[int]]], cutoffs: dict[str, str], name: str,
             hour: str, observed: int, failed: int) -> None:
        for window, cutoff in cutoffs.items():
            if hour > cutoff:  # the hour the window starts in is partly outside it
                totals[name][window][0] += observed
                totals[name][window][1] += failed

    def _stored(self, endpoints: Sequence[str],
                since_hour: str) -> Iterable[tuple[str, str, int, int]]:
        if not endpoints or not self.path.is_file():
            return []
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'uptime_hourly'"
                                ).fetchone():
                return []
            rows: list[tuple[str, str, int, int]] = []
            for name in endpoints:  # one primary-key range each
                rows.extend(conn.execute(
                    "SELECT endpoint, hour, observed, failed FROM uptime_hourly "
                    "WHERE endpoint = ? AND hour > ?", (name, since_hour)))
            return rows
        finally:
            conn.close()
