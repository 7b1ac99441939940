"""Does the endpoint's context window fit what its real callers send (``required_context``)?

- ``context`` (passive, free): ``max_model_len`` from /v1/models must be at least
  ``required_context`` + the completion room a caller asks for (MAX_TOKENS). A server
  that does not report ``max_model_len`` cannot be verified, so it fails (closed).
- ``context_active`` (opt-in, costs about ``required_context`` tokens per run): sends a
  prompt of about ``required_context`` tokens (sized at 4 characters per token) with
  ``max_tokens: 1``. Accepted means HTTP 200 and ``usage.prompt_tokens`` of at least 90%
  of ``required_context`` (fewer means the input was cut or the sizing is off: not
  verified); vLLM's 400 "maximum context length" is ``context_exceeded``.
"""

from __future__ import annotations

from typing import Any

from probe.check import CheckContext
from probe.config.model import Endpoint
from probe.core_checks.models import model_cards, pick_card
from probe.http import BadBody, describe_status, get, parse_json_object, status_outcome
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome, ProbeResult
from probe.prompts import budget
from probe.prompts.chat import reply_failure
from probe.prompts.model import COMPLETION_KEY, ContextSettings, Message, TokenBounds
from probe.prompts.request import chat_body, served_model
from probe.prompts.stream import post_chat

ACCEPTED_FRACTION = 0.9
_FILLER = "The quick brown fox jumps over the lazy dog while the probe checks the window. "
_INSTRUCTION = "Ignore the filler text below and reply with the single word OK.\n\n"


async def check(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext) -> Observation:
    required = ContextSettings.required_of(endpoint)
    if required is None:
        return Observation(Outcome.ERROR, "required_context is not configured")
    status, body, _ = await get(client, f"{endpoint.openai_base}/models", ctx.headers(endpoint),
                                ctx.max_body_bytes)
    failed = status_outcome(status)
    if failed is not None:
        return Observation(failed, describe_status(status, body, endpoint.kind), status)
    try:
        card = pick_card(model_cards(parse_json_object(body)), endpoint.model)
    except BadBody as exc:
        return Observation(Outcome.BAD_RESPONSE, str(exc), status)
    if card is None:
        return Observation(Outcome.MODEL_MISSING, "the expected model is not served", status)
    return fit(endpoint, ctx, card["id"], card.get("max_model_len"), status)


def from_models(endpoint: Endpoint, ctx: CheckContext, models: ProbeResult) -> Observation:
    """The context fit judged from the ``models`` check's answer in the same run (one GET
    /v1/models for both): its failure when it read no model cards, else the same verdict
    as ``check`` on the card of the expected model."""
    details = models.details
    if "served_models" not in details:  # no list of model cards was read: its failure
        return Observation(models.outcome, models.message, models.http_status)
    if details.get("model") is None:
        return Observation(Outcome.MODEL_MISSING, "the expected model is not served",
                           models.http_status)
    return fit(endpoint, ctx, details["model"], details.get("max_model_len"),
               models.http_status)


def fit(endpoint: Endpoint, ctx: CheckContext, model: str, max_len: Any,
        status: int | None) -> Observation:
    """Does ``max_len`` (the served model's ``max_model_len``) fit required_context plus
    the completion room?"""
    required = ContextSettings.required_of(endpoint)
    if required is None:
        return Observation(Outcome.ERROR, "required_context is not configured")
    completion = ctx.params.get(COMPLETION_KEY) or TokenBounds().default
    need = required + completion
    details = {"model": model, "max_model_len": max_len, "required_context": required,
               "completion_tokens": completion}
    if not isinstance(max_len, int) or isinstance(max_len, bool):
        return Observation(Outcome.CONTEXT_TOO_SMALL, f"server does not report max_model_len, so "
                           f"required_context {required} cannot be verified", status, details)
    if max_len < need:
        return Observation(Outcome.CONTEXT_TOO_SMALL, f"max_model_len {max_len} is below "
                           f"required_context {required} + max_tokens {completion} = {need}",
                           status, details)
    return Observation(Outcome.OK, f"max_model_len {max_len} fits required_context {required} + "
                               f"max_tokens {completion}", status, details)

def filler(tokens: int) -> str:
    """About ``tokens`` tokens of text (4 characters each), starting with the instruction."""
    chars = tokens * budget.CHARS_PER_TOKEN
    text = _INSTRUCTION + _FILLER * (chars // len(_FILLER) + 1)
    return text[:chars]


async def check_active(endpoint: Endpoint, client: ProbeClient,
                       ctx: CheckContext) -> Observation:
    settings = ContextSettings.of(endpoint)
    required = settings.required_context
    if required is None:
        return Observation(Outcome.ERROR, "required_context is not configured")
    refusal = budget.over_budget(ctx.shared, settings.token_budget_per_hour, required + 1)
    if refusal is not None:
        return Observation(Outcome.SKIPPED_BUDGET, refusal)
    model = await served_model(endpoint, client, ctx)
    if isinstance(model, Observation):
        return model
    spend = budget.meter(ctx.shared).reserve(required + 1)
    reply = await post_chat(client, f"{endpoint.openai_base}/chat/completions",
                            ctx.headers(endpoint),
                            chat_body((Message("user", filler(required)),), 1, model, 0),
                            ctx.max_body_bytes)
    usage = reply.usage or {}
    prompt_tokens = usage.get("prompt_tokens")
    details = {"required_context": required, "prompt_tokens": prompt_tokens}
    if isinstance(prompt_tokens, int):
        completion = usage.get("completion_tokens")
        spend.settle(prompt_tokens + (completion if isinstance(completion, int) else 0))
        details["usage"] = {"prompt_tokens": prompt_tokens,
                            "completion_tokens": completion if isinstance(completion, int)
                            else 0}
    failed = reply_failure(reply)
    if failed is not None:
        return Observation(failed.outcome, failed.message, failed.http_status, details)
    if not isinstance(prompt_tokens, int):
        return Observation(Outcome.BAD_RESPONSE, "no usage.prompt_tokens in the answer: acceptance "
                           f"of {required} tokens cannot be verified", reply.status, details)
    if prompt_tokens < ACCEPTED_FRACTION * required:
        return Observation(Outcome.CONTEXT_TOO_SMALL, f"server counted only {prompt_tokens} prompt "
                           f"tokens of about {required} sent (input cut?)", reply.status, details)
    return Observation(Outcome.OK, f"accepted a {prompt_tokens}-token prompt (required_context "
                               f"{required})", reply.status, details)
