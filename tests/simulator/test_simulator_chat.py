"""Chat completions on simulated pods and the OpenAI provider: answers, vLLM's validation
errors, SSE framing, and the chat behaviours (slow, cut, reasoning-only, empty, no usage)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from probe.simulator import Simulator
from probe.simulator.chat import ChatError, ChatPlan, count_tokens, parse

QWEN = "Qwen/Qwen2.5-7B-Instruct"


def _ask(question: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}], **extra}


def _events(response: httpx.Response) -> list[Any]:
    """The SSE data payloads, JSON-decoded except the final ``[DONE]``."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events: list[Any] = []
    for block in response.text.split("\n\n"):
        if block:
            assert block.startswith("data: "), block
            data = block.removeprefix("data: ")
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def _content(events: list[Any], key: str = "content") -> str:
    return "".join(
        e["choices"][0]["delta"].get(key) or ""
        for e in events
        if isinstance(e, dict) and e["choices"]
    )


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 2+2?", "4"),
        ("what is 2 + 2", "4"),
        ("Are deployments validated?", "Yes — every deployment is validated."),
        ("What happens on validation failure?", "It fails closed."),
        ("ARE CREDENTIALS HARDCODED?", "No — credentials are discovered dynamically."),
        ("Reply with a JSON object.", '{"status": "ok"}'),
        ("Tell me a story", 'You said: "Tell me a story". This is a simulated answer.'),
    ],
    ids=["arith", "arith-spaced", "validated", "failure", "credentials", "json", "other"],
)
def test_answer_table(sim: Simulator, client: httpx.Client, question: str, answer: str) -> None:
    response = client.post(
        sim.pod_url("qwen-healthy") + "/v1/chat/completions", json=_ask(question)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == QWEN
    assert body["choices"][0]["message"]["content"] == answer
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == count_tokens(question)
    assert usage["completion_tokens"] == count_tokens(answer)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_max_tokens_truncates(sim: Simulator, client: httpx.Client) -> None:
    request = _ask("Are deployments validated?", max_tokens=2)
    body = client.post(sim.pod_url("qwen-healthy") + "/v1/chat/completions", json=request).json()
    assert body["choices"][0]["message"]["content"] == "Yes — ev"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    ("request_body", "status", "error_type", "param", "message"),
    [
        (_ask("x" * 4 * 8193), 400, "BadRequestError", "input_tokens",
         "This model's maximum context length is 8192 tokens. However, your prompt contains "
         "at least 8193 input tokens"),
        (_ask("x" * 11 * 8193), 400, "BadRequestError", "input_text",
         "This model's maximum context length is 8192 tokens. However, your prompt contains "
         "90123 characters"),
        (_ask("hi", max_tokens=9000), 400, "BadRequestError", "max_tokens",
         "max_tokens=9000 cannot be greater than max_model_len=8192."),
        (_ask("hi", max_completion_tokens=9000), 400, "BadRequestError", "max_completion_tokens",
         "max_completion_tokens=9000 cannot be greater than max_model_len=8192."),
        (_ask("hi", model="gpt-4"), 404, "NotFoundError", "model",
         "The model `gpt-4` does not exist."),
        (_ask("hi", model="gpt-4", stream=True), 404, "NotFoundError", "model",
         "The model `gpt-4` does not exist."),
        (_ask("x" * 4 * 8193, stream=True), 400, "BadRequestError", "input_tokens",
         "This model's maximum context length is 8192 tokens."),
        ({"model": QWEN}, 400, "Bad Request", "body.messages", "Field required"),
        (_ask("hi", temperature=-1), 400, "BadRequestError", "temperature",
         "temperature must be non-negative"),
    ],
    ids=["context", "context-chars", "max-tokens", "max-completion-tokens", "unknown-model",
         "unknown-model-stream", "context-stream", "no-messages", "negative-temperature"],
)  # fmt: skip
def test_vllm_errors(
    sim: Simulator, client: httpx.Client, request_body: dict[str, Any], status: int,
    error_type: str, param: str, message: str,
) -> None:  # fmt: skip
    url = sim.pod_url("small-ctx") + "/v1/chat/completions"
    response = client.post(url, json=request_body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"  # never SSE, even if stream
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (error_type, param, status)
    assert error["message"].startswith(message)


def test_malformed_json_is_400(sim: Simulator, client: httpx.Client) -> None:
    url = sim.pod_url("qwen-healthy") + "/v1/chat/completions"
    response = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "Bad Request"


def test_overflow_is_clamped(sim: Simulator, client: httpx.Client) -> None:
    # 8190 prompt tokens + 100 requested > 8192: vLLM 0.32 clamps to the 2 tokens left.
    request = _ask("x" * 4 * 8190, max_tokens=100)
    response = client.post(sim.pod_url("small-ctx") + "/v1/chat/completions", json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["usage"]["completion_tokens"] == 2
    assert body["choices"][0]["finish_reason"] == "length"


def test_model_omitted_uses_the_served_one(sim: Simulator, client: httpx.Client) -> None:
    body = client.post(sim.pod_url("other-model") + "/v1/chat/completions", json=_ask("2+2")).json()
    assert body["model"] == "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
def test_stream_framing(sim: Simulator, client: httpx.Client, include_usage: bool) -> None:
    request = _ask("Are deployments validated?", stream=True,
                   stream_options={"include_usage": include_usage})  # fmt: skip
    response = client.post(sim.pod_url("qwen-healthy") + "/v1/chat/completions", json=request)
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    events = _events(response)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {e["object"] for e in chunks} == {"chat.completion.chunk"}
    assert len({e["id"] for e in chunks}) == 1
    content = [e for e in chunks if e["choices"]]
    assert [e["choices"][0]["finish_reason"] for e in content[1:]] == [None] * 8 + ["stop"]
    assert all(len(e["choices"][0]["delta"]["content"]) <= 4 for e in content)
    assert _content(events) == "Yes — every deployment is validated."
    usage_chunks = [e for e in chunks if not e["choices"]]
    if include_usage:
        assert usage_chunks == [chunks[-1]]
        assert chunks[-1]["usage"] == {"prompt_tokens": 7, "total_tokens": 16,
                                       "completion_tokens": 9}  # fmt: skip
    else:
        assert usage_chunks == []


def _stream(url: str, client: httpx.Client, question: str = "What is 2+2?") -> list[Any]:
    request = _ask(question, stream=True, stream_options={"include_usage": True})
    return _events(client.post(url + "/v1/chat/completions", json=request))


def test_no_usage_ignores_include_usage(pod: Callable[..., str], client: httpx.Client) -> None:
    events = _stream(pod("no_usage"), client)
    assert events[-1] == "[DONE]" and all(e == "[DONE]" or e["choices"] for e in events)


def test_wrong_answer(pod: Callable[..., str], client: httpx.Client) -> None:
    assert _content(_stream(pod("wrong_answer"), client)) == "5"


def test_flaky_answer_is_wrong_two_times_of_three(pod: Callable[..., str],
                                                  client: httpx.Client) -> None:
    url = pod("flaky_answer")
    assert [_content(_stream(url, client)) for _ in range(4)] == ["5", "5", "4", "5"]


def test_empty_answer(pod: Callable[..., str], client: httpx.Client) -> None:
    base = pod("empty_answer")
    events = _stream(base, client)
    assert _content(events) == "" and events[-1] == "[DONE]"
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    body = client.post(base + "/v1/chat/completions", json=_ask("2+2")).json()
    assert body["choices"][0]["message"]["content"] == ""
    assert body["choices"][0]["finish_reason"] == "stop"


def test_reasoning_only(pod: Callable[..., str], client: httpx.Client) -> None:
    base = pod("reasoning_only")
    events = _stream(base, client)
    assert _content(events) == ""
    assert _content(events, "reasoning").startswith("Let me think")
    assert _content(events, "reasoning_content") == _content(events, "reasoning")
    body = client.post(base + "/v1/chat/completions", json=_ask("2+2", max_tokens=16)).json()
    message = body["choices"][0]["message"]
    assert message["content"] is None and message["reasoning"].startswith("Let me think")
    assert body["choices"][0]["finish_reason"] == "length"


def test_cut_stream_ends_without_done(pod: Callable[..., str], client: httpx.Client) -> None:
    request = _ask("Are deployments validated?", stream=True)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):  # noqa: PT012 - reading is the point
        with client.stream("POST", pod("cut_stream") + "/v1/chat/completions", json=request) as r:
            for line in r.iter_lines():
                received.append(line)
    data = [line.removeprefix("data: ") for line in received if line]
    assert len(data) >= 2 and "[DONE]" not in data
    assert all(json.loads(d)["choices"][0]["finish_reason"] is None for d in data)


def test_slow_stream_first_token_waits(pod: Callable[..., str], client: httpx.Client) -> None:
    request = _ask("Are deployments validated?", stream=True)
    start = time.monotonic()
    role_at = first_token_at = None
    url = pod("slow_stream", ttft_delay_s=0.4) + "/v1/chat/completions"
    with client.stream("POST", url, json=request) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"]
            if "role" in delta:
                role_at = time.monotonic() - start
            elif delta.get("content") and first_token_at is None:
                first_token_at = time.monotonic() - start
    assert role_at is not None and role_at < 0.3
    assert first_token_at is not None and first_token_at >= 0.4


def test_openai_provider(sim: Simulator, client: httpx.Client) -> None:
    base = sim.openai_base("fallback")
    card = client.get(base + "/models").json()["data"][0]
    assert card["id"] == "gpt-4o-mini" and "max_model_len" not in card
    body = client.post(base + "/chat/completions", json=_ask("2+2", model="gpt-4o-mini")).json()
    assert body["choices"][0]["message"]["content"] == "4" and "token_ids" not in body["choices"][0]
    events = _stream(base.removesuffix("/v1"), client)
    assert _content(events) == "4" and events[-1] == "[DONE]"
    missing = client.post(base + "/chat/completions", json=_ask("2+2", model="nope"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert client.get(base + "/nowhere").status_code == 404
    assert client.get(sim.base_url + "/openai/unknown/v1/models").status_code == 404


def test_parse_is_deterministic() -> None:
    raw = json.dumps(_ask("What is 2+2?", max_tokens=5)).encode()
    plan = parse(raw, ("m",), 100)
    assert plan == ChatPlan("m", "What is 2+2?", 3, 5, stream=False, include_usage=False)
    prompt_fills_window = parse(json.dumps(_ask("x" * 400)).encode(), ("m",), 100)
    assert isinstance(prompt_fills_window, ChatError)
    assert prompt_fills_window.message.startswith("max_tokens must be at least 1, got 0.")
