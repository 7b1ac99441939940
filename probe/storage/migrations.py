"""Numbered steps from any database file to the current schema, counted in
``PRAGMA user_version``.

Each step runs in its own transaction together with the new version number, so a crash
leaves the file at the step before or after, never between. Steps only add, except an
index that costs more than it serves (an index holds no data): no data is ever dropped. A
file whose version is newer than the steps known here was written by a newer release and
is refused, not guessed at (fail closed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from probe.storage import schema


class StorageError(sqlite3.DatabaseError):
    """The database cannot be used by this release (a SQLite error, so that whatever
    reports a file SQLite refuses reports this too)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    what: str
    apply: Callable[[sqlite3.Connection], None]


def _release_0_1_0(conn: sqlite3.Connection) -> None:
    """The tables release 0.1.0 made; a file from it (user_version 0) already has them."""
    for statement in schema.RELEASE_0_1_0:
        conn.execute(statement)


def _ledger_observed_at(conn: sqlite3.Connection) -> None:
    """Ledgers from before entries carried when the transition was observed."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(ledger)")}
    if "observed_at" not in columns:
        conn.execute("ALTER TABLE ledger ADD COLUMN observed_at TEXT")


def _state_seconds(conn: sqlite3.Connection) -> None:
    """Uptime by time: seconds per verdict state and hour; incident entries by event."""
    for statement in (*schema.STATE_HOURLY, *schema.LEDGER_BY_EVENT):
        conn.execute(statement)


def _ledger_incident(conn: sqlite3.Connection) -> None:
    """Ledger entries link their fleet incident in columns of their own (not their text), and
    are found by endpoint and observation time (an entry's identity)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(ledger)")}
    for column in schema.LEDGER_INCIDENT_COLUMNS:
        if column not in columns:
            conn.execute(f"ALTER TABLE ledger ADD COLUMN {column} TEXT")
    for statement in schema.LEDGER_BY_OBSERVATION:
        conn.execute(statement)


def _ledger_instance(conn: sqlite3.Connection) -> None:
    """Ledgers from before entries named the probe that wrote them (an HA pair's)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(ledger)")}
    if "instance" not in columns:
        conn.execute(schema.LEDGER_INSTANCE)


def _baseline_hours(conn: sqlite3.Connection) -> None:
    """The baselines' hourly samples, so that a restart does not start them again."""
    for statement in schema.BASELINE_HOURS:
        conn.execute(statement)


def _results_by_endpoint_dropped(conn: sqlite3.Connection) -> None:
    """Results are no longer indexed by (endpoint, id): that index cost the writer a page
    per row (``schema.RESULTS_BY_ENDPOINT_DROPPED``). Dropping it on a large file frees its
    pages (reused by new rows) at the first start of this release."""
    conn.execute(schema.RESULTS_BY_ENDPOINT_DROPPED)


MIGRATIONS = (
    Migration(1, "the tables of release 0.1.0", _release_0_1_0),
    Migration(2, "ledger entries carry observed_at", _ledger_observed_at),
    Migration(3, "seconds in each state per hour; ledger entries by event", _state_seconds),
    Migration(4, "ledger entries link their fleet incident; found by observation",
              _ledger_incident),
    Migration(5, "ledger entries name their probe (instance)", _ledger_instance),
    Migration(6, "the baselines' hourly samples", _baseline_hours),
    Migration(7, "results no longer indexed by (endpoint, id)", _results_by_endpoint_dropped),
)
LATEST = MIGRATIONS[-1].version


def version_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def refuse_newer(version: int) -> None:
    if version > LATEST:
        raise StorageError(f"schema version {version} was written by a newer runpod-probe "
                           f"(this one knows up to {LATEST}); refusing to use it")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to ``LATEST``; return how many steps ran (0: already there).
    ``conn`` is in autocommit mode (``isolation_level=None``)."""
    refuse_newer(version_of(conn))
    ran = 0
    for step in MIGRATIONS:
        if step.version <= version_of(conn):
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = version_of(conn)  # another process may have run it meanwhile
            refuse_newer(current)
            if step.version > current:
                step.apply(conn)
                conn.execute(f"PRAGMA user_version = {step.version}")
                ran += 1
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return ran
