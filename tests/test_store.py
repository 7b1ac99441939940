"""SQLite history: ids known up front, WAL, indexes, redaction, the backlog's bound.

Retries, shutdown and counted losses are the shared writer's: tests/test_writer.py runs
them over the store and the ledger book alike."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import role_of

from probe.outcome import Outcome, ProbeResult
from probe.secrets import Redactor
from probe.store import (
    ResultStore,
    StartTexts,
    details_text,
    history,
    latest_results,
    open_db,
    result_values,
)


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


def test_the_details_text_is_json_dumps_text() -> None:
    """The store's encoder writes the bytes json.dumps(sort_keys, default=str) wrote (the
    rows' details are compared, parsed and json_extract-ed by every reader)."""
    class Opaque:
        def __str__(self) -> str:
            return "opaque <value>"

    cases: list[dict[str, Any]] = [
        {}, {"k": 1}, {"b": 2, "a": [1, 2.5, None, True, False], "c": {"z": {}, "y": []}},
        {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "neg0": -0.0, "big": 10**30,
         "tiny": 1e-12, "float": 780178.0},
        {"text": "naïve \u2028 \x00 \"quoted\" \\ ☃ 😀", "ключ": "значение"},
        {"when": datetime(2026, 12, 5, 10, 37, 29, 8000, tzinfo=UTC), "set": {3},
         "tuple": (1, "two"), "outcome": Outcome.HTTP_5XX, "obj": Opaque()},
        {"answer": "4. On validation failure it fails closed.", "findings": [
            'icontains "fails closed": passed'], "usage": {"prompt_tokens": 20}},
    ]
    for details in cases:
        assert details_text(details) == json.dumps(details, sort_keys=True, default=str)
    with pytest.raises(TypeError):  # keys that cannot be sorted: refused by both
        details_text({1: "a", "b": 2})


def test_start_texts_write_what_isoformat_writes() -> None:
    texts = StartTexts()
    base = datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
    moments = [base + timedelta(microseconds=step * 99_991) for step in range(40)]
    moments += [base.replace(microsecond=999_999), base.replace(microsecond=0),
                base + timedelta(seconds=1, microseconds=999),  # back and forth in time
                base, datetime(2027, 1, 1, tzinfo=UTC), datetime(1999, 1, 1, 0, 0, 58,
                                                                    tzinfo=UTC),
                base.replace(tzinfo=timezone(timedelta(hours=2))),  # same fields, not UTC
                base.replace(tzinfo=ZoneInfo("UTC")), base.replace(tzinfo=None), base]
    for at in moments:
        assert texts(at) == at.isoformat(timespec="milliseconds"), at


def test_rows_are_the_same_values_however_the_start_is_written() -> None:
    texts = StartTexts()
    redact = Redactor(["PROBE_TEST_SECRET"], {"PROBE_TEST_SECRET": "made-up-secret-value"})
    start = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    for k in range(200):
        r = replace(result(f"pod-{k % 7}", message=f"echo made-up-secret-value {k}"),
                    started_at=start + timedelta(milliseconds=37 * k),
                    details={"n": k, "url": "http://x/?key=made-up-secret-value"})
        row = result_values(k, r, redact, texts)
        assert row == result_values(k, r, redact)
        assert "made-up-secret-value" not in repr(row)


def test_details_that_cannot_be_written_leave_a_note_and_the_row(tmp_path: Path) -> None:
    """The writer builds the rows: one result's odd details (keys that cannot be sorted,
    a value whose text raises) neither stop it nor lose that row or the others."""
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text for made-up-secret-value")

    path = tmp_path / "p.db"
    redact = Redactor(["PROBE_TEST_SECRET"], {"PROBE_TEST_SECRET": "made-up-secret-value"})
    store = ResultStore(path, redact=redact)
    ids = [store.record(result("a")),
           store.record(replace(result("a"), details={1: "x", "y": 2})),
           store.record(replace(result("a"), details={"v": Unprintable()})),
           store.record(result("a"))]
    store.close()
    assert (store.written_total, store.dropped_total, store.pending) == (4, 0, 0)
    rows = {r["id"]: r for r in history(path, "a")}
    assert sorted(rows) == ids
    assert json.loads(rows[ids[1]]["details"]) == {"details_not_stored": (
        "TypeError: '<' not supported between instances of 'str' and 'int'")}
    assert json.loads(rows[ids[2]]["details"]) == {
        "details_not_stored": "RuntimeError: no text for ***"}
    assert json.loads(rows[ids[3]]["details"]) == {"k": 1}
