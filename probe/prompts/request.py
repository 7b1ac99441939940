"""Build the chat request a probe sends and learn the model name to send it to.

Temperature 0 and a fixed seed make the answer as repeatable as the server allows;
``stream_options.include_usage`` asks for the token counts the budget and the
tokens/s figure need (vLLM >= 0.5; servers that ignore it fail the check, closed).
"""

from __future__ import annotations

import time
from typing import Any

from probe.check import SERVED_MODEL, SERVED_MODEL_FRESH_S, CheckContext
from probe.config.model import Endpoint
from probe.core_checks.models import model_cards, pick_card
from probe.http import BadBody, describe_status, get, parse_json_object, status_outcome
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome
from probe.prompts.model import Message

_MODEL_KEY = "served_model"


def chat_body(messages: tuple[Message, ...], max_tokens: int, model: str | None,
              seed: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": max_tokens, "temperature": 0, "stream": True,
        "stream_options": {"include_usage": True},
    }
    if model is not None:
        body["model"] = model
    if seed is not None:
        body["seed"] = seed
    return body


async def served_model(endpoint: Endpoint, client: ProbeClient,
                       ctx: CheckContext) -> str | Observation:
    """The model id to send: the configured one, else the first one the server lists
    (remembered until the server says it is gone; the models check's pick of the last
    two minutes, when there is one, without asking the server again)."""
    if endpoint.model:
        return endpoint.model
    known = ctx.memory.get(_MODEL_KEY)
    if isinstance(known, str):
        return known
    seen = ctx.shared.get(SERVED_MODEL)
    if seen is not None and time.time() - seen[1] < SERVED_MODEL_FRESH_S:
        ctx.memory[_MODEL_KEY] = seen[0]
        return str(seen[0])
    status, body, _ = await get(client, f"{endpoint.openai_base}/models", ctx.headers(endpoint),
                                ctx.max_body_bytes)
    failed = status_outcome(status)
    if failed is not None:
        return Observation(failed, "cannot learn the served model: "
                           + describe_status(status, body, endpoint.kind), status)
    try:
        card = pick_card(model_cards(parse_json_object(body)), None)
    except BadBody as exc:
        return Observation(Outcome.BAD_RESPONSE, f"cannot learn the served model: {exc}", status)
    if card is None:
        return Observation(Outcome.MODEL_MISSING, "the server lists no models", status)
    ctx.memory[_MODEL_KEY] = str(card["id"])
    return str(card["id"])


def forget_model(ctx: CheckContext) -> None:
    ctx.memory.pop(_MODEL_KEY, None)
    ctx.shared.pop(SERVED_MODEL, None)
