"""The ledger table is append-only in the database itself, and its writer keeps the chain.

What every SQLite writer does (batching, retries, shutdown, losses counted) is tested once
for both writers in tests/test_writer.py; the ``ledger``/``learning`` commands in
test_cli.py."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from ledgerhelpers import draft

from probe.ledger.book import LedgerBook, append, connect, read_entries
from probe.ledger.chain import verify


def seeded(path: Path, count: int = 3) -> None:
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    append(conn, [draft(n) for n in range(1, count + 1)])
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize(
    ("statement", "message"),
    [("UPDATE ledger SET pattern = 'nothing happened' WHERE id = 2", "UPDATE refused"),
     ("UPDATE ledger SET hash = hash", "UPDATE refused"),
     ("DELETE FROM ledger WHERE id = 3", "DELETE refused"),
     ("DELETE FROM ledger", "DELETE refused"),
     ("INSERT OR REPLACE INTO ledger (id, ts, severity, endpoint, event, pattern, prev_hash, "
      "hash) VALUES (2, 't', 'info', 'e', 'down', 'p', 'x', 'y')", "must extend the chain"),
     ("INSERT INTO ledger (id, ts, severity, endpoint, event, pattern, prev_hash, hash) "
      "VALUES (4, 't', 'info', 'e', 'down', 'p', 'not-the-head', 'y')",
      "must extend the chain"),
     ("INSERT INTO ledger (id, ts, severity, endpoint, event, pattern, prev_hash, hash) "
      "SELECT 9, ts, severity, endpoint, event, pattern, hash, 'z' FROM ledger WHERE id = 3",
      "must extend the chain")],
    ids=["update-pattern", "update-noop", "delete-one", "delete-all", "insert-or-replace",
         "insert-wrong-link", "insert-skipping-ids"],
)
def test_raw_sqlite_cannot_change_history(tmp_path: Path, statement: str, message: str) -> None:
    path = tmp_path / "p.db"
    seeded(path)
    before = read_entries(connect(path))
    raw = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match=message):
        raw.execute(statement)
    raw.commit()
    raw.close()
    assert read_entries(connect(path)) == before and verify(before).ok


def test_writer_seals_entries_and_saves_state_together(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    written: list[int] = []
    book = LedgerBook(path, on_written=lambda _c, entries: written.extend(e.id for e in entries),
                      batch_interval_s=0.01)
    book.submit({"qwen": {"state": "down", "n": 1}}, [draft(1)])
    book.submit({"qwen": {"state": "down", "n": 2}, "gone": None}, [draft(2), draft(3)])
    book.close()
    assert written == [1, 2, 3] and book.entries_total == 3
    reopened = LedgerBook(path, batch_interval_s=0.01)
    assert reopened.states == {"qwen": {"state": "down", "n": 2}}
    reopened.submit({}, [draft(4)])
    reopened.close()
    entries = read_entries(connect(path))
    assert [e.id for e in entries] == [1, 2, 3, 4] and verify(entries).ok


def _fails(*_args: object) -> None:
    raise RuntimeError("export broke")


@pytest.mark.parametrize("hook", ["on_written", "maintenance"],
                         ids=["export-after-write", "upkeep"])
def test_a_failing_follow_up_is_logged_and_the_ledger_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, hook: str) -> None:
    path = tmp_path / "p.db"
    book = LedgerBook(path, batch_interval_s=0.01, **{hook: _fails})  # type: ignore[arg-type]
    book.submit({}, [draft(1)])
    book.submit({}, [draft(2)])
    book.close()
    assert [e.id for e in read_entries(connect(path))] == [1, 2]
    assert book.entries_total == 2 and book.errors_total == 0
    assert f"ledger follow-up {_fails.__name__} failed" in caplog.text


def test_a_shutdown_loss_logs_the_number_of_entries_it_counts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.db"
    book = LedgerBook(path, batch_interval_s=0.01, busy_timeout_s=0.05)
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        book.submit({"qwen": {"state": "down"}, "gone": None}, [draft(1)])
        book.close()
    finally:
        blocker.close()
    assert book.dropped_total == 1
    lost = [r.getMessage() for r in caplog.records
            if r.levelno == logging.ERROR and "at shutdown" in r.getMessage()]
    assert lost and all("cannot write 1 ledger entries" in line for line in lost), lost
