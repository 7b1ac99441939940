"""SQLite history of every probe result, written by one owner thread (``SingleWriter``).

The event loop gives the result its row id and enqueues it; the writer builds the rows
(details as JSON, secrets scrubbed) as it takes a batch, and inserts the batch in one
transaction with one ``executemany``. Built in a run of a thousand, a row costs the writer
about half what it cost the loop between two checks (bench/store.py: 26.5 us a result in
all against 31.6 when the loop built it; the loop's part 2.4 us against 16): the loop does
not wait on it, and the writer's Python work is handed back to the loop at each switch
interval. A result is not changed once published (its checks built its details), so the
row written later is the row it would have been. Row ids are assigned at enqueue time so
the caller (the ledger) can cite a result as evidence before it hits the disk. A result
whose details cannot be written as JSON is stored with a note saying why in their place.
A failing write (locked, disk full) is logged and counted, the batch is kept and retried:
results are not dropped
unless the pending buffer overflows or shutdown cannot write them, and then they are
counted (``dropped_total``) and logged. With ``storage.retention``, old results are rolled
up and pruned by this writer too (``probe.storage.retention``), between batches.
"""

from __future__ import annotations

import heapq
import logging
import threading
from _json import encode_basestring_ascii, make_encoder
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import sqlite_utils

from probe.outcome import ProbeResult
from probe.storage.database import open_database, transaction
from probe.storage.retention import Pruner
from probe.writer import BATCH_INTERVAL_S, SingleWriter

COLUMNS = {"id": int, "ts": str, "endpoint": str, "kind": str, "check_name": str,
           "outcome": str, "http_status": int, "latency_s": float, "attempts": int,
           "url": str, "message": str, "details": str}
MAX_PENDING = 200_000
log = logging.getLogger(__name__)


def open_db(path: Path) -> sqlite_utils.Database:
    """The database as the storage package opens it (its schema is
    ``probe.storage.schema``'s), with sqlite-utils' queries returning dicts."""
    return sqlite_utils.Database(open_database(path))


def check_writable(db: sqlite_utils.Database) -> None:
    """Raise SQLite's own error when this database cannot be written (a read-only file or
    directory, a read-only file system): a write in a transaction that is rolled back.
    Opening and reading succeed on such a file, and the writer would fail only later, on
    every batch, while the daemon probed on storing nothing."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE write_check (x)")
    finally:
        if conn.in_transaction:
            conn.rollback()


# The details' text: what json.dumps(details, sort_keys=True, default=str) writes, by the
# C encoder json.dumps itself ends in, made once. json.dumps builds a JSONEncoder and that
# encoder for every call: 8.7 us a result against 2.8 us (the default pod's details,
# measured). Without json.dumps' check for containers that hold themselves (``markers``):
# details are the checks' own values and parsed JSON, which cannot; one that did would
# raise RecursionError instead of ValueError.
_DETAILS_ENCODER = make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", True,
                                False, True)


def details_text(details: dict[str, Any]) -> str:
    """``json.dumps(details, sort_keys=True, default=str)``, the same text, faster."""
    return "".join(_DETAILS_ENCODER(details, 0))


def start_text(at: datetime) -> str:
    """A result's start as stored: ISO 8601 to the millisecond (UTC: a string compare is a
    time compare, ``probe.storage.retention``)."""
    return at.isoformat(timespec="milliseconds")


class StartTexts:
    """``start_text`` for results that come in time order: the text up to the second is
    made once a second, the milliseconds added (0.9 us a result against isoformat's 2.1:
    isoformat asks the time zone for its offset every time). Anything but UTC goes to
    ``start_text``."""

    def __init__(self) -> None:
        # (the second as (second, minute, hour, day, month, year), its text): one value,
        # so a reader never pairs one second with another's text
        self._second: tuple[tuple[int, ...], str] = ((), "")

    def __call__(self, at: datetime) -> str:
        if at.tzinfo is not UTC:
            return start_text(at)
        second = (at.second, at.minute, at.hour, at.day, at.month, at.year)
        cached = self._second
        if cached[0] != second:
            cached = (second, at.isoformat(timespec="seconds")[:-6])
            self._second = cached
        return f"{cached[1]}.{at.microsecond // 1000:03d}+00:00"


def result_values(row_id: int, result: ProbeResult, redact: Callable[[str], str],
                  started: Callable[[datetime], str] = start_text) -> tuple[Any, ...]:
    """The row's values in ``COLUMNS`` order (``started``: how the start time is written,
    ``start_text`` or a ``StartTexts``, the same text)."""
    return (row_id, started(result.started_at), result.endpoint,
            result.kind, result.check, str(result.outcome), result.http_status,
            round(result.latency_s, 6), result.attempts, redact(result.url),
            redact(result.message), redact(details_text(result.details)))


INSERT = (f"INSERT INTO results ({', '.join(COLUMNS)}) "
          f"VALUES ({', '.join('?' * len(COLUMNS))})")
Row = tuple[Any, ...]  # a row's values in COLUMNS order
Pending = tuple[int, ProbeResult]  # a result and the row id it was given


def row_of(row_id: int, result: ProbeResult, redact: Callable[[str], str],
           started: Callable[[datetime], str] = start_text) -> Row:
    """``result_values``; details that cannot be written (keys that cannot be sorted, a
    value whose text raises) are replaced by a note naming the error: the row is stored,
    the ledger's citation of it holds."""
    try:
        return result_values(row_id, result, redact, started)
    except Exception as exc:  # noqa: BLE001 - a check's odd details must not lose its row
        log.warning("result %d (%s %s): details not stored: %s: %s", row_id, result.endpoint,
                    result.check, type(exc).__name__, exc)
        note = {"details_not_stored": f"{type(exc).__name__}: {exc}"}
        return result_values(row_id, replace(result, details=note), redact, started)


class ResultStore(SingleWriter[Pending, sqlite_utils.Database]):
    what = "results"

    def __init__(self, path: Path, redact: Callable[[str], str] = lambda s: s,
                 batch_interval_s: float = BATCH_INTERVAL_S,
                 retention_s: float | None = None) -> None:
        super().__init__("result-store", batch_interval_s)
        self.path = path
        self.redact = redact
        # retention runs in this thread, between batches: the one writer of the results
        self.pruner = Pruner(retention_s) if retention_s else None
        path.parent.mkdir(parents=True, exist_ok=True)
        db = open_db(path)
        try:
            check_writable(db)
            self._next_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM results")
                                .fetchone()[0]) + 1
        finally:
            db.close()
        self._ids = threading.Lock()
        self._started = StartTexts()
        self._backlog: list[Row] = []
        self.written_total = 0
        self.pending = 0
        self.start()

    def record(self, result: ProbeResult) -> int:
        """Queue ``result`` for writing and return the row id it will have."""
        with self._ids:
            row_id = self._next_id
            self._next_id += 1
            self.pending += 1
        self.put((row_id, result))
        return row_id

    def connect(self) -> sqlite_utils.Database:
        return open_db(self.path)

    def accept(self, items: list[Pending]) -> None:
        redact, started, backlog = self.redact, self._started, self._backlog
        for row_id, result in items:
            try:
                backlog.append(row_of(row_id, result, redact, started))
            except Exception:  # noqa: BLE001 - a bug here must not stop the writer
                log.exception("result %d (%s %s) cannot be stored", row_id, result.endpoint,
                              result.check)
                self._lost(1)
        overflow = len(self._backlog) - MAX_PENDING
        if overflow > 0:  # keep the newest; the loss is counted, never silent
            del self._backlog[:overflow]
            self._lost(overflow)

    def backlog_size(self) -> int:
        return len(self._backlog)

    def write(self, db: sqlite_utils.Database) -> None:
        with transaction(db.conn):  # one transaction for the batch
            db.conn.executemany(INSERT, self._backlog)

    def written(self, db: sqlite_utils.Database) -> None:
        self.written_total += len(self._backlog)
        with self._ids:
            self.pending -= len(self._backlog)
        self._backlog.clear()

    def upkeep(self, db: sqlite_utils.Database) -> None:
        if self.pruner is not None:
            self.pruner(db.conn)

    @property
    def pruned_total(self) -> int | None:
        """Results removed by retention (None: no retention configured)."""
        return self.pruner.pruned_total if self.pruner is not None else None

    def give_up(self, count: int) -> None:
        self._lost(count)
        self._backlog.clear()

    def _lost(self, count: int) -> None:
        self.dropped_total += count
        with self._ids:
            self.pending -= count


def latest_results(path: Path) -> list[dict[str, Any]]:
    """The newest row per (endpoint, check)."""
    db = open_db(path)
    try:
        rows = db.query(
            "SELECT r.* FROM results r JOIN (SELECT MAX(id) AS id FROM results "
            "GROUP BY endpoint, check_name) latest ON r.id = latest.id ORDER BY endpoint, "
            "check_name")
        return list(rows)
    finally:
        db.close()


# The endpoint's check names, one index step each (not a scan of its rows).
_CHECKS_OF = """WITH RECURSIVE checks(name) AS (
    SELECT MIN(check_name) FROM results WHERE endpoint = ?1
    UNION ALL
    SELECT (SELECT MIN(check_name) FROM results WHERE endpoint = ?1 AND check_name > name)
    FROM checks WHERE name IS NOT NULL)
SELECT name FROM checks WHERE name IS NOT NULL"""
_NEWEST_OF_CHECK = ("SELECT * FROM results WHERE endpoint = ? AND check_name = ? "
                    "ORDER BY id DESC LIMIT ?")


def history(path: Path, endpoint: str, limit: int = 100) -> list[dict[str, Any]]:
    """The endpoint's newest ``limit`` rows (a negative limit: all), newest first.

    Results are indexed by (endpoint, check_name, id) only (``probe.storage.schema``): the
    newest ``limit`` of each check, merged by id, are the endpoint's newest ``limit``, read
    in index order whatever the length of its history."""
    db = open_db(path)
    try:
        checks = [row[0] for row in db.execute(_CHECKS_OF, [endpoint])]
        newest = [list(db.query(_NEWEST_OF_CHECK, [endpoint, check, limit]))
                  for check in checks]
        merged = heapq.merge(*newest, key=lambda row: int(row["id"]), reverse=True)
        return list(islice(merged, limit if limit >= 0 else None))
    finally:
        db.close()
