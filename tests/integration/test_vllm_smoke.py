"""Facts about a real vLLM 0.32 OpenAI server that the daemon's checks depend on."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from vllm_harness import StartVllmServer, VllmServer

TIMEOUT_S = 30.0


@pytest.fixture
def client(vllm_server: VllmServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=vllm_server.base_url, timeout=TIMEOUT_S) as c:
        yield c


def _chat_body(model: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 4,
        "temperature": 0,
        **extra,
    }


def _sse_events(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_models_lists_served_name_and_max_model_len(
    client: httpx.Client, vllm_server: VllmServer
) -> None:
    resp = client.get("/v1/models")
    assert resp.status_code == 200
    cards = {card["id"]: card for card in resp.json()["data"]}
    assert list(cards) == [vllm_server.served_model]
    assert cards["tiny-llama"]["max_model_len"] == vllm_server.max_model_len == 256
    assert cards["tiny-llama"]["owned_by"] == "vllm"


def test_health_is_200_with_empty_body(client: httpx.Client) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.content == b""


def test_streaming_chat_with_usage(client: httpx.Client, vllm_server: VllmServer) -> None:
    body = _chat_body(
        vllm_server.served_model, "Hello", stream=True, stream_options={"include_usage": True}
    )
    with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(resp.read().decode())

    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1

    first = chunks[0]["choices"][0]
    assert first["delta"]["role"] == "assistant"
    assert not first["delta"].get("content")
    assert first["finish_reason"] is None

    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["prompt_tokens"] > 0
    assert 1 <= usage["completion_tokens"] <= 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert chunks[-2]["choices"][0]["finish_reason"] in ("length", "stop")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_over_long_prompt_is_400_maximum_context_length(
    client: httpx.Client, vllm_server: VllmServer, stream: bool
) -> None:
    # ~400 tokens, but under the character pre-check (about 11 characters per allowed token).
    prompt = "hello " * 400
    tokens = client.post("/tokenize", json={"model": "tiny-llama", "prompt": prompt}).json()
    assert tokens["count"] > vllm_server.max_model_len

    resp = client.post(
        "/v1/chat/completions", json=_chat_body(vllm_server.served_model, prompt, stream=stream)
    )
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/json")  # not SSE, even if stream
    error = resp.json()["error"]
    assert error["code"] == 400
    assert error["type"] == "BadRequestError"
    assert "maximum context length" in error["message"]


def test_unknown_model_is_404(client: httpx.Client) -> None:
    resp = client.post("/v1/chat/completions", json=_chat_body("no-such-model", "Hello"))
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert error["type"] == "NotFoundError"
    assert "no-such-model" in error["message"]


def test_metrics_expose_vllm_gauges_and_counters(client: httpx.Client) -> None:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    sample_names = {
        line.split("{", 1)[0].split(" ", 1)[0]
        for line in resp.text.splitlines()
        if line and not line.startswith("#")
    }
    for name in (
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:generation_tokens_total",
        "vllm:prompt_tokens_total",
    ):
        assert name in sample_names, name
    assert 'model_name="tiny-llama"' in resp.text


def _wait_for(what: str, predicate: Callable[[], bool], timeout_s: float) -> float:
    """Poll ``predicate()`` until true; return the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s", pytrace=False)
        time.sleep(0.25)
    return time.monotonic() - start


@pytest.mark.vllm_throwaway(keep_alive_on_engine_death=True)
def test_engine_death_with_keep_alive_gives_503(start_vllm_server: StartVllmServer) -> None:
    server = start_vllm_server(keep_alive_on_engine_death=True)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT_S) as c:
        assert c.get("/health").status_code == 200
        server.kill_engine_core()

        _wait_for("/health answers 503", lambda: c.get("/health").status_code == 503, 30)
        assert c.get("/health").content == b""
        models = c.get("/v1/models")
        assert models.status_code == 200  # static data: not a liveness signal
        assert models.json()["data"][0]["id"] == "tiny-llama"
        chat = c.post("/v1/chat/completions", json=_chat_body("tiny-llama", "Hello"))
        assert chat.status_code == 500
        assert chat.json()["error"]["type"] == "InternalServerError"
    assert server.is_running()


@pytest.mark.vllm_throwaway(keep_alive_on_engine_death=False)
def test_engine_death_without_keep_alive_refuses_connections(
    start_vllm_server: StartVllmServer,
) -> None:
    server = start_vllm_server(keep_alive_on_engine_death=False)
    with httpx.Client(base_url=server.base_url, timeout=5.0) as c:
        assert c.get("/health").status_code == 200
        server.kill_engine_core()

        def refused() -> bool:
            try:
                c.get("/health")
            except httpx.ConnectError:
                return True
            except httpx.TransportError:
                return False  # e.g. a reset while the server shuts down
            return False

        _wait_for("connections are refused", refused, 30)
