"""Windows started from the command line, kept in the daemon's SQLite database (table
``maintenance``, in ``probe.storage.schema``) so a restart keeps them. The command writes a
row; the running daemon reads the active ones on its windows clock (one indexed query every
couple of seconds).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from probe.secrets import plain_line
from probe.storage.database import open_database, transaction
from probe.verdict import Window


@dataclass(frozen=True, slots=True)
class Started:
    """One row of the table."""

    id: int
    endpoint: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    started_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def until(self) -> datetime:
        """When it ends: its end, or earlier if it was ended by hand."""
        return min(self.ends_at, self.ended_at) if self.ended_at else self.ends_at

    def window(self) -> Window:
        return Window(key=f"cli:{self.id}", name=f"manual #{self.id}", reason=self.reason,
                      origin=f"cli ({self.started_by})", start=self.starts_at, end=self.until,
                      targets=(self.endpoint,))


@contextmanager
def connect(path: Path, create: bool = False) -> Iterator[sqlite3.Connection | None]:
    """The database, or None when it (or its table) does not exist and ``create`` is off."""
    if not create and not path.is_file():
        yield None
        return
    if create:
        conn = open_database(path, busy_timeout_s=10.0)
    else:  # a reader: the file stays as it is (another release's daemon may own it)
        conn = sqlite3.connect(path, timeout=10.0)
    try:
        if not create and not conn.execute("SELECT 1 FROM sqlite_master WHERE name = "
                                           "'maintenance'").fetchone():
            yield None
            return
        yield conn
    finally:
        conn.close()


def _row(values: tuple[object, ...]) -> Started:
    id_, endpoint, starts, ends, reason, by, ended, ended_by = values
    # rows written before reasons were cleaned on the way in are cleaned on the way out
    return Started(int(str(id_)), str(endpoint), _time(starts), _time(ends),
                   plain_line(str(reason)), plain_line(str(by)), _time(ended) if ended else None,
                   plain_line(str(ended_by)) if ended_by else None)


def _iso(moment: datetime) -> str:
    """One fixed format, so that stored times compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _time(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


COLUMNS = "id, endpoint, starts_at, ends_at, reason, started_by, ended_at, ended_by"


def active(path: Path, now: datetime) -> list[Started]:
    """Rows on at ``now`` (started, not past their end, not ended by hand)."""
    with connect(path) as conn:
        if conn is None:
            return []
        moment = _iso(now)
        rows = conn.execute(f"SELECT {COLUMNS} FROM maintenance WHERE ends_at > ? AND "
                            "starts_at <= ? AND ended_at IS NULL ORDER BY id",
                            (moment, moment)).fetchall()
    return [_row(r) for r in rows]


def recent(path: Path, since: datetime) -> list[Started]:
    """Rows that were on at some point since ``since`` (for ``maintenance list``)."""
    with connect(path) as conn:
        if conn is None:
            return []
        rows = conn.execute(f"SELECT {COLUMNS} FROM maintenance WHERE ends_at > ? ORDER BY id",
                            (_iso(since),)).fetchall()
    return [_row(r) for r in rows]


def start(path: Path, endpoint: str, begin: datetime, end: datetime, reason: str,
          by: str) -> Started:
    with connect(path, create=True) as conn:
        assert conn is not None
        with transaction(conn):
            cursor = conn.execute(
                "INSERT INTO maintenance (endpoint, starts_at, ends_at, reason, started_by) "
                "VALUES (?, ?, ?, ?, ?)", (endpoint, _iso(begin),
                                           _iso(end), reason, by))
        return Started(int(cursor.lastrowid or 0), endpoint, begin.astimezone(UTC),
                       end.astimezone(UTC), reason, by)


def end(path: Path, endpoint: str, now: datetime, by: str) -> list[Started]:
    """End every row on for ``endpoint`` now; returns them (empty: none was on)."""
    on = [row for row in active(path, now) if row.endpoint == endpoint]
    if not on:
        return []
    with connect(path, create=True) as conn:
        assert conn is not None
        with transaction(conn):
            conn.executemany("UPDATE maintenance SET ended_at = ?, ended_by = ? WHERE id = ? "
                             "AND ended_at IS NULL",
                             [(_iso(now), by, row.id) for row in on])
    return on
