"""Microbenchmark: the CPU of the run path per job run (``Prober.run_job``) and of the
scheduler per run (``ProbeScheduler``), and the connections a pod's checks hold.

Parts (each figure is the best of ``--repeat``; process CPU, ``time.process_time``):

- ``jobs``: ``--pods`` default pods (models, health, vllm_metrics), their checks in-test
  functions that answer at once (no I/O), run in bursts of 32 jobs (a grid step), every
  result's ``publish`` a no-op: what the run path itself costs per job.
- ``http``: the same pods, each check a bounded GET (``client.fetch``) through the
  production client to a local HTTP/1.1 server in another process (keep-alive; every host
  name resolved to it), every job at once, paced by the prober's bound of 64 checks in
  flight (as in a busy daemon: the same requests in flight however a job's checks are
  run, so the loop's wake-ups are as full). Prints CPU per job and the connections the
  server accepted per pod.
- ``scheduler``: ``--pods`` jobs every ``--interval`` seconds spread as the daemon spreads
  them, each run a no-op, for ``--seconds``: CPU per run and the entries in APScheduler's
  job store.

    python bench/run_path.py                       # every part
    python bench/run_path.py --part http --pods 2000
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.abc import AbstractResolver, ResolveResult  # noqa: E402

from probe.check import CheckContext, CheckSpec  # noqa: E402
from probe.config.model import Endpoint, SchedulerSettings  # noqa: E402
from probe.features import Feature, Plugins  # noqa: E402
from probe.job import Job  # noqa: E402
from probe.net import ProbeClient, make_client  # noqa: E402
from probe.outcome import Observation, Outcome  # noqa: E402
from probe.prober import Prober  # noqa: E402
from probe.scheduler import ProbeScheduler  # noqa: E402
from probe.state import FleetState  # noqa: E402

CHECKS = ("models", "health", "vllm_metrics")
BURST = 32

# A keep-alive HTTP/1.1 server counting the connections it accepts; GET /connections answers
# the count (on a connection of its own, not counted).
SERVER = r"""
import asyncio, sys
count = 0
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
async def serve(reader, writer):
    global count
    first = True
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /connections "):
                body = str(count).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                             % len(body) + body)
                await writer.drain()
                return
            if first:
                count += 1
                first = False
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


class Pinned(AbstractResolver):
    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host="127.0.0.1", port=self.port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


def pod(i: int) -> Endpoint:
    return Endpoint(name=f"pod-{i}", kind="openai", openai_base=f"http://pod-{i}.test/v1",
                    root_url=f"http://pod-{i}.test", interval_s=15.0, timeout_s=5.0, tries=1,
                    retry_delay_s=0.5, checks=CHECKS)


def role_of(_check: str) -> str:
    return "serving"


def instant(name: str) -> CheckSpec:
    async def check(_e: Endpoint, _c: ProbeClient, _x: CheckContext) -> Observation:
        return Observation(Outcome.OK, "ok")

    return CheckSpec(name, check)


def fetching(name: str) -> CheckSpec:
    async def check(target: Endpoint, client: ProbeClient, _x: CheckContext) -> Observation:
        status, _, _ = await client.fetch(f"{target.root_url}/{name}", {}, 1 << 16)
        return Observation(Outcome.OK if status == 200 else Outcome.HTTP_5XX)

    return CheckSpec(name, check)


def prober_of(specs: tuple[CheckSpec, ...], client: ProbeClient) -> Prober:
    plugins = Plugins.of(Feature("bench", checks=specs))
    prober = Prober(client, FleetState(role_of), plugins.resolve, 64, 1 << 16)
    prober.publish = lambda result: result  # type: ignore[method-assign]
    return prober


async def rounds(prober: Prober, jobs: list[Job], count: int, burst: int) -> float:
    """CPU seconds per job run over ``count`` rounds of every job, ``burst`` jobs at once
    (0: every job at once, paced by the prober's bound of 64 checks in flight)."""
    burst = burst or len(jobs)
    began = time.process_time()
    for _ in range(count):
        for at in range(0, len(jobs), burst):
            batch = await asyncio.gather(*(prober.run_job(job) for job in jobs[at:at + burst]))
            assert all(len(results) == len(CHECKS) for results in batch), batch[:1]
    return (time.process_time() - began) / (count * len(jobs))


def run_loop(main: Callable[[], Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def part_jobs(pods: int, repeat: int) -> None:
    jobs = [Job(f"pod-{i}/checks", pod(i), CHECKS, 15.0) for i in range(pods)]

    async def main() -> list[float]:
        prober = prober_of(tuple(instant(c) for c in CHECKS), make_client(64))
        async with prober.client:
            await rounds(prober, jobs, 1, BURST)  # warm: contexts and locks made
            return [await rounds(prober, jobs, 3, BURST) for _ in range(repeat)]

    cpu = run_loop(main)
    print(f"jobs: {pods} pods x {len(CHECKS)} instant checks, bursts of {BURST}: "
          f"{min(cpu) * 1e6:.1f} us CPU per job run (best of {repeat}; "
          f"all {', '.join(f'{c * 1e6:.1f}' for c in cpu)})")


def part_http(pods: int, repeat: int) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        jobs = [Job(f"pod-{i}/checks", pod(i), CHECKS, 15.0) for i in range(pods)]

        async def main() -> tuple[list[float], int]:
            client = make_client(64, keepalive_expiry=300.0, resolver=Pinned(port))
            prober = prober_of(tuple(fetching(c) for c in CHECKS), client)
            async with client:
                await rounds(prober, jobs, 1, 0)  # warm: one connection (or more) per pod
                cpu = [await rounds(prober, jobs, 2, 0) for _ in range(repeat)]
                status, body, _ = await client.fetch(
                    f"http://127.0.0.1:{port}/connections", {"Connection": "close"}, 64)
                assert status == 200
            return cpu, int(body)

        cpu, connections = run_loop(main)
    finally:
        server.kill()
        server.wait()
    print(f"http: {pods} pods x {len(CHECKS)} GETs, 64 in flight: {min(cpu) * 1e6:.1f} us "
          f"CPU per job run (best of {repeat}; all {', '.join(f'{c * 1e6:.1f}' for c in cpu)}); "
          f"{connections} connections accepted: {connections / pods:.2f} per pod")


def part_scheduler(pods: int, interval_s: float, seconds: float, repeat: int) -> None:
    jobs = [Job(f"pod-{i}/checks", pod(i), CHECKS, interval_s) for i in range(pods)]

    async def main() -> tuple[float, int, int]:
        runs = 0

        async def run(_job: Job) -> None:
            nonlocal runs
            runs += 1

        scheduler = ProbeScheduler(run)
        scheduler.set_jobs(jobs, SchedulerSettings())
        entries = len(scheduler._scheduler.get_jobs())
        scheduler.start()
        await asyncio.sleep(interval_s + 1)  # every first run (spread over the interval)
        began, counted = time.process_time(), runs
        await asyncio.sleep(seconds)
        cpu = time.process_time() - began
        done = runs - counted
        await scheduler.shutdown()
        return cpu / max(done, 1), done, entries

    results = [run_loop(main) for _ in range(repeat)]
    best = min(r[0] for r in results)
    print(f"scheduler: {pods} jobs every {interval_s:g}s, {seconds:g}s: {best * 1e6:.1f} us CPU "
          f"per run (best of {repeat}; runs {results[0][1]}), {results[0][2]} entries in "
          f"APScheduler's job store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("jobs", "http", "scheduler", "all"), default="all")
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=5.0, help="scheduler part: seconds")
    parser.add_argument("--seconds", type=float, default=10.0, help="scheduler part")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.part in ("jobs", "all"):
        part_jobs(args.pods, args.repeat)
    if args.part in ("http", "all"):
        part_http(args.pods, args.repeat)
    if args.part in ("scheduler", "all"):
        part_scheduler(args.pods, args.interval, args.seconds, min(args.repeat, 3))


if __name__ == "__main__":
    main()
