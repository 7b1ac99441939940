"""The hash chain that makes the ledger tamper-evident.

Each entry's hash is the SHA-256 of its canonical JSON (every field but the hash itself,
the previous entry's hash included), so editing, reordering or removing any entry breaks
every hash after it. An entry's ``ts`` is when it was appended, so times follow the chain;
when the change was observed is in its evidence (``observed_at``). ``verify`` names the
first entry that does not match, or whose time runs backwards.

Entries written before ``observed_at`` existed hashed without it (their ``ts`` was the
observation's time, not always in order): they verify as they were written. The same holds
for ``incident`` and ``members`` (a fleet incident's link, added later) and for ``instance``
(the probe that wrote the entry, one of an HA pair's): hashed only when set, so an entry
without one hashes as it did then, and one with it has it covered by its hash.

An entry's ``identity`` is what it says and when, and which probe says it, without where it
sits in the chain or which result rows back it: the same transition judged again by the same
probe (the same raw results replayed into the same database) has the same identity, and the
writer appends it only once. Two probes' entries for the same transition stay two entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from probe.storage.schema import GENESIS as GENESIS  # the chain's start, also in a trigger

SEVERITIES = ("info", "warning", "critical")
OPTIONAL = ("observed_at", "incident", "members")  # hashed only when set


@dataclass(frozen=True, slots=True)
class Evidence:
    """What backs an entry: the check, its outcome, the result rows and the URL probed."""

    check: str | None = None
    outcome: str | None = None
    first_row: int | None = None  # results.id of the first observation
    last_row: int | None = None  # results.id of the last observation
    url: str | None = None  # never carries a secret
    observed_at: str | None = None  # UTC, ISO 8601: when the change was observed
    # The fleet incident the entry belongs to, by id (an endpoint's down, persistent and
    # recovered entries inside it; the incident's own opening and closing entries), and the
    # endpoints an incident's opening entry counts: structured, never read from the text.
    incident: str | None = None
    members: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class LedgerDraft:
    """An entry before it has a place in the chain (its ``ts`` is set when it is sealed)."""

    ts: str  # UTC, ISO 8601 (replaced by the append time when sealed)
    severity: str
    endpoint: str
    event: str  # down, recovered, persistent, context_changed, ...
    pattern: str  # one human sentence
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    ts: str
    severity: str
    endpoint: str
    event: str
    pattern: str
    evidence: Evidence
    prev_hash: str
    hash: str
    instance: str | None = None  # the probe that wrote it (None: written before it existed)

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def as_dict(self) -> dict[str, Any]:
        out = content(self)
        out["hash"] = self.hash
        return out


def content(entry: LedgerEntry | LedgerDraft, entry_id: int | None = None,
            prev_hash: str | None = None, instance: str | None = None) -> dict[str, Any]:
    """The hashed fields of an entry, flat, as plain JSON values."""
    evidence = {f.name: getattr(entry.evidence, f.name) for f in fields(Evidence)}
    for optional in OPTIONAL:  # entries from before these existed hashed without them
        if evidence[optional] is None:
            del evidence[optional]
    if evidence.get("members") is not None:
        evidence["members"] = list(evidence["members"])
    values = {
        "id": entry.id if isinstance(entry, LedgerEntry) else entry_id,
        "ts": entry.ts, "severity": entry.severity, "endpoint": entry.endpoint,
        "event": entry.event, "pattern": entry.pattern, **evidence,
        "prev_hash": entry.prev_hash if isinstance(entry, LedgerEntry) else prev_hash,
    }
    probe = entry.instance if isinstance(entry, LedgerEntry) else instance
    if probe is not None:  # entries from before it existed hashed without it
        values["instance"] = probe
    return values


Identity = tuple[str, str, str | None, str | None, str | None, str | None, str | None]


def identity(entry: LedgerEntry | LedgerDraft, instance: str | None = None) -> Identity:
    """What an entry says and when: endpoint, kind, check, cause, when it was observed, the
    fleet incident it belongs to and the probe saying it (an entry's own ``instance``; a
    draft's: ``instance``, the probe about to write it); not its place in the chain, its
    wording or the result rows behind it (a replay stores the same results under new ids)."""
    e = entry.evidence
    probe = entry.instance if isinstance(entry, LedgerEntry) else instance
    return (entry.endpoint, entry.event, e.check, e.outcome, e.observed_at, e.incident, probe)


def canonical(values: dict[str, Any]) -> bytes:
    """One byte string per content: sorted keys, no spaces, UTF-8."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(values)).hexdigest()


def seal(draft: LedgerDraft, entry_id: int, prev_hash: str,
         ts: str | None = None, instance: str | None = None) -> LedgerEntry:
    """Give ``draft`` its id and time (``ts``: when it is appended; default: the draft's) and
    link it to the entry before it; ``instance``: the probe writing it."""
    timed = replace(draft, ts=ts) if ts is not None else draft
    return LedgerEntry(id=entry_id, ts=timed.ts, severity=timed.severity,
                       endpoint=timed.endpoint, event=timed.event, pattern=timed.pattern,
                       evidence=timed.evidence, prev_hash=prev_hash,
                       hash=digest(content(timed, entry_id, prev_hash, instance)),
                       instance=instance)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    entry_id: int
    reason: str

    def __str__(self) -> str:
        return f"ledger entry #{self.entry_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    head: str  # hash of the last good entry (GENESIS when empty)
    problem: ChainProblem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(entries: Iterable[LedgerEntry], after: LedgerEntry | None = None) -> ChainReport:
    """Recompute the chain in id order; stop at the first entry that does not match.
    ``after``: an entry already verified, which ``entries`` continue (incremental checks)."""
    prev_id, prev_hash, prev_ts, count = (0, GENESIS, "", 0) if after is None else \
        (after.id, after.hash, after.ts, 0)
    for entry in entries:
        if entry.id != prev_id + 1:
            missing = prev_id + 1
            return ChainReport(count, prev_hash, ChainProblem(
                missing, f"missing (ids jump from #{prev_id} to #{entry.id}): entries removed"))
        if entry.prev_hash != prev_hash:
            return ChainReport(count, prev_hash, ChainProblem(
                entry.id, f"previous hash {entry.prev_hash[:12]} does not match the hash of "
                          f"#{prev_id} ({prev_hash[:12]}): entries removed or reordered"))
        actual = digest(content(entry))
        if actual != entry.hash:
            return ChainReport(count, prev_hash, ChainProblem(
                entry.id, f"content does not match its hash (stored {entry.hash[:12]}, "
                          f"recomputed {actual[:12]}): the entry was edited"))
        if entry.evidence.observed_at is not None and entry.ts < prev_ts:
            return ChainReport(count, prev_hash, ChainProblem(
                entry.id, f"appended at {entry.ts}, before #{prev_id} ({prev_ts}): times "
                          "must follow the chain"))
        prev_id, prev_hash, prev_ts, count = entry.id, entry.hash, entry.ts, count + 1
    return ChainReport(count, prev_hash)
