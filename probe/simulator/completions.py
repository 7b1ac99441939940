"""Turn a validated ``ChatPlan`` into vLLM's JSON body or its SSE stream, in the style a
behaviour asks for: right or wrong answers, slow first token, a cut stream, reasoning only,
an empty answer, or a stream that ignores ``include_usage``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from probe.simulator.chat import CHARS_PER_TOKEN, ChatError, ChatPlan, answer_for, split_tokens
from probe.simulator.messages import CutConnection, Response, dumps, json_response

SSE_TYPE = "text/event-stream; charset=utf-8"
VLLM_FINGERPRINT = "vllm-0.32.0-5f1d3c2a"
_REASONING = "Let me think about this step by step before I answer. "
_REASONING_CAP_TOKENS = 256
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ChatStyle:
    answer: Callable[[str, bool], str] = answer_for
    reasoning_only: bool = False  # the text goes to `reasoning`, content stays empty
    ttft_delay_s: float = 0.0
    token_interval_s: float = 0.0
    cut_stream: bool = False  # drop the connection halfway, without `data: [DONE]`
    honour_include_usage: bool = True
    vllm: bool = True  # vLLM's extra fields; False for a commercial provider's shape


class ChatObserver(Protocol):
    """Told when a generation starts and ends; pods feed their /metrics from it."""

    def started(self) -> None: ...

    def finished(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        reason: str,
        ttft_s: float | None,
        e2e_s: float,
    ) -> None: ...


class _NoObserver:
    def started(self) -> None:
        pass

    def finished(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        reason: str,
        ttft_s: float | None,
        e2e_s: float,
    ) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Answer:
    text: str
    finish_reason: str
    completion_tokens: int


def _produce(plan: ChatPlan, style: ChatStyle) -> _Answer:
    if style.reasoning_only:
        budget = min(plan.max_tokens, _REASONING_CAP_TOKENS)
        text = (_REASONING * (budget // 10 + 1))[: budget * CHARS_PER_TOKEN]
        finish = "length" if budget == plan.max_tokens else "stop"
    else:
        full = style.answer(plan.question, plan.json_mode)
        text = full[: plan.max_tokens * CHARS_PER_TOKEN]
        finish = "length" if len(text) < len(full) else "stop"
    # An empty answer still cost one token: the end-of-sequence token.
    return _Answer(text, finish, max(1, len(split_tokens(text))))


def error_response(error: ChatError, vllm: bool = True) -> Response:
    if vllm:
        inner = {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.status,
        }
    else:
        inner = {
            "message": error.message,
            "type": "invalid_request_error",
            "param": error.param,
            "code": error.code,
        }
    return json_response(error.status, {"error": inner})


def _usage(plan: ChatPlan, answer: _Answer, vllm: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": plan.prompt_tokens,
        "total_tokens": plan.prompt_tokens + answer.completion_tokens,
        "completion_tokens": answer.completion_tokens,
    }
    if vllm:
        usage["prompt_tokens_details"] = None
    return usage


def _message(answer: _Answer, style: ChatStyle) -> dict[str, Any]:
    reasoning = answer.text if style.reasoning_only else None
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if style.reasoning_only else answer.text,
        "refusal": None,
    }
    if style.vllm:
        message.update(annotations=None, audio=None, function_call=None, reasoning=reasoning)
        if reasoning is not None:
            message["reasoning_content"] = reasoning  # the pre-0.11 name, still read by clients
    else:
        message["annotations"] = []
    return message


async def complete(
    plan: ChatPlan, style: ChatStyle, observer: ChatObserver | None = None
) -> Response:
    """The non-streaming answer."""
    observer = observer or _NoObserver()
    start = time.monotonic()
    answer = _produce(plan, style)
    observer.started()
    reason = "abort"
    try:
        delay = style.ttft_delay_s + style.token_interval_s * (answer.completion_tokens - 1)
        await asyncio.sleep(delay)
        reason = answer.finish_reason
    finally:
        elapsed = time.monotonic() - start
        observer.finished(plan.prompt_tokens, answer.completion_tokens, reason, elapsed, elapsed)
    choice: dict[str, Any] = {
        "index": 0,
        "message": _message(answer, style),
        "logprobs": None,
        "finish_reason": answer.finish_reason,
    }
    body: dict[str, Any] = {
        "id": f"chatcmpl-{next(_ids):016x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [choice],
    }
    if style.vllm:
        choice.update(stop_reason=None, token_ids=None)
        body.update(service_tier=None, system_fingerprint=VLLM_FINGERPRINT)
    body["usage"] = _usage(plan, answer, style.vllm)
    if style.vllm:
        body.update(prompt_logprobs=None, prompt_token_ids=None, kv_transfer_params=None)
    return json_response(200, body)


def stream(plan: ChatPlan, style: ChatStyle, observer: ChatObserver | None = None) -> Response:
    """The streaming answer: SSE over a chunked body."""
    headers = (("content-type", SSE_TYPE), ("cache-control", "no-cache"))
    return Response(200, headers, stream=_events(plan, style, observer or _NoObserver()))


async def _events(
    plan: ChatPlan, style: ChatStyle, observer: ChatObserver
) -> AsyncGenerator[bytes, None]:
    start = time.monotonic()
    head = {
        "id": f"chatcmpl-{next(_ids):016x}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": plan.model,
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
        }
        if finish is not None and style.vllm:
            choice["stop_reason"] = None
        return b"data: " + dumps({**head, "choices": [choice]}) + b"\n\n"

    answer = _produce(plan, style)
    pieces = split_tokens(answer.text)
    if style.cut_stream:
        pieces = pieces[: max(1, len(pieces) // 2)]
    key = "reasoning" if style.reasoning_only else "content"
    observer.started()
    sent, ttft, reason = 0, None, "abort"
    try:
        yield event({"role": "assistant", "content": ""})
        for i, piece in enumerate(pieces or [""]):
            await asyncio.sleep(style.ttft_delay_s if i == 0 else style.token_interval_s)
            ttft = ttft or time.monotonic() - start
            delta = (
                {key: piece, "reasoning_content": piece} if style.reasoning_only else {key: piece}
            )
            last = i == len(pieces) - 1 or not pieces
            sent += 1
            yield event(delta, answer.finish_reason if last and not style.cut_stream else None)
        if style.cut_stream:
            raise CutConnection
        if plan.include_usage and style.honour_include_usage:
            usage = {**head, "choices": [], "usage": _usage(plan, answer, vllm=False)}
            if style.vllm:
                usage["system_fingerprint"] = VLLM_FINGERPRINT
            yield b"data: " + dumps(usage) + b"\n\n"
        yield b"data: [DONE]\n\n"
        reason = answer.finish_reason
    finally:
        tokens = answer.completion_tokens if reason != "abort" else max(1, sent)
        observer.finished(plan.prompt_tokens, tokens, reason, ttft, time.monotonic() - start)
