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
- any other kind of entry (fleet incidents, kinds added later) is one row of its own:
  ``TABLE_OF`` is the one place to route a new kind elsewhere.

A row cites the entry it is about (the first of a group): rows are a pure function of the
chain, so the same entries always give the same rows and an append resumes after the highest
citation (``probe.ledger.learning``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from probe.durations import format_duration
from probe.ledger.chain import LedgerEntry

LEDGER_TABLE, PATTERNS_TABLE = "ledger", "patterns"

# Entry kinds written by the pattern detector (probe.ledger.patterns).
PATTERN_EVENTS = frozenset({"recurring", "recurring_ended", "time_of_day", "time_of_day_ended",
                            "regression", "regression_ended"})
CHANGE_EVENTS = frozenset({"model_changed", "context_changed"})
# A fleet incident opening or closing (the incidents feature): one row each, kind "fleet".
FLEET_EVENTS = frozenset({"incident_opened", "incident_closed"})
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


def lessons(entries: Iterable[LedgerEntry]) -> list[Lesson]:
    """Every row the chain ``entries`` (in id order, from the first) gives."""
    out: list[Lesson] = []
    tracker = IncidentTracker()
    group: list[LedgerEntry] = []

    def flush() -> None:
        if group:
            out.append(_fleet_row(group))
            group.clear()

    models: dict[str, LedgerEntry] = {}  # each endpoint's last served-model change
    for e in entries:
        opens, before = tracker.step(e)
        if e.event == "model_changed":
            models[e.endpoint] = e
        if e.event in ("appeared", "disappeared"):
            if group and (group[0].event != e.event or group[0].ts != e.ts):
                flush()
            group.append(e)
            continue
        flush()
        row = _endpoint_row(e, opens, before)
        if row is not None:
            out.append(_after_model_change(row, models.get(e.endpoint)))
    flush()
    return out


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
