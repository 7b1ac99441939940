"""The hash chain: stable canonical form, and every kind of tampering named at its entry."""

from __future__ import annotations

from dataclasses import replace

import pytest
from ledgerhelpers import chain, draft

from probe.ledger.chain import GENESIS, Evidence, LedgerEntry, canonical, content, seal, verify


def test_hash_covers_content_and_previous_hash() -> None:
    first = seal(draft(1), 1, GENESIS)
    assert len(first.hash) == 64 and first.prev_hash == GENESIS
    assert seal(draft(1), 1, GENESIS).hash == first.hash, "same content, same hash"
    assert seal(draft(1), 1, "f" * 64).hash != first.hash, "the link is part of the content"
    assert seal(draft(2), 1, GENESIS).hash != first.hash


def test_canonical_form_is_sorted_compact_utf8() -> None:
    data = canonical(content(seal(draft(1), 1, GENESIS)))
    assert data.startswith(b'{"check":"models","endpoint":"qwen","event":"down"')
    assert b" " not in data.split(b'"pattern":')[0] and "—".encode() in data


def test_intact_chain_verifies() -> None:
    entries = chain(5)
    report = verify(entries)
    assert report.ok and report.entries == 5 and report.head == entries[-1].hash
    assert verify([]).ok and verify([]).head == GENESIS


def _edited(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    entries[2] = replace(entries[2], pattern="RunPod pod qwen was fine all along")
    return entries


def _evidence_edited(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    entries[2] = replace(entries[2], evidence=Evidence("models", "ok", 1, 1, "http://x"))
    return entries


def _rehashed(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    # an editor who also recomputes the entry's own hash still breaks the next link
    forged = seal(replace(draft(3), pattern="forged"), 3, entries[1].hash)
    entries[2] = forged
    return entries


def _removed(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    del entries[2]
    return entries


def _swapped(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    entries[2], entries[3] = replace(entries[3], id=3), replace(entries[2], id=4)
    return entries


@pytest.mark.parametrize(
    ("tamper", "bad_id", "reason"),
    [(_edited, 3, "content does not match its hash"),
     (_evidence_edited, 3, "content does not match its hash"),
     (_rehashed, 4, "previous hash"),
     (_removed, 3, "missing (ids jump from #2 to #4)"),
     (_swapped, 3, "previous hash")],
    ids=["pattern-edited", "evidence-edited", "rehashed-forgery", "entry-removed",
         "entries-reordered"],
)
def test_tampering_names_the_first_bad_entry(tamper: object, bad_id: int, reason: str) -> None:
    report = verify(tamper(chain(6)))  # type: ignore[operator]
    assert not report.ok and report.problem is not None
    assert report.problem.entry_id == bad_id
    assert reason in str(report.problem) and f"#{bad_id}" in str(report.problem)
    assert report.entries == bad_id - 1, "entries before the bad one are intact"


def _appended(times: list[str], observed: bool = True) -> list[LedgerEntry]:
    """A chain whose entries were appended at ``times`` (observed_at set, as the writer
    does, or not, as entries from before it existed)."""
    entries: list[LedgerEntry] = []
    prev_hash = GENESIS
    for n, ts in enumerate(times, start=1):
        base = draft(n)
        evidence = replace(base.evidence, observed_at="2026-02-18T09:00:00+00:00") \
            if observed else base.evidence
        entry = seal(replace(base, evidence=evidence), n, prev_hash, ts)
        entries.append(entry)
        prev_hash = entry.hash
    return entries


def test_times_that_run_backwards_are_refused() -> None:
    times = ["2026-02-18T09:05:00+00:00", "2026-02-18T09:06:00+00:00",
             "2026-02-18T09:04:00+00:00"]
    report = verify(_appended(times))
    assert not report.ok and report.problem is not None
    assert report.problem.entry_id == 3
    assert "appended at 2026-02-18T09:04:00+00:00, before #2 (2026-02-18T09:06:00+00:00)" in \
        str(report.problem)


def test_entries_from_before_observed_at_keep_verifying_as_written() -> None:
    """Their ts was the observation's time (not always in order): not refused, and their
    hashes, computed without the field, still match."""
    times = ["2026-02-18T09:05:00+00:00", "2026-02-18T09:04:00+00:00"]
    old = _appended(times, observed=False)
    assert "observed_at" not in content(old[0])
    assert verify(old).ok


def test_incremental_verification_continues_from_a_verified_entry() -> None:
    entries = chain(5)
    assert verify(entries[3:], after=entries[2]).ok
    assert not verify(entries[4:], after=entries[2]).ok, "an entry is missing in between"
