"""One verdict per endpoint, computed here and read by every surface: ``endpoint_up`` and
``endpoint_state`` on /metrics, the ledger's entries, the alerts, ``once``'s exit code and
``gate``.

An endpoint is:
- ``down`` after ``down_after`` consecutive failing results of one of its availability
  checks (everything but governed prompts), and ``up`` again only when every job of the
  endpoint vouches for it: ``up_after`` consecutive passes of each check run at the
  endpoint's interval (its own and the context fit, which runs as a job of its own) and
  of the check that took it down, and no check it has reported failing at its latest
  result; in between it keeps its state, so flapping is collapsed;
- ``degraded`` when it is reachable but one of its governed prompts is failing (wrong,
  empty, cut, a 5xx from a reachable server, TTFT over its limit) with the same
  hysteresis: it serves, but not as governed — never shown as up, distinct from down;
- ``unknown`` until there is evidence, and again when it can no longer be vouched for
  (``down_after`` results in a row that observed nothing: control plane unreachable, rate
  limited, a condition not yet confirmed). A down endpoint stays down until passes prove
  otherwise (fail closed);
- ``maintenance`` during a maintenance window (declared in the config, started from the
  command line, or a pod its owner stopped): checks still run and feed the tracks, but no
  down/recovered entry is written inside it; when it ends, what was observed is summarised
  and a still-failing endpoint is down at once (no second hysteresis wait).

``instant`` judges one sweep's results the same way without hysteresis (``once``,
``gate``). The state is plain data that survives a restart as JSON, with each check's
``durable`` memory (streaks that take several readings, e.g. a stuck engine), so a restart
neither forgets an episode nor starts a new one.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from probe.config.model import Hysteresis
from probe.outcome import NOT_OBSERVED, CheckRole, Outcome, ProbeResult


class State(enum.StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


# A prompt that could not reach the server says nothing about the answer: the endpoint's own
# checks report that outage, once. (A prompt timing out or answering 5xx while the server is
# reachable is a finding about the answers: a hung or failing engine.)
ANSWER_UNREACHABLE = frozenset({Outcome.HTTP_404, Outcome.HTTP_502, Outcome.CONNECT_ERROR,
                                Outcome.TLS_ERROR, Outcome.UNAUTHORIZED})


class Event(enum.StrEnum):
    DOWN = "down"
    RECOVERED = "recovered"
    PERSISTENT = "persistent"
    DEGRADED = "degraded"  # up -> degraded: a governed prompt started failing
    RESTORED = "restored"  # degraded -> up: every governed prompt passes again
    PROMPT_FAILING = "prompt_failing"  # another prompt fails; the endpoint's state is unchanged
    PROMPT_PASSING = "prompt_passing"
    CONTEXT_CHANGED = "context_changed"
    MODEL_CHANGED = "model_changed"
    APPEARED = "appeared"
    DISAPPEARED = "disappeared"
    MAINTENANCE_STARTED = "maintenance_started"
    MAINTENANCE_ENDED = "maintenance_ended"
    # A fleet incident (``FleetIncident``): many endpoints of one group failing together for
    # one reason. Its transitions name the incident's scope, not an endpoint.
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_CLOSED = "incident_closed"


INCIDENT_EVENTS = frozenset({Event.INCIDENT_OPENED, Event.INCIDENT_CLOSED})
# Endpoint entries that say the endpoint is (or was) failing: inside an incident they cite it.
IN_INCIDENT = frozenset({Event.DOWN, Event.PERSISTENT, Event.RECOVERED})


AFTER_WINDOW = "after maintenance"  # marks a down entry written as a window ended
# Inside a maintenance window these are not recorded: the state is "maintenance".
SILENCED_IN_MAINTENANCE = frozenset({Event.DOWN, Event.RECOVERED, Event.PERSISTENT,
                                     Event.DEGRADED, Event.RESTORED, Event.PROMPT_FAILING,
                                     Event.PROMPT_PASSING})


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance window as the verdict sees it: which one, why, who declared it, when.
    ``key`` tells one occurrence from another (a weekly window's each week); ``end`` None:
    open-ended (a pod stopped by its owner, until RunPod lists it running again)."""

    key: str
    name: str
    reason: str
    origin: str  # "config", "cli (alice)", "discovery"
    start: datetime
    end: datetime | None
    targets: tuple[str, ...] = ()  # endpoint names or globs it covers


@dataclass(frozen=True, slots=True)
class Cause:
    """What put an endpoint in its current state; stable for the episode (a switch from
    timeout to 502 does not change it)."""

    check: str
    outcome: str


@dataclass(frozen=True, slots=True)
class FleetIncident:
    """A fleet incident as its ledger entries tell it: which group (``scope``: ``proxy:<host>``,
    ``serverless:<host>``, ``provider:<host>``, ``fleet``), the cause class, when it opened
    (and closed), how many endpoints it touched and a bounded list of them (the evidence)."""

    id: str
    scope: str
    cause: str
    opened_at: datetime
    affected: int
    group_size: int
    evidence: tuple[str, ...]
    closed_at: datetime | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.closed_at is None else \
            (self.closed_at - self.opened_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Transition:
    """A change worth recording, with what the ledger needs to phrase it."""

    event: Event
    endpoint: str
    at: datetime
    check: str | None = None
    outcome: str | None = None  # for recoveries: the outcome that had taken it down
    first_row: int | None = None
    last_row: int | None = None
    url: str | None = None
    message: str = ""
    http_status: int | None = None
    since: datetime | None = None  # when the condition began (first failing observation)
    until: datetime | None = None  # when it ended (recoveries: first pass of the streak)
    old: Any = None
    new: Any = None

    @property
    def duration_s(self) -> float | None:
        """How long the condition lasted (or has lasted so far)."""
        if self.since is None:
            return None
        return ((self.until or self.at) - self.since).total_seconds()


@dataclass(slots=True)
class Streak:
    """Consecutive passes or failures of one check."""

    fails: int = 0
    passes: int = 0
    first_fail_row: int | None = None
    first_fail_at: str | None = None
    first_pass_at: str | None = None

    def observe(self, ok: bool, row: int | None, at: datetime) -> None:
        if ok:
            if self.passes == 0:
                self.first_pass_at = at.isoformat()
            self.passes, self.fails = self.passes + 1, 0
        else:
            if self.fails == 0:
                self.first_fail_row, self.first_fail_at = row, at.isoformat()
            self.fails, self.passes = self.fails + 1, 0


@dataclass(slots=True)
class Track:
    """up / down / unknown over one or more checks, with hysteresis."""

    state: str = "unknown"
    since: str | None = None  # down: the first failing observation of the episode
    outcome: str | None = None  # what took it down (or made it unknown)
    check: str | None = None
    first_row: int | None = None
    persistent_noted: bool = False
    unobserved: int = 0
    streaks: dict[str, Streak] = field(default_factory=dict)
    # The checks that must all have passed before the track is up (the planned ones); until
    # one of them has been observed at all, there is no evidence for "up". The plan's own
    # tuple, shared by the endpoints with the same plan (a list each was ~90 bytes a pod).
    required: tuple[str, ...] = ()

    def shown(self) -> tuple[str, str | None, str | None, str | None]:
        """What the endpoint's state, cause and since read of the track: a result that
        leaves this as it was leaves them as they were (``FleetState.update``)."""
        return self.state, self.since, self.check, self.outcome

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Track:
        streaks = {k: Streak(**v) for k, v in data.get("streaks", {}).items()}
        return cls(**{**data, "streaks": streaks, "required": tuple(data.get("required", ()))})

    def observe(self, r: ProbeResult, row: int | None, s: Hysteresis,
                persistent: bool) -> tuple[Event, datetime | None] | None:
        """Feed one observed result; return (event, since) when the track changes."""
        streak = self.streaks.setdefault(r.check, Streak())
        streak.observe(r.ok, row, r.started_at)
        self.unobserved = 0
        if not r.ok:
            if self.state != "down" and streak.fails >= s.down_after:
                self.state, self.since, self.outcome = "down", streak.first_fail_at, r.outcome
                self.check, self.first_row, self.persistent_noted = r.check, \
                    streak.first_fail_row, False
                return Event.DOWN, _time(self.since)
            since = _time(self.since)
            if (persistent and self.state == "down" and not self.persistent_noted
                    and since is not None
                    and (r.started_at - since).total_seconds() >= s.persistent_after_s):
                self.persistent_noted = True
                return Event.PERSISTENT, since
            return None
        if self.state != "up" and self._proven_up(s):
            was_down, since = self.state == "down", _time(self.since)
            self.state, self.since = "up", max(x.first_pass_at or "" for x in
                                               self.streaks.values())
            return (Event.RECOVERED, since) if was_down else None
        return None

    def _proven_up(self, s: Hysteresis) -> bool:
        """Every job of the endpoint vouches for it: each required check (its own and those
        run as often, the context fit) passed ``up_after`` times in a row, so did the check
        that took it down, and no check it has reported (a paid round trip on a longer
        schedule included) is failing at its latest result. Work per result: the
        endpoint's own checks, never the fleet."""
        streaks = self.streaks
        if any(streak.fails for streak in streaks.values()):
            return False
        needed = self.required or list(streaks)
        if self.state == "down" and self.check is not None and self.check in streaks:
            needed = [*needed, self.check]
        return all(name in streaks and streaks[name].passes >= s.up_after for name in needed)

    def not_observed(self, s: Hysteresis, r: ProbeResult) -> None:
        self.unobserved += 1
        if self.state == "up" and self.unobserved >= s.down_after:
            self.state, self.since = "unknown", r.started_at.isoformat()
            self.check, self.outcome = r.check, str(r.outcome)

    def forget_checks(self, keep: set[str]) -> None:
        for name in [n for n in self.streaks if n not in keep]:
            del self.streaks[name]


@dataclass(slots=True)
class Maintenance:
    """The window an endpoint is in, and what its checks showed meanwhile."""

    key: str
    name: str
    reason: str
    origin: str
    since: str
    until: str | None
    results: int = 0
    failed: int = 0
    last: dict[str, str] = field(default_factory=dict)  # check -> its latest outcome

    @classmethod
    def of(cls, window: Window, at: datetime) -> Maintenance:
        return cls(window.key, window.name, window.reason, window.origin, at.isoformat(),
                   window.end.isoformat() if window.end else None)


@dataclass(slots=True)
class EndpointVerdict:
    availability: Track = field(default_factory=Track)
    prompts: dict[str, Track] = field(default_factory=dict)
    model: str | None = None
    max_model_len: int | None = None
    model_row: int | None = None
    # when the served model or context last changed (ISO time): a reading from before it
    # (results replayed from before a restored state) is history already judged
    model_at: str | None = None
    subject: str | None = None  # how ledger entries name the endpoint (kept after it is gone)
    origin: str | None = None  # "config" or "discovery": where the endpoint came from
    # check -> what the check remembers across runs and restarts (streaks over readings)
    durable: dict[str, dict[str, Any]] = field(default_factory=dict)
    maintenance: Maintenance | None = None
    # The fleet incident the endpoint's current (or last) failure belongs to, by id: its
    # down, persistent and recovered entries cite it (set by the incident tracker).
    incident: str | None = None

    @property
    def state(self) -> State:
        if self.maintenance is not None:
            return State.MAINTENANCE
        return self.checks_state

    @property
    def checks_state(self) -> State:
        """What the checks show, maintenance or not."""
        if self.availability.state == "down":
            return State.DOWN
        if self.availability.state != "up":
            return State.UNKNOWN
        for track in self.prompts.values():  # (a loop: read per result, no generator)
            if track.state == "down":
                return State.DEGRADED
        return State.UP

    @property
    def since(self) -> str | None:
        """When the current state began (ISO time), when known."""
        state = self.state
        if state is State.MAINTENANCE:
            assert self.maintenance is not None
            return self.maintenance.since
        if state is State.DEGRADED:
            return min(t.since or "" for t in self.prompts.values() if t.state == "down") or None
        return self.availability.since

    @property
    def cause(self) -> Cause | None:
        """Why the endpoint is not up (None when up, or unknown for want of evidence)."""
        state = self.checks_state
        if state is State.DEGRADED:
            check, track = min((c, t) for c, t in self.prompts.items() if t.state == "down")
            return Cause(check, track.outcome or "")
        track = self.availability
        if state is State.UP or track.check is None or track.outcome is None:
            return None
        return Cause(track.check, track.outcome)

    def track_of(self, r: ProbeResult) -> Track | None:
        """The one track ``r`` feeds: its governed answer's (None before its first
        result), else availability; the other tracks are left as they were."""
        return self.prompts.get(r.check) if r.role is CheckRole.ANSWERS else self.availability

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": str(self.state)}

    def encoded(self) -> Encoded:
        """What the ledger keeps with every result: the state and ``to_json()`` as sorted
        JSON text, written by walking the verdict in place (no deep copy): the same text as
        ``json.dumps(self.to_json(), sort_keys=True)``, at a fraction of the cost."""
        state = str(self.state)
        data = {name: getattr(self, name) for name in _FIELDS[EndpointVerdict]}
        data["state"] = state
        return Encoded(state, _ENCODER.encode(data))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointVerdict:
        return cls(availability=Track.from_json(data.get("availability", {})),
                   prompts={k: Track.from_json(v) for k, v in data.get("prompts", {}).items()},
                   model=data.get("model"), max_model_len=data.get("max_model_len"),
                   model_row=data.get("model_row"), model_at=data.get("model_at"),
                   subject=data.get("subject"),
                   origin=data.get("origin"), durable=dict(data.get("durable") or {}),
                   maintenance=Maintenance(**data["maintenance"])
                   if data.get("maintenance") else None,
                   incident=data.get("incident"))

    def plan(self, planned: set[str], required: tuple[str, ...]) -> None:
        """Checks no longer planned must not hold a recovery back forever; ``required``
        (the checks of every job run at the endpoint's interval: its own, the context fit;
        never a governed answer) must all have passed before it is up. Checks on longer
        schedules (a paid round trip, an active context probe) can take it down and, while
        failing, hold it down, but do not hold its first "up" back for their interval."""
        self.availability.forget_checks(planned)
        self.availability.required = required
        for name in [p for p in self.prompts if p not in planned]:
            del self.prompts[name]
        for name in [c for c in self.durable if c not in planned]:
            del self.durable[name]

    def observe(self, r: ProbeResult, row: int | None, s: Hysteresis) -> list[Transition]:
        """Feed one result; the transitions worth an entry (never one per result). Inside a
        maintenance window the tracks go on, but only facts (model, context) are recorded."""
        out = self._judge(r, row, s)
        window = self.maintenance
        if window is None:
            return out
        window.results += 1
        window.failed += 0 if r.ok else 1
        window.last[r.check] = str(r.outcome)
        return [t for t in out if t.event not in SILENCED_IN_MAINTENANCE]

    def enter_maintenance(self, endpoint: str, window: Window, at: datetime,
                          url: str | None = None) -> list[Transition]:
        """The endpoint is in ``window`` from ``at``: one "maintenance started" entry."""
        current = self.maintenance
        if current is not None and current.key == window.key:
            return []
        out = self.leave_maintenance(endpoint, at, url) if current is not None else []
        self.maintenance = Maintenance.of(window, at)
        return [*out, Transition(Event.MAINTENANCE_STARTED, endpoint, at, url=url, new=window,
                                 old=str(self.checks_state))]

    def leave_maintenance(self, endpoint: str, at: datetime,
                          url: str | None = None) -> list[Transition]:
        """The window is over: one "maintenance ended" entry saying what was observed, then
        the state the checks show, at once: still failing is down (or degraded) now."""
        window = self.maintenance
        if window is None:
            return []
        self.maintenance = None
        out = [Transition(Event.MAINTENANCE_ENDED, endpoint, at, url=url, old=window,
                          new=self._after_window(window), since=_time(window.since))]
        track = self.availability
        failing = [(c, o) for c, o in sorted(window.last.items())
                   if o != Outcome.OK and o not in NOT_OBSERVED and c in track.streaks
                   and track.streaks[c].fails > 0]
        if failing:
            check, outcome = failing[0]
            streak = track.streaks[check]
            track.state, track.check, track.outcome = "down", check, outcome
            track.since, track.first_row = streak.first_fail_at, streak.first_fail_row
            track.persistent_noted = False
            out.append(Transition(Event.DOWN, endpoint, at, check, outcome, track.first_row,
                                  None, url, since=_time(track.since), old=AFTER_WINDOW))
        elif self.checks_state is State.DEGRADED:
            check, prompt = min((c, t) for c, t in self.prompts.items() if t.state == "down")
            out.append(Transition(Event.DEGRADED, endpoint, at, check, prompt.outcome,
                                  prompt.first_row, None, url, since=_time(prompt.since)))
        return out

    def _after_window(self, window: Maintenance) -> str:
        """What the checks showed by the end of the window, in words."""
        if window.results == 0:
            return "nothing was observed during the window"
        failing = sorted(f"{c}: {o}" for c, o in window.last.items()
                         if o != Outcome.OK and o not in NOT_OBSERVED)
        state = self.checks_state
        if state is State.UP and not failing:
            return "came back healthy"
        if failing:
            return f"still failing at the end ({', '.join(failing)})"
        if state is State.DEGRADED:
            return "degraded at the end"
        return "not yet confirmed healthy at the end (state " + str(state) + ")"

    def _judge(self, r: ProbeResult, row: int | None, s: Hysteresis) -> list[Transition]:
        answer = r.role is CheckRole.ANSWERS
        # the state before, when it is needed: an answer's event depends on it, and a result
        # of availability asks only whether it was unknown (its track neither up nor down)
        before = self.checks_state if answer else None
        was = self.availability.state
        track = self.prompts.setdefault(r.check, Track()) if answer else self.availability
        out = self._facts(r, row)
        if r.outcome in NOT_OBSERVED or (answer and r.outcome in ANSWER_UNREACHABLE):
            track.not_observed(s, r)
            return out
        changed = track.observe(r, row, s, persistent=not answer)
        if changed is None and (answer or was in ("up", "down")):
            return out  # no event, and not up at last: the state is not read again
        after = self.checks_state
        if changed is not None:
            event, since = changed
            if before is not None:  # (an answer's)
                event = self._answer_event(event, before, after)
            ended = event in (Event.RECOVERED, Event.RESTORED, Event.PROMPT_PASSING)
            out.append(Transition(
                event, r.endpoint, r.started_at, r.check,
                track.outcome if ended else r.outcome, track.first_row, row, r.url, r.message,
                r.http_status, since,
                # a recovery's downtime ends at the first pass after which everything passed
                until=_time(track.since) if ended else None))
        if not answer and was not in ("up", "down") and after is State.DEGRADED:  # (unknown)
            out.append(self._became_degraded(r))  # up at last, with an answer already failing
        return out

    def _answer_event(self, track_event: Event, before: State, after: State) -> Event:
        """A prompt's track changed: the endpoint's own event when its state changed with
        it (into degraded, degraded -> up), else the prompt's."""
        if after is State.DEGRADED and before is not State.DEGRADED:
            return Event.DEGRADED
        if before is State.DEGRADED and after is State.UP:
            return Event.RESTORED
        return Event.PROMPT_FAILING if track_event is Event.DOWN else Event.PROMPT_PASSING

    def _became_degraded(self, r: ProbeResult) -> Transition:
        check, track = min((c, t) for c, t in self.prompts.items() if t.state == "down")
        return Transition(Event.DEGRADED, r.endpoint, r.started_at, check, track.outcome,
                          track.first_row, None, r.url, since=_time(track.since))

    def _facts(self, r: ProbeResult, row: int | None) -> list[Transition]:
        """Served model and context length, compared with what was last seen."""
        if r.role is not CheckRole.SERVED_MODEL:
            return []
        out: list[Transition] = []
        model, max_len = r.details.get("model"), r.details.get("max_model_len")
        if self.model_at is not None and r.started_at < datetime.fromisoformat(self.model_at):
            return out  # read before what the verdict knows: not news
        if (model is not None and model != self.model) or \
                (max_len is not None and max_len != self.max_model_len):
            self.model_at = r.started_at.isoformat()  # only when it changes: ~3 us
        for event, old, new in ((Event.MODEL_CHANGED, self.model, model),
                                (Event.CONTEXT_CHANGED, self.max_model_len, max_len)):
            if old is not None and new is not None and old != new:
                out.append(Transition(event, r.endpoint, r.started_at, r.check, r.outcome,
                                      self.model_row, row, r.url, old=old, new=new))
        if model is not None:
            self.model, self.model_row = model, row
        if max_len is not None:
            self.max_model_len = max_len
        return out


@dataclass(frozen=True, slots=True)
class Encoded:
    """An endpoint's verdict as the ledger stores it: its state and its JSON text."""

    state: str
    text: str


_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (Streak, Track, Maintenance,
                                                            EndpointVerdict)}


def _plain(value: Any) -> Any:
    """The JSON encoder's hook for the verdict's own records: their fields, in place."""
    names = _FIELDS.get(type(value))
    if names is None:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return {name: getattr(value, name) for name in names}


_ENCODER = json.JSONEncoder(sort_keys=True, default=_plain)


@dataclass(frozen=True, slots=True)
class SweepVerdict:
    """One sweep's verdict on one endpoint (no hysteresis): ``once`` and ``gate``."""

    state: State
    cause: Cause | None = None
    message: str = ""


def instant(results: Iterable[ProbeResult]) -> SweepVerdict:
    """The state one set of results shows: any failing availability check is down; any
    check that observed nothing (or a condition not yet confirmed) is unknown; a failing
    governed answer from a reachable server is degraded; up needs every check to pass, and
    no result at all is not a pass."""
    down: ProbeResult | None = None
    unknown: ProbeResult | None = None
    degraded: ProbeResult | None = None
    seen = False
    for r in results:
        seen = True
        if r.ok:
            continue
        answer = r.role is CheckRole.ANSWERS
        if r.outcome in NOT_OBSERVED or (answer and r.outcome in ANSWER_UNREACHABLE):
            unknown = unknown or r
        elif answer:
            degraded = degraded or r
        else:
            down = down or r
    for state, worst in ((State.DOWN, down), (State.UNKNOWN, unknown),
                         (State.DEGRADED, degraded)):
        if worst is not None:
            return SweepVerdict(state, Cause(worst.check, str(worst.outcome)), worst.message)
    if not seen:
        return SweepVerdict(State.UNKNOWN, None, "no check ran")
    return SweepVerdict(State.UP)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
