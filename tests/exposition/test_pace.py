"""A scrape rendered in the event loop's thread yields after each slice: the loop's other work
gets up to three times the slice's CPU while it has any, and an idle loop is not waited for
(``probe.exposition.text.Pace``)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from probe.exposition import text
from probe.exposition.text import HANDED_MAX, PAUSE_SLICES, SLICE_MAX_S, SLICE_S, Pace, _in_loop
from probe.process import SWITCH_INTERVAL_S


def test_others_are_owed_three_times_the_slice_while_they_have_work() -> None:
    pace = Pace()
    pace.sliced(0.004)
    turns = 1
    while pace.yielded(0.001):  # every turn finds 1 ms of probes to run
        turns += 1
    assert turns == 12  # 12 ms: three times the 4 ms slice
    assert PAUSE_SLICES == 3


def test_a_turn_that_finds_nothing_waiting_ends_the_pause() -> None:
    pace = Pace()
    pace.sliced(0.004)
    assert pace.yielded(0.003)  # probes ran 3 ms: owed 9 more
    assert not pace.yielded(0.00005)  # nothing waited: the scrape goes on at once
    assert pace.owed == 0


def test_a_long_turn_pays_the_pause_at_once() -> None:
    pace = Pace()
    pace.sliced(0.002)
    assert not pace.yielded(0.010)  # others ran 10 ms in one turn: more than they were owed


def test_a_turn_longer_than_the_pause_lengthens_the_next_slice_by_its_share() -> None:
    pace = Pace()
    pace.sliced(0.004)  # others are owed 12 ms
    assert not pace.yielded(0.024)  # one turn of a backlog: twice what they were owed
    assert pace.slice_s == pytest.approx(0.008)  # a third of it: the scrape keeps its quarter
    pace.sliced(0.008)
    assert not pace.yielded(0.5)
    assert pace.slice_s == SLICE_MAX_S  # however long the turn, a slice is bounded
    pace.sliced(0.004)
    assert pace.yielded(0.006) and not pace.yielded(0.0066)
    assert pace.slice_s == pytest.approx(0.0042)  # many short turns: about the slice again
    pace.sliced(0.004)
    assert not pace.yielded(0.00005)
    assert pace.slice_s == SLICE_S  # an idle loop: nothing to share


def busy_for(cpu_s: float) -> float:
    """Work for ``cpu_s`` seconds of this thread's CPU (however busy the machine); returns
    the CPU taken."""
    began = time.thread_time()
    while (spent := time.thread_time() - began) < cpu_s:
        pass
    return spent


def render_beside(busy: bool, pieces: int = 400,
                  turn_s: float = 0.002) -> tuple[float, float, int]:
    """A page of ``pieces`` pieces (each 0.1 ms of CPU) rendered in a running loop, beside a
    task that always has work (``busy``: ``turn_s`` of CPU a turn) or none, with the daemon's GIL
    switch interval. Returns the CPU the scrape took, the loop's time the competitor had and
    the number of pieces received.

    (With Python's 5 ms interval and turns of 0.5 ms the page took 1-20 s: the loop lets go
    of the GIL between turns and takes it back before the thread receiving the page wakes,
    and a waiting thread asks for the GIL only after an interval without a switch, so it
    waited for an unlucky moment.)"""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    spent = {"scrape": 0.0, "other": 0.0}
    stop = threading.Event()

    def make() -> Iterator[bytes]:
        for i in range(pieces):
            spent["scrape"] += busy_for(0.0001)
            yield b"x%d\n" % i

    async def competitor() -> None:
        while not stop.is_set():
            began = time.perf_counter()  # the loop's time it had, as the scrape counts it
            busy_for(turn_s)
            spent["other"] += time.perf_counter() - began
            await asyncio.sleep(0)

    try:
        if busy:
            asyncio.run_coroutine_threadsafe(competitor(), loop)
        received = list(_in_loop(iter(make()), loop))
    finally:
        stop.set()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        sys.setswitchinterval(interval)
    return spent["scrape"], spent["other"], b"".join(received).count(b"\n")


def test_a_busy_loop_keeps_at_least_twice_the_scrapes_cpu() -> None:
    scrape, other, lines = render_beside(busy=True)
    assert lines == 400  # every piece, in order, whatever the pauses
    # three times the scrape's CPU in a loop that always has work (the last slice is not
    # paused after, and each turn's overshoot is the competitor's): at least twice, however
    # busy the machine (the scrape's slices are counted in CPU, its pauses in the loop's time)
    assert other >= 2 * scrape, (other, scrape)


def test_a_loop_of_long_turns_gives_the_scrape_longer_slices(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Turns of 30 ms (a backlog's): each pause is paid by one turn, and the next slice is a
    third of it (bounded), not 4 ms: the scrape is not starved to a tenth of the loop."""
    lengths: list[float] = []  # the slice allowed after each pause

    class Counted(Pace):
        def yielded(self, ran: float) -> bool:
            going_on = super().yielded(ran)
            if not going_on:
                lengths.append(self.slice_s)
            return going_on

    monkeypatch.setattr(text, "Pace", Counted)
    scrape, other, lines = render_beside(busy=True, turn_s=0.03)
    assert lines == 400
    # a third of each 30 ms turn (or more, if the machine stretched it), at most the bound
    assert lengths and all(0.0099 <= length <= SLICE_MAX_S for length in lengths), lengths
    assert other >= 2 * scrape, (other, scrape)  # and others still have their share


def test_an_idle_loop_lends_the_scrape_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    turns: list[int] = []  # per slice: the loop's turns the scrape yielded

    class Counted(Pace):
        def sliced(self, spent: float) -> None:
            turns.append(0)
            super().sliced(spent)

        def yielded(self, ran: float) -> bool:
            turns[-1] += 1
            return super().yielded(ran)

    monkeypatch.setattr(text, "Pace", Counted)
    scrape, other, lines = render_beside(busy=False)
    assert (lines, other) == (400, 0.0)
    assert len(turns) >= 5  # 40 ms of pieces in 4 ms slices
    # nothing else to run: the pause ends at the first turn (not slept out, as it was: a
    # quarter of an idle loop); a turn the OS cut into may take a second one
    assert sum(t == 1 for t in turns) >= 0.8 * len(turns), turns


def test_a_scraper_that_leaves_stops_the_pages_making() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    made = []

    def make() -> Iterator[bytes]:
        for i in range(100_000):  # far more slices than are ever taken
            made.append(i)
            busy_for(0.0001)
            yield b"x"

    try:
        page = _in_loop(make(), loop)
        next(page)  # the scraper reads a slice's pieces, then hangs up
        page.close()
        pending = asyncio.run_coroutine_threadsafe(_tasks_left(), loop)
        deadline = time.monotonic() + 10
        while pending.result(5) and time.monotonic() < deadline:
            time.sleep(0.05)
            pending = asyncio.run_coroutine_threadsafe(_tasks_left(), loop)
        assert not pending.result(5), "the page is still being made for nobody"
        # what was made for nobody: the slices waiting for the server's thread and the one
        # under way when the scraper left (4 ms slices of 0.1 ms pieces: ~40 a slice)
        assert len(made) <= (HANDED_MAX + 3) * 50, len(made)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _tasks_left() -> int:
    return len(asyncio.all_tasks()) - 1  # (not this one)


def test_what_waits_for_a_slow_server_thread_is_bounded_in_bytes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow reader (a scraper on a slow link): the page waits in the loop's iterator, not
    in the hand-over. Slices end at SLICE_BYTES, and the scrape stops making more while
    HANDED_BYTES wait: at 10,000 pods four 2 MB slices waited, a 13 MB swing of the heap."""
    most: list[int] = [0]

    class Watched(text._Handover):
        def put(self, item: object) -> None:
            super().put(item)
            most[0] = max(most[0], self.bytes)

    monkeypatch.setattr(text, "_Handover", Watched)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    piece = b"y" * 600_000  # a block of 500 histograms' lines is about as large

    try:
        got = 0
        for item in _in_loop(iter([piece] * 40), loop):  # a 24 MB page
            got += len(item)
            time.sleep(0.005)  # the scraper reads slowly
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert got == 40 * len(piece)
    # a piece past SLICE_BYTES is a slice; waiting: at most HANDED_BYTES, then the slice
    # that passed it (four slices, as HANDED_MAX alone allows, would be 2.4 MB)
    assert most[0] <= text.HANDED_BYTES + len(piece), most[0]
    assert most[0] > text.HANDED_BYTES, "the reader was slow: slices did wait"


def test_a_slice_waits_for_the_server_thread_instead_of_ending() -> None:
    """Behind (more than HANDED_BYTES waiting), a slice waits for the server's thread to take
    them, for at most the slice's time left: ending the slice there cost a turn of the loop
    each time (at 10,000 pods 20-30 slices a scrape, 1-2 s while the loop had a backlog)."""
    handed = text._Handover()
    for _ in range(5):
        handed.put(b"z" * (text.HANDED_BYTES // 4))
    assert handed.behind()
    waited = handed.caught_up(0.02)  # nobody takes them: the slice's time runs out
    assert 0.015 <= waited < 1.0 and handed.behind()

    def server() -> None:
        time.sleep(0.01)
        handed.take()
        handed.take()

    taker = threading.Thread(target=server)
    taker.start()
    waited = handed.caught_up(5.0)
    taker.join()
    assert 0.005 <= waited < 4.0, waited  # back as soon as it caught up, not at the timeout
    assert not handed.behind()
