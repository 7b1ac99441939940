"""Read the error bodies of vLLM and other OpenAI-compatible servers, and recognise by meaning
the one error a probe must not call an outage: "the prompt does not fit the context window".

Shapes seen in the wild (reference: vLLM HTTP surface notes, section 3):

- nested, vLLM >= 0.10.1 and OpenAI: ``{"error": {"message", "type", "param", "code"}}``
  (``code`` is the HTTP status on vLLM, a string like ``"context_length_exceeded"`` elsewhere);
- flat, vLLM <= 0.10.0: ``{"object": "error", "message", "type", "param", "code"}``;
- bare, vLLM's API-key middleware: ``{"error": "Unauthorized"}``;
- FastAPI's own: ``{"detail": "Not Found"}`` (or a list of validation problems).

The context-length wording changed in almost every vLLM release, so it is matched on
phrases that all versions share, never on the exact text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerError:
    """The parts of an error body a probe reports; ``shape`` says which form it came in."""

    message: str
    shape: str  # "nested" | "flat" | "bare" | "detail"
    type: str | None = None
    param: str | None = None
    code: int | str | None = None


# Phrases every known "prompt does not fit" message contains at least one of: vLLM
# 0.5-0.33 ("maximum context length", "max_model_len"), SGLang ("context length"),
# llama.cpp and OpenAI (code "context_length_exceeded").
_CONTEXT_PHRASES = ("maximum context length", "max_model_len", "context length",
                    "context_length_exceeded")
# vLLM 0.32 answers a prompt that fills the window exactly with this: the room left for the
# answer was clamped to zero. A probe always asks for at least one token, so here it means
# "no room left", not a bad request.
_NO_ROOM_LEFT = "max_tokens must be at least 1, got 0"


def parse_error(body: bytes | str) -> ServerError | None:
    """The error in a response body, or None when the body is not a recognised error shape."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return error_from_json(value)


def error_from_json(value: Any) -> ServerError | None:
    """Same as ``parse_error`` for an already decoded document (e.g. an SSE ``data:`` event)."""
    if not isinstance(value, dict):
        return None
    error = value.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return _with_fields(error, "nested")
    if isinstance(error, str) and error:
        return ServerError(error, "bare")
    if isinstance(value.get("message"), str):
        return _with_fields(value, "flat")
    detail = value.get("detail")
    if isinstance(detail, str):
        return ServerError(detail, "detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        if isinstance(first.get("msg"), str):
            return ServerError(str(first["msg"]), "detail")
    return None


def _with_fields(source: dict[str, Any], shape: str) -> ServerError:
    def text(key: str) -> str | None:
        item = source.get(key)
        return item if isinstance(item, str) else None

    code = source.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str):
        code = None
    return ServerError(str(source["message"]), shape, text("type"), text("param"), code)


def is_context_error(status: int | None, message: str, code: int | str | None = None) -> bool:
    """True when an error means "the request does not fit the model's context window".

    ``status`` is the HTTP status, or None for an error sent inside a 200 stream (then the
    error's own numeric ``code``, if any, must be 400). Only a 400 qualifies: a 5xx that
    mentions the context length is a server fault, not a prompt that is too long.
    """
    if isinstance(code, int) and not isinstance(code, bool):
        if status is None:
            status = code
        elif code != status:
            return False
    if status not in (400, None):
        return False
    text = message.lower()
    if isinstance(code, str):
        text += " " + code.lower()
    return any(phrase in text for phrase in _CONTEXT_PHRASES) or _NO_ROOM_LEFT in text


def is_context_error_body(status: int, body: bytes | str) -> bool:
    """``is_context_error`` for a whole response body of any shape (or plain text)."""
    error = parse_error(body)
    if error is not None:
        return is_context_error(status, error.message, error.code)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return is_context_error(status, text[:4096])
