"""The models check against canned responses (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from helpers import endpoint
from local_server import answering

from probe.check import CheckContext
from probe.core_checks import models
from probe.outcome import Outcome


def card(model_id: str, max_len: int | None = 32768) -> dict[str, Any]:
    c: dict[str, Any] = {"id": model_id, "object": "model", "owned_by": "vllm"}
    if max_len is not None:
        c["max_model_len"] = max_len
    return c


def run(handler: Any, ctx: CheckContext | None = None, **overrides: Any) -> Any:
    async def go() -> Any:
        async with answering(handler) as client:
            return await models.check(endpoint(**overrides), client, ctx or CheckContext())

    return asyncio.run(go())


def answer(status: int, body: Any, content_type: str = "application/json") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda request: httpx.Response(status, content=raw,
                                          headers={"content-type": content_type})


CASES = [
    ("ok", answer(200, {"data": [card("Q")]}), {"model": "Q"}, Outcome.OK),
    ("ok-any-model", answer(200, {"data": [card("Q")]}), {}, Outcome.OK),
    ("404-proxy-html", answer(404, b"<html>404 Not Found</html>", "text/html"), {},
     Outcome.HTTP_404),
    ("502-proxy", answer(502, b"<html>502 Bad Gateway</html>", "text/html"), {},
     Outcome.HTTP_502),
    ("503", answer(503, b""), {}, Outcome.HTTP_5XX),
    ("401", answer(401, {"error": "Unauthorized"}), {}, Outcome.UNAUTHORIZED),
    ("400", answer(400, {"error": {"message": "bad"}}), {}, Outcome.HTTP_4XX),
    ("429", answer(429, b""), {}, Outcome.RATE_LIMITED),
    ("garbage", answer(200, b"\x00\xffnot json"), {}, Outcome.BAD_RESPONSE),
    ("wrong-shape", answer(200, {"models": "x"}), {}, Outcome.BAD_RESPONSE),
    ("list-not-object", answer(200, [1, 2]), {}, Outcome.BAD_RESPONSE),
    ("card-without-id", answer(200, {"data": [{"object": "model"}]}), {}, Outcome.BAD_RESPONSE),
    ("no-models", answer(200, {"data": []}), {}, Outcome.MODEL_MISSING),
    ("other-model", answer(200, {"data": [card("L")]}), {"model": "Q"}, Outcome.MODEL_MISSING),
    ("context-small", answer(200, {"data": [card("Q", 8192)]}), {"min_context": 11000},
     Outcome.CONTEXT_TOO_SMALL),
    ("context-enough", answer(200, {"data": [card("Q", 32768)]}), {"min_context": 11000},
     Outcome.OK),
    ("context-unreported", answer(200, {"data": [card("Q", None)]}), {"min_context": 11000},
     Outcome.CONTEXT_TOO_SMALL),
]


@pytest.mark.parametrize(("handler", "overrides", "outcome"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_models_outcomes(handler: Any, overrides: dict[str, Any], outcome: Outcome) -> None:
    assert run(handler, **overrides).outcome is outcome


def test_reads_served_models_and_context_length() -> None:
    verdict = run(answer(200, {"data": [card("Q", 32768), card("Q-lora", None)]}), model="Q")
    assert verdict.details["served_models"] == ["Q", "Q-lora"]
    assert verdict.details["max_model_len"] == 32768
    assert verdict.http_status == 200


def test_context_message_names_both_numbers() -> None:
    verdict = run(answer(200, {"data": [card("Q", 8192)]}), min_context=11000)
    assert "8192" in verdict.message and "11000" in verdict.message


def test_body_over_cap_is_bad_response_not_a_crash() -> None:
    ctx = CheckContext(max_body_bytes=1024)
    with pytest.raises(Exception) as caught:  # the runner maps it; the check raises
        run(answer(200, b"x" * 5000), ctx)
    assert type(caught.value).__name__ == "BodyTooLarge"


def test_drift_records_old_and_new_values() -> None:
    ctx = CheckContext()
    run(answer(200, {"data": [card("Q", 8192)]}), ctx)
    verdict = run(answer(200, {"data": [card("Q2", 32768)]}), ctx)
    assert verdict.details["model_changed"] == {"old": "Q", "new": "Q2"}
    assert verdict.details["max_model_len_changed"] == {"old": 8192, "new": 32768}
    steady = run(answer(200, {"data": [card("Q2", 32768)]}), ctx)
    assert "model_changed" not in steady.details and "max_model_len_changed" not in steady.details


def test_sends_bearer_key_from_the_named_env_var() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={"data": [card("Q")]})

    run(handler, CheckContext(env={"K": "secret-value"}), api_key_env="K")
    assert seen == ["Bearer secret-value"]


def test_model_ids_are_one_string_across_answers_and_pods() -> None:
    """The kept ids of every pod serving a model are one string (interned), equal to the id
    the server sent; drift still compares by value."""
    first, second = CheckContext(), CheckContext()
    name = "".join(["Qwen/", "Qwen2.5-7B-Instruct"])  # built at run time: not a constant
    a = run(answer(200, {"data": [card(name)]}), first)
    b = run(answer(200, {"data": [card(name)]}), second)
    assert a.details["model"] == name and a.details["served_models"] == [name]
    assert a.details["model"] is b.details["model"] is b.details["served_models"][0]
    again = run(answer(200, {"data": [card(name, 8192)]}), first)
    assert again.details["max_model_len_changed"] == {"old": 32768, "new": 8192}
    assert "model_changed" not in again.details
