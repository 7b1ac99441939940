"""One sweep: every check of every (or one) endpoint, once, concurrently within the bound.

The features' preparers run first (discovery lists RunPod's fleet), so a sweep sees the
same endpoints the daemon would."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from probe.config import Config
from probe.engine import probing
from probe.features import Plugins
from probe.job import Job, concurrency
from probe.outcome import ProbeResult
from probe.prober import Prober, Recorder


async def prepare(config: Config, plugins: Plugins,
                  prober: Prober) -> tuple[Config, list[ProbeResult]]:
    """Run every preparer in order; returns the config to probe and what they produced."""
    produced: list[ProbeResult] = []
    for step in plugins.preparers:
        config, results = await step(config, prober)
        produced.extend(results)
    prober.state.configure(config, plugins.plan(config))
    return config, produced


async def sweep(config: Config, plugins: Plugins, only: str | None = None,
                recorder: Recorder | None = None,
                env: Mapping[str, str] | None = None) -> list[ProbeResult]:
    async with probing(config, plugins, recorder, env) as prober:
        config, produced = await prepare(config, plugins, prober)
        early = [r for r in produced if only is None or r.endpoint == only]
        jobs = [job for job in plugins.plan(config) if only is None or job.endpoint.name == only]
        prober.allow(concurrency(jobs, config.scheduler))  # discovery may have grown the plan
        batches = await asyncio.gather(*(prober.run_job(job) for job in _ordered(jobs)))
    return [*early, *(result for batch in batches for result in batch)]


def _ordered(jobs: list[Job]) -> list[Job]:
    return sorted(jobs, key=lambda job: (job.endpoint.name, job.id))
