"""Meta-Patterns over incidents: what recurs, and at what time of day.

Fed the ledger's own entries as they are written (in the ledger writer's thread): only the
entries that open an incident row (``probe.ledger.lessons.IncidentTracker``) count, so the
work per entry is O(1) and the results table is never read. Per endpoint and cause it keeps
the incidents of the last window; a pattern is said once, as a ledger entry (hash-chained
like the rest), when it starts to hold, and once more when it stops (``tick``, on the
writer's slow clock): nothing in between, and nothing again for incidents it has already
counted, so replaying the same entries (a restart reads the whole ledger) appends nothing.

- time of day: incidents of one endpoint and cause that began in the same UTC hour on at
  least ``time_of_day_days`` distinct days of the window ("every night at 02:00");
- recurring: at least ``recurring_incidents`` incidents of one endpoint and cause in the
  window, when no time-of-day pattern says it already;
- failing together: endpoints of one GPU type or data centre whose incidents start together
  (``probe.ledger.groups``); such openings are the group's evidence and are not counted
  again for the endpoint's own recurrence or time of day.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from probe.durations import format_duration
from probe.ledger.chain import Evidence, LedgerDraft, LedgerEntry
from probe.ledger.groups import GROUP_EVENTS, GroupPatterns, Opening
from probe.ledger.lessons import IncidentTracker, kind_of
from probe.ledger.rules import rule_for
from probe.ledger.settings import PatternSettings

RECURRING, TIME_OF_DAY = "recurring", "time_of_day"
ENDED = "_ended"
EVENTS = frozenset({RECURRING, TIME_OF_DAY, RECURRING + ENDED, TIME_OF_DAY + ENDED})
WORDS = {"pod": "RunPod pod", "serverless": "RunPod serverless endpoint",
         "provider": "Provider", "other": "Endpoint"}
IDS_SHOWN = 10


@dataclass(slots=True)
class _Held:
    said_at: datetime  # incidents up to here are counted in what was said
    hour: int | None = None


@dataclass(slots=True)
class IncidentPatterns:
    settings: PatternSettings
    tracker: IncidentTracker = field(default_factory=IncidentTracker)
    recent: dict[tuple[str, str], deque[Opening]] = field(default_factory=dict)
    # (kind, endpoint, outcome) -> what holds now
    held: dict[tuple[str, str, str], _Held] = field(default_factory=dict)
    # (kind, endpoint, outcome) -> when it was last said to start or stop
    said: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    groups: GroupPatterns = field(init=False)

    def __post_init__(self) -> None:
        self.groups = GroupPatterns(self.settings)

    def load(self, entries: Sequence[LedgerEntry]) -> list[LedgerDraft]:
        """The whole ledger at start: first what was already said (so no incident it
        counted says it again), then the incidents; drafts only for what was never said."""
        for e in entries:
            if e.event in EVENTS:
                self._remember(e)
            elif e.event in GROUP_EVENTS:
                self.groups.remember(e)
        return self.feed(e for e in entries if e.event not in EVENTS | GROUP_EVENTS)

    def feed(self, entries: Iterable[LedgerEntry]) -> list[LedgerDraft]:
        """Drafts for the patterns these entries (in chain order) make hold."""
        out: list[LedgerDraft] = []
        for e in entries:
            if e.event in EVENTS:
                self._remember(e)
            elif e.event in GROUP_EVENTS:
                self.groups.remember(e)
            elif self.tracker.opens(e) and e.evidence.outcome is not None:
                out.extend(self._opened(e, e.evidence.outcome))
        return out

    def tick(self, now: datetime) -> list[LedgerDraft]:
        """Patterns that stopped holding: no incident of theirs within the quiet window."""
        out = self.groups.tick(now)
        quiet = timedelta(seconds=self.settings.quiet_after_s)
        for key in list(self.held):
            kind, endpoint, outcome = key
            recent = self.recent.get((endpoint, outcome))
            last = recent[-1] if recent else None
            if last is not None and now - last.at < quiet:
                continue
            del self.held[key]
            self.said[key] = now
            out.append(self._ended(kind, endpoint, outcome, last, now))
        return out

    def _remember(self, e: LedgerEntry) -> None:
        kind = e.event.removesuffix(ENDED)
        key = (kind, e.endpoint, e.evidence.outcome or "")
        at = _at(e)
        self.said[key] = at
        if e.event.endswith(ENDED):
            self.held.pop(key, None)
        else:
            self.held[key] = _Held(at, at.hour if kind == TIME_OF_DAY else None)

    def _opened(self, e: LedgerEntry, outcome: str) -> list[LedgerDraft]:
        at = _at(e)
        window = timedelta(seconds=self.settings.window_s)
        recent = self.recent.setdefault((e.endpoint, outcome), deque())
        opening = Opening(e.id, e.endpoint, outcome, at, e.evidence.check,
                          e.evidence.first_row, e.evidence.last_row, e.evidence.url,
                          WORDS[kind_of(e)])
        recent.append(opening)
        while recent and at - recent[0].at > window:
            recent.popleft()
        out = self.groups.opened(opening)  # first: it marks openings that are the group's
        own = [o for o in recent if o.entry not in self.groups.joint]
        tod, rec = (TIME_OF_DAY, e.endpoint, outcome), (RECURRING, e.endpoint, outcome)
        if tod in self.held or self._said_after(tod, at):
            return out
        same_hour = [o for o in own if o.at.hour == at.hour]
        days = {o.at.date() for o in same_hour}
        if len(days) >= self.settings.time_of_day_days:
            self.held[tod] = _Held(at, at.hour)
            self.said[tod] = at
            return [*out, self._time_of_day(e.endpoint, outcome, same_hour, len(days))]
        if rec in self.held or self._said_after(rec, at):
            return out
        if len(own) >= self.settings.recurring_incidents:
            self.held[rec] = _Held(at)
            self.said[rec] = at
            return [*out, self._recurring(e.endpoint, outcome, own)]
        return out

    def _said_after(self, key: tuple[str, str, str], at: datetime) -> bool:
        """The ledger already has a statement about ``key`` made at or after ``at``: an
        incident replayed from before it changes nothing."""
        said = self.said.get(key)
        return said is not None and at <= said

    def _recurring(self, endpoint: str, outcome: str, seen: list[Opening]) -> LedgerDraft:
        last = seen[-1]
        label = rule_for(outcome, last.check).label
        window = format_duration(self.settings.window_s)
        text = (f"{last.who} {endpoint} went down ({label}) {len(seen)} times within {window} "
                f"— a recurring incident, not a one-off: find what keeps ending it "
                f"({_ids(seen)}; minimum {self.settings.recurring_incidents} in {window})")
        return _draft(RECURRING, "warning", endpoint, outcome, seen, text)

    def _time_of_day(self, endpoint: str, outcome: str, seen: list[Opening],
                     days: int) -> LedgerDraft:
        last = seen[-1]
        label = rule_for(outcome, last.check).label
        window_days = round(self.settings.window_s / 86400)
        hour = last.at.hour
        text = (f"{last.who} {endpoint} goes down ({label}) between {hour:02d}:00 and "
                f"{(hour + 1) % 24:02d}:00 UTC: {days} of the last {window_days} days "
                f"({_ids(seen)}; minimum {self.settings.time_of_day_days} days) — look for "
                "a job scheduled at that hour")
        return _draft(TIME_OF_DAY, "warning", endpoint, outcome, seen, text)

    def _ended(self, kind: str, endpoint: str, outcome: str, last: Opening | None,
               now: datetime) -> LedgerDraft:
        quiet = format_duration(self.settings.quiet_after_s)
        who = last.who if last is not None else "Endpoint"
        since = f" since ledger #{last.entry}" if last is not None else ""
        what = "at that hour" if kind == TIME_OF_DAY else "recurring"
        text = (f"{who} {endpoint} no longer down ({rule_for(outcome).label}) {what}: no "
                f"incident in {quiet}{since}")
        seen = [last] if last is not None else []
        return _draft(kind + ENDED, "info", endpoint, outcome, seen, text, now)


def _ids(seen: list[Opening]) -> str:
    ids = [f"#{o.entry}" for o in seen]
    if len(ids) > IDS_SHOWN:
        ids = [*ids[:IDS_SHOWN - 1], "…", ids[-1]]
    return "ledger " + ", ".join(ids)


def _draft(event: str, severity: str, endpoint: str, outcome: str, seen: list[Opening],
           text: str, at: datetime | None = None) -> LedgerDraft:
    first = seen[0] if seen else None
    last = seen[-1] if seen else None
    when = (at or (last.at if last else None))
    observed = when.isoformat(timespec="seconds") if when else None
    evidence = Evidence(last.check if last else None, outcome,
                        first.first_row if first else None, last.last_row if last else None,
                        last.url if last else None, observed)
    return LedgerDraft(ts=observed or "", severity=severity, endpoint=endpoint, event=event,
                       pattern=text, evidence=evidence)


def _at(e: LedgerEntry) -> datetime:
    return datetime.fromisoformat(e.evidence.observed_at or e.ts)
