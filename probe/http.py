"""Bounded HTTP reads and what an answer means: status codes map to outcomes, error bodies to
messages. (The client every request goes through is ``probe.net.ProbeClient``.)"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx

from probe.net import ProbeClient
from probe.openai_errors import is_context_error_body, parse_error
from probe.outcome import Observation, Outcome

USER_AGENT = "runpod-probe/0.1"


class BadBody(Exception):
    """The body is not what the protocol says it should be."""


async def get(client: ProbeClient, url: str, headers: dict[str, str],
              limit: int) -> tuple[int, bytes, httpx.Headers]:
    """GET ``url`` and return (status, body, headers), reading at most ``limit`` bytes
    (``ProbeClient.fetch``: ``BodyTooLarge`` beyond)."""
    return await client.fetch(url, headers, limit)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(f"body is not JSON ({_preview(body)})") from exc
    if not isinstance(value, dict):
        raise BadBody(f"expected a JSON object, got {type(value).__name__}")
    return value


def status_outcome(status: int) -> Outcome | None:
    """The outcome an HTTP status alone implies, or None for a success."""
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return Outcome.UNAUTHORIZED
    if status == 404:
        return Outcome.HTTP_404
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 502:
        return Outcome.HTTP_502
    if status >= 500:
        return Outcome.HTTP_5XX
    return Outcome.HTTP_4XX


STATUS_MEANING: Mapping[int, str] = MappingProxyType({  # from any server
    401: "unauthorized: the API key is missing or wrong",
    403: "forbidden: the API key lacks permission",
    429: "rate limited",
    524: "proxy timeout: the server took longer than the proxy allows (100 s)",
})
# What a status means from where an endpoint of each kind is reached: a pod through RunPod's
# proxy; a serverless endpoint through RunPod's API at {api_base}/{endpoint_id}/..., which
# documents 404 as an unknown endpoint id (there is no pod behind it to be stopped).
KIND_MEANING: Mapping[str, Mapping[int, str]] = MappingProxyType({
    "pod": MappingProxyType({
        404: "not found: pod stopped or destroyed, or port not exposed as HTTP",
        502: "bad gateway: the proxy is up but nothing answers on the pod's port",
    }),
    "serverless": MappingProxyType({
        404: "not found: RunPod knows no serverless endpoint with this id (wrong or deleted), "
             "or the route is wrong",
    }),
})


def error_message(body: bytes) -> str:
    """The human message from any OpenAI/vLLM error shape (nested, flat, or a bare string)."""
    error = parse_error(body)
    return error.message if error is not None else _preview(body)


def failure_verdict(status: int, body: bytes) -> Observation:
    """The verdict for a non-2xx answer to a request that carried a prompt: a 400 that means
    "the prompt does not fit the window" is ``context_exceeded`` (the endpoint works; the
    prompt is too long for it), anything else is classified by its status."""
    if is_context_error_body(status, body):
        return Observation(Outcome.CONTEXT_EXCEEDED, f"HTTP {status}: {error_message(body)}",
                           status)
    return Observation(status_outcome(status) or Outcome.HTTP_4XX, describe_status(status, body),
                       status)


def _preview(body: bytes, limit: int = 120) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return repr(text) if text else "empty body"


def is_html(body: bytes, headers: httpx.Headers | None = None) -> bool:
    """An HTML page (a proxy's error page), by content type or by its first bytes."""
    if headers is not None and "html" in headers.get("content-type", "").lower():
        return True
    return b"<html" in body[:512].lower()


def describe_status(status: int, body: bytes, kind: str = "pod") -> str:
    """"HTTP 404 (what it means from an endpoint of this ``kind``): the body's message"."""
    meaning = KIND_MEANING.get(kind, {}).get(status) or STATUS_MEANING.get(status)
    detail = error_message(body) if body else "empty body"
    if is_html(body):
        detail = "HTML page"
    return f"HTTP {status}" + (f" ({meaning})" if meaning else "") + f": {detail}"
