"""``GET {root}/metrics`` on a vLLM server: queue depth, batch size, KV-cache usage and token
rate (the pod's load), and ``engine_stuck`` when requests wait while no token is generated.

The values travel in the result's details (``waiting``, ``running``, ``kv_cache_usage``,
``generation_tokens_per_s``, ...), from where ``probe.vllm.metrics`` exports them.
"""

from __future__ import annotations

import time
from typing import Any

from probe.check import ANSWERED_AT, CheckContext
from probe.config.model import Endpoint
from probe.http import describe_status, get, status_outcome
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome
from probe.vllm.load import EngineLoad, NotEngineMetrics, parse_engine_load
from probe.vllm.progress import DEFAULT_STUCK_AFTER, Progress, observe

ACCEPT = "text/plain;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


async def check(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext) -> Observation:
    url = f"{endpoint.root_url}/metrics"
    headers = {**ctx.headers(endpoint), "Accept": ACCEPT}
    # one cap for every body (scheduler.max_body_bytes); vLLM's page is ~50 KB on a tiny
    # model and a few hundred KB on a big GPU server, well under the 4 MiB default
    status, body, _ = await get(client, url, headers, ctx.max_body_bytes)
    failed = status_outcome(status)
    if failed is not None:
        return Observation(failed, describe_status(status, body), status)
    try:
        load = parse_engine_load(body)
    except NotEngineMetrics as exc:
        return Observation(Outcome.BAD_RESPONSE, str(exc), status)
    answered = ctx.shared.get(ANSWERED_AT)
    progress = observe(load, time.time(), ctx.durable,
                       answered if isinstance(answered, float) else None)
    return judge(load, progress, stuck_after(endpoint), status)


def stuck_after(endpoint: Endpoint) -> int:
    value = endpoint.extra.get("stuck_after")
    return value if isinstance(value, int) else DEFAULT_STUCK_AFTER


def judge(load: EngineLoad, progress: Progress, after: int, status: int) -> Observation:
    details = load_details(load, progress)
    queue = f"{load.waiting:g} waiting, {load.running:g} running"
    if progress.stuck(after):
        return Observation(Outcome.ENGINE_STUCK,
                           f"engine stuck: {queue}, and generation_tokens_total stayed at "
                           f"{load.generation_tokens_total:g} over the last {progress.streak} "
                           f"checks ({progress.stalled_s:.0f}s)", status, details)
    if not progress.judged(load.waiting):
        streak = f"no new token for {progress.streak - 1} of {after - 1} scrapes" \
            if progress.streak >= 2 else "nothing to compare with yet"
        return Observation(Outcome.UNKNOWN, f"{queue}: progress not judged yet ({streak}) — not "
                                        "a pass", status, details)
    rate = ("" if progress.tokens_per_s is None
            else f", {progress.tokens_per_s:.1f} tokens/s")
    kv = "" if load.kv_cache_usage is None else f", KV cache {load.kv_cache_usage:.1%}"
    answered = ", an answer completed since the last scrape" if progress.answered else ""
    return Observation(Outcome.OK, f"{queue}{rate}{kv}{answered}", status, details)


def load_details(load: EngineLoad, progress: Progress) -> dict[str, Any]:
    return {
        "waiting": load.waiting, "running": load.running, "kv_cache_usage": load.kv_cache_usage,
        "generation_tokens_total": load.generation_tokens_total,
        "prompt_tokens_total": load.prompt_tokens_total,
        "generation_tokens_per_s": (None if progress.tokens_per_s is None
                                    else round(progress.tokens_per_s, 3)),
        "counter_reset": progress.counter_reset, "stuck_streak": progress.streak,
        "answered_since_last_scrape": progress.answered,
        "engines": load.engines, "models": list(load.models),
    }
