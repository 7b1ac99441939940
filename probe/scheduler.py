"""Schedule jobs: each at its own interval, spread over the interval at start-up so a large
fleet does not fire at once. ``endpoint_jobs`` is the spine's planner (one job per endpoint
with its configured checks); features add their own planners."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.triggers.interval import IntervalTrigger

from probe.adapters.apscheduler_internals import LoopScheduler
from probe.config.model import Config, SchedulerSettings
from probe.job import Job, concurrency

log = logging.getLogger(__name__)


def endpoint_jobs(config: Config) -> list[Job]:
    """One job per endpoint: its configured checks, at its interval."""
    return [Job(f"{e.name}/checks", e, e.checks, e.interval_s) for e in config.endpoints]


# Long intervals (a prompt every 5 minutes, a paid round trip every 10) are spread over at
# least this window, so a fresh start of a small fleet does not leave checks unknown for a
# whole interval...
SPREAD_WINDOW_S = 60.0
# ... and over as much more of their interval as keeps an interval's first runs to this many
# a second. The first runs' phase is kept by every later run, so a window shorter than the
# interval is a burst every interval: 10,000 default pods had their 20,000 prompts (every
# 5 minutes) in one minute, 333 a second, every 5 minutes; while that minute's backlog
# drained, every check of the fleet waited (lag p99 4.6 s, peak RSS 667 MB; without the
# prompts 46 ms and 344 MB). At this rate a fleet of more than 3,000 default pods spreads its
# prompts over their whole interval (their steady rate, 6.7 a second per 1,000 pods); up to
# 600 pods, over the minute.
FIRST_RUNS_PER_S = 20.0


def spread_window_s(interval_s: float, jobs: int) -> float:
    """Where the first runs of ``jobs`` jobs every ``interval_s`` are placed: the whole
    interval when it is short, else at least SPREAD_WINDOW_S, and long enough to start at
    most FIRST_RUNS_PER_S a second, up to the whole interval."""
    return min(interval_s, max(SPREAD_WINDOW_S, jobs / FIRST_RUNS_PER_S))


def start_offset_s(job: Job, window_s: float) -> float:
    """A stable position inside the job's spread window (its interval's ``Spread``), so
    restarts keep the same phase."""
    return (zlib.crc32(job.id.encode()) / 2**32) * window_s


# Wake-ups are rounded up to this tick: on a large fleet the jobs due within one tick start
# together (one pass over the job store for several jobs), at the cost of starting up to a
# tick late.
TICK_S = 0.01

# Each wake-up of an idle daemon costs far more than the same work done warm: at 100 pods
# every 15 s, spread one by one, a probe took 2.2 ms of CPU; the same probes started all
# together, 0.7 ms (measured, per-thread CPU from /proc). So first runs are placed on a grid
# whose step is the time in which the plan schedules, on average, a burst of runs (from
# TICK_S to GRID_MAX_S): jobs of one interval that land in the same step start together,
# at the step, every interval. They are scheduled there, so the lag is what it was, as long
# as a burst fits the concurrency limit (the lag is counted once a run's first check has its
# slot; a run's checks take turns in one slot): a burst is half of ``max_concurrent``, at
# most BURST. Measured at 10,000 pods every 15 s (one check each): bursts of 32 took
# 13-16 % less CPU per probe than bursts of 8 (the 10 ms tick's), lag p99 26-44 ms; bursts
# of 64 saved no more and the lag p99 reached 377 ms. Like systemd's timer
# accuracy, bounded to a second.
BURST = 32
GRID_MAX_S = 1.0


@dataclass(frozen=True, slots=True)
class Spread:
    """How the jobs of one interval are spread: their first runs over ``window_s``, on a
    grid of ``grid_s``."""

    window_s: float
    grid_s: float


def plan_spread(jobs: Iterable[Job], max_concurrent: int) -> dict[float, Spread]:
    """Each interval's window (``spread_window_s``) and the step its first runs are placed
    on: the time in which they start, on average, a burst (a job's checks take turns in
    one slot, ``probe.prober``, so a job counts once). Each interval has its own grid, so a
    slot holds about a burst whatever the interval: prompts every 5 minutes on the grid of
    checks every 15 s would be a slot each."""
    burst = max(1, min(BURST, max_concurrent // 2))
    counts = Counter(job.interval_s for job in jobs if job.interval_s > 0)
    plan = {}
    for interval_s, n in counts.items():
        window = spread_window_s(interval_s, n)
        plan[interval_s] = Spread(window, min(GRID_MAX_S, max(TICK_S, burst * window / n)))
    return plan


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def on_grid(moment: datetime, grid_s: float) -> datetime:
    """The first multiple of ``grid_s`` (counted from the Unix epoch) at or after ``moment``:
    the same instants for every job placed with the same step, whenever it was placed
    (counted in whole microseconds, so a moment on the grid stays there)."""
    step = max(1, round(grid_s * 1e6))
    steps = -(-((moment - EPOCH) // MICROSECOND) // step)  # rounded up
    return EPOCH + steps * step * MICROSECOND


# A member's first run may fall this much before its own start and still be its first (the
# slot's instants and its start are the same microseconds, read back as floats).
EARLY_S = 1e-3


# A slot's run only starts its members' runs and ends in the same loop turn; overlaps are
# the members' (a member still running is skipped). Were the slot limited to one instance,
# a loop stalled for an interval between its firing and its start would skip every member,
# the ones not running too.
SLOT_INSTANCES = 1000


@dataclass(frozen=True, slots=True)
class Scheduled:
    """One job as scheduled (``ProbeScheduler.jobs``): when it runs next (None while the
    scheduler is paused) and the trigger of the slot it runs in (its phase)."""

    id: str
    job: Job
    next_run_time: datetime | None
    trigger: IntervalTrigger


class _Member:
    __slots__ = ("job", "start", "not_before")

    def __init__(self, job: Job, start: datetime) -> None:
        self.job = job
        self.start = start
        self.not_before = start.timestamp() - EARLY_S  # its first run: not before its start


class _Slot:
    """The jobs of one interval whose runs fall on the same instants: one APScheduler job."""

    __slots__ = ("id", "members", "scheduled_at")

    def __init__(self, slot_id: str) -> None:
        self.id = slot_id
        self.members: dict[str, _Member] = {}
        self.scheduled_at = 0.0  # the run being submitted (``ProbeScheduler._on_event``)


def slot_id(interval_s: float, start: datetime) -> str:
    """The slot of a job every ``interval_s`` first run at ``start``: its interval and its
    phase, both in whole microseconds (jobs placed on the grid share instants exactly)."""
    interval_us = max(1, round(interval_s * 1e6))
    return f"every {interval_us}us at +{((start - EPOCH) // MICROSECOND) % interval_us}us"


class ProbeScheduler:
    """APScheduler 3 (asyncio) as the timer: no overlapping runs of a job, missed runs
    coalesced. Jobs of one interval whose first runs fall on the same grid instant (the
    spread places them there: ``plan_spread``) are one APScheduler job, a slot, that
    starts its members' runs: its job store holds a slot per (interval, instant), a few
    hundred per interval, not a job per endpoint (30,000 at 10,000 default pods, kept in a
    sorted list updated at every run: ~4 % of the daemon's CPU and an object per job).
    Measured (bench/run_path.py, 10,000 jobs every 5 s): 52 us of CPU per run with a job
    each, 19 us in 313 slots; APScheduler's timer pass went from 2.4 % to 0.2 % of the
    daemon's CPU at 2,000 default pods."""

    def __init__(self, run: Callable[[Job], Awaitable[Any] | None],
                 on_skip: Callable[[str], None] | None = None) -> None:
        """``run(job)`` starts a run: a task (or an awaitable, run in a task here), or None
        when it does not start (stopping)."""
        self._run = run
        self._on_skip = on_skip
        self._scheduler = LoopScheduler(TICK_S, timezone=UTC)
        self._scheduled_at: dict[str, float] = {}
        self._slots: dict[str, _Slot] = {}
        self._slot_of: dict[str, _Slot] = {}  # job id -> its slot
        self._running: set[str] = set()  # job ids with a run still going
        self.skipped_overlaps = 0
        self._scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)

    def _on_event(self, event: JobEvent) -> None:
        slot = self._slots.get(event.job_id)
        if slot is None:
            return
        times: list[datetime] = getattr(event, "scheduled_run_times", [])
        if event.code == EVENT_JOB_MAX_INSTANCES:
            # SLOT_INSTANCES firings of the slot have not even begun (the loop stalled for
            # that many intervals): every member due is skipped, counted as its own overlap.
            at = times[-1].timestamp() if times else 0.0
            for member in slot.members.values():
                if at >= member.not_before:
                    self._skipped(member.job.id)
            return
        if times:
            slot.scheduled_at = times[-1].timestamp()

    def _skipped(self, job_id: str) -> None:
        # The previous run of this job is still going (its checks took longer than the
        # interval): the run is skipped, never stacked. Counted, not logged per run.
        self.skipped_overlaps += 1
        if self._on_skip is not None:
            self._on_skip(job_id)

    async def _fire(self, slot: _Slot) -> None:
        """A slot's run: each member's run starts, but a member whose previous run is still
        going is skipped (counted), and one that joined for a later instant waits for it."""
        at = slot.scheduled_at
        for member in list(slot.members.values()):
            job_id = member.job.id
            if at < member.not_before:
                continue
            if job_id in self._running:
                self._skipped(job_id)
                continue
            self._scheduled_at[job_id] = at
            try:
                started = self._run(member.job)
            except Exception:  # noqa: BLE001 - one member's failure must not stop the others
                log.exception("could not start a run of %s", job_id)
                started = None
            if started is None:
                self._scheduled_at.pop(job_id, None)
                continue
            future = asyncio.ensure_future(started)
            self._running.add(job_id)
            future.add_done_callback(partial(self._finished, job_id))

    def _finished(self, job_id: str, future: asyncio.Future[Any]) -> None:
        self._running.discard(job_id)
        if not future.cancelled() and future.exception() is not None:
            log.error("a run of %s failed", job_id, exc_info=future.exception())

    def scheduled_at(self, job_id: str) -> float | None:
        return self._scheduled_at.pop(job_id, None)

    def set_jobs(self, jobs: list[Job], settings: SchedulerSettings) -> None:
        """Replace the schedule where it changed: a job whose definition is the same keeps
        its slot, so its phase (a reload or a discovery run must not restart every
        interval); a removed one leaves its slot (an empty slot is removed). New jobs start
        at once, or (``settings.spread``) at their offset in their interval's window, on its
        grid: in the slot of their interval and instant, made for them if there is none."""
        wanted = {job.id: job for job in jobs}
        for job_id in [i for i, slot in self._slot_of.items()
                       if wanted.get(i) != slot.members[i].job]:
            self._leave(job_id)
        now = datetime.now(UTC)
        plan = (plan_spread(wanted.values(), concurrency(jobs, settings)) if settings.spread
                else {})
        for job in wanted.values():
            if job.id in self._slot_of:
                continue
            start = now
            spread = plan.get(job.interval_s)
            if spread is not None:
                start = on_grid(now + timedelta(seconds=start_offset_s(job, spread.window_s)),
                                spread.grid_s)
            self._join(job, start)

    def _join(self, job: Job, start: datetime) -> None:
        key = slot_id(job.interval_s, start)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(key)
            self._scheduler.add_job(
                self._fire, IntervalTrigger(seconds=job.interval_s, start_date=start),
                args=(slot,), id=key, name=key, max_instances=SLOT_INSTANCES, coalesce=True,
                misfire_grace_time=max(1, int(job.interval_s)), next_run_time=start,
            )
        slot.members[job.id] = _Member(job, start)
        self._slot_of[job.id] = slot

    def _leave(self, job_id: str) -> None:
        slot = self._slot_of.pop(job_id)
        del slot.members[job_id]
        if not slot.members:
            del self._slots[slot.id]
            if self._scheduler.get_job(slot.id) is not None:
                self._scheduler.remove_job(slot.id)

    def start(self) -> None:
        self._scheduler.start()

    async def shutdown(self) -> None:
        """Stop scheduling. APScheduler's asyncio scheduler defers its own shutdown to the
        event loop, so wait until it has really stopped: only then is the set of checks in
        flight final."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        while self._scheduler.running:
            await asyncio.sleep(0)
        # a slot that fired just before the stop made its members' tasks in the same loop
        # turn: one more turn lets them begin, so none begins after this returns
        await asyncio.sleep(0)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def slots(self) -> int:
        """The entries in APScheduler's job store: one per slot."""
        return len(self._slots)

    def jobs(self) -> list[Scheduled]:
        """Every job, with its next run and its slot's trigger."""
        scheduled = []
        for entry in self._scheduler.get_jobs():
            slot = self._slots.get(entry.id)
            if slot is None:
                continue
            for member in slot.members.values():
                at: datetime | None = entry.next_run_time
                if at is not None and at < member.start:
                    at = member.start  # joined for a later instant of the slot
                scheduled.append(Scheduled(member.job.id, member.job, at, entry.trigger))
        return scheduled
