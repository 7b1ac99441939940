"""SQLite history of every probe result, written by one owner thread.

sqlite3 connections belong to the thread that made them, so a single writer thread owns
the database; the event loop only enqueues. Row ids are assigned at enqueue time so the
caller (the ledger) can cite a result as evidence before it hits the disk. A failing
write (locked, disk full) is logged and counted, the batch is kept and retried: results
are not dropped unless the pending buffer overflows, and then they are counted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from probe.inbox import Inbox
from probe.outcome import ProbeResult

log = logging.getLogger(__name__)

COLUMNS = {"id": int, "ts": str, "endpoint": str, "kind": str, "check_name": str,
           "outcome": str, "http_status": int, "latency_s": float, "attempts": int,
           "url": str, "message": str, "details": str}
MAX_PENDING = 200_000


def open_db(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA busy_timeout = 5000")
    if db.journal_mode != "wal":
        db.enable_wal()
    if "results" not in db.table_names():
        db.table("results").create(COLUMNS, pk="id", not_null={"ts", "endpoint", "check_name",
                                                         "outcome"})
        db.table("results").create_index(["endpoint", "check_name", "id"], if_not_exists=True)
        db.table("results").create_index(["endpoint", "id"], if_not_exists=True)
        db.table("results").create_index(["ts"], if_not_exists=True)
    return db


def result_row(row_id: int, result: ProbeResult, redact: Callable[[str], str]) -> dict[str, Any]:
    return {
        "id": row_id, "ts": result.started_at.isoformat(timespec="milliseconds"),
        "endpoint": result.endpoint, "kind": result.kind, "check_name": result.check,
        "outcome": str(result.outcome), "http_status": result.http_status,
        "latency_s": round(result.latency_s, 6), "attempts": result.attempts,
        "url": redact(result.url), "message": redact(result.message),
        "details": redact(json.dumps(result.details, sort_keys=True, default=str)),
    }


class ResultStore:
    def __init__(self, path: Path, redact: Callable[[str], str] = lambda s: s,
                 batch_interval_s: float = 0.2) -> None:
        self.path = path
        self.redact = redact
        self.batch_interval_s = batch_interval_s
        path.parent.mkdir(parents=True, exist_ok=True)
        db = open_db(path)
        self._next_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM results")
                            .fetchone()[0]) + 1
        db.close()
        self._ids = threading.Lock()
        self._inbox: Inbox[dict[str, Any]] = Inbox()
        self.written_total = 0
        self.errors_total = 0
        self.dropped_total = 0
        self.pending = 0
        self._thread = threading.Thread(target=self._writer, name="result-store", daemon=True)
        self._thread.start()

    def record(self, result: ProbeResult) -> int:
        """Queue ``result`` for writing and return the row id it will have."""
        with self._ids:
            row_id = self._next_id
            self._next_id += 1
            self.pending += 1
        self._inbox.put(result_row(row_id, result, self.redact))
        return row_id

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._inbox.stop()
        self._thread.join(timeout_s)

    def _writer(self) -> None:
        db = open_db(self.path)
        backlog: list[dict[str, Any]] = []
        stopping = False
        delay = 0.5
        while not (stopping and not backlog):
            stopping = self._drain(backlog, block=not backlog) or stopping
            if not backlog:
                continue
            try:
                with db.conn:
                    db.table("results").insert_all(backlog, batch_size=500)
            except Exception as exc:  # noqa: BLE001 - locked, disk full, I/O: keep and retry
                self.errors_total += 1
                log.error("cannot write %d results to %s: %s (will retry)", len(backlog),
                          self.path, exc)
                if stopping:
                    log.error("giving up on %d unwritten results at shutdown", len(backlog))
                    self.dropped_total += len(backlog)
                    break
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            self.written_total += len(backlog)
            with self._ids:
                self.pending -= len(backlog)
            backlog.clear()
            if not stopping:
                time.sleep(self.batch_interval_s)  # let a batch accumulate
        db.close()

    def _drain(self, backlog: list[dict[str, Any]], block: bool) -> bool:
        """Move queued rows into ``backlog``; True when the stop marker was seen."""
        rows, stopped = self._inbox.take(block)
        backlog.extend(rows)
        overflow = len(backlog) - MAX_PENDING
        if overflow > 0:  # keep the newest; the loss is counted, never silent
            del backlog[:overflow]
            self.dropped_total += overflow
            with self._ids:
                self.pending -= overflow
        return stopped

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


def history(path: Path, endpoint: str, limit: int = 100) -> list[dict[str, Any]]:
    db = open_db(path)
    try:
        return list(db.query("SELECT * FROM results WHERE endpoint = ? ORDER BY id DESC LIMIT ?",
                             [endpoint, limit]))
    finally:
        db.close()
