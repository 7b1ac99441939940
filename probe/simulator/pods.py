"""Simulated RunPod pods behind the HTTP proxy, each running vLLM 0.32's OpenAI server,
healthy or broken in one named way. Adding a behaviour is one entry in ``POD_BEHAVIOURS``.

Real vLLM refuses TCP connections while it loads a model; behind RunPod's proxy that shows
as 502, which is what ``starting`` answers (a shared port cannot refuse per path).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace

from probe.simulator import completions
from probe.simulator.chat import ChatPlan, parse, wrong_answer_for
from probe.simulator.completions import ChatStyle
from probe.simulator.messages import (
    JSON_TYPE,
    Reply,
    Request,
    Reset,
    Response,
    Stall,
    dumps,
    empty_response,
    html_response,
    json_response,
    raw_json_response,
)
from probe.simulator.metrics import METRICS_TYPE, PodMetrics
from probe.simulator.specs import PodSpec

WRONG_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SMALL_CONTEXT = 8192
VLLM_VERSION = "0.32.0"
STUCK_WAITING = 5  # requests piled up in a deadlocked engine
STREAM_TOKEN_INTERVAL_S = 0.02
HUGE_BODY_BYTES = 64 * 1024 * 1024
PREVIEW_BYTES = 120  # where a probe's preview of an error body ends (probe.http)
ENDLESS_INTERVAL_S = 0.05

PROXY_404 = html_response(
    404,
    b"<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>"
    b"<p>The pod is not running or this port is not exposed over HTTP.</p></body></html>",
)
PROXY_502 = html_response(
    502,
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>cloudflare</center></body></html>",
)
_NOT_FOUND = json_response(404, {"detail": "Not Found"})
_NOT_ALLOWED = json_response(405, {"detail": "Method Not Allowed"})
_UNAUTHORIZED = json_response(401, {"error": "Unauthorized"})
_ENGINE_DEAD = json_response(
    500,
    {
        "error": {
            "message": "EngineCore encountered an issue. "
            "See stack trace (above) for the root cause.",
            "type": "InternalServerError",
            "param": None,
            "code": 500,
        }
    },
)
_VERSION = json_response(200, {"version": VLLM_VERSION})
_ROUTES = {
    "/health": "GET",
    "/metrics": "GET",
    "/version": "GET",
    "/v1/models": "GET",
    "/v1/chat/completions": "POST",
}


@dataclass(frozen=True, slots=True)
class PodContext:
    """One request to one pod; ``path`` is the path inside the pod, without the query."""

    request: Request
    path: str
    spec: PodSpec
    metrics: PodMetrics


PodBehaviour = Callable[[PodContext], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Vllm:
    """How a working vLLM server deviates from a healthy one."""

    style: ChatStyle = ChatStyle()
    served_model: str | None = None  # serve this id instead of the spec's
    context_cap: int | None = None  # max_model_len is at most this
    slow_stream: bool = False  # first token after the spec's ttft_delay_s
    engine: str = "alive"  # "alive" | "dead" (health 503, chat 500) | "stuck" (chat hangs)
    static_metrics: bool = False  # /metrics frozen with requests waiting; chat still answers


@functools.lru_cache(maxsize=64)
def models_body(model: str, max_model_len: int) -> bytes:
    """The /v1/models body; built once per (model, window) so a big fleet stays cheap."""
    now = int(time.time())
    card = {
        "id": model,
        "object": "model",
        "created": now,
        "owned_by": "vllm",
        "root": model,
        "parent": None,
        "max_model_len": max_model_len,
        "permission": [
            {
                "id": "modelperm-" + hashlib.sha1(model.encode()).hexdigest()[:16],
                "object": "model_permission",
                "created": now,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": False,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }
    return dumps({"object": "list", "data": [card]})


def _vllm(variant: Vllm) -> PodBehaviour:
    async def serve(ctx: PodContext) -> Reply:
        if ctx.path.startswith("/v1") and not ctx.request.authorised(ctx.spec.api_key):
            return _UNAUTHORIZED
        method = _ROUTES.get(ctx.path)
        if method is None:
            return _NOT_FOUND
        if ctx.request.method != method:
            return _NOT_ALLOWED
        model = variant.served_model or ctx.spec.model
        window = min(ctx.spec.max_model_len, variant.context_cap or ctx.spec.max_model_len)
        if ctx.path == "/health":
            return empty_response(503 if variant.engine == "dead" else 200)
        if ctx.path == "/v1/models":
            return raw_json_response(200, models_body(model, window))
        if ctx.path == "/metrics":
            if variant.static_metrics:
                return Response(200, (("content-type", METRICS_TYPE),),
                                _static_page(model))
            waiting = STUCK_WAITING if variant.engine == "stuck" else 0
            return Response(
                200, (("content-type", METRICS_TYPE),), ctx.metrics.render(model, waiting)
            )
        if ctx.path == "/version":
            return _VERSION
        return await _chat(ctx, variant, model, window)

    return serve


async def _chat(ctx: PodContext, variant: Vllm, model: str, window: int) -> Reply:
    plan = parse(ctx.request.body, (model,), window)
    if not isinstance(plan, ChatPlan):
        return completions.error_response(plan)
    if variant.engine == "dead":
        return _ENGINE_DEAD
    if variant.engine == "stuck":
        return Stall()
    style = variant.style
    if variant.slow_stream:
        style = replace(
            style, ttft_delay_s=ctx.spec.ttft_delay_s, token_interval_s=STREAM_TOKEN_INTERVAL_S
        )
    if plan.stream:
        return completions.stream(plan, style, ctx.metrics)
    return await completions.complete(plan, style, ctx.metrics)


def _two_of_three(failing: PodBehaviour) -> PodBehaviour:
    """Each path's first two requests of every three answered by ``failing``, the third by a
    healthy server: mostly failing, never three times in a row (unlike a switch of
    behaviour timed from outside, which a probe's own timing can cut either way)."""
    async def serve(ctx: PodContext) -> Reply:
        seen = ctx.metrics.requests.get(ctx.path, 0)
        ctx.metrics.requests[ctx.path] = seen + 1
        return await (_HEALTHY if seen % 3 == 2 else failing)(ctx)

    return serve


def _fixed(reply: Reply) -> PodBehaviour:
    async def serve(ctx: PodContext) -> Reply:
        return reply

    return serve


async def _slow(ctx: PodContext) -> Reply:
    await asyncio.sleep(ctx.spec.delay_s)
    return await _HEALTHY(ctx)


async def _huge_chunks() -> AsyncGenerator[bytes, None]:
    block = b'{"id":"x","object":"model","owned_by":"vllm"},' * 1394  # ~64 KiB
    yield b'{"object":"list","data":['
    for _ in range(HUGE_BODY_BYTES // len(block) + 1):
        yield block


async def _huge(ctx: PodContext) -> Reply:
    return Response(200, (("content-type", JSON_TYPE),), stream=_huge_chunks())


async def _endless_chunks() -> AsyncGenerator[bytes, None]:
    yield b'{"object":"list","data":['
    while True:
        await asyncio.sleep(ENDLESS_INTERVAL_S)
        yield b'{"id":"x","object":"model"},'


async def _endless(ctx: PodContext) -> Reply:
    return Response(200, (("content-type", JSON_TYPE),), stream=_endless_chunks())


@functools.lru_cache(maxsize=16)
def _static_page(model: str) -> bytes:
    """A /metrics page that never changes: requests waiting, token counters frozen."""
    return PodMetrics().render(model, STUCK_WAITING)


async def _echo_auth_model(ctx: PodContext) -> Reply:
    """A hostile server that names its model after the caller's credentials (a label value
    the probe must neither export nor store) and echoes them in every other answer."""
    sent = ctx.request.headers.get("authorization", "") or "anonymous"
    if ctx.path == "/v1/models":
        return raw_json_response(200, models_body(sent, ctx.spec.max_model_len))
    if ctx.path in ("/health", "/metrics"):
        return await _HEALTHY(ctx)
    return json_response(200, {"id": "x", "object": "chat.completion", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": f"you sent {sent}"},
        "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 3}})


async def _answers_before_body(ctx: PodContext) -> Reply:
    """A misbehaving server that answers a chat completion before reading its body (the
    router leaves the body on the connection): the next request on that connection meets
    the leftover bytes. Every other route is healthy."""
    if ctx.path == "/v1/chat/completions":
        return json_response(503, {"error": {"message": "overloaded", "code": 503}})
    return await _HEALTHY(ctx)


async def _echo_auth(ctx: PodContext) -> Reply:
    """A hostile server that repeats the caller's credentials in its error: the probe must
    never store or log what comes back."""
    sent = ctx.request.headers.get("authorization", "")
    return json_response(400, {"error": {"message": f"bad request from {sent}",
                                         "type": "BadRequestError", "code": 400}})


async def _echo_auth_cut(ctx: PodContext) -> Reply:
    """A hostile server that repeats the caller's key in a plain-text 400 placed so that a
    preview of the body's first ``PREVIEW_BYTES`` bytes cuts it after ``spec.cut_at``
    characters: what survives the cut must not survive the probe either."""
    sent = ctx.request.headers.get("authorization", "").removeprefix("Bearer ")
    cut = max(0, min(ctx.spec.cut_at, len(sent), PREVIEW_BYTES))
    body = "-" * (PREVIEW_BYTES - cut) + sent + " was the key you sent"
    return Response(400, (("content-type", "text/plain; charset=utf-8"),), body.encode())


_HEALTHY = _vllm(Vllm())

POD_BEHAVIOURS: dict[str, PodBehaviour] = {
    "healthy": _HEALTHY,
    "small_context": _vllm(Vllm(context_cap=SMALL_CONTEXT)),
    "wrong_model": _vllm(Vllm(served_model=WRONG_MODEL)),
    "engine_dead": _vllm(Vllm(engine="dead")),
    "engine_stuck": _vllm(Vllm(engine="stuck")),
    "wrong_answer": _vllm(Vllm(style=ChatStyle(answer=wrong_answer_for))),
    "slow_stream": _vllm(Vllm(slow_stream=True)),
    "cut_stream": _vllm(Vllm(style=ChatStyle(cut_stream=True))),
    "reasoning_only": _vllm(Vllm(style=ChatStyle(reasoning_only=True))),
    "empty_answer": _vllm(Vllm(style=ChatStyle(answer=lambda question, json_mode: ""))),
    "no_usage": _vllm(Vllm(style=ChatStyle(honour_include_usage=False))),
    "stopped": _fixed(PROXY_404),
    "server_down": _fixed(PROXY_502),
    "starting": _fixed(PROXY_502),
    "slow": _slow,
    "garbage": _fixed(raw_json_response(200, b'{"object":"list","data":[{"id":<html>oops')),
    "wrong_shape": _fixed(json_response(200, {"models": "x"})),
    "huge_body": _huge,
    "endless_body": _endless,
    "stall": _fixed(Stall()),
    "reset": _fixed(Reset()),
    "echo_auth": _echo_auth,
    "echo_auth_model": _echo_auth_model,
    "echo_auth_cut": _echo_auth_cut,
    "static_metrics": _vllm(Vllm(static_metrics=True)),
    "answers_before_body": _answers_before_body,
    "flaky": _two_of_three(_fixed(PROXY_502)),
    "flaky_answer": _two_of_three(_vllm(Vllm(style=ChatStyle(answer=wrong_answer_for)))),
}
# Behaviours whose chat route the server answers before reading the request's body.
EARLY_BEHAVIOURS = frozenset({"answers_before_body"})


async def handle(ctx: PodContext) -> Reply:
    return await POD_BEHAVIOURS[ctx.spec.behaviour](ctx)
