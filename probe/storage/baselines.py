"""The baselines' hourly samples kept across a restart (table ``baseline_hours``): the
ledger's writer saves an hour of a series when it is complete (and every unfinished hour at
shutdown), in the transaction of its batch; the daemon loads the hours of the window at
start. A compact summary, never a scan of the results: at most 16 numbers per series and
hour."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SavedHour:
    endpoint: str
    check: str
    metric: str
    hour: str  # ISO 8601, the hour's start
    samples: tuple[float, ...]
    seen: int
    first_row: int | None
    last_row: int | None


def save_hours(conn: sqlite3.Connection, hours: Sequence[SavedHour]) -> None:
    """Keep ``hours`` (a newer version of an hour replaces the older); the caller holds the
    transaction."""
    conn.executemany(
        "INSERT OR REPLACE INTO baseline_hours VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(h.endpoint, h.check, h.metric, h.hour, json.dumps(list(h.samples)), h.seen,
          h.first_row, h.last_row) for h in hours])


def forget_hours_before(conn: sqlite3.Connection, hour: str) -> None:
    conn.execute("DELETE FROM baseline_hours WHERE hour < ?", (hour,))


def load_hours(conn: sqlite3.Connection) -> list[SavedHour]:
    """Each series' newest kept hour (at start: the hour a restart goes on with)."""
    return _read(conn.execute(
        "SELECT endpoint, check_name, metric, MAX(hour), samples, seen, first_row, last_row "
        "FROM baseline_hours GROUP BY endpoint, check_name, metric"))


def series_hours(conn: sqlite3.Connection, endpoint: str, check: str, metric: str,
                 since: str, until: str) -> list[SavedHour]:
    """One series' kept hours from ``since`` up to (not including) ``until``, oldest first
    (a range of the primary key)."""
    return _read(conn.execute(
        "SELECT endpoint, check_name, metric, hour, samples, seen, first_row, last_row "
        "FROM baseline_hours WHERE endpoint = ? AND check_name = ? AND metric = ? "
        "AND hour >= ? AND hour < ? ORDER BY hour", (endpoint, check, metric, since, until)))


def _read(rows: Iterable[tuple[Any, ...]]) -> list[SavedHour]:
    """The hours of ``rows``; a row whose samples are not a list of numbers (a hand-edited
    file) is left out rather than trusted."""
    out = []
    for endpoint, check, metric, hour, samples, seen, first, last in rows:
        try:
            values = json.loads(samples)
        except ValueError:
            continue
        if not isinstance(values, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            continue
        out.append(SavedHour(str(endpoint), str(check), str(metric), str(hour),
                             tuple(float(v) for v in values), int(seen), first, last))
    return out
