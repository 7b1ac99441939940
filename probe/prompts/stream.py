"""One chat completion, streamed: read vLLM-style SSE under a byte cap and time it.

Timing (``time.perf_counter``, from just before the request is sent):
- ``ttft_s``: to the first chunk whose delta carries non-empty ``content``. vLLM's first
  chunk is role-only (``{"role": "assistant", "content": ""}``) and empty deltas occur;
  neither counts, and neither does reasoning text.
- ``total_s``: to ``data: [DONE]`` (or to wherever the stream ended).

Errors after the 200 arrive inside the stream as ``data: {"error": {...}}``; a connection
that closes before ``[DONE]`` is a cut stream, reported as data, not raised. A server that
ignores ``stream: true`` and answers with one JSON body is read as such (no TTFT).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from probe.http import BadBody, error_message, parse_json_object
from probe.net import BodyTooLarge, ProbeClient, read_capped

DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class ChatReply:
    status: int
    total_s: float
    streamed: bool = False
    content: str = ""
    reasoning: str = ""
    done: bool = False  # the answer is complete: [DONE] seen, or a whole JSON body
    cut: str | None = None  # why the stream ended early (connection closed mid-body)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None  # an error the server sent inside the stream
    error_code: int | None = None
    ttft_s: float | None = None
    body: bytes = b""  # the error body of a non-2xx answer


class _Collector:
    """Accumulates the events of one stream."""

    def __init__(self, began: float) -> None:
        self.began = began
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.ttft_s: float | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.error: str | None = None
        self.error_code: int | None = None
        self.done = False

    def event(self, data: str) -> None:
        if data.strip() == DONE:
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise BadBody(f"stream event is not JSON: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise BadBody(f"stream event is not a JSON object: {data[:80]!r}")
        if "error" in chunk:
            self.error = error_message(data.encode())
            inner = chunk["error"]
            code = inner.get("code") if isinstance(inner, dict) else None
            self.error_code = code if isinstance(code, int) else None
            return
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            self._choice(choices[0])

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str) and content:
                if self.ttft_s is None:
                    self.ttft_s = time.perf_counter() - self.began
                self.content.append(content)
            # vLLM >= 0.11 says "reasoning"; older servers "reasoning_content" (some send both).
            thought = delta.get("reasoning") or delta.get("reasoning_content")
            if isinstance(thought, str):
                self.reasoning.append(thought)
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]


class _Lines:
    """Split a byte stream into lines (LF, CRLF or CR), never holding more than the cap."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, chunk: bytes) -> list[str]:
        text = self.buffer + chunk
        # A CR at the end may be the first half of a CRLF split across two chunks.
        hold = b"\r" if text.endswith(b"\r") else b""
        text = text[: len(text) - len(hold)].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = text.split(b"\n")
        self.buffer = rest + hold
        return [line.decode("utf-8", "replace") for line in lines]


async def _read_events(response: httpx.Response, collector: _Collector, limit: int) -> None:
    """Dispatch SSE events (``data:`` lines up to a blank line) until [DONE] or the end."""
    lines, size = _Lines(), 0
    data: list[str] = []
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        for line in lines.feed(chunk):
            if line == "":
                if data:
                    collector.event("\n".join(data))
                    data = []
                    if collector.done:
                        return
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            # Other fields (event:, id:, retry:) and comments (":") carry nothing for us.
    tail = lines.buffer.decode("utf-8", "replace")
    if tail.startswith("data:"):
        data.append(tail[5:].removeprefix(" "))
    if data:
        collector.event("\n".join(data))


async def post_chat(client: ProbeClient, url: str, headers: dict[str, str],
                    payload: dict[str, Any], limit: int) -> ChatReply:
    began = time.perf_counter()
    async with client.stream("POST", url, headers=headers, json=payload) as response:
        status = response.status_code
        if not 200 <= status < 300:
            body = await read_capped(response, limit)
            return ChatReply(status, time.perf_counter() - began, body=body)
        if "text/event-stream" not in response.headers.get("content-type", ""):
            body = await read_capped(response, limit)
            return _whole(status, parse_json_object(body), time.perf_counter() - began)
        collector = _Collector(began)
        cut = None
        try:
            await _read_events(response, collector, limit)
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            # The server closed the connection mid-answer: an observation, not a bug.
            cut = (str(exc) or type(exc).__name__).splitlines()[0][:200]
    c = collector
    return ChatReply(status, time.perf_counter() - began, streamed=True,
                     content="".join(c.content), reasoning="".join(c.reasoning), done=c.done,
                     cut=cut, finish_reason=c.finish_reason, usage=c.usage, error=c.error,
                     error_code=c.error_code, ttft_s=c.ttft_s)


def _whole(status: int, document: dict[str, Any], total_s: float) -> ChatReply:
    """A non-streamed chat.completion (the server ignored ``stream: true``)."""
    if "error" in document:
        return ChatReply(status, total_s, done=True,
                         error=error_message(json.dumps(document).encode()))
    choices = document.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadBody('expected {"choices": [...]} in the chat completion')
    message = choices[0].get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    thought = message.get("reasoning") or message.get("reasoning_content") \
        if isinstance(message, dict) else None
    usage = document.get("usage")
    finish = choices[0].get("finish_reason")
    return ChatReply(status, total_s, streamed=False, done=True,
                     content=content if isinstance(content, str) else "",
                     reasoning=thought if isinstance(thought, str) else "",
                     finish_reason=finish if isinstance(finish, str) else None,
                     usage=usage if isinstance(usage, dict) else None)
