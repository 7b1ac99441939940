"""A real job through a serverless endpoint (costs money: off unless ``roundtrip`` is set).

``POST /runsync?wait=`` with the configured input (or a chat completion through the
worker's OpenAI route), then ``/status/{id}`` until the deadline for a job still queued or
running, and ``POST /cancel/{id}`` whenever the job is left unfinished (the deadline, a
failed status poll, the daemon stopping) so the probe never adds to a stuck queue.
Each round trip is labelled ``cold`` (no idle, ready or running worker on a ``/health``
read just before it was sent), ``warm``, or ``unknown`` when that read failed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from probe import control_plane
from probe.attempts import observation_from_exception
from probe.check import CheckContext
from probe.config.model import Endpoint
from probe.durations import format_duration
from probe.http import BadBody, describe_status, get, parse_json_object, status_outcome
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome
from probe.serverless.health import parse_health
from probe.serverless.jobs import JobReport, parse_job, send
from probe.serverless.settings import RoundTripSettings, roundtrip_settings

FIRST_POLL_S, MAX_POLL_S = 0.2, 2.0
CANCEL_TIMEOUT_S = 10.0
OPENAI_PROMPT = "2+2"


async def check(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext) -> Observation:
    settings = roundtrip_settings(endpoint)
    if settings is None:
        return Observation(Outcome.ERROR, 'the roundtrip check needs the endpoint\'s "roundtrip" '
                                      "settings")
    waiting = control_plane.backing_off(ctx.memory)
    if waiting is not None:
        return waiting
    start, workers = await _start_label(endpoint, client, ctx)
    began = time.perf_counter()
    if settings.openai:
        verdict = await _chat(endpoint, client, ctx, settings)
    else:
        verdict = await _job(endpoint, client, ctx, settings)
    details = {"start": start, "workers_before": workers,
               "roundtrip_s": round(time.perf_counter() - began, 3), **verdict.details}
    return Observation(verdict.outcome, verdict.message, verdict.http_status, details)


async def _start_label(endpoint: Endpoint, client: ProbeClient,
                       ctx: CheckContext) -> tuple[str, dict[str, int] | None]:
    """cold/warm from a free /health read; "unknown" when it cannot be read."""
    try:
        status, body, _ = await get(client, f"{endpoint.root_url}/health", ctx.headers(endpoint),
                                    ctx.max_body_bytes)
        if status != 200:
            return "unknown", None
        health = parse_health(parse_json_object(body))
    except (httpx.HTTPError, BadBody):
        return "unknown", None
    return ("warm" if health.serving else "cold"), dict(health.workers)


def _refused(status: int, body: bytes, headers: httpx.Headers, ctx: CheckContext) -> Observation:
    if status == 429:
        return control_plane.rate_limited(ctx.memory, headers.get("retry-after"),
                                          describe_status(status, body, "serverless"))
    return Observation(status_outcome(status) or Outcome.HTTP_4XX,
                       describe_status(status, body, "serverless"), status)


async def _job(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext,
               settings: RoundTripSettings) -> Observation:
    """Submit, poll until done or the deadline, and cancel the job on every path that leaves
    it unfinished (deadline, a failed poll, a transport error, the daemon stopping), so the
    probe never adds to a stuck queue; the cancel's own outcome is in the details."""
    headers, limit = ctx.headers(endpoint), ctx.max_body_bytes
    deadline = time.monotonic() + settings.deadline_s
    wait_ms = round(settings.wait_s * 1000)
    status, body, answer_headers = await send(client, "POST",
                                              f"{endpoint.root_url}/runsync?wait={wait_ms}",
                                              headers, limit, {"input": settings.input})
    if status != 200:
        return _refused(status, body, answer_headers, ctx)
    report = parse_job(parse_json_object(body))
    polls, delay_s, status_method = 0, FIRST_POLL_S, "GET"
    interrupted: Observation | None = None  # why polling stopped before the job finished
    while report.pending and report.id is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if await _stopping(ctx, min(delay_s, remaining)):
            interrupted = Observation(Outcome.UNKNOWN, "the probe stopped before the job finished")
            break
        delay_s = min(delay_s * 1.5, MAX_POLL_S)
        url = f"{endpoint.root_url}/status/{report.id}"
        try:
            status, body, answer_headers = await send(client, status_method, url, headers,
                                                      limit)
            if status == 405 and status_method == "GET":  # runpod's local worker wants POST
                status_method = "POST"
                status, body, answer_headers = await send(client, "POST", url, headers, limit)
            polls += 1
            if status != 200:
                interrupted = _refused(status, body, answer_headers, ctx)
                break
            report = parse_job(parse_json_object(body))
        except (httpx.HTTPError, BadBody) as exc:
            interrupted = observation_from_exception(exc, settings.deadline_s)
            break
    details = _job_details(report, polls)
    if report.pending and report.id is not None:
        cancel = await _cancel(endpoint, client, ctx, report)
        details.update(cancelled=cancel == "cancelled", cancel=cancel)
        cancelled = "; job cancelled" if cancel == "cancelled" else f"; cancel failed ({cancel})"
        if interrupted is not None:
            return Observation(interrupted.outcome,
                               f"status poll: {interrupted.message}{cancelled}",
                               interrupted.http_status, {**interrupted.details, **details})
        return Observation(Outcome.JOB_FAILED,
                           f"job still {report.status} after {format_duration(settings.deadline_s)}"
                           + ("; cancelled" if cancel == "cancelled" else "; cancel failed")
                           + " so the probe does not add to a stuck queue", 200, details)
    if report.status != "COMPLETED":
        return Observation(Outcome.JOB_FAILED, f"job {report.status}"
                           + (f": {report.error}" if report.error else ""), 200, details)
    times = ", ".join(f"{k.removesuffix('_s')} {format_duration(v)}" for k, v in
                      (("delay_s", report.delay_s), ("execution_s", report.execution_s))
                      if v is not None)
    return Observation(Outcome.OK, "job COMPLETED" + (f" ({times})" if times else ""), 200, details)


async def _stopping(ctx: CheckContext, pause_s: float) -> bool:
    """Pause before the next poll; True when the daemon began to stop meanwhile."""
    if ctx.stopping is None:
        await asyncio.sleep(pause_s)
        return False
    try:
        async with asyncio.timeout(pause_s):
            await ctx.stopping.wait()
    except TimeoutError:
        return False
    return True


def _job_details(report: JobReport, polls: int) -> dict[str, Any]:
    details: dict[str, Any] = {"job_id": report.id, "job_status": report.status,
                               "polls": polls}
    for key in ("delay_s", "execution_s", "error", "worker_id"):
        value = getattr(report, key)
        if value is not None:
            details[key] = value
    return details


async def _cancel(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext,
                  report: JobReport) -> str:
    """Best effort, within its own short deadline: "cancelled", or why the cancel failed (a
    failed cancel is reported in the verdict, never raised)."""
    try:
        async with asyncio.timeout(min(endpoint.timeout_s, CANCEL_TIMEOUT_S)):
            status, body, _ = await send(client, "POST",
                                         f"{endpoint.root_url}/cancel/{report.id}",
                                         ctx.headers(endpoint), ctx.max_body_bytes)
    except Exception as exc:  # noqa: BLE001 - the cancel's failure is data too
        return str(observation_from_exception(exc, CANCEL_TIMEOUT_S).outcome)
    return "cancelled" if status == 200 else f"HTTP {status}"


async def _chat(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext,
                settings: RoundTripSettings) -> Observation:
    payload = {"model": endpoint.model, "max_tokens": 16, "temperature": 0,
               "messages": [{"role": "user", "content": OPENAI_PROMPT}]}
    try:
        async with asyncio.timeout(settings.deadline_s):
            status, body, headers = await send(
                client, "POST", f"{endpoint.openai_base}/chat/completions",
                ctx.headers(endpoint), ctx.max_body_bytes, payload)
    except TimeoutError:
        # The OpenAI route has no job id, so there is nothing to cancel.
        return Observation(Outcome.JOB_FAILED, "no answer from the OpenAI route within "
                           f"{format_duration(settings.deadline_s)}", None, {"mode": "openai"})
    if status != 200:
        return _refused(status, body, headers, ctx)
    document = parse_json_object(body)
    choices = document.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadBody('expected {"choices": [...]} from the chat completion')
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        return Observation(Outcome.EMPTY_ANSWER, "the chat completion came back empty", status,
                           {"mode": "openai"})
    return Observation(Outcome.OK, f"chat completion answered {content.strip()[:40]!r}", status,
                       {"mode": "openai", "answer": content.strip()[:200]})
