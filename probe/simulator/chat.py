"""Chat-completion requests: validation as vLLM 0.32 does it, token arithmetic, answers.

Tokens are approximated as one per 4 characters of message content (at least 1), so every
count is deterministic. Answers come from a small table keyed on the last user message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
# vLLM rejects a prompt before tokenizing when it is longer than this many chars per token.
_CHAR_PRECHECK_PER_TOKEN = 11


@dataclass(frozen=True, slots=True)
class ChatError:
    status: int
    message: str
    type: str
    param: str | None = None
    code: str | None = None  # OpenAI's string code; vLLM puts the status there instead


@dataclass(frozen=True, slots=True)
class ChatPlan:
    """A validated request: everything needed to produce the answer."""

    model: str
    question: str  # the last user message
    prompt_tokens: int
    max_tokens: int  # after clamping to the room left in the context window
    stream: bool
    include_usage: bool
    json_mode: bool = False  # response_format asked for JSON


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def split_tokens(text: str) -> list[str]:
    return [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


def _normalise(text: str) -> str:
    return "".join(text.lower().split())


# (key, right answer, deterministic wrong answer); keys match on whitespace-free lower case.
_ANSWERS: tuple[tuple[str, str, str], ...] = (
    ("2+2", "4", "5"),
    ("aredeploymentsvalidated?", "Yes — every deployment is validated.", "No."),
    ("whathappensonvalidationfailure?", "It fails closed.", "It fails open."),
    (
        "arecredentialshardcoded?",
        "No — credentials are discovered dynamically.",
        "Yes — they are in the code.",
    ),
    ("json", '{"status": "ok"}', "Sure! Here it is: status ok."),
)


def answer_for(question: str, json_mode: bool = False) -> str:
    key = _normalise(question) + ("json" if json_mode else "")
    for needle, right, _ in _ANSWERS:
        if needle in key:
            return right
    excerpt = " ".join(question.split())[:60]
    return f'You said: "{excerpt}". This is a simulated answer.'


def wrong_answer_for(question: str, json_mode: bool = False) -> str:
    key = _normalise(question) + ("json" if json_mode else "")
    for needle, _, wrong in _ANSWERS:
        if needle in key:
            return wrong
    return "The answer is 5."


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _bad_request(message: str, param: str | None = None, code: str | None = None) -> ChatError:
    return ChatError(400, message, "BadRequestError", param, code)


def _limit_error(name: str, value: int, max_model_len: int) -> ChatError:
    return _bad_request(
        f"{name}={value} cannot be greater than max_model_len={max_model_len}. "
        f"Please request fewer output tokens. (parameter={name}, value={value})",
        name,
    )


def _requested_max_tokens(body: dict[str, Any]) -> tuple[str, Any]:
    if body.get("max_completion_tokens") is not None:
        return "max_completion_tokens", body["max_completion_tokens"]
    return "max_tokens", body.get("max_tokens")


def parse(raw: bytes, served: Sequence[str], max_model_len: int) -> ChatPlan | ChatError:
    """Validate a request body against the served model ids and context window."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return ChatError(400, f"JSON decode error: {exc}", "Bad Request")
    if not isinstance(body, dict):
        return ChatError(400, "Input should be a valid dictionary", "Bad Request", "body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ChatError(400, "Field required", "Bad Request", "body.messages")
    model = body.get("model") or served[0]
    if model not in served:
        return ChatError(
            404,
            f"The model `{model}` does not exist. Valid aliases: {', '.join(served)}.",
            "NotFoundError",
            "model",
            "model_not_found",
        )
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and temperature < 0:
        return _bad_request(
            f"temperature must be non-negative, got {float(temperature)}. "
            f"(parameter=temperature, value={float(temperature)})",
            "temperature",
        )
    name, requested = _requested_max_tokens(body)
    if requested is not None:
        if not isinstance(requested, int) or requested < 1:
            return _bad_request(
                f"{name} must be at least 1, got {requested}. "
                f"(parameter={name}, value={requested})",
                name,
            )
        if requested > max_model_len:
            return _limit_error(name, requested, max_model_len)
    contents = [_text_of(m.get("content")) for m in messages if isinstance(m, dict)]
    chars = sum(len(c) for c in contents)
    prompt_tokens = count_tokens("".join(contents))
    if error := _context_error(chars, prompt_tokens, max_model_len):
        return error
    room = max_model_len - prompt_tokens
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    options = body.get("stream_options")
    response_format = body.get("response_format")
    return ChatPlan(
        model=model,
        question=_text_of(users[-1].get("content")) if users else "",
        prompt_tokens=prompt_tokens,
        max_tokens=room if requested is None else min(requested, room),
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        json_mode=isinstance(response_format, dict)
        and response_format.get("type") in ("json_object", "json_schema"),
    )


def _context_error(chars: int, prompt_tokens: int, max_model_len: int) -> ChatError | None:
    head = f"This model's maximum context length is {max_model_len} tokens. However, your prompt"
    char_limit = max_model_len * _CHAR_PRECHECK_PER_TOKEN
    if chars > char_limit:
        return _bad_request(
            f"{head} contains {chars} characters (more than {char_limit} characters, which is "
            f"the upper bound for {max_model_len} input tokens). Please reduce the length of "
            f"the input prompt. (parameter=input_text, value={chars})",
            "input_text",
            "context_length_exceeded",
        )
    if prompt_tokens > max_model_len:
        return _bad_request(
            f"{head} contains at least {prompt_tokens} input tokens, which exceeds this limit "
            f"even without any output tokens. Please reduce the length of the input prompt. "
            f"(parameter=input_tokens, value={prompt_tokens})",
            "input_tokens",
            "context_length_exceeded",
        )
    if prompt_tokens == max_model_len:
        return _bad_request(
            "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)", "max_tokens"
        )
    return None
