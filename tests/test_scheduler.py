"""Scheduling: stable spread over the interval, no overlapping runs, coalesced misses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from helpers import endpoint

from probe.job import Job
from probe.scheduler import SPREAD_WINDOW_S, ProbeScheduler, start_offset_s


def jobs(count: int, interval_s: float = 15.0) -> list[Job]:
    return [Job(f"pod-{i}/checks", endpoint(name=f"pod-{i}"), ("models",), interval_s)
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


@freeze_time("2026-02-18 12:00:00")
def test_first_runs_are_placed_at_now_plus_offset() -> None:
    async def go() -> list[datetime]:
        scheduler = ProbeScheduler(lambda job: asyncio.sleep(0))
        scheduler.set_jobs(jobs(3), spread=True)
        return [job.next_run_time for job in scheduler.jobs()]

    now = datetime(2026, 2, 18, 12, tzinfo=UTC)
    expected = sorted(now + timedelta(seconds=start_offset_s(job, True)) for job in jobs(3))
    got = sorted(asyncio.run(go()))
    assert [abs((g - e).total_seconds()) < 1e-3 for g, e in zip(got, expected, strict=True)] \
        == [True] * 3


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
        scheduler.set_jobs(jobs(1, interval_s=0.1), spread=False)
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
            scheduler.set_jobs(first, spread=True)
        before = {job.id: job.next_run_time for job in scheduler.jobs()}
        with freeze_time("2026-02-18 12:00:07"):
            scheduler.set_jobs([first[0], changed, added], spread=True)
        return before, {job.id: job.next_run_time for job in scheduler.jobs()}

    before, after = asyncio.run(go())
    assert sorted(after) == ["pod-0/checks", "pod-1/checks", "pod-9/checks"], "pod-2 removed"
    assert after["pod-0/checks"] == before["pod-0/checks"], "unchanged: same phase"
    assert after["pod-1/checks"] - before["pod-1/checks"] == timedelta(seconds=7), \
        "changed: rescheduled from now"
    later = datetime(2026, 2, 18, 12, 0, 7, tzinfo=UTC)
    assert after["pod-9/checks"] == later + timedelta(seconds=start_offset_s(added, True))


def test_after_shutdown_returns_no_job_starts() -> None:
    """APScheduler's asyncio scheduler defers its shutdown to the loop; ours returns only once
    it has stopped, so the daemon's set of checks in flight is final (a job started later
    would run on a closed HTTP client)."""
    started: list[float] = []

    async def record(job: Job) -> None:
        started.append(asyncio.get_running_loop().time())

    async def go() -> tuple[int, int, bool]:
        scheduler = ProbeScheduler(record)
        scheduler.set_jobs(jobs(20, interval_s=0.01), spread=True)
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
