"""Each ledger entry names the probe that wrote it (``instance``), covered by its hash; a
ledger written before entries named their probe (``tests/data/storage/before-instance``,
main's file from before this field) still verifies, before and after the upgrade; LEARNING.md
rows and the digest name the probe only in a fleet of more than one."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledgerhelpers import draft
from release_file import BEFORE_INSTANCE, release_copy

from probe.cli import main
from probe.ledger.book import LedgerBook, append, connect, read_entries
from probe.ledger.chain import (
    GENESIS,
    Evidence,
    LedgerDraft,
    LedgerEntry,
    content,
    identity,
    seal,
    verify,
)
from probe.ledger.digest import digest, markdown, window_of
from probe.ledger.learning import NEW_FILE, updated
from probe.storage.database import transaction
from probe.storage.migrations import LATEST, version_of


def entries_of(db: Path) -> list[LedgerEntry]:
    conn = sqlite3.connect(db)
    try:
        return read_entries(conn)
    finally:
        conn.close()


def written(db: Path, instance: str, count: int) -> None:
    book = LedgerBook(db, batch_interval_s=0.01, instance=instance)
    book.submit({}, [draft(n, f"qwen-{n}") for n in range(1, count + 1)])
    deadline = time.monotonic() + 10
    while book.entries_total < count and time.monotonic() < deadline:
        time.sleep(0.01)
    book.close()
    assert book.entries_total == count


def test_an_entry_names_its_probe_and_its_hash_covers_the_name() -> None:
    entry = seal(draft(1), 1, GENESIS, instance="probe-1")
    assert entry.instance == "probe-1" and content(entry)["instance"] == "probe-1"
    assert verify([entry]).ok
    renamed = replace(entry, instance="probe-2")
    problem = verify([renamed]).problem
    assert problem is not None and "the entry was edited" in problem.reason
    stripped = replace(entry, instance=None)
    assert not verify([stripped]).ok, "removing the name is an edit too"


def test_a_reload_that_renames_the_probe_names_the_next_entries(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    written(db, "probe-1", 1)
    book = LedgerBook(db, batch_interval_s=0.01, instance="probe-1")
    book.instance = "probe-9"  # what the ledger's on_plan does after a reload
    book.submit({}, [draft(2, "qwen-2")])
    deadline = time.monotonic() + 10
    while book.entries_total < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    book.close()
    assert [e.instance for e in entries_of(db)] == ["probe-1", "probe-9"]
    assert verify(entries_of(db)).ok


def test_an_entry_without_a_probe_hashes_as_entries_always_did() -> None:
    entry = seal(draft(1), 1, GENESIS)
    assert "instance" not in content(entry)
    assert entry.hash != seal(draft(1), 1, GENESIS, instance="probe-1").hash


def test_the_file_from_before_instance_verifies_as_it_is(tmp_path: Path) -> None:
    db = release_copy(tmp_path, BEFORE_INSTANCE)
    conn = sqlite3.connect(db)
    assert version_of(conn) == 3  # written before migrations 4 and 5
    conn.close()
    assert main(["ledger", "verify", "--db", str(db)]) == 0
    found = entries_of(db)
    assert len(found) == 37 and {e.instance for e in found} == {None}
    conn = sqlite3.connect(db)
    assert version_of(conn) == 3, "verify reads the file, it does not upgrade it"
    conn.close()


def test_the_upgraded_file_goes_on_with_named_entries_and_still_verifies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = release_copy(tmp_path, BEFORE_INSTANCE)
    written(db, "probe-2", 3)
    conn = sqlite3.connect(db)
    assert version_of(conn) == LATEST >= 5
    conn.close()
    found = entries_of(db)
    assert [e.instance for e in found[:37]] == [None] * 37
    assert [e.instance for e in found[37:]] == ["probe-2"] * 3
    assert verify(found).ok
    # the chain, the anchor and the kept LEARNING.md's citations all still hold
    assert main(["ledger", "verify", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "40 entries" in out and "LEARNING.md cites" in out


def test_a_lone_probes_rows_read_as_they_always_did() -> None:
    plain = [seal(draft(1), 1, GENESIS)]
    named = [seal(draft(1), 1, GENESIS, instance="probe-1")]
    text_plain, _ = updated(NEW_FILE, plain)
    text_named, _ = updated(NEW_FILE, named)
    assert "probe-1" not in text_named
    assert text_named == text_plain.replace(plain[0].short_hash, named[0].short_hash)


def test_in_a_fleet_of_two_each_row_names_the_probe_whose_ledger_it_cites() -> None:
    named = [seal(draft(1), 1, GENESIS, instance="probe-1")]
    text, added = updated(NEW_FILE, named, probes=2)
    assert added == 1
    row = text.splitlines()[-1]
    assert row.endswith(f"· probe-1 ledger #1 sha256:{named[0].short_hash} |"), row
    # and the row still counts as a citation: a second run adds nothing
    assert updated(text, named, probes=2) == (text, 0)


def test_entries_of_two_probes_name_them_whatever_the_config_says() -> None:
    first = seal(draft(1, "a"), 1, GENESIS, instance="probe-1")
    second = seal(draft(2, "b"), 2, first.hash, instance="probe-2")
    text, _ = updated(NEW_FILE, [first, second])
    assert "probe-1 ledger #1" in text and "probe-2 ledger #2" in text


def test_the_digest_names_the_probe_only_in_a_fleet_of_two(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    written(db, "probe-1", 2)
    conn = sqlite3.connect(db)
    try:
        window = window_of(365 * 86400.0, datetime(2026, 12, 31, tzinfo=UTC))
        alone, pair = digest(conn, window), digest(conn, window, probes=2)
    finally:
        conn.close()
    assert "instance" not in alone and all("instance" not in i for i in alone["incidents"])
    assert "# runpod-probe digest: " in markdown(alone)
    assert "Probe" not in markdown(alone)
    assert pair["instance"] == "probe-1"
    assert [i["instance"] for i in pair["incidents"]] == ["probe-1", "probe-1"]
    text = markdown(pair)
    assert "# runpod-probe digest of probe-1: " in text
    assert "| Endpoint | Cause | Began | Lasted | Ledger | Probe |" in text
    assert "| probe-1 |" in text


def observed(n: int = 1) -> LedgerDraft:
    return replace(draft(n, "qwen"), evidence=Evidence(
        "models", "http_502", n, n, "http://x", f"2026-12-05T04:0{n}:00+00:00"))


def test_the_probe_is_part_of_an_entrys_identity(tmp_path: Path) -> None:
    """A replay by the same probe appends nothing; the same transition from two probes is two
    entries (their ledgers are their own, but one file must never merge them); an entry from
    before entries named their probe was this ledger's own probe's."""
    assert identity(observed(), "probe-1") != identity(observed(), "probe-2")
    conn = connect(tmp_path / "probe.db")
    with transaction(conn):
        append(conn, [observed(1)])  # no name: written before instance existed
        append(conn, [observed(1), observed(2)], instance="probe-1")
        append(conn, [observed(2)], instance="probe-1")
        append(conn, [observed(2)], instance="probe-2")
    found = read_entries(conn)
    conn.close()
    assert [(e.id, e.evidence.first_row, e.instance) for e in found] == [
        (1, 1, None), (2, 2, "probe-1"), (3, 2, "probe-2")]
    assert verify(found).ok
