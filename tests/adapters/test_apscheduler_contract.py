"""Contract of ``probe.adapters.apscheduler_internals`` with the installed APScheduler 3:
its asyncio scheduler still calls ``_start_timer`` with the seconds to the next job, still
keeps the timer in ``_timeout`` and the loop in ``_eventloop``, and ``_process_jobs`` still
runs the due jobs and says when to wake next."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import apscheduler
import pytest
from apscheduler.triggers.interval import IntervalTrigger

from probe.adapters import apscheduler_internals
from probe.adapters.apscheduler_internals import LoopScheduler

TICK = 0.05


def add_soon(scheduler: LoopScheduler, job: object, seconds: float) -> None:
    """A job first due in ``seconds``, as ``probe.scheduler`` adds them (an interval)."""
    start = datetime.now(UTC) + timedelta(seconds=seconds)
    scheduler.add_job(job, IntervalTrigger(seconds=60, start_date=start), next_run_time=start)


def test_the_adapter_names_the_versions_it_was_read_from() -> None:
    assert "Read from APScheduler 3.10 to" in (apscheduler_internals.__doc__ or "")
    assert apscheduler.__version__.startswith("3.")  # 4 is another API


def test_the_timer_runs_the_pass_on_the_loop_and_wakes_on_the_tick() -> None:
    """A job due in 0.12 s runs at the next tick after it (0.15 s), from the timer itself:
    the timer handle in ``_timeout`` is the loop's, calling the adapter's pass, and no
    wake-up goes through ``call_soon_threadsafe``."""
    ran: list[float] = []
    threadsafe: list[object] = []

    async def job() -> None:
        ran.append(asyncio.get_running_loop().time())

    async def go() -> tuple[float, object, list[object]]:
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counted(*args: object, **kwargs: object) -> asyncio.Handle:
            threadsafe.append(args[0])
            return original(*args, **kwargs)  # type: ignore[arg-type]

        scheduler = LoopScheduler(TICK, timezone=UTC)
        scheduler.start()
        assert scheduler._eventloop is loop  # start() keeps the running loop
        await asyncio.sleep(0)  # the start-up pass (no job yet)
        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        began = loop.time()
        add_soon(scheduler, job, 0.12)
        await asyncio.sleep(0.01)  # add_job's wakeup (that one may go through the pipe)
        threadsafe.clear()
        timer = scheduler._timeout
        await asyncio.sleep(0.4)
        through_the_pipe = list(threadsafe)
        scheduler.shutdown(wait=False)  # (this one does go through the pipe)
        await asyncio.sleep(0)
        return ran[0] - began if ran else math.inf, timer, through_the_pipe

    took, timer, through_the_pipe = asyncio.run(go())
    assert isinstance(timer, asyncio.TimerHandle)
    assert 0.12 <= took < 0.12 + TICK + 0.1
    assert through_the_pipe == []  # the timer ran the pass itself


def test_wake_ups_are_rounded_up_to_the_tick() -> None:
    """``_start_timer`` gets the seconds to the next job from ``_process_jobs``: the adapter
    sets its timer at the next multiple of the tick."""

    async def job() -> None:
        return None

    async def go() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        scheduler = LoopScheduler(TICK, timezone=UTC)
        scheduler.start()
        add_soon(scheduler, job, 0.731)
        await asyncio.sleep(0.01)
        wait = scheduler._process_jobs()
        assert wait is not None and 0.6 < wait <= 0.731
        scheduler._start_timer(wait)
        timer = scheduler._timeout
        assert isinstance(timer, asyncio.TimerHandle)
        delay = timer.when() - loop.time()
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
        return delay, wait

    delay, wait = asyncio.run(go())
    assert delay == pytest.approx(math.ceil(wait / TICK) * TICK, abs=0.005)


def test_no_job_no_timer_and_shutdown_stops_it() -> None:
    """With no job ``_process_jobs`` returns None and no timer is set; after shutdown a job
    that was due never runs (``_stop_timer`` cancelled the adapter's timer)."""
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)

    async def go() -> None:
        scheduler = LoopScheduler(TICK, timezone=UTC)
        scheduler.start()
        await asyncio.sleep(0)
        assert scheduler._process_jobs() is None
        scheduler._start_timer(None)
        assert not scheduler._timeout
        add_soon(scheduler, job, 0.2)
        await asyncio.sleep(0.01)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.4)
        assert not scheduler.running

    asyncio.run(go())
    assert ran == []
