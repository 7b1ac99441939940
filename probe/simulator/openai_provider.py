"""A generic OpenAI-compatible provider under ``/openai/{name}/v1``, for ``kind: openai``
endpoints: commercial-style model cards (no ``max_model_len``), OpenAI's error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from probe.simulator import completions
from probe.simulator.chat import ChatPlan, parse
from probe.simulator.completions import ChatStyle
from probe.simulator.messages import Reply, Request, json_response
from probe.simulator.specs import OpenAISpec

MODEL_CREATED = 1721172741  # a fixed date, as providers report when a model was published
_STYLE = ChatStyle(vllm=False)


def openai_error(status: int, message: str, code: str | None = None) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return json_response(status, {"error": error})


UNAUTHORIZED = openai_error(401, "Incorrect API key provided.", "invalid_api_key")


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """One request to one provider; ``path`` is what follows ``/openai/{name}``."""

    request: Request
    path: str
    spec: OpenAISpec
    api_key: str | None


ProviderBehaviour = Callable[[ProviderContext], Awaitable[Reply]]


async def _healthy(ctx: ProviderContext) -> Reply:
    if not ctx.request.authorised(ctx.api_key):
        return UNAUTHORIZED
    route = (ctx.request.method, ctx.path)
    if route == ("GET", "/v1/models"):
        card = {
            "id": ctx.spec.model,
            "object": "model",
            "created": MODEL_CREATED,
            "owned_by": "system",
        }
        return json_response(200, {"object": "list", "data": [card]})
    if route == ("POST", "/v1/chat/completions"):
        plan = parse(ctx.request.body, (ctx.spec.model,), ctx.spec.context_window)
        if not isinstance(plan, ChatPlan):
            return completions.error_response(plan, vllm=False)
        if plan.stream:
            return completions.stream(plan, _STYLE)
        return await completions.complete(plan, _STYLE)
    return openai_error(404, f"Invalid URL ({ctx.request.method} {ctx.path})")


async def _chat_failing(ctx: ProviderContext) -> Reply:
    """The model list answers; every chat completion is a 500 (a reachable server that
    cannot answer: degraded, not down)."""
    if (ctx.request.method, ctx.path) == ("POST", "/v1/chat/completions") \
            and ctx.request.authorised(ctx.api_key):
        return openai_error(500, "The server had an error while processing your request.")
    return await _healthy(ctx)


PROVIDER_BEHAVIOURS: dict[str, ProviderBehaviour] = {
    "healthy": _healthy,
    "chat_failing": _chat_failing,
}


async def handle(ctx: ProviderContext) -> Reply:
    return await PROVIDER_BEHAVIOURS[ctx.spec.behaviour](ctx)
