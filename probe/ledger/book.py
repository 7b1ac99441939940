"""The ledger's one writer (the tables are ``probe.storage.schema``'s).

The ``ledger`` table lives in the results database and is append-only by construction:
triggers abort every UPDATE and DELETE, and an INSERT that does not extend the chain
(next id, previous hash) is refused too, which also stops ``INSERT OR REPLACE`` from
deleting a row behind the DELETE trigger's back. Entries are sealed (id, hash) by the
writer inside the transaction that inserts them, so the chain has a single author even
if two processes share the file. Per-endpoint state is saved in the same transaction, so
after a crash the state and the entries it produced agree. After each batch that appended
entries the writer anchors the new head outside the table (``probe.ledger.anchor``), so
entries removed from the end are caught too.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probe.ledger.anchor import (
    AnchorError,
    Head,
    anchor_path,
    anchor_problem,
    read_anchor,
    table_head,
    write_anchor,
)
from probe.ledger.baselines import Due
from probe.ledger.chain import GENESIS, Evidence, LedgerDraft, LedgerEntry, identity, seal
from probe.storage.baselines import SavedHour, forget_hours_before, load_hours, save_hours
from probe.storage.database import open_database, transaction
from probe.storage.verdicts import load_states, save_states
from probe.verdict import Encoded
from probe.writer import BATCH_INTERVAL_S, SingleWriter

log = logging.getLogger(__name__)

_COLUMNS = ("id", "ts", "severity", "endpoint", "event", "pattern", "check_name", "outcome",
            "first_row", "last_row", "url", "prev_hash", "hash", "observed_at", "incident",
            "members", "instance")


def connect(path: Path, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """The database as the storage package opens it (autocommit, WAL, migrated)."""
    return open_database(path, busy_timeout_s)


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    v = dict(zip(_COLUMNS, row, strict=True))
    return LedgerEntry(id=v["id"], ts=v["ts"], severity=v["severity"], endpoint=v["endpoint"],
                       event=v["event"], pattern=v["pattern"],
                       evidence=Evidence(v["check_name"], v["outcome"], v["first_row"],
                                         v["last_row"], v["url"], v["observed_at"],
                                         v["incident"], _members(v["members"])),
                       prev_hash=v["prev_hash"], hash=v["hash"], instance=v["instance"])


def _members(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(str(name) for name in json.loads(text))


def known(conn: sqlite3.Connection, draft: LedgerDraft, instance: str | None = None) -> bool:
    """The ledger already has an entry with ``draft``'s identity, written by ``instance``
    (one index lookup). An entry from before entries named their probe was this ledger's
    own probe's: it matches whatever ``instance`` is now."""
    e = draft.evidence
    if e.observed_at is None:
        return False
    rows = conn.execute("SELECT endpoint, event, check_name, outcome, observed_at, incident, "
                        "instance FROM ledger WHERE endpoint = ? AND observed_at = ?",
                        (draft.endpoint, e.observed_at))
    return identity(draft, instance) in {
        tuple(row[:-1]) + (instance if row[-1] is None else row[-1],) for row in rows}


def _selected(conn: sqlite3.Connection) -> str:
    """The columns to read: a file not migrated yet (``ledger verify`` reads it as it is)
    lacks the later ones, read as NULL (its entries hashed without them)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(ledger)")}
    return ", ".join(c if c in have else f"NULL AS {c}" for c in _COLUMNS)


def read_entries(conn: sqlite3.Connection, since: str | None = None,
                 endpoint: str | None = None, after_id: int = 0) -> list[LedgerEntry]:
    sql = f"SELECT {_selected(conn)} FROM ledger WHERE id > ?"
    args: list[Any] = [after_id]
    if since is not None:
        sql += " AND ts >= ?"
        args.append(since)
    if endpoint is not None:
        sql += " AND endpoint = ?"
        args.append(endpoint)
    return [_entry(row) for row in conn.execute(sql + " ORDER BY id", args)]


def latest_entries(conn: sqlite3.Connection, limit: int) -> list[LedgerEntry]:
    """The last ``limit`` entries, newest first (the primary key walked backwards)."""
    rows = conn.execute(f"SELECT {_selected(conn)} FROM ledger ORDER BY id DESC LIMIT ?",
                        (limit,))
    return [_entry(row) for row in rows]


def append(conn: sqlite3.Connection, drafts: Iterable[LedgerDraft],
           now: datetime | None = None, instance: str | None = None) -> list[LedgerEntry]:
    """Seal and insert ``drafts`` after the current head (caller holds the transaction),
    each naming ``instance``, the probe writing it. Each entry's time is when it is
    appended, never before the head's: times follow the chain even when the wall clock
    steps back. A draft whose identity the ledger already has (the same transition judged
    again by the same probe: a replay of the same results) is not appended."""
    head = conn.execute("SELECT id, hash, ts FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
    last_id, last_hash, last_ts = head if head else (0, GENESIS, "")
    ts = max((now or datetime.now(UTC)).isoformat(timespec="seconds"), last_ts)
    sealed = []
    for draft in drafts:
        if known(conn, draft, instance):
            continue
        entry = seal(draft, last_id + 1, last_hash, ts, instance)
        e = entry.evidence
        members = None if e.members is None else json.dumps(list(e.members))
        conn.execute(f"INSERT INTO ledger ({', '.join(_COLUMNS)}) VALUES "
                     f"({', '.join('?' * len(_COLUMNS))})",
                     (entry.id, entry.ts, entry.severity, entry.endpoint, entry.event,
                      entry.pattern, e.check, e.outcome, e.first_row, e.last_row, e.url,
                      entry.prev_hash, entry.hash, e.observed_at, e.incident, members,
                      entry.instance))
        sealed.append(entry)
        last_id, last_hash = entry.id, entry.hash
    return sealed


# An endpoint's state to keep: its JSON value, the same already encoded (what the daemon
# hands in with every result), or None to forget the endpoint (removed from config).
State = dict[str, Any] | Encoded | None


@dataclass(slots=True)
class _Batch:
    states: dict[str, State] = field(default_factory=dict)
    drafts: list[LedgerDraft] = field(default_factory=list)
    hours: list[SavedHour] = field(default_factory=list)  # the baselines' hours to keep
    forget_before: str | None = None  # ... and hours older than this to forget
    due: list[Due] = field(default_factory=list)  # judgements once those hours are kept

    def merge(self, other: _Batch) -> None:
        self.states.update(other.states)  # the newest state of an endpoint wins
        self.drafts.extend(other.drafts)
        self.hours.extend(other.hours)
        self.due.extend(other.due)
        if other.forget_before is not None:
            self.forget_before = max(self.forget_before or "", other.forget_before)

    def __bool__(self) -> bool:
        return bool(self.states or self.drafts or self.hours or self.due)


Written = Callable[[sqlite3.Connection, list[LedgerEntry]], None]
Maintenance = Callable[[sqlite3.Connection], None]


class LedgerBook(SingleWriter[_Batch, sqlite3.Connection]):
    """Owns writes to the ledger and endpoint-state tables, from one thread."""

    what = "ledger entries"

    def __init__(self, path: Path, on_written: Written | None = None,
                 maintenance: Maintenance | None = None, batch_interval_s: float = BATCH_INTERVAL_S,
                 busy_timeout_s: float = 5.0,
                 redact: Callable[[str], str] = lambda text: text,
                 instance: str | None = None) -> None:
        super().__init__("ledger", batch_interval_s)
        self.path = path
        self.instance = instance  # the probe writing: every entry names it
        self.redact = redact
        self.busy_timeout_s = busy_timeout_s
        self.on_written = on_written
        self.maintenance = maintenance
        self.entries_total = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
        try:
            self.states = load_states(conn)
            self.regressions = _held_regressions(conn)
            self.hours = load_hours(conn)  # the baselines' hours kept before a restart
            # The head this writer knows the table has: found at start, then the last entry
            # it committed (replaced once per batch, read by the /metrics thread).
            self.head: Head | None = table_head(conn)
            self.anchoring, self.anchored = _anchor_at_start(conn, path)
        finally:
            conn.close()
        self._backlog = _Batch()
        self._entries: list[LedgerEntry] = []
        self.judgements: deque[Due] = deque()  # the baselines', written thread only
        self.start()

    def held_regressions(self) -> set[tuple[str, str, str]]:
        """(endpoint, check, metric) of the regressions the ledger says hold, at start."""
        return set(self.regressions)

    def submit(self, states: Mapping[str, State], drafts: list[LedgerDraft]) -> None:
        self.put(_Batch(dict(states), list(drafts)))

    def keep_hours(self, hours: list[SavedHour], forget_before: str | None = None,
                   due: Sequence[Due] = ()) -> None:
        """The baselines' hours to keep (written with the next batch), the hour before
        which they are no longer needed, and the judgements due once they are kept
        (``judgements``, after the batch is written)."""
        self.put(_Batch(hours=list(hours), forget_before=forget_before, due=list(due)))

    def connect(self) -> sqlite3.Connection:
        return connect(self.path, self.busy_timeout_s)

    def accept(self, items: list[_Batch]) -> None:
        for batch in items:
            self._backlog.merge(batch)

    def backlog_size(self) -> int:
        return len(self._backlog.states) + len(self._backlog.drafts) + \
            len(self._backlog.hours) + len(self._backlog.due)

    def losable(self) -> int:
        return len(self._backlog.drafts)  # states are rewritten from memory by the next run

    def write(self, conn: sqlite3.Connection) -> None:
        gone, kept = [], []
        for name, data in self._backlog.states.items():
            if data is None:
                gone.append((name,))
            elif isinstance(data, Encoded):
                kept.append((name, data.state, self.redact(data.text)))
            else:
                kept.append((name, str(data.get("state", "unknown")),
                             self.redact(json.dumps(data, sort_keys=True))))
        with transaction(conn):
            save_states(conn, gone, kept)
            if self._backlog.hours:
                save_hours(conn, self._backlog.hours)
            if self._backlog.forget_before is not None:
                forget_hours_before(conn, self._backlog.forget_before)
            self._entries = append(conn, self._backlog.drafts, instance=self.instance)

    def written(self, conn: sqlite3.Connection) -> None:
        self.judgements.extend(self._backlog.due)  # their hours are on disk now
        entries, self._entries, self._backlog = self._entries, [], _Batch()
        if entries:  # once per batch, in this thread
            self.head = head = Head(entries[-1].id, entries[-1].hash)
            if self.anchoring:
                self._anchor(conn, head)
        self.entries_total += len(entries)
        if entries and self.on_written is not None:
            _guarded(self.on_written, conn, entries)

    def _anchor(self, conn: sqlite3.Connection, head: Head) -> None:
        """Move the anchor to ``head`` unless the table lost the anchored entry meanwhile
        (then the anchor stays where it is, as evidence)."""
        if self.anchored is not None:
            problem = anchor_problem(conn, self.anchored, anchor_path(self.path).name)
            if problem is not None:
                self.anchoring = False
                log.error("the ledger's anchor is left as it is: %s", problem)
                return
        try:
            write_anchor(self.path, head)
        except OSError as exc:
            log.error("cannot anchor the ledger's head in %s: %s", anchor_path(self.path), exc)
            return
        self.anchored = head

    def upkeep(self, conn: sqlite3.Connection) -> None:
        if self.maintenance is not None:
            _guarded(self.maintenance, conn)

    def give_up(self, count: int) -> None:
        super().give_up(count)
        self._backlog = _Batch()


def _held_regressions(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    held: set[tuple[str, str, str]] = set()
    for endpoint, check, metric, event in conn.execute(
            "SELECT endpoint, check_name, outcome, event FROM ledger WHERE event IN "
            "('regression', 'regression_ended') ORDER BY id"):
        key = (endpoint, check or "", metric or "")
        (held.add if event == "regression" else held.discard)(key)
    return held


def _anchor_at_start(conn: sqlite3.Connection, path: Path) -> tuple[bool, Head | None]:
    """Whether the writer may move the anchor, and the head anchored: yes when the anchor
    agrees with the table (a ledger from before anchors is anchored at its head now); no
    when it is unreadable or the table lacks what it vouches for, so the evidence stays
    (the chain watch reports it)."""
    name = anchor_path(path).name
    try:
        anchor = read_anchor(path)
    except AnchorError as exc:
        log.error("the ledger's anchor is left as it is: %s", exc)
        return False, None
    if anchor is None:
        head = table_head(conn)
        if head is None:
            return True, None
        try:
            write_anchor(path, head)
        except OSError as exc:
            log.error("cannot anchor the ledger's head in %s: %s", anchor_path(path), exc)
            return True, None
        return True, head
    problem = anchor_problem(conn, anchor, name)
    if problem is not None:
        log.error("the ledger's anchor is left as it is: %s", problem)
        return False, anchor
    return True, anchor


def _guarded(action: Callable[..., None], *args: Any) -> None:
    """Run an export or upkeep step; its failure is logged, never stops the ledger."""
    try:
        action(*args)
    except Exception:  # noqa: BLE001
        log.exception("ledger follow-up %s failed", getattr(action, "__name__", "?"))
