"""``GET {api_base}/{endpoint_id}/health``: a serverless endpoint's queue and workers, free
(it does not wake a worker), judged by the rules in ``probe.serverless.conditions``.

This asks RunPod's control plane, not the endpoint: a 429 is honoured (no request before
its ``Retry-After``) and, like a 5xx or a timeout, becomes ``unknown`` through the runner's
policy for this check. 401/403 stay ``unauthorized``: a key without permission is a finding.
"""

from __future__ import annotations

from typing import Any

from probe import control_plane
from probe.check import CheckContext
from probe.config.model import Endpoint
from probe.http import BadBody, describe_status, get, parse_json_object, status_outcome
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome
from probe.serverless.conditions import evaluate, unconfirmed
from probe.serverless.health import QueueHealth, parse_health
from probe.serverless.history import QueueHistory
from probe.serverless.settings import queue_settings

MEMORY_KEY = "queue_history"


async def check(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext) -> Observation:
    waiting = control_plane.backing_off(ctx.memory)
    if waiting is not None:
        return waiting
    url = f"{endpoint.root_url}/health"
    status, body, headers = await get(client, url, ctx.headers(endpoint), ctx.max_body_bytes)
    if status == 429:
        return control_plane.rate_limited(ctx.memory, headers.get("retry-after"),
                                          describe_status(status, body, "serverless"))
    failed = status_outcome(status)
    if failed is not None:
        return Observation(failed, describe_status(status, body, "serverless"), status)
    try:
        health = parse_health(parse_json_object(body))
    except BadBody as exc:
        return Observation(Outcome.BAD_RESPONSE, f"not a /health answer: {exc}", status)
    return judge(endpoint, health, ctx, status)


def judge(endpoint: Endpoint, health: QueueHealth, ctx: CheckContext,
          status: int | None = 200) -> Observation:
    """Read ``health`` against the endpoint's history and name its state. A condition that
    holds but needs more readings to be judged (jobs queued and no worker, a queue that
    does not move) is not a pass: the reading is ``unknown`` until it is confirmed or
    cleared."""
    settings = queue_settings(endpoint)
    history = ctx.memory.get(MEMORY_KEY)
    if not isinstance(history, QueueHistory):  # first run: what was kept before a restart
        history = ctx.memory[MEMORY_KEY] = QueueHistory.from_json(ctx.durable.get(MEMORY_KEY))
    observation = history.observe(health, settings.failure_window_s)
    findings = evaluate(observation, settings, history.streaks)
    ctx.durable[MEMORY_KEY] = history.to_json()
    details: dict[str, Any] = health.as_details()
    details.update(deltas=observation.deltas, counter_resets=list(observation.resets),
                   conditions=[str(f.outcome) for f in findings])
    if observation.initializing_for_s is not None:
        details["initializing_for_s"] = round(observation.initializing_for_s, 3)
    if findings:
        return Observation(findings[0].outcome, findings[0].message, status, details)
    pending = unconfirmed(settings, history.streaks)
    if pending:
        outcome, readings, needed = pending[0]
        details["unconfirmed"] = {"condition": str(outcome), "readings": readings,
                                  "needed": needed}
        return Observation(Outcome.UNKNOWN, f"{_summary(health)}: looks like {outcome}, not judged "
                           f"yet ({readings} of {needed} readings) — not a pass", status, details)
    return Observation(Outcome.OK, _summary(health), status, details)


def _summary(health: QueueHealth) -> str:
    jobs, workers = health.jobs, health.workers
    busy = ", ".join(f"{workers[n]} {n}" for n in workers if workers[n]) or "no workers"
    return f"{jobs['inQueue']} queued, {jobs['inProgress']} in progress; workers: {busy}"
