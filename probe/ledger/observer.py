"""The ledger as the daemon feeds it: each result with the transitions its endpoint's verdict
went through (``probe.verdict``), phrased as drafts and handed, with the verdict to keep, to
the book's writer; and the endpoints that appeared in or disappeared from the plan.

Runs in the event loop thread and never touches the disk itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from probe.config.model import Config
from probe.job import Job
from probe.ledger.baselines import Baselines
from probe.ledger.book import LedgerBook
from probe.ledger.chain import LedgerDraft
from probe.ledger.rules import draft, subject
from probe.outcome import ProbeResult
from probe.verdict import INCIDENT_EVENTS, EndpointVerdict, Event, Transition

VerdictOf = Callable[[str], "EndpointVerdict | None"]
# A verdict that changed without an entry is kept at most this much later (once for every
# result of the endpoint that came in meanwhile): a pod's checks answer together, so its
# verdict was encoded once per check; at 2,000 default pods that was 9 % of the daemon's CPU.
SAVE_AFTER_S = 1.0


class Ledger:
    """``standing``: endpoints that report results without being configured (discovery's
    check of RunPod's API), with how entries name them; they never appear in or disappear
    from the config."""

    def __init__(self, book: LedgerBook, redact: Callable[[str], str] = lambda text: text,
                 standing: Mapping[str, str] = MappingProxyType({}),
                 baselines: Baselines | None = None) -> None:
        self.book = book
        self.baselines = baselines
        self.redact = redact
        self.standing = standing
        # what the book kept from before a restart: verdicts to restore, names already known
        self.saved = {name: EndpointVerdict.from_json(data)
                      for name, data in book.states.items()}
        self.known: dict[str, tuple[str | None, str | None]] = {
            name: (v.subject, v.origin) for name, v in self.saved.items()}
        # the kind of each planned endpoint: what a status means depends on it (a 404 from
        # RunPod's API is an unknown serverless id, from the proxy a stopped pod)
        self.kinds: dict[str, str] = {}
        # verdicts to keep that changed since they were last handed to the book (``flush``)
        self._unsaved: dict[str, EndpointVerdict] = {}
        self._saving: asyncio.TimerHandle | None = None

    def judged(self, result: ProbeResult, row_id: int | None, transitions: list[Transition],
               verdict: EndpointVerdict | None) -> list[LedgerDraft]:
        """Entries for what changed, and the verdict to keep (with every result: its streaks
        must survive a restart), and a regression against the endpoint's own baseline when
        one starts or stops holding (O(1) per result: ``probe.ledger.baselines``)."""
        baselines = self.baselines
        if baselines is not None and verdict is not None:
            baselines.observe(result, row_id, verdict.subject or result.endpoint)
            if baselines.pending():  # once an hour per series
                self.book.keep_hours(*baselines.take())
        return self.changed(result.endpoint, transitions, verdict)

    def changed(self, endpoint: str, transitions: list[Transition],
                verdict: EndpointVerdict | None,
                found: Sequence[LedgerDraft] = ()) -> list[LedgerDraft]:
        """Entries for what changed without a result (a maintenance window began or
        ended), and the verdict to keep; a fleet incident opened or closed (no verdict: its
        subject is the incident's scope)."""
        if verdict is None:
            drafts = [self._draft(t, t.endpoint) for t in transitions
                      if t.event in INCIDENT_EVENTS]
            if drafts:
                self._submit({}, drafts)
            return drafts
        if verdict.subject is None and endpoint in self.standing:
            verdict.subject = self.standing[endpoint]
        if not transitions and not found:  # most results: the verdict to keep, soon
            self._unsaved[endpoint] = verdict
            if self._saving is None:
                self._save_soon()
            return []
        drafts = [self._draft(t, verdict.subject or t.endpoint, verdict.incident)
                  for t in transitions]
        drafts += [self._redacted(d) for d in found]
        if drafts:
            self._submit({endpoint: verdict.encoded()}, drafts)
        else:
            self._unsaved[endpoint] = verdict
            self._save_soon()
        return drafts

    def _save_soon(self) -> None:
        if self._saving is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the loop (a one-off sweep, a test): at once
            self.flush()
            return
        self._saving = loop.call_later(SAVE_AFTER_S, self.flush)

    def flush(self) -> None:
        """Hand every changed verdict to the book (in the loop's thread; also at shutdown,
        before the book closes)."""
        if self._saving is not None:
            self._saving.cancel()
            self._saving = None
        if self._unsaved:
            unsaved, self._unsaved = self._unsaved, {}
            self.book.submit({name: verdict.encoded() for name, verdict in unsaved.items()}, [])

    def _submit(self, states: Mapping[str, Any], drafts: list[LedgerDraft]) -> None:
        for name in states:  # what is submitted now supersedes what waits
            self._unsaved.pop(name, None)
        self.book.submit(states, drafts)

    def sync_config(self, config: Config, jobs: Sequence[Job], verdict_of: VerdictOf,
                    now: datetime | None = None) -> list[LedgerDraft]:
        """Record endpoints that appeared in or disappeared from the plan since last time."""
        now = now or datetime.now(UTC)
        changes: dict[str, dict[str, Any] | None] = {}
        drafts = []
        planned = {job.endpoint.name for job in jobs}
        configured = {e.name: e for e in config.endpoints if e.name in planned}
        self.kinds = {name: endpoint.kind for name, endpoint in configured.items()}
        for name, endpoint in configured.items():
            who: str | None = subject(endpoint)
            if name not in self.known:
                drafts.append(self._draft(Transition(Event.APPEARED, name, now, endpoint.origin,
                                                     url=endpoint.display_url), who or name))
            self.known[name] = (who, endpoint.origin)
            verdict = verdict_of(name)
            if verdict is not None:
                verdict.subject, verdict.origin = who, endpoint.origin
                changes[name] = verdict.to_json()
        for name in [n for n in self.known if n not in configured and n not in self.standing]:
            who, origin = self.known.pop(name)
            drafts.append(self._draft(Transition(Event.DISAPPEARED, name, now,
                                                 origin or "config"), who or name))
            changes[name] = None
        self._submit(changes, drafts)
        return drafts

    def _draft(self, t: Transition, who: str, incident: str | None = None) -> LedgerDraft:
        return self._redacted(draft(t, who, self.kinds.get(t.endpoint), incident))

    def _redacted(self, d: LedgerDraft) -> LedgerDraft:
        # results are redacted already; patterns quote messages, so scrub again
        url = self.redact(d.evidence.url) if d.evidence.url else None
        return replace(d, pattern=self.redact(d.pattern), evidence=replace(d.evidence, url=url))
