"""Entries removed from the end of the ledger (after dropping its triggers): the last one, all
of them, the table itself. The chain that is left still verifies, so ``ledger verify`` holds
the table against what is kept outside it: the head the ledger's writer anchors beside the
database after every batch (``<db>.ledger-head``), and the entries LEARNING.md cites. A
ledger from before anchors verifies (unanchored) until the daemon anchors it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledgerhelpers import draft

from probe.cli import main
from probe.ledger.anchor import anchor_path, read_anchor
from probe.ledger.book import LedgerBook, append, connect, read_entries
from probe.ledger.learning import append_learning
from probe.ledger.watch import ChainWatch

TABLE = "| Date | Pattern | Source |\n|---|---|---|\n"


def written_by_the_book(path: Path, count: int = 3, batches: int = 1) -> None:
    """Entries written by the ledger's own writer (which anchors after every batch)."""
    book = LedgerBook(path, batch_interval_s=0.01)
    per_batch = count // batches
    for b in range(batches):
        book.submit({}, [draft(n) for n in range(b * per_batch + 1, (b + 1) * per_batch + 1)])
        deadline = time.monotonic() + 10
        while book.entries_total < (b + 1) * per_batch and time.monotonic() < deadline:
            time.sleep(0.01)
    book.close()
    assert book.entries_total == count


def from_the_current_release(path: Path, count: int = 3) -> None:
    """Entries as a release without anchors left them: no ``.ledger-head``."""
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    append(conn, [draft(n, f"qwen-{n}") for n in range(1, count + 1)],
           now=datetime(2026, 2, 18, 9, 0, tzinfo=UTC))
    conn.execute("COMMIT")
    conn.close()


def behind_dropped_triggers(path: Path, statement: str) -> None:
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER ledger_no_delete")
    raw.execute(statement)
    raw.commit()
    raw.close()


def delete_last(path: Path) -> None:
    behind_dropped_triggers(path, "DELETE FROM ledger WHERE id = (SELECT MAX(id) FROM ledger)")


def delete_all(path: Path) -> None:
    behind_dropped_triggers(path, "DELETE FROM ledger")


def drop_table(path: Path) -> None:
    behind_dropped_triggers(path, "DROP TABLE ledger")


def verify_cli(path: Path, capsys: pytest.CaptureFixture[str],
               *extra: str) -> tuple[int, list[str], list[str]]:
    started = time.monotonic()
    code = main(["ledger", "verify", "--db", str(path), *extra])
    assert time.monotonic() - started < 3
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_an_untouched_ledger_verifies_anchored(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "p.db"
    written_by_the_book(db, 4, batches=2)
    head = read_entries(connect(db))[-1]
    anchor = read_anchor(db)
    assert anchor is not None and (anchor.id, anchor.hash) == (4, head.hash)
    assert json.loads(anchor_path(db).read_text()) == {"id": 4, "hash": head.hash}
    code, out, err = verify_cli(db, capsys)
    assert (code, err) == (0, [])
    assert out == [f"ledger ok: 4 entries, head sha256:{head.hash}; anchored in "
                   "p.db.ledger-head"]


@pytest.mark.parametrize(
    ("tamper", "says"),
    [(delete_last, "ledger entry #3: missing: p.db.ledger-head records head #3 sha256:"),
     (delete_all, "ledger entry #1: missing: p.db.ledger-head records head #3 sha256:"),
     (drop_table, "ledger entry #1: missing: the ledger table is gone, and p.db.ledger-head "
                  "records head #3 sha256:")],
    ids=["last-entry", "all-entries", "the-table"],
)
def test_entries_removed_from_the_end_fail_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        tamper: Callable[[Path], None], says: str) -> None:
    db = tmp_path / "p.db"
    written_by_the_book(db)
    tamper(db)
    code, out, err = verify_cli(db, capsys)
    assert code == 1 and out == []
    assert len(err) == 1 and err[0].startswith(f"runpod-probe: ledger verify FAILED: {says}")


def test_a_ledger_from_the_current_release_verifies_unanchored_until_the_daemon_anchors_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "p.db"
    from_the_current_release(db)
    code, out, _ = verify_cli(db, capsys)
    assert code == 0 and len(out) == 1
    assert out[0].startswith("ledger ok: 3 entries, head sha256:")
    assert out[0].endswith("; unanchored: no p.db.ledger-head yet (the daemon writes it when "
                           "it starts), so entries removed from the end cannot be told")
    LedgerBook(db).close()  # the upgraded daemon starts: the head is anchored at once
    assert read_anchor(db) is not None
    assert verify_cli(db, capsys)[1][0].endswith("; anchored in p.db.ledger-head")
    delete_last(db)
    code, _, err = verify_cli(db, capsys)
    assert code == 1 and "ledger entry #3: missing: p.db.ledger-head records head #3" in err[0]


@pytest.mark.parametrize("tamper", [delete_last, delete_all, drop_table],
                         ids=["last-entry", "all-entries", "the-table"])
def test_learning_md_citing_removed_entries_fails_verify_without_an_anchor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        tamper: Callable[[Path], None]) -> None:
    db, learning = tmp_path / "p.db", tmp_path / "LEARNING.md"
    from_the_current_release(db)
    learning.write_text(TABLE)
    append_learning(learning, read_entries(connect(db)))
    code, out, _ = verify_cli(db, capsys)
    assert code == 0 and out[0].endswith(f"; {learning} cites through #3")
    tamper(db)
    code, out, err = verify_cli(db, capsys)
    assert code == 1 and out == [] and len(err) == 1
    assert f"missing: {learning} cites ledger #3 sha256:" in err[0]
    assert err[0].endswith("entries removed from the end, and there is no p.db.ledger-head "
                           "either")


def test_an_anchor_the_table_contradicts_is_never_moved(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The writer does not overwrite the evidence with the shorter chain's new head."""
    db = tmp_path / "p.db"
    written_by_the_book(db)
    anchored = anchor_path(db).read_bytes()
    delete_last(db)
    book = LedgerBook(db, batch_interval_s=0.01)
    book.submit({}, [draft(9)])
    book.close()
    assert book.entries_total == 1, "the ledger goes on"
    assert anchor_path(db).read_bytes() == anchored
    assert "the ledger's anchor is left as it is" in caplog.text


@pytest.mark.parametrize("tamper", [delete_last, delete_all, drop_table],
                         ids=["last-entry", "all-entries", "the-table"])
def test_the_running_daemons_chain_watch_sees_entries_removed_from_the_end(
        tmp_path: Path, tamper: Callable[[Path], None]) -> None:
    db = tmp_path / "p.db"
    written_by_the_book(db)
    watch = ChainWatch(db=db)
    conn = connect(db)
    watch(conn)
    assert watch.valid and watch.head is not None and watch.head.id == 3
    tamper(db)
    watch(conn)  # the next writer cycle (not a full check)
    assert not watch.valid and watch.problem is not None
    conn.close()
    fresh = ChainWatch(db=db)  # a restart: the full check holds the table to the anchor
    raw = sqlite3.connect(db)
    fresh(raw)
    raw.close()
    assert not fresh.valid and "p.db.ledger-head records head #3" in str(fresh.problem)


def test_a_spoiled_anchor_fails_verify_in_one_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "p.db"
    written_by_the_book(db)
    anchor_path(db).write_text("not json")
    code, _, err = verify_cli(db, capsys)
    assert code == 1 and len(err) == 1
    assert err[0].endswith("p.db.ledger-head is not a ledger head (expected "
                           '{"id": N, "hash": "<64 hex>"})')


def test_entries_removed_while_the_daemon_writes_do_not_move_the_anchor(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    book = LedgerBook(db, batch_interval_s=0.01)
    book.submit({}, [draft(1), draft(2), draft(3)])
    deadline = time.monotonic() + 10
    while book.entries_total < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    anchored = anchor_path(db).read_bytes()
    delete_last(db)  # behind the running writer's back
    book.submit({}, [draft(4)])  # written as a new #3
    deadline = time.monotonic() + 10
    while book.entries_total < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    book.close()
    assert book.entries_total == 4
    assert anchor_path(db).read_bytes() == anchored, "the evidence stays"


def test_the_writer_reports_the_head_it_found_then_the_last_it_committed(
        tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    book = LedgerBook(db, batch_interval_s=0.01)
    assert book.head is None
    book.close()
    written_by_the_book(db, 2)
    book = LedgerBook(db, batch_interval_s=0.01)
    assert book.head is not None and book.head.id == 2, "the head found at start"
    book.submit({}, [draft(3)])
    deadline = time.monotonic() + 10
    while book.entries_total < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    book.close()
    conn = connect(db)
    last = conn.execute("SELECT id, hash FROM ledger ORDER BY id DESC").fetchone()
    conn.close()
    assert (book.head.id, book.head.hash) == tuple(last), "the last entry committed"
