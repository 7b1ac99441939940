"""The prober runs jobs: a job's checks in turns (one connection per healthy pod; a hanging
check holds the others back by a stagger at most), one check of one endpoint never twice at
once, a global bound on checks in flight, no check started once stopping, and every result
published to state, recorder and observers. Checks here are in-test functions over the
production client (``probe.net.make_client``); the one that talks HTTP asks a local server."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from helpers import endpoint, role_of
from local_server import PinnedResolver, answering

from probe.check import CheckContext, CheckSpec
from probe.config.model import Endpoint, SchedulerSettings
from probe.features import Feature, Plugins
from probe.job import Connections, Job, concurrency, open_connections
from probe.net import ProbeClient, make_client
from probe.outcome import Observation, Outcome, ProbeResult
from probe.prober import Prober
from probe.state import FleetState

CheckFn = Callable[[Endpoint, ProbeClient, CheckContext], Awaitable[Observation]]


def make(*specs: CheckSpec, max_concurrent: int = 8, recorder: Any = None,
         env: Mapping[str, str] | None = None, client: ProbeClient | None = None) -> Prober:
    """A prober over ``specs`` (merged the way the app merges features) and ``client`` (by
    default the production client, unused by checks that do not talk HTTP)."""
    plugins = Plugins.of(Feature("under-test", checks=specs))
    return Prober(client or make_client(max_concurrent), FleetState(role_of), plugins.resolve,
                  max_concurrent, 1024, recorder, env)


def run(prober: Prober, *jobs: Job) -> list[list[ProbeResult]]:
    async def main() -> list[list[ProbeResult]]:
        async with prober.client:
            return list(await asyncio.gather(*(prober.run_job(job) for job in jobs)))

    return asyncio.run(main())


def job(target: Endpoint, *checks: str, name: str = "checks", **overrides: Any) -> Job:
    return Job(f"{target.name}/{name}", target, checks, target.interval_s, **overrides)


def answers(outcome: Outcome = Outcome.OK) -> CheckFn:
    async def check(_e: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
        return Observation(outcome, str(outcome))

    return check


# -- concurrency ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoints", "max_concurrent", "peak"),
    [(("a", "a", "a"), 8, 1), (("a", "b"), 8, 2), (("a", "b", "c", "d"), 2, 2),
     (("a", "b", "c"), 1, 1), (("a", "a", "b", "b"), 8, 2)],
    ids=["three-jobs-one-endpoint", "two-endpoints-overlap", "global-bound-of-two",
         "global-bound-of-one", "two-jobs-each-of-two-endpoints"],
)
def test_one_check_never_overlaps_itself_and_the_global_bound_holds(
        endpoints: tuple[str, ...], max_concurrent: int, peak: int) -> None:
    running: Counter[str] = Counter()
    peaks: Counter[str] = Counter()

    async def slow(target: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
        running[target.name] += 1
        running["*"] += 1
        for key in (target.name, "*"):
            peaks[key] = max(peaks[key], running[key])
        await asyncio.sleep(0.05)
        running[target.name] -= 1
        running["*"] -= 1
        return Observation(Outcome.OK)

    prober = make(CheckSpec("slow", slow), max_concurrent=max_concurrent)
    jobs = [job(endpoint(name=name), "slow", name=f"job{i}") for i, name in enumerate(endpoints)]
    results = run(prober, *jobs)
    assert [len(r) for r in results] == [1] * len(jobs)
    assert peaks["*"] == peak
    assert all(peaks[name] == 1 for name in endpoints), peaks
    assert prober.state.daemon.in_flight == 0


# -- stopping ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stop_at", "ran"),
    [(None, ["a", "b", "c"]), ("before", []), ("a", ["a"]), ("b", ["a", "b"])],
    ids=["not-stopped", "stopped-before-the-job", "stopped-during-the-first-check",
         "stopped-during-the-second-check"],
)
def test_no_check_starts_once_stopping(stop_at: str | None, ran: list[str]) -> None:
    # one slot in all: the job's checks wait for it one by one
    called: list[str] = []
    holder: list[Prober] = []

    def check(name: str) -> CheckSpec:
        async def fn(_e: Endpoint, _c: ProbeClient, ctx: CheckContext) -> Observation:
            called.append(name)
            if name == stop_at:
                holder[0].stopping.set()
                assert ctx.stopping is holder[0].stopping, "a long check can see the stop"
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    prober = make(check("a"), check("b"), check("c"), max_concurrent=1)
    holder.append(prober)
    if stop_at == "before":
        prober.stopping.set()
    [results] = run(prober, job(endpoint(), "a", "b", "c"))
    assert called == ran and [r.check for r in results] == ran


# -- a check that cannot pass ----------------------------------------------------------------
def test_a_hanging_check_does_not_hold_back_the_endpoints_others() -> None:
    # issue 20: the checks of one endpoint ran one after another, each timing-out check
    # blocking for its deadline: a hung pod was still up at 61 s. In turns, each waits for
    # the one before it a stagger at most (a tenth of the deadline here: 0.03 s).
    finished: dict[str, float] = {}

    def check(name: str, hangs: bool) -> CheckSpec:
        async def fn(_e: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
            if hangs:
                await asyncio.sleep(5)
            finished[name] = time.monotonic()
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    prober = make(check("models", True), check("health", True), check("vllm_metrics", True),
                  check("context", False), check("prompt", True))
    target = endpoint(timeout_s=0.3, tries=1)
    began = time.monotonic()
    checks, context, prompt = run(prober, job(target, "models", "health", "vllm_metrics"),
                                  job(target, "context", name="context"),
                                  job(target, "prompt", name="prompt"))
    took = time.monotonic() - began
    assert [r.outcome for r in checks] == [Outcome.TIMEOUT] * 3
    assert [r.check for r in checks] == ["models", "health", "vllm_metrics"], "the job's order"
    assert prompt[0].outcome is Outcome.TIMEOUT and context[0].ok
    assert finished["context"] - began < 0.2, "the context job waited for nobody"
    assert took < 0.3 * 2, f"no check waited for another's deadline: {took:.2f}s"


@pytest.mark.parametrize("slow_s", [0.0, 0.05], ids=["in-turn", "one-begun-beside-a-slow-one"])
def test_a_run_leaves_no_reference_cycle(slow_s: float) -> None:
    """The daemon collects garbage on a clock (probe.process): a cycle that outlives half a
    second (a run that waited in a backlog) waits up to 10 minutes, with what it holds (the
    run's results). A run of several checks, in turns or one begun beside a slow one, is
    freed when its last reference goes."""
    def check(name: str, sleep_s: float) -> CheckSpec:
        async def fn(_e: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
            await asyncio.sleep(sleep_s)
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    prober = make(check("models", slow_s), check("health", 0.0), check("vllm_metrics", 0.0))
    target = endpoint(timeout_s=0.2, tries=1)  # a stagger of 0.02 s

    async def main() -> list[str]:
        async with prober.client:
            await prober.run_job(job(target, "models", "health", "vllm_metrics"))
            gc.collect()
            gc.disable()
            try:
                results = await prober.run_job(job(target, "models", "health", "vllm_metrics"))
                assert [r.outcome for r in results] == [Outcome.OK] * 3
                del results
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                return sorted({type(thing).__qualname__ for thing in gc.garbage
                               if type(thing).__module__ in ("probe.prober", "probe.outcome")
                               or isinstance(thing, asyncio.Task)})
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()

    assert asyncio.run(main()) == []


def test_a_hanging_check_delays_the_next_by_the_stagger_not_its_deadline() -> None:
    """The first check hangs until its 2 s deadline: the second starts once the stagger
    (a tenth of it: 0.2 s) has passed, and the third right after the second, both done
    long before the first times out."""
    events: list[tuple[str, str, float]] = []

    def check(name: str, hangs: bool) -> CheckSpec:
        async def fn(_e: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
            events.append(("start", name, time.monotonic()))
            if hangs:
                await asyncio.sleep(30)
            events.append(("end", name, time.monotonic()))
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    prober = make(check("models", True), check("health", False), check("vllm_metrics", False))
    target = endpoint(timeout_s=2.0, tries=1, interval_s=30.0)
    planned = job(target, "models", "health", "vllm_metrics")
    assert planned.stagger_s == pytest.approx(0.2)
    [results] = run(prober, planned)
    assert [(r.check, r.outcome) for r in results] == [
        ("models", Outcome.TIMEOUT), ("health", Outcome.OK), ("vllm_metrics", Outcome.OK)]
    assert [(what, name) for what, name, _ in events] == [
        ("start", "models"), ("start", "health"), ("end", "health"),
        ("start", "vllm_metrics"), ("end", "vllm_metrics")], "the healthy ones in turns"
    at = {(what, name): t for what, name, t in events}
    assert at[("start", "health")] - at[("start", "models")] >= 0.2 - 0.01, "after the stagger"
    assert at[("end", "vllm_metrics")] - at[("start", "models")] < 2.0, \
        "before the hanging check's deadline"


def test_healthy_checks_take_turns_one_after_another() -> None:
    events: list[tuple[str, str]] = []

    def check(name: str) -> CheckSpec:
        async def fn(_e: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
            events.append(("start", name))
            await asyncio.sleep(0.01)
            events.append(("end", name))
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    prober = make(check("a"), check("b"), check("c"))
    [results] = run(prober, job(endpoint(), "a", "b", "c"))
    assert [r.check for r in results] == ["a", "b", "c"] and all(r.ok for r in results)
    assert events == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b"),
                      ("start", "c"), ("end", "c")]


def test_a_check_waiting_for_its_slot_is_not_slow() -> None:
    """Both slots are held for 0.5 s by other pods; the job's stagger is 0.1 s. Its first
    check waits for a slot longer than that, but waiting is the probe's business, not the
    pod's: its checks still take turns once it has one (handed on, they would have run two
    at once on two connections)."""
    events: list[tuple[str, str]] = []

    def check(name: str, hold_s: float) -> CheckSpec:
        async def fn(target: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
            events.append(("start", f"{target.name}:{name}"))
            await asyncio.sleep(hold_s)
            events.append(("end", f"{target.name}:{name}"))
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    prober = make(check("hold", 0.5), check("a", 0.02), check("b", 0.02), check("c", 0.02),
                  max_concurrent=2)
    target = endpoint(name="p", timeout_s=1.0, tries=1)
    planned = job(target, "a", "b", "c")
    assert planned.stagger_s == pytest.approx(0.1)

    async def main() -> list[ProbeResult]:
        async with prober.client:
            holders = [asyncio.create_task(prober.run_job(job(endpoint(name=n), "hold")))
                       for n in ("x", "y")]
            await asyncio.sleep(0.05)  # both slots held
            results = await prober.run_job(planned)
            await asyncio.gather(*holders)
            return results

    results = asyncio.run(main())
    assert [r.check for r in results] == ["a", "b", "c"] and all(r.ok for r in results)
    ours = [event for event in events if event[1].startswith("p:")]
    assert ours == [("start", "p:a"), ("end", "p:a"), ("start", "p:b"), ("end", "p:b"),
                    ("start", "p:c"), ("end", "p:c")]


class CountingServer:
    """An HTTP/1.1 server on 127.0.0.1 answering every request with 200 and ``{}``, keeping
    connections open, counting the connections it accepted per host name asked."""

    def __init__(self) -> None:
        self.connections: Counter[str] = Counter()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counted = False
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                if not counted:
                    host = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                                if line.lower().startswith("host:"))
                    self.connections[host] += 1
                    counted = True
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def test_a_healthy_pods_checks_reuse_one_connection() -> None:
    """Five pods with the default pod's three checks, each a GET through the production
    client to a real server on 127.0.0.1, run twice: one connection per pod (side by side
    they opened three)."""
    def fetching(name: str) -> CheckSpec:
        async def fn(target: Endpoint, client: ProbeClient, _x: CheckContext) -> Observation:
            status, _, _ = await client.fetch(f"{target.root_url}/{name}", {}, 1024)
            return Observation(Outcome.OK if status == 200 else Outcome.HTTP_5XX)

        return CheckSpec(name, fn)

    server = CountingServer()
    pods = [endpoint(name=f"pod-{i}", root_url=f"http://pod-{i}.test") for i in range(5)]

    async def main() -> list[list[ProbeResult]]:
        listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            async with make_client(8, resolver=PinnedResolver(port)) as client:
                prober = make(fetching("models"), fetching("health"), fetching("vllm_metrics"),
                              client=client)
                jobs = [job(p, "models", "health", "vllm_metrics") for p in pods]
                first = await asyncio.gather(*(prober.run_job(j) for j in jobs))
                again = await asyncio.gather(*(prober.run_job(j) for j in jobs))
                return [*first, *again]
        finally:
            listener.close()

    batches = asyncio.run(main())
    assert all([r.outcome for r in batch] == [Outcome.OK] * 3 for batch in batches)
    assert server.connections == {f"pod-{i}.test": 1 for i in range(5)}


def test_auto_concurrency_is_sized_from_the_plans_requests() -> None:
    """``max_concurrent: auto``: half a second of the plan's requests in flight, at least
    64; a number given is kept as it is."""
    def pods(count: int, checks: tuple[str, ...], interval_s: float = 15.0) -> list[Job]:
        return [replace(job(endpoint(name=f"p{i}"), *checks), interval_s=interval_s)
                for i in range(count)]

    auto = SchedulerSettings()
    default = ("models", "health", "vllm_metrics")
    assert concurrency(pods(14, default), auto) == 64  # a small fleet: the floor
    assert concurrency(pods(10_000, default), auto) == 1000  # 2,000 requests/s x 0.5 s
    fleet = pods(10_000, default) + pods(20_000, ("prompt",), interval_s=300.0)
    assert concurrency(fleet, auto) == 1034  # and the prompts' 67 a second
    assert concurrency(fleet, SchedulerSettings(max_concurrent=64)) == 64


def test_a_grown_plan_lets_more_checks_in_flight() -> None:
    """The prober's limit grows with the plan (discovery), never below what it was."""
    running, peak = 0, 0

    async def slow(target: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return Observation(Outcome.OK)

    prober = make(CheckSpec("slow", slow), max_concurrent=1)
    jobs = [job(endpoint(name=f"e{i}"), "slow", name=f"job{i}") for i in range(4)]
    peaks = []

    async def main() -> None:
        nonlocal peak
        async with prober.client:
            await asyncio.gather(*(prober.run_job(j) for j in jobs))
            peaks.append(peak)
            prober.allow(3)
            prober.allow(2)  # never fewer
            peak = 0
            await asyncio.gather(*(prober.run_job(j) for j in jobs))
            peaks.append(peak)

    asyncio.run(main())
    assert peaks == [1, 3]
    assert prober.limit == 3


def test_the_connections_a_plan_can_hold_open() -> None:
    """One kept-alive connection per host (the checks take turns over it), more for checks
    in flight beside another of their host's, at most the concurrency bound; without
    keep-alive, the checks in flight."""
    default = ("models", "health", "vllm_metrics")

    def plan(count: int, checks: tuple[str, ...] = default, **where: Any) -> list[Job]:
        pods = [endpoint(name=f"p{i}", openai_base=f"http://p{i}.test/v1",
                         root_url=f"http://p{i}.test", **where) for i in range(count)]
        return [job(p, *checks) for p in pods]

    settings = SchedulerSettings(max_concurrent=64)
    assert open_connections(plan(10), settings) == Connections(10, 20)  # 2 beside per pod
    assert open_connections(plan(2000), settings) == Connections(2000, 64)
    assert open_connections(plan(2000, ("models",)), settings) == Connections(2000, 0)
    prompts = [job(p.endpoint, "prompt", name="prompt") for p in plan(2, ("models",))]
    assert open_connections(plan(2, ("models",)) + prompts, settings) == Connections(2, 2)
    serverless = [job(endpoint(name=f"s{i}", openai_base=f"https://api.test/v2/s{i}/openai/v1",
                               root_url=f"https://api.test/v2/s{i}"), "health")
                  for i in range(5)]
    assert open_connections(serverless, settings) == Connections(1, 4), "one host, shared"
    fresh = SchedulerSettings(max_concurrent=64, keepalive=False)
    assert open_connections(plan(10), fresh) == Connections(0, 30)
    assert open_connections(plan(2000), fresh) == Connections(0, 64)
    said = str(open_connections(plan(2000), settings))
    assert said == ("2000 kept-alive connections, one per host asked, and up to 64 more for "
                    "checks in flight beside another of their host's")


# -- publishing ----------------------------------------------------------------------------
class Recorder:
    """Gives every result row ``row_id``; with None, fails like a full disk."""

    def __init__(self, row_id: int | None) -> None:
        self.row_id = row_id
        self.recorded: list[ProbeResult] = []

    def record(self, result: ProbeResult) -> int:
        self.recorded.append(result)
        if self.row_id is None:
            raise OSError("disk full")
        return self.row_id


@pytest.mark.parametrize(
    ("recording", "row_id", "logged"),
    [(False, None, None), (True, 42, None),
     (True, None, "could not queue result for storage")],
    ids=["no-recorder", "recorded-as-row-42", "recorder-fails"],
)
def test_every_observer_gets_each_result_with_its_row_id(
        caplog: pytest.LogCaptureFixture, recording: bool, row_id: int | None,
        logged: str | None) -> None:
    recorder = Recorder(row_id) if recording else None
    seen: list[tuple[str, str, int | None]] = []

    def broken(result: ProbeResult, _row: int | None) -> None:
        raise RuntimeError("observer bug")

    def watcher(tag: str) -> Callable[[ProbeResult, int | None], None]:
        return lambda result, row: seen.append((tag, result.check, row))

    prober = make(CheckSpec("models", answers()), CheckSpec("health", answers(Outcome.HTTP_404)),
                  recorder=recorder)
    prober.observers.extend([watcher("first"), broken, watcher("last")])
    with caplog.at_level(logging.ERROR, logger="probe.prober"):
        run(prober, job(endpoint(), "models", "health"))
    assert seen == [("first", "models", row_id), ("last", "models", row_id),
                    ("first", "health", row_id), ("last", "health", row_id)]
    assert caplog.text.count("result observer failed") == 2
    if logged:
        assert caplog.text.count(logged) == 2
    latest = prober.state.latest("pod-a", "health")
    assert latest is not None and latest.outcome is Outcome.HTTP_404, "state is updated first"
    if recorder is not None:
        assert [r.check for r in recorder.recorded] == ["models", "health"]


def test_a_published_result_reaches_state_recorder_and_observers() -> None:
    recorder, seen = Recorder(7), []
    prober = make(recorder=recorder)
    prober.observers.append(lambda result, row: seen.append((result.endpoint, row)))
    result = ProbeResult("runpod-api", "api", "discovery", Outcome.OK,
                         started_at=datetime.now(UTC), latency_s=0.1, attempts=1, url="x", role=role_of("discovery"))
    prober.publish(result)
    assert seen == [("runpod-api", 7)] and recorder.recorded == [result]
    assert prober.state.latest("runpod-api", "discovery") is result


# -- what a check receives -----------------------------------------------------------------
def test_job_params_reach_the_checks_context() -> None:
    seen: list[Mapping[str, Any]] = []

    async def ask(_e: Endpoint, _c: ProbeClient, ctx: CheckContext) -> Observation:
        seen.append(dict(ctx.params))
        return Observation(Outcome.OK)

    prober = make(CheckSpec("prompt", ask, family=True))
    target = endpoint()

    async def main() -> None:
        async with prober.client:
            await prober.run_job(job(target, "prompt:arith", name="p1",
                                     params={"prompt": "arith", "room": 16}))
            await prober.run_job(job(target, "prompt:arith", name="p2",
                                     params={"prompt": "arith", "room": 64}))
            await prober.run_job(job(target, "prompt:arith", name="p3"))

    asyncio.run(main())
    assert seen == [{"prompt": "arith", "room": 16}, {"prompt": "arith", "room": 64}, {}]


@pytest.mark.parametrize(
    ("endpoint_tries", "job_tries", "attempts"),
    [(3, None, 3), (3, 1, 1), (1, 2, 2)],
    ids=["endpoint-tries", "job-tries-fewer", "job-tries-more"],
)
def test_a_jobs_tries_override_the_endpoints(endpoint_tries: int, job_tries: int | None,
                                             attempts: int) -> None:
    prober = make(CheckSpec("flaky", answers(Outcome.CONNECT_ERROR)))
    target = endpoint(tries=endpoint_tries, retry_delay_s=0.0)
    [[result]] = run(prober, job(target, "flaky", tries=job_tries))
    assert result.outcome is Outcome.CONNECT_ERROR and result.attempts == attempts


def test_a_jobs_timeout_overrides_the_endpoints() -> None:
    async def hangs(_e: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
        await asyncio.sleep(5)
        return Observation(Outcome.OK)

    prober = make(CheckSpec("hangs", hangs))
    target = endpoint(timeout_s=10.0, tries=1)
    began = time.monotonic()
    [[result]] = run(prober, job(target, "hangs", timeout_s=0.05))
    assert result.outcome is Outcome.TIMEOUT and "within 0.05s" in result.message
    assert time.monotonic() - began < 2.0


def test_checks_talk_through_the_probers_client_with_its_env() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"data": [{"id": "qwen"}]})

    async def models(target: Endpoint, client: ProbeClient,
                     ctx: CheckContext) -> Observation:
        response = await client.get(f"{target.openai_base}/models", headers=ctx.headers(target))
        served = [m["id"] for m in response.json()["data"]]
        return Observation(Outcome.OK, f"serves {served}", response.status_code)

    async def main() -> list[ProbeResult]:
        async with answering(handler) as client:
            prober = make(CheckSpec("models", models), client=client,
                          env={"POD_KEY": "pod-key-7f3a9c2e"})
            return await prober.run_job(job(endpoint(api_key_env="POD_KEY"), "models"))

    [result] = asyncio.run(main())
    assert result.ok and result.http_status == 200 and result.message == "serves ['qwen']"
    [request] = requests
    assert str(request.url) == "http://pod.test/v1/models"
    assert request.headers["Authorization"] == "Bearer pod-key-7f3a9c2e"


def test_memory_is_per_check_and_shared_is_per_endpoint() -> None:
    seen: list[tuple[str, str, int, int]] = []

    def counting(name: str) -> CheckSpec:
        async def fn(target: Endpoint, _c: ProbeClient, ctx: CheckContext) -> Observation:
            ctx.memory["runs"] = ctx.memory.get("runs", 0) + 1
            ctx.shared["runs"] = ctx.shared.get("runs", 0) + 1
            seen.append((target.name, name, ctx.memory["runs"], ctx.shared["runs"]))
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    prober = make(counting("one"), counting("two"))
    a, b = endpoint(name="a"), endpoint(name="b")

    async def main() -> None:
        async with prober.client:
            for target in (a, a, b):
                await prober.run_job(job(target, "one", "two"))

    asyncio.run(main())
    assert seen == [("a", "one", 1, 1), ("a", "two", 1, 2), ("a", "one", 2, 3),
                    ("a", "two", 2, 4), ("b", "one", 1, 1), ("b", "two", 1, 2)]


def test_scheduling_lag_is_observed_and_nothing_stays_in_flight() -> None:
    prober = make(CheckSpec("models", answers()))

    async def main() -> None:
        async with prober.client:
            await prober.run_job(job(endpoint(), "models"), scheduled_at=time.time() - 2.0)
            await prober.run_job(job(endpoint(), "models"))  # run by hand: no lag

    asyncio.run(main())
    lag = prober.state.snapshot().daemon.lag
    assert sum(lag.counts) == 1 and lag.total >= 2.0
    assert prober.state.daemon.in_flight == 0 and prober.state.daemon.probes_total == 2
