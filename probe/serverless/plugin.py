"""The serverless feature as a value: the ``queue`` and ``roundtrip`` checks (both ask RunPod's
control plane, so "could not ask" is unknown), their endpoint keys and validators, the
round-trip schedule, and the serverless series on /metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probe import control_plane
from probe.check import CheckCost, CheckSpec
from probe.config.model import Config, ConfigExtension, Endpoint
from probe.features import Attachment, Feature, Host
from probe.job import Job
from probe.serverless import queue, roundtrip, settings
from probe.serverless.metrics import ServerlessMetrics


def roundtrip_jobs(config: Config) -> list[Job]:
    """One job per endpoint with a round trip, at its own (long) interval, tried once (a
    retry would submit, and pay for, a second job). Its deadline covers the job's own
    deadline plus the endpoint's timeout for the /health read before and the cancel after."""
    jobs = []
    for endpoint in config.endpoints:
        rt = settings.roundtrip_settings(endpoint)
        if rt is None:
            continue
        jobs.append(Job(f"{endpoint.name}/roundtrip", endpoint, ("roundtrip",), rt.interval_s,
                        tries=1, timeout_s=rt.deadline_s + 2 * endpoint.timeout_s))
    return jobs


def roundtrip_cost(endpoint: Endpoint, params: Mapping[str, Any]) -> CheckCost:
    """/health, the job (or a chat completion), a few polls and a cancel at most."""
    rt = settings.roundtrip_settings(endpoint)
    return CheckCost(requests=4, tokens=16 if rt is not None and rt.openai else 0, jobs=1)


def start(host: Host) -> Attachment:
    metrics = ServerlessMetrics(native=host.config.metrics.native_histograms)
    return Attachment(collectors=(metrics,), observers=(metrics.observe,),
                      on_plan=metrics.on_plan)


FEATURE = Feature(
    name="serverless",
    config=ConfigExtension(
        endpoint_keys=settings.ENDPOINT_KEYS,
        validators=(settings.validate_openai_model, settings.validate_checks),
    ),
    checks=(CheckSpec("queue", queue.check, policy=control_plane.as_unknown),  # free /health
            CheckSpec("roundtrip", roundtrip.check, policy=control_plane.as_unknown,
                      cost=roundtrip_cost)),
    planners=(roundtrip_jobs,),
    startup=(start,),
)
