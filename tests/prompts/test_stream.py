"""The streamed chat reader against canned SSE (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from local_server import answering

from probe.http import BadBody
from probe.net import BodyTooLarge
from probe.prompts.stream import ChatReply, post_chat

SSE = {"content-type": "text/event-stream; charset=utf-8"}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                            "choices": [] if delta is None else
                            [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


ROLE = chunk({"role": "assistant", "content": ""})
USAGE = chunk(usage={"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14})
DONE = b"data: [DONE]\n\n"


class Body(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes | float | BaseException]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if isinstance(part, float):
                await asyncio.sleep(part)
            elif isinstance(part, BaseException):
                raise part
            else:
                yield part


def read(parts: list[bytes | float | BaseException], status: int = 200,
         headers: dict[str, str] | None = None, limit: int = 1 << 20) -> ChatReply:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(status, headers=SSE if headers is None else headers,
                              stream=Body(parts))

    async def go() -> ChatReply:
        async with answering(handler) as client:
            return await post_chat(client, "http://pod.test/v1/chat/completions", {},
                                   {"messages": []}, limit)

    return asyncio.run(go())


def test_complete_stream_collects_content_usage_and_finish() -> None:
    reply = read([ROLE, chunk({"content": "4"}), chunk({"content": "."}, "stop"), USAGE, DONE])
    assert (reply.content, reply.done, reply.finish_reason) == ("4.", True, "stop")
    assert reply.usage == {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    assert reply.streamed and reply.cut is None and reply.error is None


def test_ttft_is_measured_to_first_content_not_to_the_role_chunk() -> None:
    reply = read([ROLE, chunk({"content": ""}), 0.3, chunk({"content": "4"}), USAGE, DONE])
    assert reply.ttft_s is not None and reply.ttft_s >= 0.3
    assert reply.total_s >= reply.ttft_s


def test_reasoning_text_is_not_content_and_does_not_start_ttft() -> None:
    reply = read([ROLE, chunk({"reasoning": "Let me think", "reasoning_content": "Let me think"}),
                  USAGE, DONE])
    assert reply.content == "" and reply.reasoning == "Let me think" and reply.ttft_s is None


def test_stream_without_done_is_not_complete() -> None:
    reply = read([ROLE, chunk({"content": "4"})])
    assert not reply.done and reply.content == "4" and reply.cut is None


def test_connection_closed_mid_stream_is_a_cut_not_an_exception() -> None:
    # the server drops the connection mid-body: the reader keeps what came and says why
    reply = read([ROLE, chunk({"content": "It"}), httpx.RemoteProtocolError("peer closed")])
    assert not reply.done and reply.content == "It"
    assert reply.cut is not None and "payload is not completed" in reply.cut


def test_error_event_after_the_200_is_read() -> None:
    error = {"error": {"message": "EngineCore encountered an issue.", "type":
                       "InternalServerError", "code": 500}}
    reply = read([ROLE, b"data: " + json.dumps(error).encode() + b"\n\n", DONE])
    assert reply.error == "EngineCore encountered an issue." and reply.error_code == 500


def test_crlf_split_across_chunks_and_comments_and_fields() -> None:
    body = (b": keep-alive\r\n\r\nevent: message\r\n" + ROLE.replace(b"\n", b"\r\n")
            + chunk({"content": "4"}).replace(b"\n", b"\r\n") + DONE.replace(b"\n", b"\r\n"))
    parts: list[bytes | float | BaseException] = [body[i:i + 7] for i in range(0, len(body), 7)]
    reply = read(parts)
    assert reply.content == "4" and reply.done


def test_event_without_trailing_blank_line_still_counts() -> None:
    reply = read([ROLE, chunk({"content": "4"}), b"data: [DONE]"])
    assert reply.done and reply.content == "4"


def test_output_is_capped() -> None:
    endless: list[bytes | float | BaseException] = [ROLE] + [chunk({"content": "x" * 100})] * 100
    with pytest.raises(BodyTooLarge):
        read(endless, limit=4096)


def test_garbage_event_is_a_bad_body() -> None:
    with pytest.raises(BadBody):
        read([ROLE, b"data: {not json\n\n", DONE])


def test_error_status_keeps_the_body() -> None:
    body = json.dumps({"object": "error", "message": "This model's maximum context length is "
                       "8192 tokens.", "type": "BadRequestError", "code": 400}).encode()
    reply = read([body], status=400, headers={"content-type": "application/json"})
    assert reply.status == 400 and reply.body == body and not reply.done


def test_server_that_ignores_stream_true_is_read_as_one_body() -> None:
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "4"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 1}}).encode()
    reply = read([body], headers={"content-type": "application/json"})
    assert (reply.content, reply.done, reply.streamed, reply.ttft_s) == ("4", True, False, None)
    assert reply.usage == {"prompt_tokens": 5, "completion_tokens": 1}
