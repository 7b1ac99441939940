"""The RunPod serverless queue API of one simulated endpoint, under ``/v2/{endpoint_id}``:
``/health``, ``/run``, ``/runsync``, ``/status``, ``/cancel``, ``/purge-queue`` and the
worker's OpenAI route.

Choices where RunPod's behaviour is not documented:
- a completed job's ``output`` has worker-vllm's shape for a prompt job:
  ``[{"choices":[{"tokens":[answer]}],"usage":{"input":P,"output":C}}]``, the answer coming
  from the same table as the chat engine (input ``prompt``, or the last user ``messages``);
- error bodies are ``{"error": "<text>"}``;
- an ``/openai/v1/...`` request is a job like any other (it shows in the counters); where no
  worker will ever pick it up, it hangs until the client gives up;
- ``?wait=`` is capped at 300000 ms like RunPod, but not raised to its 1000 ms minimum, so
  tests stay fast.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from probe.simulator import completions
from probe.simulator.chat import ChatPlan, answer_for, count_tokens, parse
from probe.simulator.completions import ChatStyle
from probe.simulator.jobs import NEVER, TERMINAL, EndpointState, Job
from probe.simulator.messages import Reply, Request, Stall, dumps, json_response, raw_json_response
from probe.simulator.pods import models_body
from probe.simulator.serverless_behaviours import SERVERLESS_BEHAVIOURS, ServerlessBehaviour
from probe.simulator.specs import ServerlessSpec

WORKER_ID = "simworker01"
DEFAULT_WAIT_MS = 90_000
MAX_WAIT_MS = 300_000
_POLL_S = 0.05
_FAILURE_MESSAGE = "CUDA out of memory. Tried to allocate 2.00 GiB."
JOB_ERROR = json.dumps(
    {
        "error_type": "<class 'torch.OutOfMemoryError'>",
        "error_message": _FAILURE_MESSAGE,
        "error_traceback": "Traceback (most recent call last): ...",
        "hostname": WORKER_ID,
        "worker_id": WORKER_ID,
        "runpod_version": "1.12.0",
    }
)
_NOT_FOUND = json_response(404, {"error": "Not found."})
_NO_SUCH_JOB = json_response(404, {"error": "Request does not exist."})


@dataclass(frozen=True, slots=True)
class EndpointContext:
    """One request to one endpoint; ``path`` is what follows ``/v2/{endpoint_id}``."""

    request: Request
    path: str
    spec: ServerlessSpec
    state: EndpointState


def sync(state: EndpointState, spec: ServerlessSpec, now: float) -> ServerlessBehaviour:
    """Catch the state up with the clock and with a behaviour switched at runtime."""
    behaviour = SERVERLESS_BEHAVIOURS[spec.behaviour]
    if state.behaviour != spec.behaviour:
        state.behaviour = spec.behaviour
        state.seeded_queue = behaviour.seeded_queue
        state.worker_ready_at = None
        for job in state.queued_jobs(now):
            job.plan = behaviour.plan(state, spec, now)
    state.settle(now)
    return behaviour


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _question(job_input: Any) -> str:
    if isinstance(job_input, dict):
        if isinstance(job_input.get("prompt"), str):
            return str(job_input["prompt"])
        messages = job_input.get("messages")
        if isinstance(messages, list):
            users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            if users and isinstance(users[-1].get("content"), str):
                return str(users[-1]["content"])
    return json.dumps(job_input)


def job_output(job_input: Any) -> list[dict[str, Any]]:
    question = _question(job_input)
    answer = answer_for(question)
    usage = {"input": count_tokens(question), "output": count_tokens(answer)}
    return [{"choices": [{"tokens": [answer]}], "usage": usage}]


def job_json(job: Job, now: float) -> dict[str, Any]:
    status = job.status(now)
    started = job.plan.start_at <= (job.cancelled_at if job.cancelled_at is not None else now)
    ended = status in ("COMPLETED", "FAILED")
    body: dict[str, Any] = {}
    if started:
        body["delayTime"] = _ms(job.plan.start_at - job.submitted_at)
    if status == "FAILED":
        body["error"] = JOB_ERROR
    if ended:
        body["executionTime"] = _ms(job.plan.finish_at - job.plan.start_at)
    body["id"] = job.id
    if status == "COMPLETED":
        body["output"] = job_output(job.input)
    body["status"] = status
    if started:
        body["workerId"] = WORKER_ID
    return body


def _submit(ctx: EndpointContext, behaviour: ServerlessBehaviour, prefix: str) -> Job | None:
    try:
        body = json.loads(ctx.request.body or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or "input" not in body:
        return None
    now = time.monotonic()
    plan = behaviour.plan(ctx.state, ctx.spec, now)
    job = Job(f"{prefix}{uuid.uuid4()}-u1", body["input"], now, plan)
    ctx.state.submit(job)
    return job


def _wait_s(request: Request) -> float:
    try:
        wait_ms = int(request.query.get("wait", DEFAULT_WAIT_MS))
    except ValueError:
        wait_ms = DEFAULT_WAIT_MS
    return min(max(wait_ms, 0), MAX_WAIT_MS) / 1000


async def _runsync(ctx: EndpointContext, behaviour: ServerlessBehaviour) -> Reply:
    job = _submit(ctx, behaviour, "sync-")
    if job is None:
        return json_response(400, {"error": "The request body must be JSON with an 'input'."})
    deadline = job.submitted_at + _wait_s(ctx.request)
    while True:
        now = time.monotonic()
        if job.status(now) in TERMINAL or now >= deadline:
            break
        # job.plan is re-read every turn: a behaviour switch may have replanned it.
        await asyncio.sleep(max(0.001, min(deadline, job.plan.finish_at, now + _POLL_S) - now))
    ctx.state.settle(now)
    return json_response(200, job_json(job, now))


async def _openai(ctx: EndpointContext, behaviour: ServerlessBehaviour) -> Reply:
    route = ctx.path.removeprefix("/openai")
    expected = {"/v1/models": "GET", "/v1/chat/completions": "POST"}.get(route)
    if expected is None or ctx.request.method != expected:
        return _NOT_FOUND
    now = time.monotonic()
    job_input = {"openai_route": route, "openai_input": ctx.request.body.decode(errors="replace")}
    job = Job(f"{uuid.uuid4()}-u1", job_input, now, behaviour.plan(ctx.state, ctx.spec, now))
    ctx.state.submit(job)
    if job.plan.start_at == NEVER:
        return Stall()
    await asyncio.sleep(max(0.0, job.plan.finish_at - time.monotonic()))
    if job.plan.fails:
        error = {"message": _FAILURE_MESSAGE, "type": "worker_error", "param": None, "code": 500}
        return json_response(500, {"error": error})
    if route == "/v1/models":
        return raw_json_response(200, models_body(ctx.spec.model, ctx.spec.max_model_len))
    plan = parse(ctx.request.body, (ctx.spec.model,), ctx.spec.max_model_len)
    if not isinstance(plan, ChatPlan):
        return completions.error_response(plan)
    if plan.stream:
        return completions.stream(plan, ChatStyle())
    return await completions.complete(plan, ChatStyle())


def _health(ctx: EndpointContext, behaviour: ServerlessBehaviour, now: float) -> Reply:
    state = ctx.state
    state.seeded_queue += behaviour.queue_growth_per_health_read
    in_queue, in_progress = state.counts(now)
    jobs = {
        "completed": state.completed,
        "failed": state.failed,
        "inProgress": in_progress,
        "inQueue": in_queue,
        "retried": state.retried,
    }
    workers = behaviour.workers(state, ctx.spec, now).as_json()
    if behaviour.worker_keys is not None:
        workers = {key: workers[key] for key in behaviour.worker_keys}
    return raw_json_response(200, dumps({"jobs": jobs, "workers": workers}))


async def handle(ctx: EndpointContext) -> Reply:
    now = time.monotonic()
    behaviour = sync(ctx.state, ctx.spec, now)
    if behaviour.refusal is not None:
        return behaviour.refusal
    method, path = ctx.request.method, ctx.path
    operation, _, job_id = path.lstrip("/").partition("/")
    if path.startswith("/openai/"):
        return await _openai(ctx, behaviour)
    if (method, path) == ("GET", "/health"):
        return _health(ctx, behaviour, now)
    if (method, path) == ("POST", "/run"):
        job = _submit(ctx, behaviour, "")
        if job is None:
            return json_response(400, {"error": "The request body must be JSON with an 'input'."})
        return json_response(200, {"id": job.id, "status": "IN_QUEUE"})
    if (method, path) == ("POST", "/runsync"):
        return await _runsync(ctx, behaviour)
    if (method, path) == ("POST", "/purge-queue"):
        return json_response(200, {"removed": ctx.state.purge(now), "status": "completed"})
    if operation == "status" and job_id and method in ("GET", "POST"):
        if behaviour.status_refusal is not None:
            return behaviour.status_refusal
        job = ctx.state.jobs.get(job_id)
        return _NO_SUCH_JOB if job is None else json_response(200, job_json(job, now))
    if operation == "cancel" and job_id and method == "POST":
        job = ctx.state.cancel(job_id, now)
        if job is None:
            return _NO_SUCH_JOB
        return json_response(200, {"id": job.id, "status": job.status(now)})
    return _NOT_FOUND
