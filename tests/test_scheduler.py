"""Scheduling: stable spread over the interval, no overlapping runs, coalesced misses."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from helpers import endpoint

from probe.config.model import SchedulerSettings
from probe.job import Job, concurrency
from probe.scheduler import (
    GRID_MAX_S,
    SPREAD_WINDOW_S,
    TICK_S,
    ProbeScheduler,
    Scheduled,
    Spread,
    on_grid,
    plan_spread,
    spread_window_s,
    start_offset_s,
)

SPREAD, AT_ONCE = SchedulerSettings(spread=True), SchedulerSettings(spread=False)


def jobs(count: int, interval_s: float = 15.0) -> list[Job]:
    return [Job(f"pod-{i}/checks", endpoint(name=f"pod-{i}"), ("models",), interval_s)
            for i in range(count)]


def full(count: int, interval_s: float = 15.0) -> list[Job]:
    return [Job(f"pod-{i}/checks", endpoint(name=f"pod-{i}"), ("models", "health",
                                                                "vllm_metrics"), interval_s)
            for i in range(count)]


def grid_of(fleet: list[Job], max_concurrent: int = 64) -> float:
    (spread,) = plan_spread(fleet, max_concurrent).values()
    return spread.grid_s


def offset(job: Job, fleet: list[Job]) -> float:
    return start_offset_s(job, plan_spread(fleet, 64)[job.interval_s].window_s)


def test_offsets_are_stable_and_inside_the_interval() -> None:
    fleet = jobs(1000)
    window = spread_window_s(15.0, len(fleet))
    assert window == 15.0
    offsets = [start_offset_s(job, window) for job in fleet]
    assert offsets == [start_offset_s(job, window) for job in fleet]
    assert all(0 <= o < 15.0 for o in offsets)
    # Spread: every 1.5 s slice of the interval gets a share of the fleet.
    slices = {int(o // 1.5) for o in offsets}
    assert slices == set(range(10))


def test_long_intervals_of_a_small_fleet_are_spread_over_a_minute() -> None:
    prompts = jobs(200, interval_s=300.0)
    assert spread_window_s(300.0, len(prompts)) == SPREAD_WINDOW_S
    offsets = [offset(job, prompts) for job in prompts]
    assert all(0 <= o < SPREAD_WINDOW_S for o in offsets)
    assert max(offsets) > SPREAD_WINDOW_S / 2


@pytest.mark.parametrize(("jobs_count", "interval_s", "window_s"), [
    (14, 300.0, SPREAD_WINDOW_S),  # the demo's prompts: within the minute
    (1200, 300.0, SPREAD_WINDOW_S),  # 20 first runs a second fit in the minute
    (2000, 300.0, 100.0),  # 1,000 pods' two prompts: 20 a second over 100 s
    (20_000, 300.0, 300.0),  # 10,000 pods' two prompts: their steady 67 a second
    (20_000, 15.0, 15.0),  # short intervals: always the whole interval
    (5000, 1800.0, 250.0),  # a 30-minute round trip on 5,000 endpoints
])
def test_a_large_fleet_spreads_long_intervals_further(jobs_count: int, interval_s: float,
                                                      window_s: float) -> None:
    """An interval's first runs set the phase of all its later runs: a window shorter than
    the interval is a burst at every interval, so a large fleet's first runs come at most
    20 a second, up to the whole interval."""
    assert spread_window_s(interval_s, jobs_count) == pytest.approx(window_s)
    fleet = jobs(jobs_count, interval_s)
    (spread,) = plan_spread(fleet, 64).values()
    offsets = [start_offset_s(job, spread.window_s) for job in fleet]
    assert all(0 <= o < window_s for o in offsets)
    per_second = Counter(int(o) for o in offsets)
    assert max(per_second.values()) <= 2 * max(20, jobs_count / interval_s), \
        "first runs at most ~20 a second (or the interval's own rate)"


@pytest.mark.parametrize(("fleet", "max_concurrent", "grid_s"), [
    # a burst is half the concurrency limit, at most 32; the step holds one burst on average
    (jobs(100), 64, GRID_MAX_S),  # 6.7 checks/s: 4.8 s, bounded to a second
    (jobs(1000), 64, 32 / (1000 / 15)),  # 0.48 s
    (jobs(10_000), 64, 32 / (10_000 / 15)),  # 48 ms
    (jobs(1000), 8, 4 / (1000 / 15)),  # a low limit makes small bursts: 60 ms
    (jobs(10_000), 8, TICK_S),  # 6 ms: never below the wake-up tick
    # a job's checks take turns in one slot: a pod with three checks is one
    (full(1000), 64, 32 / (1000 / 15)),  # 0.48 s
])
def test_the_grid_holds_a_burst_of_the_plans_runs(fleet: list[Job], max_concurrent: int,
                                                    grid_s: float) -> None:
    assert grid_of(fleet, max_concurrent) == pytest.approx(grid_s)


def test_each_interval_has_its_own_grid() -> None:
    """10,000 pods' checks every 15 s and their prompts every 5 minutes: each interval's
    first runs hold a burst per step of its own grid, so the prompts take about 625
    slots, not one each (on the checks' 48 ms grid, 300 s would be 6,250 instants)."""
    plan = plan_spread(jobs(10_000) + jobs(20_000, interval_s=300.0), 64)
    assert plan == {15.0: Spread(15.0, pytest.approx(0.048)),
                    300.0: Spread(300.0, pytest.approx(0.48))}


@pytest.mark.parametrize(("moment", "grid_s", "expected"), [
    (datetime(2026, 2, 18, 12, 0, 0, 300_000, tzinfo=UTC), 1.0,
     datetime(2026, 2, 18, 12, 0, 1, tzinfo=UTC)),
    (datetime(2026, 2, 18, 12, 0, 1, tzinfo=UTC), 1.0,  # on the grid already: kept
     datetime(2026, 2, 18, 12, 0, 1, tzinfo=UTC)),
    (datetime(2026, 2, 18, 12, 0, 0, 30_000, tzinfo=UTC), 0.048,
     datetime(2026, 2, 18, 12, 0, 0, 48_000, tzinfo=UTC)),
    (datetime(2026, 2, 18, 12, 0, 0, 96_000, tzinfo=UTC), 0.048,  # 2 steps, float-exact
     datetime(2026, 2, 18, 12, 0, 0, 96_000, tzinfo=UTC)),
])
def test_on_grid_is_the_first_step_at_or_after(moment: datetime, grid_s: float,
                                               expected: datetime) -> None:
    assert abs((on_grid(moment, grid_s) - expected).total_seconds()) < 1e-6


@freeze_time("2026-02-18 12:00:00.123456")
def test_first_runs_are_placed_on_the_grid_after_their_offset() -> None:
    fleet = jobs(1000)

    async def go() -> tuple[dict[str, datetime], int]:
        scheduler = ProbeScheduler(lambda job: asyncio.sleep(0))
        scheduler.set_jobs(fleet, SPREAD)
        return {job.id: job.next_run_time for job in scheduler.jobs()}, scheduler.slots()

    first, slots = asyncio.run(go())
    now = datetime(2026, 2, 18, 12, 0, 0, 123_456, tzinfo=UTC)
    grid = grid_of(fleet, concurrency(fleet, SPREAD))
    window = plan_spread(fleet, 64)[15.0].window_s
    for job in fleet:
        offset_at = now + timedelta(seconds=start_offset_s(job, window))
        assert first[job.id] == on_grid(offset_at, grid)
        assert timedelta(0) <= first[job.id] - offset_at < timedelta(seconds=grid)
    # 1,000 jobs start at about 15 s / 0.48 s = 32 instants, about 32 jobs at each
    instants = set(first.values())
    assert len(instants) <= 15 / grid + 1
    assert max(list(first.values()).count(at) for at in instants) < 64
    assert slots == len(instants), "one entry in APScheduler's store per instant, not per job"


def test_a_spread_fleet_wakes_once_per_step_not_once_per_job() -> None:
    """16 jobs every second with room for 8 at once: bursts of 4, a step of 0.25 s. Their
    first runs come in at most 5 groups (4 steps, and the window's edge), each group
    within a few milliseconds."""
    first: dict[str, float] = {}

    async def record(job: Job) -> None:
        first.setdefault(job.id, asyncio.get_running_loop().time())

    async def go() -> None:
        scheduler = ProbeScheduler(record)
        scheduler.set_jobs(jobs(16, interval_s=1.0), SchedulerSettings(max_concurrent=8))
        scheduler.start()
        await asyncio.sleep(1.6)  # a second's offsets, one step, and room for a slow machine
        await scheduler.shutdown()

    asyncio.run(go())
    assert len(first) == 16  # every job ran
    starts = sorted(first.values())
    groups = 1 + sum(1 for a, b in zip(starts, starts[1:], strict=False) if b - a > 0.02)
    assert groups <= 5, f"16 first runs in {groups} wake-ups: {starts}"


def test_a_slow_job_never_overlaps_itself() -> None:
    running, peak, runs = 0, 0, 0

    async def slow(job: Job) -> None:
        nonlocal running, peak, runs
        running += 1
        runs += 1
        peak = max(peak, running)
        await asyncio.sleep(0.35)
        running -= 1

    skipped_jobs: list[str] = []

    async def go() -> int:
        scheduler = ProbeScheduler(slow, on_skip=skipped_jobs.append)
        scheduler.set_jobs(jobs(1, interval_s=0.1), AT_ONCE)
        scheduler.start()
        await asyncio.sleep(1.0)
        await scheduler.shutdown()
        return scheduler.skipped_overlaps

    skipped = asyncio.run(go())
    assert peak == 1 and runs >= 2 and skipped >= 1
    assert skipped_jobs == ["pod-0/checks"] * skipped


def test_replacing_the_jobs_keeps_the_phase_of_unchanged_ones() -> None:
    """A reload or a discovery run re-plans the fleet: only changed or new jobs restart."""
    first = jobs(3)
    changed = Job("pod-1/checks", endpoint(name="pod-1", model="other/model"), ("models",), 15.0)
    added = Job("pod-9/checks", endpoint(name="pod-9"), ("models",), 15.0)

    async def go() -> tuple[dict[str, datetime], dict[str, datetime]]:
        scheduler = ProbeScheduler(lambda job: asyncio.sleep(0))
        with freeze_time("2026-02-18 12:00:00"):
            scheduler.set_jobs(first, SPREAD)
        before = {job.id: job.next_run_time for job in scheduler.jobs()}
        with freeze_time("2026-02-18 12:00:07"):
            scheduler.set_jobs([first[0], changed, added], SPREAD)
        return before, {job.id: job.next_run_time for job in scheduler.jobs()}

    before, after = asyncio.run(go())
    assert sorted(after) == ["pod-0/checks", "pod-1/checks", "pod-9/checks"], "pod-2 removed"
    assert after["pod-0/checks"] == before["pod-0/checks"], "unchanged: same phase"
    assert after["pod-1/checks"] - before["pod-1/checks"] == timedelta(seconds=7), \
        "changed: rescheduled from now"
    later = datetime(2026, 2, 18, 12, 0, 7, tzinfo=UTC)
    replanned = [first[0], changed, added]
    grid = grid_of(replanned, concurrency(replanned, SPREAD))
    assert after["pod-9/checks"] == on_grid(later + timedelta(seconds=offset(added, replanned)),
                                            grid)


def test_a_member_still_running_is_skipped_and_counted_and_the_slot_goes_on() -> None:
    """Three jobs started together share a slot (one APScheduler job). One's runs take
    longer than the interval: its overlapping runs are skipped and counted as its own; the
    others run at every instant."""
    runs: Counter[str] = Counter()
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def run(job: Job) -> None:
        runs[job.id] += 1
        running[job.id] += 1
        peak[job.id] = max(peak[job.id], running[job.id])
        await asyncio.sleep(0.35 if job.id == "pod-1/checks" else 0)
        running[job.id] -= 1

    skipped_jobs: list[str] = []

    async def go() -> tuple[int, int]:
        scheduler = ProbeScheduler(run, on_skip=skipped_jobs.append)
        scheduler.set_jobs(jobs(3, interval_s=0.1), AT_ONCE)
        slots = scheduler.slots()
        scheduler.start()
        await asyncio.sleep(1.0)
        await scheduler.shutdown()
        return slots, scheduler.skipped_overlaps

    slots, skipped = asyncio.run(go())
    assert slots == 1
    assert peak == {"pod-0/checks": 1, "pod-1/checks": 1, "pod-2/checks": 1}
    assert runs["pod-1/checks"] >= 2 and skipped >= 1
    assert skipped_jobs == ["pod-1/checks"] * skipped, "only the slow one skipped"
    assert runs["pod-0/checks"] >= 3 and runs["pod-2/checks"] == runs["pod-0/checks"]
    assert runs["pod-1/checks"] + skipped == runs["pod-0/checks"], "every instant: run or skip"


@freeze_time("2026-02-18 12:00:00")
def test_slots_keep_the_phase_of_unchanged_jobs_across_set_jobs() -> None:
    """1,000 spread jobs in slots; a re-plan changes 100, removes 100 and adds 100: the
    800 unchanged keep their next run and their slot's trigger; the changed and added
    start at their offset on the grid from now (in a slot of their instant, an existing
    one or a new one); the removed are gone, and so is every slot left empty."""
    fleet = jobs(1000)
    changed = [Job(j.id, endpoint(name=j.endpoint.name, model="other/model"), j.checks,
                   j.interval_s) for j in fleet[:100]]
    added = [Job(f"new-{i}/checks", endpoint(name=f"new-{i}"), ("models",), 15.0)
             for i in range(100)]
    again = changed + fleet[100:900] + added

    async def go() -> tuple[list[Scheduled], list[Scheduled], int, int]:
        scheduler = ProbeScheduler(lambda job: asyncio.sleep(0))
        scheduler.set_jobs(fleet, SPREAD)
        before, slots_before = scheduler.jobs(), scheduler.slots()
        with freeze_time("2026-02-18 12:00:07.250"):
            scheduler.set_jobs(again, SPREAD)
        return before, scheduler.jobs(), slots_before, scheduler.slots()

    before_jobs, after_jobs, slots_before, slots_after = asyncio.run(go())
    before = {s.id: s for s in before_jobs}
    after = {s.id: s for s in after_jobs}
    assert sorted(after) == sorted(job.id for job in again)
    assert all(after[j.id].job is j for j in again)
    for job in fleet[100:900]:
        assert after[job.id].next_run_time == before[job.id].next_run_time, job.id
        assert after[job.id].trigger is before[job.id].trigger, job.id
    later = datetime(2026, 2, 18, 12, 0, 7, 250_000, tzinfo=UTC)
    grid = grid_of(again, concurrency(again, SPREAD))
    window = plan_spread(again, 64)[15.0].window_s
    for job in changed + added:
        assert after[job.id].next_run_time == on_grid(
            later + timedelta(seconds=start_offset_s(job, window)), grid), job.id
    instants = {s.trigger.start_date for s in after_jobs}
    assert slots_before <= 15 / grid + 1 and slots_after == len(instants) < 1000 / 10


def test_after_shutdown_returns_no_job_starts() -> None:
    """APScheduler's asyncio scheduler defers its shutdown to the loop; ours returns only once
    it has stopped, so the daemon's set of checks in flight is final (a job started later
    would run on a closed HTTP client)."""
    started: list[float] = []

    async def record(job: Job) -> None:
        started.append(asyncio.get_running_loop().time())

    async def go() -> tuple[int, int, bool]:
        scheduler = ProbeScheduler(record)
        scheduler.set_jobs(jobs(20, interval_s=0.01), SPREAD)
        scheduler.start()
        await asyncio.sleep(0.1)
        await scheduler.shutdown()
        running_after = scheduler.running
        stopped_with = len(started)
        await asyncio.sleep(0.1)
        return stopped_with, len(started), running_after

    stopped_with, later, running_after = asyncio.run(go())
    assert running_after is False, "shutdown returned while the scheduler still ran"
    assert stopped_with > 0 and later == stopped_with
