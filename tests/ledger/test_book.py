"""The ledger table is append-only in the database itself, and its writer keeps the chain."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledgerhelpers import draft

from probe.cli import main
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


def test_tampering_behind_dropped_triggers_is_named_by_ledger_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.db"
    seeded(path, 5)
    assert main(["ledger", "verify", "--db", str(path)]) == 0
    assert "ledger ok: 5 entries" in capsys.readouterr().out
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER ledger_no_update")
    raw.execute("UPDATE ledger SET pattern = 'RunPod pod qwen was fine' WHERE id = 4")
    raw.commit()
    raw.close()
    assert main(["ledger", "verify", "--db", str(path)]) == 1
    err = capsys.readouterr().err
    assert "ledger entry #4: content does not match its hash" in err
    assert "3 entries before it are intact" in err


def test_verify_without_a_database_is_a_usage_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--db", str(tmp_path / "none.db")]) == 2
    assert "no database at" in capsys.readouterr().err


def wait(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not written in time"
        time.sleep(0.02)


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


def test_locked_database_is_retried_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    book = LedgerBook(path, batch_interval_s=0.01, busy_timeout_s=0.05)
    blocker = sqlite3.connect(path, timeout=5)  # waits out the writer's start-up
    blocker.execute("BEGIN EXCLUSIVE")
    book.submit({}, [draft(1)])
    wait(lambda: book.errors_total >= 1)
    blocker.rollback()
    blocker.close()
    wait(lambda: book.entries_total == 1)
    book.close()
    assert [e.id for e in read_entries(connect(path))] == [1]


def test_list_filters_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = tmp_path / "p.db"
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    for n, who in ((1, "qwen"), (2, "deepseek"), (3, "qwen")):  # appended a minute apart
        append(conn, [draft(n, who)], now=datetime(2026, 2, 18, 9, n, tzinfo=UTC))
    conn.execute("COMMIT")
    assert main(["ledger", "list", "--db", str(path), "--endpoint", "qwen", "--json",
                 "--since", "2026-02-18T09:02:00"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["id"], e["endpoint"]) for e in listed] == [(3, "qwen")]
    assert listed[0]["hash"] and listed[0]["first_row"] == 3
    assert main(["ledger", "list", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["ID", "TIME", "SEVERITY", "ENDPOINT", "EVENT",
                                           "PATTERN"]
    assert "#2" in out and "down (404) — case 2" in out
    assert main(["ledger", "list", "--db", str(path), "--since", "yesterday"]) == 2
    assert "--since: expected a date" in capsys.readouterr().err
