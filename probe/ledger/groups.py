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
not count them again (``IncidentPatterns``). Groups that would say the same endpoints at
once (pods of one GPU type that are also all of one data centre) are one entry naming both
(``gpu:<id>+dc:<id>``, each group in its structured ``members``), and end in one entry.
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
        for group in e.evidence.members or (e.endpoint,):  # one entry may name several
            self.said[group] = at
            if e.event == GROUP_ENDED:
                self.held.pop(group, None)
            else:
                self.held[group] = at

    def opened(self, o: Opening) -> list[LedgerDraft]:
        """Drafts for the groups whose endpoints now failed together often enough: groups
        naming the same endpoints (pods of one GPU type in one data centre) in one draft."""
        said: dict[frozenset[str], tuple[list[str], list[_Start]]] = {}
        for group in self.members.get(o.endpoint, ()):
            joint = self._opened(group, o)
            if joint is not None:
                names = frozenset(set().union(*(st.endpoints() for st in joint)))
                said.setdefault(names, ([], joint))[0].append(group)
        return [self._draft(groups, joint) for groups, joint in said.values()]

    def _opened(self, group: str, o: Opening) -> list[_Start] | None:
        """The group's joint starts when they are now to be said, else None."""
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
        return joint

    def tick(self, now: datetime) -> list[LedgerDraft]:
        """Groups that no longer fail together; groups whose last joint start was the same
        incidents (said together) in one draft."""
        ended: dict[tuple[int, ...] | str, tuple[list[str], _Start | None]] = {}
        quiet = timedelta(seconds=self.settings.quiet_after_s)
        for group in list(self.held):
            starts = self.starts.get(group)
            last = starts[-1] if starts else None
            if last is not None and now - last.at < quiet:
                continue
            del self.held[group]
            self.said[group] = now
            key = tuple(x.entry for x in last.openings) if last is not None else group
            ended.setdefault(key, ([], last))[0].append(group)
        out = []
        for groups, last in ended.values():
            text = (f"Endpoints on {_named(groups)} no longer fail together: no joint "
                    f"incident start in {format_duration(self.settings.quiet_after_s)}")
            seen = last.openings if last is not None else []
            out.append(_entry(GROUP_ENDED, "info", groups, seen, text, now))
        return out

    def _draft(self, groups: list[str], joint: list[_Start]) -> LedgerDraft:
        s = self.settings
        names = sorted(set().union(*(st.endpoints() for st in joint)))
        shown = ", ".join(names[:NAMES_SHOWN]) + (
            f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")
        starts = "; ".join(
            f"{st.at.isoformat(timespec='minutes')} ledger "
            + ", ".join(f"#{x.entry}" for x in st.openings) for st in joint)
        window = format_duration(s.window_s)
        text = (f"Endpoints on {_named(groups)} went down together {len(joint)} times "
                f"within {window}: {shown} ({starts}; minimum {s.group_starts} starts of "
                f"{s.group_endpoints}+ endpoints within {format_duration(s.group_within_s)})"
                " — look at what they share, not at each endpoint")
        seen = [x for st in joint for x in st.openings]
        return _entry(GROUP, "warning", groups, seen, text)


def _named(groups: list[str]) -> str:
    return " and ".join(group_words(group) for group in groups)


def _entry(event: str, severity: str, groups: list[str], seen: list[Opening], text: str,
           at: datetime | None = None) -> LedgerDraft:
    """One entry for ``groups``: named by the first alone (as ever), by all of them joined
    with ``+`` when they are more, each then in the entry's structured ``members``."""
    first = seen[0] if seen else None
    last = seen[-1] if seen else None
    when = at or (last.at if last else None)
    observed = when.isoformat(timespec="seconds") if when else None
    evidence = Evidence(last.check if last else None, last.outcome if last else None,
                        min((x.first_row for x in seen if x.first_row is not None),
                            default=None),
                        max((x.last_row for x in seen if x.last_row is not None),
                            default=None),
                        first.url if first else None, observed, None,
                        tuple(groups) if len(groups) > 1 else None)
    return LedgerDraft(ts=observed or "", severity=severity, endpoint="+".join(groups),
                       event=event, pattern=text, evidence=evidence)
