"""Plug the serverless feature into the spine's extension points: config keys, the
round-trip schedule, the /metrics provider and the daemon hook that feeds the histograms.

Imported once by ``probe.config.features.register_features``; registering happens at import,
so loading many configs never registers twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from probe import metrics, scheduler
from probe.config import features
from probe.config.model import Config
from probe.scheduler import Job
from probe.serverless import settings
from probe.serverless.metrics import STATS_KEY, RoundTripStats, provide

if TYPE_CHECKING:
    from collections.abc import Callable

    from probe.daemon import Daemon


def roundtrip_jobs(config: Config) -> list[Job]:
    """One job per endpoint with a round trip, at its own (long) interval, tried once (a
    retry would submit, and pay for, a second job). Its deadline covers the job's own
    deadline plus the endpoint's timeout for the /health read before and the cancel after."""
    jobs = []
    for endpoint in config.endpoints:
        rt = settings.roundtrip_settings(endpoint)
        if rt is None:
            continue
        job_endpoint = replace(endpoint, interval_s=rt.interval_s, tries=1,
                               timeout_s=rt.deadline_s + 2 * endpoint.timeout_s,
                               checks=("roundtrip",))
        jobs.append(Job(f"{endpoint.name}/roundtrip", job_endpoint, ("roundtrip",),
                        rt.interval_s))
    return jobs


def attach_roundtrip_stats(daemon: Daemon) -> Callable[[], None] | None:
    stats = RoundTripStats()
    daemon.state.extra[STATS_KEY] = stats
    assert daemon.prober is not None
    daemon.prober.observers.append(stats.observe)
    return None


def _register() -> None:
    from probe import daemon

    features.ENDPOINT_KEYS.update(settings.ENDPOINT_KEYS)
    features.VALIDATORS.extend([settings.validate_openai_model, settings.validate_checks])
    scheduler.PLANNERS.append(roundtrip_jobs)
    metrics.PROVIDERS.append(provide)
    daemon.STARTUP_HOOKS.append(attach_roundtrip_stats)


_register()
