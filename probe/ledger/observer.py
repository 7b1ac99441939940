"""The ledger as the prober sees it: feed results in, get entries for what changed.

Runs in the event loop thread and never touches the disk itself: it updates the
in-memory state, phrases transitions as drafts, and hands both to the book's writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

from probe.config.model import Config
from probe.job import Job
from probe.ledger.book import LedgerBook
from probe.ledger.chain import LedgerDraft
from probe.ledger.rules import draft, subject
from probe.ledger.state import EndpointState, Event, LedgerSettings, Transition
from probe.outcome import ProbeResult


class Ledger:
    """``standing``: endpoints that report results without being configured (discovery's
    check of RunPod's API), with how entries name them; they never appear in or disappear
    from the config."""

    def __init__(self, book: LedgerBook, settings: LedgerSettings | None = None,
                 redact: Callable[[str], str] = lambda text: text,
                 standing: Mapping[str, str] = MappingProxyType({})) -> None:
        self.book = book
        self.settings = settings or LedgerSettings()
        self.redact = redact
        self.standing = standing
        self.states = {name: EndpointState.from_json(data) for name, data in book.states.items()}

    def observe(self, result: ProbeResult, row_id: int | None) -> list[LedgerDraft]:
        state = self.states.setdefault(result.endpoint, EndpointState())
        if state.subject is None and result.endpoint in self.standing:
            state.subject = self.standing[result.endpoint]
        drafts = [self._draft(t, state) for t in state.observe(result, row_id, self.settings)]
        self.book.submit({result.endpoint: state.to_json()}, drafts)
        return drafts

    def sync_config(self, config: Config, jobs: Sequence[Job],
                    settings: LedgerSettings | None = None,
                    now: datetime | None = None) -> list[LedgerDraft]:
        """Record endpoints that appeared in or disappeared from the config since last time;
        ``jobs`` is the plan that runs (feature planners add checks: round trip, prompts)."""
        self.settings = settings or self.settings
        now = now or datetime.now(UTC)
        changes: dict[str, EndpointState | None] = {}
        drafts = []
        configured = {e.name: e for e in config.endpoints}
        planned: dict[str, set[str]] = {}
        for job in jobs:
            planned.setdefault(job.endpoint.name, set()).update(job.checks)
        for name, endpoint in configured.items():
            origin = endpoint.origin
            state = self.states.get(name)
            if state is None:
                state = self.states[name] = EndpointState()
                drafts.append(self._draft(Transition(Event.APPEARED, name, now, origin,
                                                     url=endpoint.display_url),
                                          state, subject(endpoint)))
            state.subject, state.origin = subject(endpoint), origin
            # checks dropped from the config must not hold a recovery back forever
            checks = planned.get(name, set(endpoint.checks))
            state.availability.forget_checks(checks)
            for prompt in [p for p in state.prompts if p not in checks]:
                del state.prompts[prompt]
            changes[name] = state
        for name in [n for n in self.states if n not in configured and n not in self.standing]:
            state = self.states.pop(name)
            drafts.append(self._draft(Transition(Event.DISAPPEARED, name, now,
                                                 state.origin or "config"), state))
            changes[name] = None
        self.book.submit({n: s.to_json() if s else None for n, s in changes.items()}, drafts)
        return drafts

    def current_states(self) -> dict[str, str]:
        """A fresh copy, safe to hand to the /metrics thread."""
        return {name: state.state for name, state in self.states.items()}

    def state_of(self, endpoint: str) -> str | None:
        state = self.states.get(endpoint)
        return state.state if state is not None else None

    def _draft(self, t: Transition, state: EndpointState, who: str | None = None) -> LedgerDraft:
        d = draft(t, who or state.subject or t.endpoint)
        # results are stored redacted already; patterns quote messages, so scrub again
        url = self.redact(d.evidence.url) if d.evidence.url else None
        return replace(d, pattern=self.redact(d.pattern), evidence=replace(d.evidence, url=url))

