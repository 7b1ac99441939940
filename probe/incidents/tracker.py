"""Fleet incidents from verdict changes: O(changed endpoints), never a walk of the fleet
per result.

Every endpoint belongs to its narrowest group (``probe.incidents.scopes``) and to the
fleet. Per (group, cause) the tracker keeps the endpoints down with that cause (an
ordered set) and when the recent ones went down; an endpoint entering or leaving ``down``
touches its two groups and nothing else. An incident opens when at least ``min_endpoints``
endpoints, and at least ``min_share`` of the group, went down with the same cause within
``window_intervals`` of their interval (and that many are still down); it closes when fewer
than ``min_endpoints`` are left down with that cause. A fleet-wide incident opens only for
failures no narrower incident already explains (a proxy outage is one incident, not
two): at least ``min_endpoints`` of them outside every open narrower incident.

Opening marks the endpoints already counted (their verdict's ``incident``) once; endpoints
that join later are marked as they join. An endpoint going down (again, or with another
cause) first forgets the incident its last failure was marked with: a failure after an
incident closed is a new one, cited by no incident until one of its groups claims it. Each
open and close is announced as a transition (the ledger writes one entry each), carrying a
``FleetIncident``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from probe.config.model import Config
from probe.incidents.scopes import FLEET, scope_of
from probe.incidents.settings import IncidentSettings
from probe.verdict import EndpointVerdict, Event, FleetIncident, State, Transition

MAX_EVIDENCE = 20  # endpoints named in an incident's entries
INCIDENT_CHECK = "incident"
Announce = Callable[[str, list[Transition]], None]
VerdictOf = Callable[[str], "EndpointVerdict | None"]


def incident_id(scope: str, cause: str, opened_at: datetime) -> str:
    return f"{scope}/{cause}/{opened_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def parse_id(text: str) -> tuple[str, str, datetime] | None:
    """(scope, cause, opened_at) of an id made by ``incident_id``; None for anything else."""
    scope, _, rest = text.rpartition("/")
    scope, _, cause = scope.rpartition("/")
    try:
        opened = datetime.strptime(rest, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (scope, cause, opened) if scope and cause else None


@dataclass(slots=True)
class Group:
    scope: str
    cause: str
    failing: dict[str, None] = field(default_factory=dict)  # ordered set of endpoints
    recent: deque[float] = field(default_factory=deque)  # when recent ones went down
    incident: FleetIncident | None = None


def down_cause(verdict: EndpointVerdict | None) -> str | None:
    """The cause class an endpoint is down with (None: not down)."""
    if verdict is None or verdict.state is not State.DOWN:
        return None
    cause = verdict.cause
    return cause.outcome if cause is not None and cause.outcome else None


class IncidentTracker:
    def __init__(self, settings: IncidentSettings, announce: Announce,
                 verdict_of: VerdictOf) -> None:
        self.settings = settings
        self.announce = announce
        self.verdict_of = verdict_of
        self._lock = threading.Lock()  # the status page reads from the listener's thread
        self._scope: dict[str, str] = {}  # endpoint -> its narrowest group
        self._interval: dict[str, float] = {}
        self._size: dict[str, int] = {}  # group -> endpoints in it
        self._cause: dict[str, str] = {}  # endpoint -> the cause it is down with
        self._groups: dict[tuple[str, str], Group] = {}
        self._covered: dict[str, int] = {}  # cause -> endpoints in open narrow incidents
        self.opened_total = 0
        self.closed_total = 0

    # -- the result path: O(1) per changed endpoint --------------------------------------
    def update(self, endpoint: str, verdict: EndpointVerdict | None, at: datetime) -> None:
        """``endpoint``'s verdict may have changed (a result with transitions, a window)."""
        new = down_cause(verdict)
        scope = self._scope.get(endpoint)
        if scope is None or new == self._cause.get(endpoint):
            return
        with self._lock:
            old = self._cause.pop(endpoint, None)
            if old is not None:
                for group in (scope, FLEET):
                    self._leave(group, old, endpoint, at)
            if new is not None:
                # a new failure (or a new cause): the incident of the last one, closed or
                # of another cause, is not this one's; an open one of its groups marks it
                if verdict is not None:
                    verdict.incident = None
                self._cause[endpoint] = new
                for group in (scope, FLEET):
                    self._join(group, new, endpoint, at, quiet=False)

    def _join(self, scope: str, cause: str, endpoint: str, at: datetime, quiet: bool) -> None:
        group = self._groups.get((scope, cause))
        if group is None:
            group = self._groups[(scope, cause)] = Group(scope, cause)
        group.failing[endpoint] = None
        now = at.timestamp()
        group.recent.append(now)
        window = self.settings.window_intervals * self._interval.get(endpoint, 30.0)
        while group.recent and group.recent[0] < now - window:
            group.recent.popleft()
        incident = group.incident
        if incident is not None:
            evidence = incident.evidence
            if len(evidence) < MAX_EVIDENCE:
                evidence = (*evidence, endpoint)
            group.incident = replace(incident, affected=incident.affected + 1,
                                     evidence=evidence)
            if scope != FLEET:
                self._covered[cause] = self._covered.get(cause, 0) + 1
            self._mark(endpoint, group.incident.id, scope)
        elif not quiet:
            self._maybe_open(group, at)

    def _leave(self, scope: str, cause: str, endpoint: str, at: datetime) -> None:
        group = self._groups.get((scope, cause))
        if group is None:
            return
        group.failing.pop(endpoint, None)
        if group.incident is not None:
            if scope != FLEET:
                self._covered[cause] = self._covered.get(cause, 0) - 1
            if len(group.failing) < self.settings.min_endpoints:
                self._close(group, at)
        if not group.failing and group.incident is None:
            del self._groups[(scope, cause)]

    def _qualifies(self, group: Group) -> bool:
        s = self.settings
        together = len(group.recent)
        if len(group.failing) < s.min_endpoints or together < s.min_endpoints:
            return False
        if together < s.min_share * self._size.get(group.scope, 0):
            return False
        # the fleet's own incident only for failures no narrower incident explains: at
        # least ``min_endpoints`` of them outside every open narrower incident
        uncovered = len(group.failing) - self._covered.get(group.cause, 0)
        return group.scope != FLEET or uncovered >= s.min_endpoints

    def _maybe_open(self, group: Group, at: datetime) -> None:
        if self._qualifies(group):
            opened = at.replace(microsecond=0)  # as its id says
            self._open(group, at, incident_id(group.scope, group.cause, opened), opened,
                       announce=True)

    def _open(self, group: Group, at: datetime, ident: str, opened_at: datetime,
              announce: bool, affected: int | None = None) -> None:
        members = list(group.failing)
        group.incident = FleetIncident(ident, group.scope, group.cause, opened_at,
                                       affected or len(members),
                                       self._size.get(group.scope, 0),
                                       tuple(members[:MAX_EVIDENCE]))
        if group.scope != FLEET:
            self._covered[group.cause] = self._covered.get(group.cause, 0) + len(members)
        for endpoint in members:  # once per incident: each was counted by a transition
            self._mark(endpoint, ident, group.scope)
        if announce:
            self.opened_total += 1
            self.announce(group.scope, [Transition(
                Event.INCIDENT_OPENED, group.scope, at, INCIDENT_CHECK, group.cause,
                url=group.scope, new=group.incident)])

    def _close(self, group: Group, at: datetime) -> None:
        incident = group.incident
        assert incident is not None
        if group.scope != FLEET:
            self._covered[group.cause] = self._covered.get(group.cause, 0) - len(group.failing)
        group.incident = None
        self.closed_total += 1
        closed = replace(incident, closed_at=at)
        self.announce(group.scope, [Transition(
            Event.INCIDENT_CLOSED, group.scope, at, INCIDENT_CHECK, group.cause,
            url=group.scope, since=incident.opened_at, until=at, old=closed)])

    def _mark(self, endpoint: str, ident: str, scope: str) -> None:
        """The endpoint's entries cite the incident (a narrower one before the fleet's)."""
        verdict = self.verdict_of(endpoint)
        if verdict is None:
            return
        if scope == FLEET and verdict.incident is not None:
            narrow = self._groups.get((self._scope.get(endpoint, ""),
                                       self._cause.get(endpoint, "")))
            if narrow is not None and narrow.incident is not None:
                return
        verdict.incident = ident

    # -- a new plan: the groups again (O(fleet), once per plan) --------------------------
    def plan(self, config: Config, now: datetime | None = None) -> None:
        """Endpoints came or went (a reload, discovery, a restart): the groups are rebuilt
        from the verdicts; an incident still holding resumes under its id (also after a
        restart: the endpoints' verdicts keep it), one no longer holding is closed."""
        now = now or datetime.now(UTC)
        with self._lock:
            before = {key: g.incident for key, g in self._groups.items()
                      if g.incident is not None}
            self._scope = {e.name: scope_of(e) for e in config.endpoints}
            self._interval = {e.name: e.interval_s for e in config.endpoints}
            self._size = {FLEET: len(self._scope)}
            for scope in self._scope.values():
                self._size[scope] = self._size.get(scope, 0) + 1
            self._cause, self._groups, self._covered = {}, {}, {}
            down: list[tuple[datetime, str, str]] = []
            remembered: dict[tuple[str, str], str] = {}
            for name in self._scope:
                verdict = self.verdict_of(name)
                cause = down_cause(verdict)
                if cause is None or verdict is None:
                    continue
                since = verdict.since
                down.append((datetime.fromisoformat(since) if since else now, name, cause))
                parsed = parse_id(verdict.incident) if verdict.incident else None
                if parsed is not None and parsed[1] == cause:
                    remembered.setdefault((parsed[0], cause), verdict.incident or "")
            for at, name, cause in sorted(down):
                self._cause[name] = cause
                for scope in (self._scope[name], FLEET):
                    self._join(scope, cause, name, at, quiet=True)
            groups = sorted(self._groups.values(), key=lambda g: g.scope == FLEET)
            for group in groups:
                key = (group.scope, group.cause)
                kept, ident = before.get(key), remembered.get(key)
                if (kept is not None or ident) and \
                        len(group.failing) >= self.settings.min_endpoints:
                    before.pop(key, None)
                    if kept is not None:
                        self._open(group, now, kept.id, kept.opened_at, False, kept.affected)
                    else:
                        parsed = parse_id(ident or "")
                        assert parsed is not None
                        self._open(group, now, ident or "", parsed[2], False)
                elif self._qualifies(group):
                    self._maybe_open(group, now)
            for (scope, cause), incident in before.items():  # no longer holding
                group = self._groups.get((scope, cause)) or Group(scope, cause)
                group.incident = incident
                if scope != FLEET:  # counted as covered, as an open incident's are
                    self._covered[cause] = self._covered.get(cause, 0) + len(group.failing)
                self._close(group, now)
                if not group.failing:
                    self._groups.pop((scope, cause), None)

    # -- readers -------------------------------------------------------------------------
    def open_incidents(self) -> list[FleetIncident]:
        """What is open now (any thread), with the current count of endpoints down."""
        with self._lock:
            return [replace(g.incident, affected=g.incident.affected)
                    for g in self._groups.values() if g.incident is not None]

    def failing_now(self) -> Mapping[str, int]:
        """Incident id -> how many of its group are down with its cause now."""
        with self._lock:
            return {g.incident.id: len(g.failing) for g in self._groups.values()
                    if g.incident is not None}

    def members(self) -> list[tuple[str, str, str]]:
        """(endpoint, scope, cause) of every endpoint counted in an open incident."""
        with self._lock:
            return [(endpoint, g.scope, g.cause) for g in self._groups.values()
                    if g.incident is not None for endpoint in g.failing]
