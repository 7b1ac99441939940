"""The ledger as the daemon feeds it: each result with the transitions its endpoint's verdict
went through (``probe.verdict``), phrased as drafts and handed, with the verdict to keep, to
the book's writer; and the endpoints that appeared in or disappeared from the plan.

The verdict goes with its entries at once; one whose streaks only moved on waits and is kept
at most once per ``SAVE_EVERY_S`` (and at shutdown, ``flush``): a crash loses at most that
much streak progress, never an entry or the state it left. Runs in the event loop thread and
never touches the disk itself.
"""

from __future__ import annotations

import asyncio
import time
import zlib
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
from probe.verdict import (
    INCIDENT_EVENTS,
    Encoded,
    EndpointVerdict,
    Event,
    Transition,
)

VerdictOf = Callable[[str], "EndpointVerdict | None"]
# A verdict whose streaks moved on without an entry (most results) is kept at most once per
# SAVE_EVERY_S: in its endpoint's own slot of every SAVE_EVERY_S (one of SLOTS), if it
# changed since it was last kept. Encoding every changed verdict once a second cost 8 % of
# the daemon's CPU at 10,000 default pods (each endpoint once per interval); the slots, fixed
# per endpoint, spread the saves evenly (a wait from each verdict's first change made them
# come in waves: every endpoint within the same interval). A restart after a crash (SIGKILL,
# power) goes on from streaks at most this old; a transition (an entry), a new state or
# fleet incident is kept at once. BENCHMARKS.md ("Verdicts kept once a minute") has figures.
SAVE_EVERY_S = 60.0
SAVE_SLOT_S = 1.0  # the save timer's tick: the verdicts of one slot, one batch
SLOTS = int(SAVE_EVERY_S / SAVE_SLOT_S)


def slot_of(endpoint: str) -> int:
    """The endpoint's save slot: the same in every run (CRC-32 of its name)."""
    return zlib.crc32(endpoint.encode()) % SLOTS


class Waiting:
    """Verdicts to keep that changed since they were last handed to the book, by save slot
    (O(1) per result)."""

    def __init__(self) -> None:
        self.slots: list[dict[str, EndpointVerdict]] = [{} for _ in range(SLOTS)]
        self._slot: dict[str, int] = {}  # each endpoint's, computed once

    def slot(self, endpoint: str) -> int:
        slot = self._slot.get(endpoint)
        if slot is None:
            slot = self._slot[endpoint] = slot_of(endpoint)
        return slot

    def add(self, endpoint: str, verdict: EndpointVerdict) -> None:
        self.slots[self.slot(endpoint)][endpoint] = verdict

    def discard(self, endpoint: str) -> None:
        """Kept now (with an entry) or gone: no longer waits."""
        self.slots[self.slot(endpoint)].pop(endpoint, None)

    def take(self, slot: int) -> dict[str, EndpointVerdict]:
        taken, self.slots[slot] = self.slots[slot], {}
        return taken

    def take_all(self) -> dict[str, EndpointVerdict]:
        taken: dict[str, EndpointVerdict] = {}
        for slot in range(SLOTS):
            taken.update(self.take(slot))
        return taken

    def __bool__(self) -> bool:
        return any(self.slots)


class Ledger:
    """``standing``: endpoints that report results without being configured (discovery's
    check of RunPod's API), with how entries name them; they never appear in or disappear
    from the config. ``clock``: the event loop's (monotonic) time, which says which save
    slot is due."""

    def __init__(self, book: LedgerBook, redact: Callable[[str], str] = lambda text: text,
                 standing: Mapping[str, str] = MappingProxyType({}),
                 baselines: Baselines | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.book = book
        self.clock = clock
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
        self._waiting = Waiting()
        self._saving: asyncio.TimerHandle | None = None
        self._taken: int | None = None  # the last tick whose slot was handed to the book
        # what the book keeps of each endpoint that a restart must find as it was, kept at
        # once when it changes: its availability (up, down, unknown: it changes without an
        # entry from unknown to up, and inside a maintenance window) and the fleet incident
        # its failure belongs to. A prompt's track changes with an entry, but inside a
        # window, where it waits like a streak (the window's end is an entry).
        self._kept: dict[str, tuple[str, str | None]] = {
            name: _standing(v) for name, v in self.saved.items()}

    def judged(self, result: ProbeResult, row_id: int | None, transitions: list[Transition],
               verdict: EndpointVerdict | None) -> list[LedgerDraft]:
        """Entries for what changed, and the verdict to keep (its streaks must survive a
        restart: with its entries at once, else within ``SAVE_EVERY_S``), and a regression
        against the endpoint's own baseline when one starts or stops holding (O(1) per
        result: ``probe.ledger.baselines``)."""
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
        if not transitions and not found:  # most results: only streaks moved on
            if (verdict.availability.state, verdict.incident) == self._kept.get(endpoint):
                self._waiting.add(endpoint, verdict)
                if self._saving is None:
                    self._save_soon()
            else:  # a new state or incident without an entry (unknown to up): at once
                self._submit({endpoint: self._encoded(endpoint, verdict)}, [])
            return []
        drafts = [self._draft(t, verdict.subject or t.endpoint, verdict.incident)
                  for t in transitions]
        drafts += [self._redacted(d) for d in found]
        self._submit({endpoint: self._encoded(endpoint, verdict)}, drafts)
        return drafts

    def _save_soon(self) -> None:
        """The save timer, at the next slot's tick."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the loop (a one-off sweep, a test): at once
            self.flush()
            return
        now = self.clock()
        tick = int(now // SAVE_SLOT_S)
        if self._taken is None or self._taken < tick - 1:  # (re)started: slots from now on
            self._taken = tick - 1
        self._saving = loop.call_later((tick + 1) * SAVE_SLOT_S - now, self.save_due)

    def save_due(self) -> None:
        """Hand the book, in one batch, the verdicts of the slots whose tick came since the
        last time (the save timer's, in the loop's thread; each slot once per
        ``SAVE_EVERY_S``)."""
        self._saving = None
        tick = int(self.clock() // SAVE_SLOT_S)
        taken = tick - 1 if self._taken is None else self._taken
        states = {}
        for due in range(max(taken + 1, tick - SLOTS + 1), tick + 1):
            for name, verdict in self._waiting.take(due % SLOTS).items():
                states[name] = self._encoded(name, verdict)
        self._taken = max(taken, tick)
        if states:
            self.book.submit(states, [])
        if self._waiting:
            self._save_soon()

    def flush(self) -> None:
        """Hand every verdict still waiting to the book, its slot's tick come or not (in the
        loop's thread: at shutdown, before the book closes)."""
        if self._saving is not None:
            self._saving.cancel()
            self._saving = None
        waiting = self._waiting.take_all()
        if waiting:
            self.book.submit({name: self._encoded(name, verdict)
                              for name, verdict in waiting.items()}, [])

    def _encoded(self, endpoint: str, verdict: EndpointVerdict) -> Encoded:
        self._kept[endpoint] = _standing(verdict)
        return verdict.encoded()

    def _submit(self, states: Mapping[str, Any], drafts: list[LedgerDraft]) -> None:
        for name in states:  # what is submitted now supersedes what waits
            self._waiting.discard(name)
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
                self._kept[name] = _standing(verdict)
        for name in [n for n in self.known if n not in configured and n not in self.standing]:
            who, origin = self.known.pop(name)
            drafts.append(self._draft(Transition(Event.DISAPPEARED, name, now,
                                                 origin or "config"), who or name))
            changes[name] = None
            self._kept.pop(name, None)
        self._submit(changes, drafts)
        return drafts

    def _draft(self, t: Transition, who: str, incident: str | None = None) -> LedgerDraft:
        return self._redacted(draft(t, who, self.kinds.get(t.endpoint), incident))

    def _redacted(self, d: LedgerDraft) -> LedgerDraft:
        # results are redacted already; patterns quote messages, so scrub again
        url = self.redact(d.evidence.url) if d.evidence.url else None
        return replace(d, pattern=self.redact(d.pattern), evidence=replace(d.evidence, url=url))


def _standing(verdict: EndpointVerdict) -> tuple[str, str | None]:
    """What of a verdict is kept at once when it changes (``Ledger._kept``)."""
    return verdict.availability.state, verdict.incident
