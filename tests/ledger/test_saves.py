"""How often the ledger keeps each endpoint's verdict (its streaks survive a restart): with
its entries at once; a new state or fleet incident at once; otherwise at most once per
``SAVE_EVERY_S``, in the endpoint's own slot; everything still waiting at shutdown.

A fake clock drives the ledger; the save timer's callback is called at each tick while the
timer is set, as the event loop would call it (no sleeps). One test lets a real loop fire it.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from helpers import parse_config
from ledgerhelpers import T0, Wired, result, sync

from probe.ledger.book import LedgerBook
from probe.ledger.observer import SAVE_EVERY_S, SLOTS, Ledger, slot_of
from probe.outcome import Outcome
from probe.verdict import Encoded, EndpointVerdict
from probe.verdict import Hysteresis as LedgerSettings

ENV = {"RUNPOD_API_KEY": "test-key-0000"}
START = 6000.0  # the fake clock's first reading: a tick of slot 0 (6000 = 100 x 60)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Book:
    """What the ledger hands its book, with the clock's time: (time, endpoint, state,
    the events of the entries it came with)."""

    states: dict[str, Any] = {}  # nothing kept from before

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.kept: list[tuple[float, str, Any, list[str]]] = []

    def submit(self, states: dict[str, Any], drafts: list[Any]) -> None:
        events = [str(d.event) for d in drafts]
        for name, data in states.items():
            self.kept.append((self.clock.now, name, data, events))

    def keep_hours(self, *_: Any) -> None:
        pass

    def of(self, name: str, since: float = 0.0) -> list[tuple[float, Any, list[str]]]:
        return [(t, data, events) for t, n, data, events in self.kept if n == name and t >= since]


def config(tmp_path: Path, *pods: str) -> Any:
    rows = "".join(f"  - {{name: {p}, kind: pod, pod_id: id-{p}, checks: [models]}}\n"
                   for p in pods)
    return parse_config(f"storage: {{path: {tmp_path / 'p.db'}}}\nendpoints:\n{rows}", env=ENV)


def tick_until(ledger: Ledger, clock: Clock, until: float) -> None:
    """The loop's part: time passes second by second; the save timer, when set, fires at
    its tick."""
    while clock.now < until:
        clock.now = math.floor(clock.now) + 1.0
        if ledger._saving is not None:
            ledger.save_due()


def passes(data: Encoded) -> int:
    return int(json.loads(data.text)["availability"]["streaks"]["models"]["passes"])


def test_streaks_are_kept_once_a_minute_in_the_endpoints_slot(tmp_path: Path) -> None:
    clock = Clock()
    book = Book(clock)

    async def scenario() -> list[float]:
        wired = Wired(book, LedgerSettings(up_after=1))
        wired.ledger.clock = clock
        sync(wired, config(tmp_path, "qwen"), now=T0)
        times = []
        for n in range(20):  # a result every 15 s for 5 minutes, each moving a streak on
            tick_until(wired.ledger, clock, START + 15 * n + 0.3)
            wired.observe(result(Outcome.OK, at=15 * n), n + 1)
            times.append(clock.now)
        tick_until(wired.ledger, clock, START + 15 * 20 + SAVE_EVERY_S)
        return times

    times = asyncio.run(scenario())
    (appeared, _, events), (up, data, no_entry), *later = book.of("qwen")
    assert events == ["appeared"] and no_entry == []
    assert (up, data.state, passes(data)) == (times[0], "up", 1), \
        "unknown to up has no entry and is kept at once"
    saved = [t for t, _, _ in later]
    assert all(events == [] for _, _, events in later)
    assert all(int(t) % SLOTS == slot_of("qwen") for t in saved), "in its own slot"
    assert all(b - a == SAVE_EVERY_S for a, b in pairwise(saved)), "once a minute"
    assert len(saved) == 6  # results over 285 s, the last one kept in the minute after
    for at in times[1:]:  # no change waits longer than a minute
        assert any(at <= t <= at + SAVE_EVERY_S for t in saved), at
    for t, data, _ in later:  # what is kept is the streak as it stood then
        assert passes(data) == sum(1 for at in times if at <= t)


def test_a_transition_is_kept_at_once_with_its_entry(tmp_path: Path) -> None:
    clock = Clock()
    book = Book(clock)

    async def scenario() -> None:
        wired = Wired(book, LedgerSettings(down_after=1, up_after=1))
        wired.ledger.clock = clock
        sync(wired, config(tmp_path, "qwen"), now=T0)
        wired.observe(result(Outcome.OK, at=0), 1)  # up: kept at once
        clock.now += 15.3
        wired.observe(result(Outcome.OK, at=15), 2)  # the streak moved on: waits
        assert [t for t, _, _ in book.of("qwen", since=clock.now)] == []
        clock.now += 1.1  # no tick between: the verdict still waits
        wired.observe(result(Outcome.HTTP_404, at=16), 3)
        ((at, data, events),) = book.of("qwen", since=clock.now)
        assert (at, data.state, events) == (clock.now, "down", ["down"])
        tick_until(wired.ledger, clock, clock.now + 2 * SAVE_EVERY_S)
        assert book.of("qwen", since=at + 0.5) == [], \
            "what waited was kept with the entry, not again in its slot"

    asyncio.run(scenario())


def test_a_new_fleet_incident_is_kept_with_the_next_result(tmp_path: Path) -> None:
    """The incident tracker marks a failing verdict with its incident; the next result
    keeps it at once (a restart resumes the incident under its id, not a new one)."""
    clock = Clock()
    book = Book(clock)

    async def scenario() -> None:
        wired = Wired(book, LedgerSettings(down_after=1))
        wired.ledger.clock = clock
        sync(wired, config(tmp_path, "qwen"), now=T0)
        wired.observe(result(Outcome.HTTP_404, at=0), 1)  # down: kept with its entry
        clock.now += 15.3
        verdict = wired.state.verdict("qwen")
        assert verdict is not None
        verdict.incident = "eu-ro-1/http_404/2026-02-18T09:00:15"  # as the tracker marks it
        wired.observe(result(Outcome.HTTP_404, at=15), 2)
        ((at, data, events),) = book.of("qwen", since=clock.now)
        assert at == clock.now and events == []
        assert json.loads(data.text)["incident"] == verdict.incident

    asyncio.run(scenario())


def test_saves_are_spread_over_the_minute(tmp_path: Path) -> None:
    """600 endpoints with a result every 15 s: each kept at most once a minute, about as many
    in every second (their slots), none in waves."""
    clock = Clock()
    book = Book(clock)
    names = [f"pod-{i:05d}" for i in range(600)]
    verdicts = {name: EndpointVerdict() for name in names}

    async def scenario() -> None:
        ledger = Ledger(book, clock=clock)  # type: ignore[arg-type]
        for second in range(300):
            tick_until(ledger, clock, START + second)
            for i, name in enumerate(names):
                if i % 15 == second % 15:
                    ledger.changed(name, [], verdicts[name])

    asyncio.run(scenario())
    first = {name: t for t, name, _, _ in reversed(book.kept)}
    later = [(t, name) for t, name, _, _ in book.kept if t > first[name]]
    per_name: dict[str, list[float]] = {}
    for t, name in later:
        per_name.setdefault(name, []).append(t)
    assert all(b - a >= SAVE_EVERY_S for ts in per_name.values() for a, b in pairwise(ts))
    steady = Counter(int(t) for t, _ in later if START + 120 <= t < START + 240)
    assert sum(steady.values()) == 2 * len(names), "each once a minute"
    assert max(steady.values()) <= 2 * len(names) / SLOTS, steady.most_common(3)


def test_slots_are_even_over_a_large_fleet() -> None:
    counts = Counter(slot_of(f"pod-{i:05d}") for i in range(10_000))
    mean = 10_000 / SLOTS
    assert len(counts) == SLOTS
    assert 0.8 * mean <= min(counts.values()) and max(counts.values()) <= 1.2 * mean


def test_a_restarted_timer_does_not_keep_a_verdict_early(tmp_path: Path) -> None:
    """Kept in its slot, then changed again in the same second: the timer, stopped because
    nothing waited, starts again, and the verdict waits for its slot's next tick."""
    clock = Clock()
    book = Book(clock)
    name = next(f"pod-{i}" for i in range(1000) if slot_of(f"pod-{i}") == 5)
    verdict = EndpointVerdict()

    async def scenario() -> None:
        ledger = Ledger(book, clock=clock)  # type: ignore[arg-type]
        ledger.changed(name, [], verdict)  # first sight: kept at once
        clock.now += 0.5
        ledger.changed(name, [], verdict)  # waits for slot 5
        tick_until(ledger, clock, START + 5)
        assert [t for t, _, _ in book.of(name)] == [START, START + 5]
        assert ledger._saving is None, "nothing waits: the timer stopped"
        clock.now += 0.5
        ledger.changed(name, [], verdict)
        tick_until(ledger, clock, START + 5 + SAVE_EVERY_S)
        assert [t for t, _, _ in book.of(name)] == [START, START + 5, START + 5 + SAVE_EVERY_S]

    asyncio.run(scenario())


def test_a_real_loop_fires_the_save_timer_in_the_slot(tmp_path: Path) -> None:
    saved: list[tuple[int, dict[str, Any]]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        handed = asyncio.Event()

        class Handed:
            states: dict[str, Any] = {}

            def submit(self, states: dict[str, Any], drafts: list[Any]) -> None:
                saved.append((int(loop.time() // 1), dict(states)))
                handed.set()

        ledger = Ledger(Handed(), clock=loop.time)  # type: ignore[arg-type]
        upcoming = int(loop.time()) + 2  # the slot of a tick a second or two away
        name = next(f"pod-{i}" for i in range(1000) if slot_of(f"pod-{i}") == upcoming % SLOTS)
        verdict = EndpointVerdict()
        ledger.changed(name, [], verdict)  # first sight: kept at once
        handed.clear()
        ledger.changed(name, [], verdict)
        await asyncio.wait_for(handed.wait(), timeout=10)
        assert saved[-1][1].keys() == {name}
        assert saved[-1][0] % SLOTS == slot_of(name)

    asyncio.run(scenario())


def test_a_burst_is_kept_once_and_what_waits_is_kept_at_close(tmp_path: Path) -> None:
    """In the loop, a pod's checks answering together move its streaks on several times:
    nothing is encoded per result; what still waits is kept by ``flush`` (at shutdown,
    before the book closes) and survives the restart."""
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    wired = Wired(book)
    sync(wired, config(tmp_path, "qwen"), now=T0)
    submitted: list[dict[str, object]] = []
    submit = book.submit
    book.submit = lambda states, drafts: (submitted.append(dict(states)),  # type: ignore
                                          submit(states, drafts))

    async def burst() -> None:
        wired.observe(result(Outcome.OK, at=60), 1)
        wired.observe(result(Outcome.OK, at=61), 2)  # up: kept at once
        assert [list(states) for states in submitted] == [["qwen"]]
        for n in range(3):  # ok after ok: no entry, only the streak changes
            wired.observe(result(Outcome.OK, at=62 + n), n + 3)
        assert len(submitted) == 1, "waiting, not encoded per result"
        wired.ledger.flush()

    asyncio.run(burst())
    assert [list(states) for states in submitted] == [["qwen"], ["qwen"]]
    kept = submitted[1]["qwen"]
    assert isinstance(kept, Encoded)
    assert kept.text == wired.state.verdict("qwen").encoded().text  # type: ignore[union-attr]
    assert passes(kept) == 5
    book.close()
    again = Wired(LedgerBook(tmp_path / "p.db", batch_interval_s=0.01))
    assert again.ledger.saved["qwen"].encoded().text == kept.text
    again.ledger.book.close()
