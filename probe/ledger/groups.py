"""Meta-Patterns over groups: endpoints on the same GPU type or in the same data centre whose
incidents start together, again and again.

An endpoint's groups come from the plan (``groups_of``: RunPod's ``gpu.id`` and
``dataCenterId`` as discovery lists them, or the config's ``gpu_type``/``data_center``), kept
as a dict, so an incident opening is judged with one look-up per group it belongs to: O(1)
in fleet size, on the ledger writer's thread, never reading the results table.

A *joint start* is a run of incident openings in one group, each within ``group_within`` of
the run's first, from at least ``group_endpoints`` distinct endpoints. When the window holds
``group_starts`` joint starts, one entry names the group, its endpoints and the incidents
(ledger ids); once more when none happened for ``quiet_after`` (``tick``). The openings of
a joint start are the group's evidence, not the endpoint's own: per-endpoint recurrence does
not count them again (``IncidentPatterns``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from probe.config.model import Endpoint
from probe.durations import format_duration
from probe.ledger.chain import Evidence, LedgerDraft, LedgerEntry
from probe.ledger.settings import PatternSettings

GROUP, GROUP_ENDED = "failed_together", "failed_together_ended"
GROUP_EVENTS = frozenset({GROUP, GROUP_ENDED})
# how a group is named in its entries (the entry's endpoint), per endpoint field
PREFIXES = (("gpu_type", "gpu:", "GPU type"), ("data_center", "dc:", "data centre"))
NAMES_SHOWN = 12


def groups_of(endpoints: Iterable[Endpoint]) -> dict[str, tuple[str, ...]]:
    """endpoint name -> the groups it belongs to (``gpu:<id>``, ``dc:<id>``)."""
    out: dict[str, tuple[str, ...]] = {}
    for e in endpoints:
        labels = tuple(prefix + value for attr, prefix, _ in PREFIXES
                       if (value := getattr(e, attr)))
        if labels:
            out[e.name] = labels
    return out


def group_words(group: str) -> str:
    for _, prefix, words in PREFIXES:
        if group.startswith(prefix):
            return f"{words} {group.removeprefix(prefix)}"
    return group


@dataclass(frozen=True, slots=True)
class Opening:
    """An entry that opened an incident row."""

    entry: int
    endpoint: str
    outcome: str
    at: datetime
    check: str | None
    first_row: int | None
    last_row: int | None
    url: str | None
    who: str


@dataclass(slots=True)
class _Start:
    at: datetime  # the first opening's
    openings: list[Opening] = field(default_factory=list)

    def endpoints(self) -> set[str]:
        return {o.endpoint for o in self.openings}


@dataclass(slots=True)
class GroupPatterns:
    settings: PatternSettings
    # endpoint -> its groups: replaced (one reference) with each plan, never mutated
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    starts: dict[str, deque[_Start]] = field(default_factory=dict)
    held: dict[str, datetime] = field(default_factory=dict)  # group -> said at
    said: dict[str, datetime] = field(default_factory=dict)  # group -> last said at
    joint: set[int] = field(default_factory=set)  # entry ids of openings in joint starts

    def remember(self, e: LedgerEntry) -> None:
        at = datetime.fromisoformat(e.evidence.observed_at or e.ts)
        self.said[e.endpoint] = at
        if e.event == GROUP_ENDED:
            self.held.pop(e.endpoint, None)
        else:
            self.held[e.endpoint] = at

    def opened(self, o: Opening) -> list[LedgerDraft]:
        """Drafts for the groups whose endpoints now failed together often enough."""
        out = []
        for group in self.members.get(o.endpoint, ()):
            draft = self._opened(group, o)
            if draft is not None:
                out.append(draft)
        return out

    def _opened(self, group: str, o: Opening) -> LedgerDraft | None:
        s = self.settings
        starts = self.starts.setdefault(group, deque())
        while starts and o.at - starts[0].at > timedelta(seconds=s.window_s):
            self.joint.difference_update(x.entry for x in starts.popleft().openings)
        if not starts or o.at - starts[-1].at > timedelta(seconds=s.group_within_s):
            starts.append(_Start(o.at, [o]))
            return None
        last = starts[-1]
        last.openings.append(o)
        if len(last.endpoints()) < s.group_endpoints:
            return None
        self.joint.update(x.entry for x in last.openings)
        said = self.said.get(group)
        if group in self.held or (said is not None and o.at <= said):
            return None
        joint = [st for st in starts if len(st.endpoints()) >= s.group_endpoints]
        if len(joint) < s.group_starts:
            return None
        self.held[group] = self.said[group] = o.at
        return self._draft(group, joint)

    def tick(self, now: datetime) -> list[LedgerDraft]:
        out = []
        quiet = timedelta(seconds=self.settings.quiet_after_s)
        for group in list(self.held):
            starts = self.starts.get(group)
            last = starts[-1] if starts else None
            if last is not None and now - last.at < quiet:
                continue
            del self.held[group]
            self.said[group] = now
            text = (f"Endpoints on {group_words(group)} no longer fail together: no joint "
                    f"incident start in {format_duration(self.settings.quiet_after_s)}")
            seen = last.openings if last is not None else []
            out.append(_entry(GROUP_ENDED, "info", group, seen, text, now))
        return out

    def _draft(self, group: str, joint: list[_Start]) -> LedgerDraft:
        s = self.settings
        names = sorted(set().union(*(st.endpoints() for st in joint)))
        shown = ", ".join(names[:NAMES_SHOWN]) + (
            f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")
        starts = "; ".join(
            f"{st.at.isoformat(timespec='minutes')} ledger "
            + ", ".join(f"#{x.entry}" for x in st.openings) for st in joint)
        window = format_duration(s.window_s)
        text = (f"Endpoints on {group_words(group)} went down together {len(joint)} times "
                f"within {window}: {shown} ({starts}; minimum {s.group_starts} starts of "
                f"{s.group_endpoints}+ endpoints within {format_duration(s.group_within_s)})"
                " — look at what they share, not at each endpoint")
        seen = [x for st in joint for x in st.openings]
        return _entry(GROUP, "warning", group, seen, text)


def _entry(event: str, severity: str, group: str, seen: list[Opening], text: str,
           at: datetime | None = None) -> LedgerDraft:
    first = seen[0] if seen else None
    last = seen[-1] if seen else None
    when = at or (last.at if last else None)
    observed = when.isoformat(timespec="seconds") if when else None
    evidence = Evidence(last.check if last else None, last.outcome if last else None,
                        min((x.first_row for x in seen if x.first_row is not None),
                            default=None),
                        max((x.last_row for x in seen if x.last_row is not None),
                            default=None),
                        first.url if first else None, observed)
    return LedgerDraft(ts=observed or "", severity=severity, endpoint=group, event=event,
                       pattern=text, evidence=evidence)
