"""One sweep: every check of every (or one) endpoint, once, concurrently within the bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from probe.config import Config
from probe.outcome import ProbeResult
from probe.prober import Prober, Recorder, make_client
from probe.scheduler import Job, plan
from probe.state import FleetState

# Features that change what a sweep probes (discovery lists RunPod's fleet first): given the
# config and the prober, a step publishes its own results and returns the config to sweep.
Preparer = Callable[[Config, Prober], Awaitable[tuple[Config, list[ProbeResult]]]]
PREPARERS: list[Preparer] = []


async def sweep(config: Config, only: str | None = None, recorder: Recorder | None = None,
                env: Mapping[str, str] | None = None) -> list[ProbeResult]:
    async with make_client(config.scheduler.max_concurrent) as client:
        prober = Prober(client, FleetState(config), config.scheduler.max_concurrent,
                        config.scheduler.max_body_bytes, recorder, env)
        early: list[ProbeResult] = []
        for prepare in PREPARERS:
            config, results = await prepare(config, prober)
            early.extend(r for r in results if only is None or r.endpoint == only)
        jobs = [job for job in plan(config) if only is None or job.endpoint.name == only]
        batches = await asyncio.gather(*(prober.run_job(job) for job in _ordered(jobs)))
    return [*early, *(result for batch in batches for result in batch)]


def _ordered(jobs: list[Job]) -> list[Job]:
    return sorted(jobs, key=lambda job: (job.endpoint.name, job.id))
