"""Scheduling: stable spread over the interval, no overlapping runs, coalesced misses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from helpers import endpoint

from probe.config.model import SchedulerSettings
from probe.job import Job
from probe.scheduler import (
    GRID_MAX_S,
    SPREAD_WINDOW_S,
    TICK_S,
    ProbeScheduler,
    on_grid,
    phase_grid_s,
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


def test_offsets_are_stable_and_inside_the_interval() -> None:
    fleet = jobs(1000)
    offsets = [start_offset_s(job, spread=True) for job in fleet]
    assert offsets == [start_offset_s(job, spread=True) for job in fleet]
    assert all(0 <= o < 15.0 for o in offsets)
    # Spread: every 1.5 s slice of the interval gets a share of the fleet.
    slices = {int(o // 1.5) for o in offsets}
    assert slices == set(range(10))
    assert all(start_offset_s(job, spread=False) == 0 for job in fleet)


def test_long_intervals_are_spread_over_a_bounded_window() -> None:
    prompts = jobs(200, interval_s=1800.0)
    offsets = [start_offset_s(job, spread=True) for job in prompts]
    assert all(0 <= o < SPREAD_WINDOW_S for o in offsets)
    assert max(offsets) > SPREAD_WINDOW_S / 2


@pytest.mark.parametrize(("fleet", "max_concurrent", "grid_s"), [
    # a burst is half the concurrency limit, at most 32; the step holds one burst on average
    (jobs(100), 64, GRID_MAX_S),  # 6.7 checks/s: 4.8 s, bounded to a second
    (jobs(1000), 64, 32 / (1000 / 15)),  # 0.48 s
    (jobs(10_000), 64, 32 / (10_000 / 15)),  # 48 ms
    (jobs(1000), 8, 4 / (1000 / 15)),  # a low limit makes small bursts: 60 ms
    (jobs(10_000), 8, TICK_S),  # 6 ms: never below the wake-up tick
    (jobs(1000) + jobs(10, interval_s=1800.0), 64, 32 / (1000 / 15 + 10 / 1800)),
    ([], 64, GRID_MAX_S),
    # a job's checks take turns in one slot: a pod with three checks is one
    (full(1000), 64, 32 / (1000 / 15)),  # 0.48 s
])
def test_the_grid_holds_a_burst_of_the_plans_runs(fleet: list[Job], max_concurrent: int,
                                                    grid_s: float) -> None:
    assert phase_grid_s(fleet, max_concurrent) == pytest.approx(grid_s)


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

    async def go() -> dict[str, datetime]:
        scheduler = ProbeScheduler(lambda job: asyncio.sleep(0))
        scheduler.set_jobs(fleet, SPREAD)
        return {job.id: job.next_run_time for job in scheduler.jobs()}

    first = asyncio.run(go())
    now = datetime(2026, 2, 18, 12, 0, 0, 123_456, tzinfo=UTC)
    grid = phase_grid_s(fleet, SPREAD.max_concurrent)
    for job in fleet:
        offset_at = now + timedelta(seconds=start_offset_s(job, True))
        assert first[job.id] == on_grid(offset_at, grid)
        assert timedelta(0) <= first[job.id] - offset_at < timedelta(seconds=grid)
    # 1,000 jobs start at about 15 s / 0.48 s = 32 instants, about 32 jobs at each
    instants = set(first.values())
    assert len(instants) <= 15 / grid + 1
    assert max(list(first.values()).count(at) for at in instants) < 64


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
    grid = phase_grid_s([first[0], changed, added], SPREAD.max_concurrent)
    assert after["pod-9/checks"] == on_grid(later + timedelta(seconds=start_offset_s(added, True)),
                                            grid)


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
