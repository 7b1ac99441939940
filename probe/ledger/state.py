"""Per-endpoint state with hysteresis: what the ledger believes about each endpoint.

An endpoint goes ``down`` after ``down_after`` consecutive failing results of one of its
checks and comes back ``up`` after ``up_after`` consecutive passes of every check it has
reported; in between it keeps its state, so flapping is collapsed. Results that observed
nothing (``NOT_OBSERVED``: control plane unreachable, rate limited, skipped) count toward
neither; enough of them in a row make an ``up`` endpoint ``unknown`` (it can no longer be
vouched for), while a ``down`` one stays down until passes prove otherwise (fail closed).
Test prompts (checks named ``prompt:<name>``) get their own track each, so a wrong answer
is a finding about the prompt, not an outage. The state is plain data that survives a
restart as JSON; ``observe`` returns the ``Transition``s worth an entry, never every result.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from probe.config.model import Config
from probe.outcome import NOT_OBSERVED, Outcome, ProbeResult

PROMPT_PREFIX = "prompt:"
# A prompt that could not reach the server says nothing about the answer: the endpoint's own
# checks report that outage, once, instead of one more entry per prompt. (A prompt timing
# out or answering 5xx while the server is reachable stays a finding: a hung engine.)
PROMPT_UNREACHABLE = frozenset({Outcome.HTTP_404, Outcome.HTTP_502, Outcome.CONNECT_ERROR,
                                Outcome.TLS_ERROR, Outcome.UNAUTHORIZED})
MODELS_CHECK = "models"


class Event(enum.StrEnum):
    DOWN = "down"
    RECOVERED = "recovered"
    PERSISTENT = "persistent"
    PROMPT_FAILING = "prompt_failing"
    PROMPT_PASSING = "prompt_passing"
    CONTEXT_CHANGED = "context_changed"
    MODEL_CHANGED = "model_changed"
    APPEARED = "appeared"
    DISAPPEARED = "disappeared"


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """The ``ledger:`` section."""

    down_after: int = 3
    up_after: int = 2
    persistent_after_s: float = 1800.0

    @classmethod
    def of(cls, config: Config) -> LedgerSettings:
        settings = config.sections.get("ledger")
        return settings if isinstance(settings, LedgerSettings) else cls()


@dataclass(frozen=True, slots=True)
class Transition:
    """A change worth recording, with what rules.py needs to phrase it."""

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
    outcome: str | None = None  # what took it down
    check: str | None = None
    first_row: int | None = None
    persistent_noted: bool = False
    unobserved: int = 0
    streaks: dict[str, Streak] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Track:
        streaks = {k: Streak(**v) for k, v in data.get("streaks", {}).items()}
        return cls(**{**data, "streaks": streaks})

    def observe(self, r: ProbeResult, row: int | None, s: LedgerSettings,
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
        if self.state != "up" and all(x.passes >= s.up_after for x in self.streaks.values()):
            was_down, since = self.state == "down", _time(self.since)
            self.state, self.since = "up", max(x.first_pass_at or "" for x in
                                               self.streaks.values())
            return (Event.RECOVERED, since) if was_down else None
        return None

    def not_observed(self, s: LedgerSettings, at: datetime) -> None:
        self.unobserved += 1
        if self.state == "up" and self.unobserved >= s.down_after:
            self.state, self.since = "unknown", at.isoformat()

    def forget_checks(self, keep: set[str]) -> None:
        for name in [n for n in self.streaks if n not in keep]:
            del self.streaks[name]


@dataclass(slots=True)
class EndpointState:
    availability: Track = field(default_factory=Track)
    prompts: dict[str, Track] = field(default_factory=dict)
    model: str | None = None
    max_model_len: int | None = None
    model_row: int | None = None
    subject: str | None = None  # how entries name the endpoint (kept for after it is gone)
    origin: str | None = None  # "config" or "discovery": where the endpoint came from

    @property
    def state(self) -> str:
        return self.availability.state

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointState:
        return cls(availability=Track.from_json(data.get("availability", {})),
                   prompts={k: Track.from_json(v) for k, v in data.get("prompts", {}).items()},
                   model=data.get("model"), max_model_len=data.get("max_model_len"),
                   model_row=data.get("model_row"), subject=data.get("subject"),
                   origin=data.get("origin"))

    def observe(self, r: ProbeResult, row: int | None,
                s: LedgerSettings) -> list[Transition]:
        prompt = r.check.startswith(PROMPT_PREFIX)
        track = self.prompts.setdefault(r.check, Track()) if prompt else self.availability
        out = self._facts(r, row)
        if r.outcome in NOT_OBSERVED or (prompt and r.outcome in PROMPT_UNREACHABLE):
            track.not_observed(s, r.started_at)
            return out
        changed = track.observe(r, row, s, persistent=not prompt)
        if changed is None:
            return out
        event, since = changed
        if prompt:
            event = Event.PROMPT_FAILING if event is Event.DOWN else Event.PROMPT_PASSING
        ended = event in (Event.RECOVERED, Event.PROMPT_PASSING)
        out.append(Transition(
            event, r.endpoint, r.started_at, r.check,
            track.outcome if ended else r.outcome, track.first_row, row, r.url, r.message,
            r.http_status, since,
            # a recovery's downtime ends at the first pass after which everything passed
            until=_time(track.since) if ended else None))
        return out

    def _facts(self, r: ProbeResult, row: int | None) -> list[Transition]:
        """Served model and context length, compared with what was last seen."""
        if r.check != MODELS_CHECK:
            return []
        out = []
        model, max_len = r.details.get("model"), r.details.get("max_model_len")
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


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
