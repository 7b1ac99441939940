"""SQLite history: ids known up front, WAL, indexes, redaction, the backlog's bound.

Retries, shutdown and counted losses are the shared writer's: tests/test_writer.py runs
them over the store and the ledger book alike."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from helpers import role_of

from probe.outcome import Outcome, ProbeResult
from probe.store import ResultStore, history, latest_results, open_db


def result(endpoint: str = "a", outcome: Outcome = Outcome.OK, message: str = "") -> ProbeResult:
    return ProbeResult(endpoint=endpoint, kind="pod", check="models", outcome=outcome,
                       started_at=datetime.now(UTC), latency_s=0.01, attempts=1,
                       url="http://x", message=message, http_status=200, details={"k": 1}, role=role_of("models"))


def test_rows_are_written_with_preassigned_ids(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "p.db")
    ids = [store.record(result(e)) for e in ("a", "b", "a")]
    store.close()
    assert ids == [1, 2, 3]
    rows = history(tmp_path / "p.db", "a")
    assert [r["id"] for r in rows] == [3, 1]
    assert {r["endpoint"] for r in latest_results(tmp_path / "p.db")} == {"a", "b"}
    reopened = ResultStore(tmp_path / "p.db")
    assert reopened.record(result()) == 4
    reopened.close()


def test_database_is_wal_with_history_indexes(tmp_path: Path) -> None:
    db = open_db(tmp_path / "p.db")
    assert db.journal_mode == "wal"
    indexed = {tuple(i.columns) for i in db["results"].indexes}
    # (endpoint, id) went in migration 7: a page per row for the writer
    assert indexed == {("endpoint", "check_name", "id"), ("ts",)}


def test_history_is_the_endpoints_newest_rows_whatever_its_checks(tmp_path: Path) -> None:
    """history() merges each check's newest rows: the same rows, in the same order, as
    the plain query on every endpoint id (the one the dropped index served)."""
    path = tmp_path / "p.db"
    store = ResultStore(path)
    checks = ["models", "health", "prompt:a", "vllm_metrics", "context"]
    for k in range(300):  # checks at different rates, endpoints whose names share a prefix
        endpoint = ("a", "ab", "a")[k % 3]
        check = checks[k % 5] if k % 7 else "prompt:rare"
        store.record(replace(result(endpoint), check=check))
    store.close()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    for endpoint in ("a", "ab", "b"):
        for limit in (100, 1, 7, 0, 1000, -1):
            plain = [dict(r) for r in conn.execute(
                "SELECT * FROM results WHERE endpoint = ? ORDER BY id DESC LIMIT ?",
                (endpoint, limit))]
            assert history(path, endpoint, limit) == plain, (endpoint, limit)
    conn.close()
    assert len(history(path, "a", -1)) == 200 and history(path, "b") == []


def test_messages_are_redacted_before_storage(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "p.db", redact=lambda s: s.replace("SECRET", "***"))
    store.record(result(message="echo SECRET"))
    store.close()
    assert (tmp_path / "p.db").read_bytes().find(b"SECRET") == -1


def test_overflowing_backlog_keeps_the_newest_and_counts_the_loss(tmp_path: Path,
                                                                   monkeypatch: object) -> None:
    import probe.store

    monkeypatch.setattr(probe.store, "MAX_PENDING", 3)  # type: ignore[attr-defined]
    path = tmp_path / "p.db"
    store = ResultStore(path, batch_interval_s=0.01)
    blocker = sqlite3.connect(path, timeout=5)  # waits out the writer's start-up
    blocker.execute("BEGIN EXCLUSIVE")
    for name in ("a", "b", "c", "d", "e"):
        store.record(result(name))
    deadline = time.monotonic() + 15
    while store.dropped_total < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    blocker.rollback()
    blocker.close()
    store.close()
    assert store.dropped_total == 2 and store.pending == 0 and store.written_total == 3
    assert sorted(r["endpoint"] for r in latest_results(path)) == ["c", "d", "e"]


def test_a_close_that_times_out_never_counts_a_written_row_as_lost(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = ResultStore(path, batch_interval_s=0.01)
    store.record(result("first"))
    deadline = time.monotonic() + 10
    while store.written_total < 1:  # the writer thread has its connection
        assert time.monotonic() < deadline
        time.sleep(0.01)
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    store.record(result("second"))
    time.sleep(0.5)  # the writer is now waiting out its 5 s busy timeout inside write()
    store.close(timeout_s=1.0)
    blocker.close()  # the lock clears while that write still waits
    while store._thread.is_alive():
        assert time.monotonic() < deadline, "the writer thread did not finish"
        time.sleep(0.01)
    on_disk = [r["endpoint"] for r in history(path, "second")]
    assert (on_disk, store.dropped_total) in ((["second"], 0), ([], 1)), (on_disk,
                                                                          store.dropped_total)

