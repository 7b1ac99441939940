"""The probe's own overload is never charged to an endpoint: a timeout while the event loop
was stalled is ``unknown`` (counted), a check that gets its slot more than an interval late
does not start (counted), and a real timeout on an attentive loop is still a timeout."""

from __future__ import annotations

import asyncio
import time

import httpx
from helpers import endpoint, role_of
from local_server import answering

from probe.check import CheckContext, CheckSpec
from probe.config.model import Endpoint
from probe.features import Feature, Plugins
from probe.job import Job
from probe.loopwatch import LoopWatch
from probe.net import ProbeClient, make_client
from probe.outcome import Observation, Outcome, ProbeResult
from probe.prober import Prober
from probe.state import FleetState


def test_the_watch_counts_a_blocked_loop_and_not_an_idle_one() -> None:
    stalls: list[float] = []

    async def main() -> tuple[float, float]:
        watch = LoopWatch(stalls.append)
        watch.start()
        idle = watch.stalled_s()
        await asyncio.sleep(0.35)  # idle: the beats run on time
        idle = watch.stalled_s() - idle
        before = watch.stalled_s()
        time.sleep(0.6)  # noqa: ASYNC251 - the point: the loop is blocked
        during = watch.stalled_s() - before  # the stall it is in now counts at once
        await asyncio.sleep(0.15)
        watch.stop()
        return idle, during

    idle, during = asyncio.run(main())
    assert during >= 0.45 and sum(stalls) >= 0.45
    assert idle < during


async def _fetch_models(target: Endpoint, client: ProbeClient, _x: CheckContext) -> Observation:
    status, _, _ = await client.fetch(f"{target.openai_base}/models", {}, 1 << 16)
    return Observation(Outcome.OK if status == 200 else Outcome.HTTP_5XX)


async def _quick(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"data": []})


async def _hangs(_request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(30)
    return httpx.Response(200, json={"data": []})


def _run(handler: object, *, block_s: float = 0.0, timeout_s: float,
         scheduled_at: float | None = None) -> tuple[list[ProbeResult], FleetState]:
    """One job of check ``models`` against a local server answering with ``handler``; with
    ``block_s``, the event loop is blocked that long just after the check starts."""
    plugins = Plugins.of(Feature("under-test", checks=(CheckSpec("models", _fetch_models),)))
    target = endpoint(timeout_s=timeout_s, tries=1)
    job = Job(f"{target.name}/checks", target, ("models",), target.interval_s)

    async def main() -> tuple[list[ProbeResult], FleetState]:
        watch = LoopWatch()
        watch.start()
        async with answering(handler) as client:
            prober = Prober(client, FleetState(role_of), plugins.resolve, 4, 1 << 16,
                            watch=watch)
            if block_s:
                asyncio.get_running_loop().call_soon(time.sleep, block_s)
            results = await prober.run_job(job, scheduled_at)
        watch.stop()
        return results, prober.state

    return asyncio.run(main())


def test_a_timeout_while_the_loop_was_blocked_is_unknown_not_the_endpoints() -> None:
    # The loop is blocked past the check's deadline: whatever the server answered sat
    # unread. Without the watch this is a timeout charged to a healthy endpoint.
    [result], state = _run(_quick, block_s=0.8, timeout_s=0.3)
    assert result.outcome is Outcome.UNKNOWN, result
    assert result.details["overloaded"] is True
    assert result.details["overload_outcome"] == "timeout"
    assert result.details["stalled_s"] >= 0.3 * 0.2
    assert "overloaded" in result.message
    assert state.snapshot().daemon.overload_unobserved_total == 1
    assert state.snapshot().checks[(result.endpoint, "models")].outcomes.get("timeout") is None


def test_a_real_timeout_on_an_attentive_loop_is_still_a_timeout() -> None:
    [result], state = _run(_hangs, timeout_s=1.5)
    assert result.outcome is Outcome.TIMEOUT
    assert "overloaded" not in result.details
    assert state.snapshot().daemon.overload_unobserved_total == 0


def test_a_check_that_gets_its_slot_an_interval_late_does_not_start() -> None:
    late = time.time() - 2 * endpoint().interval_s
    results, state = _run(_quick, timeout_s=1.0, scheduled_at=late)
    daemon = state.snapshot().daemon
    assert results == [] and daemon.overload_skipped_total == 1
    assert sum(daemon.lag.counts) == 1  # its lag is still counted
    on_time, state = _run(_quick, timeout_s=1.0, scheduled_at=time.time())
    assert [r.outcome for r in on_time] == [Outcome.OK]
    assert state.snapshot().daemon.overload_skipped_total == 0


def test_an_overloaded_prober_skips_a_run_instead_of_queueing_it() -> None:
    """One slot in all: while checks wait for it and the last scheduled one to get it was
    over half its interval late, a run due now is skipped at once (counted), not queued
    behind them; once nothing waits, runs start again."""
    release = {name: asyncio.Event() for name in "abce"}
    release["e"].set()

    async def held(target: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
        await release[target.name].wait()
        return Observation(Outcome.OK)

    plugins = Plugins.of(Feature("under-test", checks=(CheckSpec("held", held),)))

    def job_of(name: str) -> Job:
        target = endpoint(name=name, interval_s=10.0, timeout_s=30.0)
        return Job(f"{name}/checks", target, ("held",), target.interval_s)

    async def main() -> tuple[list[list[ProbeResult]], list[ProbeResult], list[ProbeResult],
                              FleetState]:
        prober = Prober(make_client(1), FleetState(role_of), plugins.resolve, 1, 1 << 16)
        async with prober.client:
            now = time.time()
            first = asyncio.create_task(prober.run_job(job_of("a"), now))
            await asyncio.sleep(0.05)  # "a" holds the slot
            late = asyncio.create_task(prober.run_job(job_of("b"), now - 6.0))
            queued = asyncio.create_task(prober.run_job(job_of("c"), now))
            await asyncio.sleep(0.05)  # "b" and "c" wait for it
            release["a"].set()  # "b" gets it 6 s late (over half of 10 s) and holds it
            await asyncio.sleep(0.05)
            skipped = await prober.run_job(job_of("d"), time.time())  # "c" waits: skipped
            release["b"].set()
            release["c"].set()
            done = await asyncio.gather(first, late, queued)
            again = await prober.run_job(job_of("e"), time.time())  # nothing waits
        return done, skipped, again, prober.state

    done, skipped, again, state = asyncio.run(main())
    assert [[r.endpoint for r in results] for results in done] == [["a"], ["b"], ["c"]]
    assert skipped == [] and state.snapshot().daemon.overload_skipped_total == 1
    assert [r.endpoint for r in again] == ["e"]
