"""One sweep: every check of every (or one) endpoint, once, concurrently within the bound."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from probe.config import Config
from probe.outcome import ProbeResult
from probe.prober import Prober, Recorder, make_client
from probe.scheduler import Job, plan
from probe.state import FleetState


async def sweep(config: Config, only: str | None = None, recorder: Recorder | None = None,
                env: Mapping[str, str] | None = None) -> list[ProbeResult]:
    jobs = [job for job in plan(config) if only is None or job.endpoint.name == only]
    async with make_client(config.scheduler.max_concurrent) as client:
        prober = Prober(client, FleetState(config), config.scheduler.max_concurrent,
                        config.scheduler.max_body_bytes, recorder, env)
        batches = await asyncio.gather(*(prober.run_job(job) for job in _ordered(jobs)))
    return [result for batch in batches for result in batch]


def _ordered(jobs: list[Job]) -> list[Job]:
    return sorted(jobs, key=lambda job: (job.endpoint.name, job.id))
