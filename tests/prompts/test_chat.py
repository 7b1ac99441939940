"""The prompt check against canned replies (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from freezegun import freeze_time
from helpers import endpoint
from local_server import answering

from probe.check import CheckContext
from probe.outcome import Observation, Outcome
from probe.prompts import chat
from probe.prompts.model import PROMPT_KEY, Expectation, Message, Prompt

SSE = {"content-type": "text/event-stream"}
ARITHMETIC = Prompt(name="arithmetic", messages=(Message("user", "What is 2+2?"),),
                    expect=(Expectation("regex", re.compile(r"^\s*4\s*$")),),
                    cross="RUNPOD.md Test table", interval_s=60.0, max_tokens=16)


def sse(*events: Any) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode())
                    + b"\n\n" for e in events)


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


ROLE = delta(role="assistant", content="")
USAGE = {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 1}}


def reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return lambda request: httpx.Response(status, content=body, headers=headers or SSE)


def run(handler: Any, prompt: Prompt = ARITHMETIC, ctx: CheckContext | None = None,
        **overrides: Any) -> Observation:
    target = endpoint(model="Q", extra=overrides.pop("extra", {}), **overrides)
    context = ctx or CheckContext()
    context.params = {PROMPT_KEY: prompt}

    async def go() -> Observation:
        async with answering(handler) as client:
            return await chat.check(target, client, context)

    return asyncio.run(go())


NESTED_CONTEXT = json.dumps({"error": {"message": "This model's maximum context length is 8192 "
                                       "tokens. However, your prompt contains at least 11001 "
                                       "input tokens.", "type": "BadRequestError",
                                       "param": "input_tokens", "code": 400}}).encode()
FLAT_CONTEXT = json.dumps({"object": "error", "message": "This model's maximum context length "
                           "is 8192 tokens. However, you requested 11064 tokens.",
                           "type": "BadRequestError", "code": 400}).encode()
OLD_MAX_TOKENS = json.dumps({"error": {"message": "'max_tokens' is too large: 64. This model's "
                             "max_model_len is 8192", "code": 400}}).encode()
JSON = {"content-type": "application/json"}

CASES = [
    ("ok", reply(200, sse(ROLE, delta(content="4"), USAGE, b"[DONE]")), Outcome.OK, "passed"),
    ("wrong-answer", reply(200, sse(ROLE, delta(content="5"), USAGE, b"[DONE]")),
     Outcome.EXPECTATION_FAILED, 'answer "5"'),
    ("empty-answer", reply(200, sse(ROLE, delta(content=""), USAGE, b"[DONE]")),
     Outcome.EMPTY_ANSWER, "empty answer"),
    ("reasoning-only", reply(200, sse(ROLE, delta(reasoning="Let me think"), USAGE, b"[DONE]")),
     Outcome.EMPTY_ANSWER, "only reasoning text"),
    ("missing-usage", reply(200, sse(ROLE, delta(content="4"), b"[DONE]")),
     Outcome.BAD_RESPONSE, "no usage reported"),
    ("broken-stream", reply(200, sse(ROLE, delta(content="4"))), Outcome.STREAM_BROKEN,
     "stream ended before [DONE]"),
    ("context-nested", reply(400, NESTED_CONTEXT, JSON), Outcome.CONTEXT_EXCEEDED,
     "maximum context length is 8192"),
    ("context-flat", reply(400, FLAT_CONTEXT, JSON), Outcome.CONTEXT_EXCEEDED,
     "maximum context length is 8192"),
    ("context-by-max-model-len", reply(400, OLD_MAX_TOKENS, JSON), Outcome.CONTEXT_EXCEEDED,
     "max_model_len"),
    ("other-400", reply(400, json.dumps({"error": {"message": "temperature must be "
                                                   "non-negative", "code": 400}}).encode(), JSON),
     Outcome.HTTP_4XX, "temperature must be non-negative"),
    ("unauthorized-bare-string", reply(401, b'{"error":"Unauthorized"}', JSON),
     Outcome.UNAUTHORIZED, "Unauthorized"),
    ("engine-dead-500", reply(500, json.dumps({"error": {"message": "EngineCore encountered an "
                                                         "issue.", "code": 500}}).encode(), JSON),
     Outcome.HTTP_5XX, "EngineCore"),
    ("error-inside-stream", reply(200, sse(ROLE, {"error": {"message": "EngineCore died",
                                                            "code": 500}}, b"[DONE]")),
     Outcome.HTTP_5XX, "in the stream"),
    ("context-error-inside-stream", reply(200, sse({"error": {
        "message": "maximum context length exceeded", "code": 400}}, b"[DONE]")),
     Outcome.CONTEXT_EXCEEDED, "maximum context length"),
    ("proxy-404-html", reply(404, b"<html>404 page not found</html>", {"content-type":
                                                                      "text/html"}),
     Outcome.HTTP_404, "HTTP 404"),
    ("vllm-unknown-model-404", reply(404, json.dumps({"error": {
        "message": "The model `Q` does not exist. Valid aliases: L.", "type": "NotFoundError",
        "param": "model", "code": 404}}).encode(), JSON),
     Outcome.MODEL_MISSING, "does not exist"),
]


@pytest.mark.parametrize(("handler", "outcome", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_prompt_outcomes(handler: Any, outcome: Outcome, words: str) -> None:
    verdict = run(handler)
    assert verdict.outcome is outcome, verdict.message
    assert words in verdict.message


def test_request_is_streamed_deterministic_and_bounded() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return reply(200, sse(ROLE, delta(content="4"), USAGE, b"[DONE]"))(request)

    run(handler)
    body = sent[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["seed"], body["max_tokens"], body["model"]) == (0, 0, 16, "Q")
    assert body["messages"] == [{"role": "user", "content": "What is 2+2?"}]


def test_evidence_in_details() -> None:
    verdict = run(reply(200, sse(ROLE, delta(content="5"), USAGE, b"[DONE]")))
    assert verdict.details["cross"] == "RUNPOD.md Test table"
    assert verdict.details["answer"] == "5"
    assert verdict.details["usage"] == {"prompt_tokens": 12, "completion_tokens": 1}
    assert "RUNPOD.md Test table" in verdict.message


def test_model_is_learned_from_models_and_forgotten_on_404() -> None:
    calls: list[str] = []
    answers = iter([404, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served/one"}]})
        if next(answers) == 404:
            return httpx.Response(404, json={"error": {"message": "The model does not exist"}})
        return reply(200, sse(ROLE, delta(content="4"), USAGE, b"[DONE]"))(request)

    target = endpoint(model=None)
    ctx = CheckContext(params={PROMPT_KEY: ARITHMETIC})

    async def go() -> list[Observation]:
        async with answering(handler) as client:
            return [await chat.check(target, client, ctx) for _ in range(2)]

    first, second = asyncio.run(go())
    assert first.outcome is Outcome.MODEL_MISSING and second.ok
    assert calls == ["/v1/models", "/v1/chat/completions", "/v1/models", "/v1/chat/completions"]


def test_the_models_checks_fresh_pick_is_sent_without_asking_again() -> None:
    """The endpoint's models check picked "served/one" (its shared context): a prompt
    sends it without its own GET /v1/models while the pick is under two minutes old;
    older, or forgotten after a 404, the prompt asks the server itself."""
    from probe.core_checks import models

    calls: list[str] = []
    sent: list[str] = []
    answers = iter([200, 404, 200, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served/one"}]})
        sent.append(json.loads(request.content)["model"])
        if next(answers) == 404:
            return httpx.Response(404, json={"error": {"message": "The model does not exist"}})
        return reply(200, sse(ROLE, delta(content="4"), USAGE, b"[DONE]"))(request)

    target = endpoint(model=None)
    shared: dict[str, Any] = {}
    models_ctx = CheckContext(shared=shared)

    def prompt_ctx() -> CheckContext:
        return CheckContext(shared=shared, params={PROMPT_KEY: ARITHMETIC})

    async def go() -> list[Observation]:
        async with answering(handler) as client:
            with freeze_time("2026-01-01 00:00:00") as clock:
                assert (await models.check(target, client, models_ctx)).ok
                calls.clear()
                clock.tick(119)
                fresh = await chat.check(target, client, prompt_ctx())  # the models pick
                gone = await chat.check(target, client, prompt_ctx())  # 404: forgotten
                after = await chat.check(target, client, prompt_ctx())  # asks itself
                assert (await models.check(target, client, models_ctx)).ok
                clock.tick(121)
                stale = await chat.check(target, client, prompt_ctx())  # asks itself
            return [fresh, gone, after, stale]

    fresh, gone, after, stale = asyncio.run(go())
    assert fresh.ok and gone.outcome is Outcome.MODEL_MISSING and after.ok and stale.ok
    assert sent == ["served/one"] * 4
    assert calls == ["/v1/chat/completions", "/v1/chat/completions",
                     "/v1/models", "/v1/chat/completions",
                     "/v1/models", "/v1/models", "/v1/chat/completions"]


def test_over_budget_is_skipped_without_a_request() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return reply(200, sse(ROLE, delta(content="4"), USAGE, b"[DONE]"))(request)

    ctx = CheckContext()
    with freeze_time("2026-02-18 10:00:00"):
        first = run(handler, ctx=ctx, extra={"token_budget_per_hour": 25})
        second = run(handler, ctx=ctx, extra={"token_budget_per_hour": 25})
    assert first.ok
    assert second.outcome is Outcome.SKIPPED_BUDGET and "token budget 25/h" in second.message
    assert len(calls) == 1
