"""Lessons, not a log: the rows LEARNING.md shows, folded from the ledger's entries.

The ledger keeps every transition (the evidence); a reader wants what was learned. This
fold turns the entries, in chain order, into rows:

- a fleet change is one row: the endpoints added (or removed) by one plan, counted by kind,
  their names and entry range in the evidence;
- an endpoint incident is one row, with its root cause chosen once (the verdict's cause:
  liveness > engine > model > context > prompt). A later entry for the same cause, and a
  prompt failing or passing meanwhile, is evidence of that row, not a row; a cause that
  changes inside the incident is a new row ("now 502 after 404"); the recovery (with how
  long it lasted) and a persistent entry (what to do) are rows;
- patterns and capability changes (a served model or context window that changed) are rows
  of the Meta-Patterns table;
- a fleet incident is one row when it opens (citing its opening entry, its members so far
  in the evidence: an outage is in LEARNING.md while it lasts) and a recovery row when it
  closes (how long it lasted, which members' recoveries ended it); the endpoint entries
  folded into it, members that joined later included, are its evidence. An endpoint entry
  belongs to it by the entry's structured ``incident`` field (never by its text, which
  servers and names can shape), or, for a down entry written before the incident opened,
  by the opening entry's structured ``members`` naming the endpoint, with the same cause,
  within ``SETTLE`` of it; an endpoint whose cause differs, or whose entries come more than
  ``SETTLE`` after the incident closed (it stayed broken), or that goes down again after
  it closed (a new failure), keeps rows of its own;
- any other kind of entry (kinds added later, fleet incidents from ledgers older than the
  structured link) is one row of its own: ``TABLE_OF`` is the one place to route a new kind
  elsewhere.

A row cites the entry it is about (the first of a group): rows are a pure function of the
chain (and of whether the wait has passed since a down entry that a fleet incident may
still claim, ``Hold``: until then that row and every later one wait), so the same entries
always give the same rows and an append resumes after the highest citation
(``probe.ledger.learning``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from probe.durations import format_duration
from probe.ledger.chain import LedgerEntry

LEDGER_TABLE, PATTERNS_TABLE = "ledger", "patterns"

# Entry kinds written by the pattern detector (probe.ledger.patterns).
PATTERN_EVENTS = frozenset({"recurring", "recurring_ended", "time_of_day", "time_of_day_ended",
                            "regression", "regression_ended", "failed_together",
                            "failed_together_ended"})
CHANGE_EVENTS = frozenset({"model_changed", "context_changed"})
# A fleet incident opening or closing (the incidents feature): one row each, kind "fleet";
# so are the endpoints of one GPU type or data centre failing together (a group pattern).
FLEET_EVENTS = frozenset({"incident_opened", "incident_closed", "failed_together",
                          "failed_together_ended"})
# The table each kind of entry is a row of (kinds not named here: the ledger table, one row
# each; e.g. a fleet incident opening or closing).
TABLE_OF: dict[str, str] = {**{e: PATTERNS_TABLE for e in PATTERN_EVENTS | CHANGE_EVENTS}}

FLEET = "fleet"  # how a fleet row names its endpoint
# what ended an incident, said by its recovery row
ENDINGS = {"recovered": "every check passes again",
           "restored": "every governed prompt passes again"}
EXPECTATION_FAILED = "expectation_failed"
MODEL_CHANGE_WITHIN = timedelta(hours=24)  # a prompt failing this soon after is linked
NAMES_SHOWN = 12  # names in a fleet row's evidence before "and N more"
# How long a down entry waits for a fleet incident to claim it: the incidents feature opens
# one within ``window_intervals`` (2 by default) × the interval of the endpoints going down,
# so three intervals, at most SETTLE; how long before an incident opened a down entry may
# be its, and after it closed its members' entries are still its own.
SETTLE = timedelta(minutes=2)
SETTLE_INTERVALS = 3
IDS_SHOWN = 10  # entry ids named in a fleet incident row before "…"
# what a pattern of ours puts first in an entry's text, per kind (probe.ledger.rules.subject)
KINDS = (("RunPod pod ", "pod"), ("RunPod serverless endpoint ", "serverless"),
         ("Provider ", "provider"))
PLURAL = {"pod": "pods", "serverless": "serverless", "provider": "providers",
          "other": "others"}


@dataclass(frozen=True, slots=True)
class Lesson:
    """One row: its text, what backs it, and the entry it cites."""

    cite: LedgerEntry
    table: str
    text: str
    endpoint: str
    event: str
    covers: tuple[int, int]  # first and last entry id this row speaks for
    names: tuple[str, ...] = ()  # a fleet row's endpoints

    @property
    def date(self) -> str:
        return (self.cite.evidence.observed_at or self.cite.ts)[:10]

    @property
    def kind(self) -> str:
        """pod, serverless, provider, fleet (fleet changes and incidents) or other."""
        if self.names or self.event in FLEET_EVENTS:
            return FLEET
        return kind_of(self.cite)


@dataclass(slots=True)
class Incident:
    outcome: str | None
    opened: int  # the entry id of the row that opened it


@dataclass(slots=True)
class IncidentTracker:
    """Which entries open an endpoint incident: a down or degraded entry whose cause is not
    the open incident's; a recovery, a restore or the endpoint's removal closes it."""

    open: dict[str, Incident] = field(default_factory=dict)

    def step(self, e: LedgerEntry) -> tuple[bool, Incident | None]:
        """(whether ``e`` opens an incident row, the incident open before it)."""
        before = self.open.get(e.endpoint)
        if e.event in ("down", "degraded"):
            if before is not None and before.outcome == e.evidence.outcome:
                return False, before
            self.open[e.endpoint] = Incident(e.evidence.outcome, e.id)
            return True, before
        if e.event in ("recovered", "restored", "disappeared"):
            self.open.pop(e.endpoint, None)
        return False, before

    def opens(self, e: LedgerEntry) -> bool:
        return self.step(e)[0]


def kind_of(entry: LedgerEntry) -> str:
    for prefix, kind in KINDS:
        if entry.pattern.startswith(prefix):
            return kind
    return "other"


@dataclass(frozen=True, slots=True)
class Fold:
    rows: list[Lesson]
    held: bool  # a down entry a fleet incident may still claim holds back the rows from it


@dataclass(frozen=True, slots=True)
class Hold:
    """When rows are folded (``now``), and how long a down entry of each endpoint waits for
    a fleet incident: ``SETTLE_INTERVALS`` of its probe interval (``intervals``, seconds),
    at most ``SETTLE``; ``SETTLE`` for an endpoint whose interval is not known."""

    now: datetime
    intervals: Mapping[str, float] = field(default_factory=dict)

    def waits(self, e: LedgerEntry) -> bool:
        interval = self.intervals.get(e.endpoint)
        settle = min(SETTLE, timedelta(seconds=SETTLE_INTERVALS * interval)) \
            if interval else SETTLE
        return self.now - _observed(e) <= settle


def lessons(entries: Iterable[LedgerEntry], hold: Hold | None = None) -> list[Lesson]:
    """Every row the chain ``entries`` (in id order, from the first) gives; with ``hold``,
    only those before a down entry a fleet incident may still claim."""
    return fold(entries, hold).rows


def fold(entries: Iterable[LedgerEntry], hold: Hold | None = None) -> Fold:
    chain = list(entries)
    claimed, decided = _claimed(chain)
    out: list[Lesson] = []
    tracker = IncidentTracker()
    fleet = FleetIncidents()
    group: list[LedgerEntry] = []

    def flush() -> None:
        if group:
            out.append(_fleet_row(group))
            group.clear()

    models: dict[str, LedgerEntry] = {}  # each endpoint's last served-model change
    for e in chain:
        if _waits(e, claimed, decided, hold):
            flush()
            return Fold(out, True)
        opens, before = tracker.step(e)
        if e.event == "model_changed":
            models[e.endpoint] = e
        if e.event in ("appeared", "disappeared"):
            if group and (group[0].event != e.event or group[0].ts != e.ts):
                flush()
            group.append(e)
            continue
        flush()
        if e.evidence.incident is not None and e.event in FLEET_EVENTS:
            row = fleet.step(e)
            if row is not None:
                out.append(row)
            continue
        if fleet.folds(e, claimed.get(e.id)):
            continue
        row = _endpoint_row(e, opens, before)
        if row is not None:
            out.append(_after_model_change(row, models.get(e.endpoint)))
    flush()
    return Fold(out, False)


def _claimed(chain: list[LedgerEntry]) -> tuple[dict[int, str], set[int]]:
    """Down entries written before a fleet incident opened that the incident counts (its
    opening entry names the endpoint in its structured ``members``, with the same cause,
    within ``SETTLE`` of the down entry, the endpoint not recovered in between), and the
    down entries the chain has already decided otherwise (recovered, or passed over)."""
    claimed: dict[int, str] = {}
    decided: set[int] = set()
    waiting: dict[str, list[LedgerEntry]] = {}  # endpoint -> its unlinked down entries
    linked: dict[str, list[int]] = {}  # incident -> down entries citing it before it opened
    for e in chain:
        if e.event == "down" and e.evidence.incident is not None:
            linked.setdefault(e.evidence.incident, []).append(e.id)
        elif e.event == "down":
            waiting.setdefault(e.endpoint, []).append(e)
        elif e.event in ("recovered", "disappeared"):
            decided.update(down.id for down in waiting.pop(e.endpoint, []))
        elif e.event == "incident_opened" and e.evidence.incident:
            # the down entry that opened it already cites it (the tracker marks first)
            claimed.update(dict.fromkeys(linked.pop(e.evidence.incident, []),
                                         e.evidence.incident))
            for name in e.evidence.members or ():
                for down in waiting.pop(name, []):
                    if down.evidence.outcome == e.evidence.outcome and \
                            _observed(e) - _observed(down) <= SETTLE:
                        claimed[down.id] = e.evidence.incident
                    else:
                        decided.add(down.id)
    return claimed, decided


def _waits(e: LedgerEntry, claimed: dict[int, str], decided: set[int],
           hold: Hold | None) -> bool:
    """``e`` is a down entry a fleet incident may still claim: not linked, not claimed or
    decided otherwise, and newer than ``SETTLE``."""
    if hold is None or e.event != "down" or e.evidence.incident is not None:
        return False
    return e.id not in claimed and e.id not in decided and hold.waits(e)


@dataclass(slots=True)
class _Open:
    opened: LedgerEntry
    cause: str | None
    folded: list[int] = field(default_factory=list)
    recovered: list[LedgerEntry] = field(default_factory=list)  # members back while open
    closed_at: datetime | None = None
    left: set[str] = field(default_factory=set)  # failed again after it closed: their own


@dataclass(slots=True)
class FleetIncidents:
    """Fleet incidents (by their structured id) as the fold meets them: the entries folded
    into each, its row when it opens (the members so far) and its recovery row when it
    closes (how long it lasted, what ended it)."""

    known: dict[str, _Open] = field(default_factory=dict)
    early: dict[str, list[int]] = field(default_factory=dict)  # claimed before it opened

    def step(self, e: LedgerEntry) -> Lesson | None:
        ident = e.evidence.incident or ""
        if e.event == "incident_opened":
            opening = self.known[ident] = _Open(e, e.evidence.outcome,
                                                self.early.pop(ident, []))
            return _opened_row(opening)
        incident = self.known.get(ident)
        if incident is None:  # closed without its opening in the chain: a row as it is
            return _row(e, e.pattern)
        incident.closed_at = _observed(e)
        return _closed_row(e, incident)

    def folds(self, e: LedgerEntry, claimed: str | None) -> bool:
        """``e`` is evidence of a fleet incident's row, not a row of its own."""
        ident = claimed or e.evidence.incident
        if ident is None or e.event not in ("down", "persistent", "recovered"):
            return False
        incident = self.known.get(ident)
        if claimed is None and (incident is None or e.evidence.outcome != incident.cause):
            return False
        if incident is not None and incident.closed_at is not None:
            if e.event == "down" or e.endpoint in incident.left:
                # a failure after it closed (a ledger from before the tracker forgot a
                # closed incident's mark cites it anyway): a new one, with rows of its own
                incident.left.add(e.endpoint)
                return False
            if _observed(e) - incident.closed_at > SETTLE:
                return False  # it stayed broken after the incident closed: its own rows
        if incident is None:
            self.early.setdefault(ident, []).append(e.id)
            return True
        incident.folded.append(e.id)
        if e.event == "recovered" and incident.closed_at is None:
            incident.recovered.append(e)
        return True


def _ids(numbers: list[int]) -> str:
    ids = [f"#{n}" for n in numbers]
    if len(ids) > IDS_SHOWN:
        ids = [*ids[:IDS_SHOWN - 1], "…", ids[-1]]
    return ", ".join(ids)


def _opened_row(incident: _Open) -> Lesson:
    """A fleet incident's row as it opens: its members so far (those that join later, and
    every member's later entries, are evidence of it, not rows)."""
    opened = incident.opened
    folded = f"; their entries ({_ids(incident.folded)}) are its evidence" \
        if incident.folded else ""
    text = (f"{opened.pattern}{folded} — open; endpoints joining it are its evidence too, "
            "not rows of their own")
    first = min(incident.folded, default=opened.id)
    return Lesson(opened, LEDGER_TABLE, text, FLEET, opened.event, (first, opened.id),
                  tuple(opened.evidence.members or ()))


def _closed_row(closed: LedgerEntry, incident: _Open) -> Lesson:
    """A fleet incident's recovery row: how long it lasted (its entry says), what ended it
    (the members that recovered while it was open), the entries that were its evidence."""
    opened = incident.opened
    back = incident.recovered
    if back:
        who = fleet_names(tuple(e.endpoint for e in back))
        ended = (f"ended by {len(back)} endpoint{'s' if len(back) > 1 else ''} recovering "
                 f"({who}; {_ids([e.id for e in back])})")
        if back[-1].evidence.last_row is not None:
            ended += f", the last at result #{back[-1].evidence.last_row}"
    else:
        ended = ("ended without a recovery: its endpoints left the plan or failed for "
                 "another cause")
    folded = f"{len(incident.folded)} endpoint entries ({_ids(incident.folded)})" \
        if incident.folded else "no endpoint entries"
    text = (f"{closed.pattern} — {ended}; opened at ledger #{opened.id}; {folded} were its "
            "evidence, not rows of their own")
    names = closed.evidence.members or opened.evidence.members or ()  # the joiners too
    return Lesson(closed, LEDGER_TABLE, text, FLEET, closed.event, (opened.id, closed.id),
                  tuple(names))


def _endpoint_row(e: LedgerEntry, opens: bool, before: Incident | None) -> Lesson | None:
    """The row ``e`` is, or None when it is evidence of a row already written (or of the
    next one): an answer failing or passing while the endpoint is not up is not the root
    cause, the endpoint's own down (or degraded) row is."""
    if e.event in ("prompt_failing", "prompt_passing"):
        return None
    if e.event in ("down", "degraded"):
        if not opens:
            return None
        text = e.pattern
        if before is not None:
            text = (f"{e.pattern} — now {e.evidence.outcome} after {before.outcome}: the cause "
                    f"changed inside the incident opened at ledger #{before.opened}")
        return _row(e, text)
    if e.event in ENDINGS and e.evidence.last_row is not None:
        return _row(e, f"{e.pattern} — ended by result #{e.evidence.last_row}: "
                       f"{ENDINGS[e.event]}")
    return _row(e, e.pattern, TABLE_OF.get(e.event, LEDGER_TABLE))


def _after_model_change(row: Lesson, change: LedgerEntry | None) -> Lesson:
    """A governed prompt whose expected answer stopped matching soon after the served model
    changed: a capability lesson (Meta-Patterns), naming the change."""
    e = row.cite
    if change is None or e.event != "degraded" or e.evidence.outcome != EXPECTATION_FAILED:
        return row
    since = _observed(e) - _observed(change)
    if not timedelta(0) <= since <= MODEL_CHANGE_WITHIN:
        return row
    after = format_duration(since.total_seconds())
    text = (f"{row.text} — the expected answer stopped matching {after} after the served "
            f"model changed (ledger #{change.id})")
    return replace(row, table=PATTERNS_TABLE, text=text)


def _observed(e: LedgerEntry) -> datetime:
    return datetime.fromisoformat(e.evidence.observed_at or e.ts)


def _row(e: LedgerEntry, text: str, table: str = LEDGER_TABLE) -> Lesson:
    return Lesson(e, table, text, e.endpoint, e.event, (e.id, e.id))


def _fleet_row(group: list[LedgerEntry]) -> Lesson:
    first = group[0]
    counts: dict[str, int] = {}
    for e in group:
        kind = kind_of(e)
        counts[kind] = counts.get(kind, 0) + 1
    by_kind = ", ".join(f"{n} {PLURAL[k] if n > 1 else k}" for k, n in counts.items())
    if len(group) == 1:
        text = first.pattern
    else:
        discovered = all(e.evidence.check == "discovery" for e in group)
        how = {("appeared", True): "discovered via the RunPod API — added to the probed fleet",
               ("appeared", False): "added to the probed fleet",
               ("disappeared", True): "no longer discovered via the RunPod API — no longer "
                                      "probed",
               ("disappeared", False): "removed from the config — no longer probed"}
        text = f"{len(group)} endpoints {how[(first.event, discovered)]}: {by_kind}"
    return Lesson(first, LEDGER_TABLE, text, FLEET, first.event, (first.id, group[-1].id),
                  tuple(e.endpoint for e in group))


def fleet_names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
