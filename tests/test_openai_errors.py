"""Every vLLM error shape is read, and "the prompt does not fit" is recognised by meaning,
with the real messages of every vLLM version in the reference notes (section 3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from probe.http import error_message, failure_verdict
from probe.openai_errors import ServerError, is_context_error, is_context_error_body, parse_error
from probe.outcome import Outcome

SHAPES: list[tuple[str, Any, ServerError | None]] = [
    ("nested-vllm-0.32", {"error": {"message": "The model `nope` does not exist.",
                                    "type": "NotFoundError", "param": "model", "code": 404}},
     ServerError("The model `nope` does not exist.", "nested", "NotFoundError", "model", 404)),
    ("nested-string-code", {"error": {"message": "too long", "type": "invalid_request_error",
                                      "param": "messages", "code": "context_length_exceeded"}},
     ServerError("too long", "nested", "invalid_request_error", "messages",
                 "context_length_exceeded")),
    ("flat-vllm-0.8", {"object": "error", "message": "bad", "type": "BadRequestError",
                       "param": None, "code": 400},
     ServerError("bad", "flat", "BadRequestError", None, 400)),
    ("bare-unauthorized", {"error": "Unauthorized"}, ServerError("Unauthorized", "bare")),
    ("fastapi-detail", {"detail": "Not Found"}, ServerError("Not Found", "detail")),
    ("fastapi-validation-list", {"detail": [{"loc": ["body", "messages"],
                                             "msg": "Field required"}]},
     ServerError("Field required", "detail")),
    ("nested-without-message", {"error": {"type": "x"}}, None),
    ("bool-code-ignored", {"error": {"message": "m", "code": True}},
     ServerError("m", "nested", None, None, None)),
    ("empty-error-string", {"error": ""}, None),
    ("json-list", [1, 2], None),
    ("json-string", "oops", None),
]


@pytest.mark.parametrize(("document", "expected"), [s[1:] for s in SHAPES],
                         ids=[s[0] for s in SHAPES])
def test_error_shapes(document: Any, expected: ServerError | None) -> None:
    assert parse_error(json.dumps(document).encode()) == expected


@pytest.mark.parametrize("body", [b"", b"<html><body>502 Bad Gateway</body></html>", b"\xff\xfe",
                                  b'{"error": {"message": '],
                         ids=["empty", "html", "not-utf8", "truncated-json"])
def test_bodies_that_are_not_json_are_no_error_shape(body: bytes) -> None:
    assert parse_error(body) is None


def test_error_message_uses_the_parsed_message_or_a_preview() -> None:
    assert error_message(b'{"error":"Unauthorized"}') == "Unauthorized"
    assert error_message(b'{"object":"error","message":"flat one"}') == "flat one"
    assert error_message(b"<html>x</html>") == "'<html>x</html>'"


V0_8 = ("This model's maximum context length is 256 tokens. However, you requested 300 tokens "
        "(250 in the messages, 50 in the completion). Please reduce the length of the messages "
        "or completion.")
CONTEXT_ERRORS = [
    ("0.32-input-tokens", 400, "This model's maximum context length is 256 tokens. However, your "
     "prompt contains at least 257 input tokens, which exceeds this limit even without any "
     "output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
     "value=257)"),
    ("0.32-input-text", 400, "This model's maximum context length is 256 tokens. However, your "
     "prompt contains 3625 characters (more than 2816 characters, which is the upper bound for "
     "256 input tokens). Please reduce the length of the input prompt. (parameter=input_text, "
     "value=3625)"),
    ("0.32-window-full", 400, "max_tokens must be at least 1, got 0. (parameter=max_tokens, "
     "value=0)"),
    ("0.32-max-tokens-over-window", 400, "max_tokens=1000 cannot be greater than "
     "max_model_len=256. Please request fewer output tokens. (parameter=max_tokens, value=1000)"),
    ("0.32-max-completion-tokens", 400, "max_completion_tokens=1000 cannot be greater than "
     "max_model_len=256. Please request fewer output tokens."),
    ("0.5-0.8-prompt-plus-completion", 400, V0_8),
    ("0.5-0.8-no-max-tokens", 400, "This model's maximum context length is 256 tokens. However, "
     "you requested 300 tokens in the messages, Please reduce the length of the messages."),
    ("0.11-prompt", 400, "This model's maximum context length is 256 tokens. However, your "
     "request has 300 input tokens. Please reduce the length of the input messages."),
    ("0.11-max-tokens", 400, "'max_tokens' or 'max_completion_tokens' is too large: 50. This "
     "model's maximum context length is 256 tokens and your request has 250 input tokens "
     "(50 > 256 - 250)."),
    ("0.20", 400, "This model's maximum context length is 256 tokens. However, you requested 50 "
     "output tokens and your prompt contains at least 250 input tokens, for a total of at least "
     "300 tokens."),
    ("sglang", 400, "The input (300 tokens) is longer than the model's context length "
     "(256 tokens)."),
    ("upper-case", 400, "THIS MODEL'S MAXIMUM CONTEXT LENGTH IS 256 TOKENS."),
    ("in-stream-no-status", None, V0_8),
]


@pytest.mark.parametrize(("status", "message"), [c[1:] for c in CONTEXT_ERRORS],
                         ids=[c[0] for c in CONTEXT_ERRORS])
def test_context_length_errors_are_recognised_by_meaning(status: int | None,
                                                         message: str) -> None:
    assert is_context_error(status, message)


NOT_CONTEXT = [
    ("unknown-model", 404, "The model `nope` does not exist. Valid aliases: tiny-llama.", None),
    ("temperature", 400, "temperature must be non-negative, got -1.0.", None),
    ("missing-messages", 400, "Field required", None),
    ("engine-dead", 500, "EngineCore encountered an issue. See stack trace (above) for the root "
     "cause.", None),
    ("server-fault-mentioning-context", 500, V0_8, None),
    ("unauthorized", 401, "Unauthorized", None),
    ("in-stream-code-500", None, V0_8, 500),
    ("code-disagrees-with-status", 400, V0_8, 500),
    ("max-tokens-one-is-fine", 400, "max_tokens must be at least 1, got 1", None),
]


@pytest.mark.parametrize(("status", "message", "code"), [c[1:] for c in NOT_CONTEXT],
                         ids=[c[0] for c in NOT_CONTEXT])
def test_other_errors_are_not_context_errors(status: int | None, message: str,
                                             code: int | None) -> None:
    assert not is_context_error(status, message, code)


def test_string_code_alone_marks_a_context_error() -> None:
    # llama.cpp / OpenAI: the code says it even if a message were reworded.
    assert is_context_error(400, "prompt too long", "context_length_exceeded")
    assert is_context_error(None, "prompt too long", "context_length_exceeded")


BODIES = [
    ("nested", 400, {"error": {"message": CONTEXT_ERRORS[0][2], "type": "BadRequestError",
                               "param": "input_tokens", "code": 400}}, True),
    ("flat", 400, {"object": "error", "message": V0_8, "type": "BadRequestError",
                   "param": None, "code": 400}, True),
    ("llama-cpp", 400, {"error": {"message": "This model's maximum context length is 256 "
                                  "tokens. However, you requested 468 tokens.",
                                  "type": "invalid_request_error", "param": "messages",
                                  "code": "context_length_exceeded"}}, True),
    ("plain-text", 400, "This model's maximum context length is 256 tokens.", True),
    ("unknown-model", 404, {"error": {"message": "The model `x` does not exist.",
                                      "type": "NotFoundError", "param": "model",
                                      "code": 404}}, False),
    ("html-500", 500, "<html>maximum context length</html>", False),
]


@pytest.mark.parametrize(("status", "body", "expected"), [b[1:] for b in BODIES],
                         ids=[b[0] for b in BODIES])
def test_context_error_in_a_whole_body(status: int, body: Any, expected: bool) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert is_context_error_body(status, raw) is expected


VERDICTS = [
    ("context", 400, {"error": {"message": V0_8, "code": 400}}, Outcome.CONTEXT_EXCEEDED),
    ("bad-request", 400, {"error": {"message": "temperature must be non-negative"}},
     Outcome.HTTP_4XX),
    ("unknown-model", 404, {"error": {"message": "The model `x` does not exist."}},
     Outcome.HTTP_404),
    ("unauthorized", 401, {"error": "Unauthorized"}, Outcome.UNAUTHORIZED),
    ("engine-dead", 500, {"error": {"message": "EngineCore encountered an issue."}},
     Outcome.HTTP_5XX),
]


@pytest.mark.parametrize(("status", "body", "outcome"), [v[1:] for v in VERDICTS],
                         ids=[v[0] for v in VERDICTS])
def test_failure_verdict(status: int, body: Any, outcome: Outcome) -> None:
    verdict = failure_verdict(status, json.dumps(body).encode())
    assert verdict.outcome is outcome and verdict.http_status == status
    message = body["error"] if isinstance(body["error"], str) else body["error"]["message"]
    assert message in verdict.message
