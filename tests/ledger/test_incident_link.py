"""A fleet incident's link is a structured, hashed field of a ledger entry (never its text),
ledgers written before it existed still verify, and an entry's identity (what it says and
when) is appended once, however often the same transition is judged again."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

from ledgerhelpers import draft

from probe.cli import main
from probe.ledger.book import append, connect, read_entries
from probe.ledger.chain import Evidence, identity, verify
from probe.storage.database import transaction

BEFORE_LINK = Path(__file__).parent.parent / "data" / "ledger" / "before-incident-link.db"


def copy(tmp_path: Path) -> Path:
    db = tmp_path / "probe.db"
    shutil.copy(BEFORE_LINK, db)
    return db


def test_a_ledger_from_before_the_link_verifies_as_it_is_and_after_migration(
        tmp_path: Path) -> None:
    db = copy(tmp_path)
    assert main(["ledger", "verify", "--db", str(db)]) == 0  # read as it is, not migrated
    conn = connect(db)  # migrated: the new columns, empty for the old entries
    before = read_entries(conn)
    assert len(before) == 11 and all(e.evidence.incident is None for e in before)
    linked = replace(draft(12, "c"), evidence=Evidence(
        "models", "http_502", 1, 1, "http://x", "2026-12-05T04:00:00+00:00", "i-2"))
    with transaction(conn):
        append(conn, [linked])
    after = read_entries(conn)
    conn.close()
    assert verify(after).ok and after[:11] == before
    assert after[-1].evidence.incident == "i-2"
    assert main(["ledger", "verify", "--db", str(db)]) == 0


def test_the_link_is_covered_by_the_hash_chain(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    conn = connect(db)
    entry = replace(draft(1, "c"), evidence=Evidence(
        "models", "http_502", 1, 1, "http://x", "2026-12-05T04:00:00+00:00", "i-1", ("c",)))
    with transaction(conn):
        append(conn, [entry, draft(2)])
    conn.close()
    raw = sqlite3.connect(db)
    raw.execute("DROP TRIGGER ledger_no_update")
    raw.execute("UPDATE ledger SET incident = 'i-9' WHERE id = 1")
    raw.commit()
    raw.close()
    conn = connect(db)
    report = verify(read_entries(conn))
    conn.close()
    assert not report.ok and report.problem is not None
    assert str(report.problem).startswith("ledger entry #1: content does not match")


def test_the_same_transition_judged_again_is_appended_once(tmp_path: Path) -> None:
    """A replay stores the same results under new row ids: same identity, one entry."""
    conn = connect(tmp_path / "probe.db")
    first = replace(draft(1), evidence=replace(draft(1).evidence,
                                               observed_at="2026-03-02T02:10:00+00:00"))
    again = replace(first, evidence=replace(first.evidence, first_row=901, last_row=905))
    later = replace(first, evidence=replace(first.evidence,
                                            observed_at="2026-03-03T02:10:00+00:00"))
    assert identity(again) == identity(first) != identity(later)
    with transaction(conn):
        assert [e.id for e in append(conn, [first, again])] == [1]
    with transaction(conn):
        assert append(conn, [again]) == []
        assert [e.id for e in append(conn, [later])] == [2]
    entries = read_entries(conn)
    conn.close()
    assert len(entries) == 2 and verify(entries).ok
