"""The simulator's pods, HTTP plumbing, hostile behaviours, auth and lifecycle, over real
sockets with httpx."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from probe.simulator import POD_BEHAVIOURS, Fleet, PodSpec, Simulator

QWEN = "Qwen/Qwen2.5-7B-Instruct"
CHAT = {"messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 8}


def _models(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["object"] == "list"
    card: dict[str, Any] = body["data"][0]
    assert card["owned_by"] == "vllm" and card["root"] == card["id"]
    assert card["permission"][0]["object"] == "model_permission"
    return card


def _is_html(response: httpx.Response) -> bool:
    return response.headers["content-type"].startswith("text/html") and "<html>" in response.text


# behaviour, status of GET /v1/models, check of the response
MODELS_CASES: list[tuple[str, int, Callable[[httpx.Response], bool]]] = [
    ("healthy", 200, lambda r: _models(r)["max_model_len"] == 32768),
    ("small_context", 200, lambda r: _models(r)["max_model_len"] == 8192),
    ("wrong_model", 200, lambda r: _models(r)["id"] == "meta-llama/Llama-3.1-8B-Instruct"),
    ("stopped", 404, _is_html),
    ("server_down", 502, lambda r: _is_html(r) and "502 Bad Gateway" in r.text),
    ("starting", 502, _is_html),
    ("garbage", 200, lambda r: r.headers["content-type"] == "application/json"),
    ("wrong_shape", 200, lambda r: r.json() == {"models": "x"}),
    ("slow", 200, lambda r: _models(r)["id"] == QWEN),
    ("engine_dead", 200, lambda r: _models(r)["id"] == QWEN),
    ("engine_stuck", 200, lambda r: _models(r)["id"] == QWEN),
    ("wrong_answer", 200, lambda r: _models(r)["id"] == QWEN),
    ("slow_stream", 200, lambda r: _models(r)["id"] == QWEN),
    ("cut_stream", 200, lambda r: _models(r)["id"] == QWEN),
    ("reasoning_only", 200, lambda r: _models(r)["id"] == QWEN),
    ("empty_answer", 200, lambda r: _models(r)["id"] == QWEN),
    ("no_usage", 200, lambda r: _models(r)["id"] == QWEN),
    ("echo_auth", 400, lambda r: r.json()["error"]["message"].startswith("bad request from")),
    ("echo_auth_model", 200, lambda r: _models(r)["id"] == "anonymous"),  # nothing was sent
    ("echo_auth_cut", 400, lambda r: r.text == "-" * 120 + " was the key you sent"),
    ("static_metrics", 200, lambda r: _models(r)["id"] == QWEN),
    ("answers_before_body", 200, lambda r: _models(r)["id"] == QWEN),
    ("flaky", 502, _is_html),  # its first request of a path
    ("flaky_answer", 200, lambda r: _models(r)["id"] == QWEN),
]
# Behaviours that never give a complete answer; tested one by one below.
HOSTILE = {"huge_body", "endless_body", "stall", "reset"}


def test_every_pod_behaviour_is_covered() -> None:
    assert {case[0] for case in MODELS_CASES} | HOSTILE == set(POD_BEHAVIOURS)


@pytest.mark.parametrize(
    ("behaviour", "status", "check"), MODELS_CASES, ids=[case[0] for case in MODELS_CASES]
)
def test_models_route_per_behaviour(
    pod: Callable[..., str], client: httpx.Client, behaviour: str, status: int, check: Any
) -> None:
    response = client.get(pod(behaviour) + "/v1/models")
    assert response.status_code == status
    assert check(response)


def test_flaky_fails_two_requests_of_every_three_per_path(
        pod: Callable[..., str], client: httpx.Client) -> None:
    url = pod("flaky")
    assert [client.get(url + "/health").status_code for _ in range(3)] == [502, 502, 200]
    assert [client.get(url + "/v1/models").status_code for _ in range(4)] == [502, 502, 200, 502]


def test_garbage_body_is_not_json(pod: Callable[..., str], client: httpx.Client) -> None:
    with pytest.raises(ValueError):
        client.get(pod("garbage") + "/v1/models").json()


def test_slow_pod_answers_after_its_delay(pod: Callable[..., str], client: httpx.Client) -> None:
    start = time.monotonic()
    assert client.get(pod("slow", delay_s=0.4) + "/health").status_code == 200
    assert time.monotonic() - start >= 0.4


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/health", 200, ""),
        ("/version", 200, '{"version":"0.32.0"}'),
        ("/nope", 404, '{"detail":"Not Found"}'),
        ("/v1/completions", 404, '{"detail":"Not Found"}'),
    ],
    ids=["health", "version", "unknown-path", "unknown-v1-path"],
)
def test_vllm_routes(
    pod: Callable[..., str], client: httpx.Client, path: str, status: int, body: str
) -> None:
    response = client.get(pod() + path)
    assert (response.status_code, response.text) == (status, body)


def test_chat_route_wants_post(pod: Callable[..., str], client: httpx.Client) -> None:
    assert client.get(pod() + "/v1/chat/completions").status_code == 405


def test_engine_dead(pod: Callable[..., str], client: httpx.Client) -> None:
    base = pod("engine_dead")
    health = client.get(base + "/health")
    assert (health.status_code, health.text) == (503, "")
    chat = client.post(base + "/v1/chat/completions", json=CHAT)
    assert chat.status_code == 500
    assert chat.json()["error"]["type"] == "InternalServerError"
    assert chat.json()["error"]["message"].startswith("EngineCore encountered an issue.")


def test_engine_stuck(pod: Callable[..., str], client: httpx.Client) -> None:
    base = pod("engine_stuck")
    assert client.get(base + "/health").status_code == 200
    assert 'vllm:num_requests_waiting{engine="0",model_name="' in client.get(base + "/metrics").text
    assert "} 5.0" in client.get(base + "/metrics").text
    with pytest.raises(httpx.ReadTimeout):
        client.post(base + "/v1/chat/completions", json=CHAT, timeout=0.5)


def _sample(metrics: str, name: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_grow_with_chat(pod: Callable[..., str], client: httpx.Client) -> None:
    base = pod()
    before = client.get(base + "/metrics")
    assert before.headers["content-type"].startswith("text/plain; version=")
    assert _sample(before.text, "vllm:generation_tokens_total") == 0
    client.post(base + "/v1/chat/completions", json=CHAT)
    after = client.get(base + "/metrics").text
    assert _sample(after, "vllm:prompt_tokens_total") == 3  # "What is 2+2?" is 12 chars
    assert _sample(after, "vllm:generation_tokens_total") == 1
    assert _sample(after, "vllm:time_to_first_token_seconds_count") == 1
    for name in ("vllm:num_requests_running", "vllm:kv_cache_usage_perc"):
        assert _sample(after, name) == 0


@pytest.mark.parametrize(
    "url",
    ["/proxy/no-such-pod-8000/v1/models", "/proxy/qwen-healthy-8888/v1/models"],
    ids=["unknown-pod", "unexposed-port"],
)
def test_proxy_404(sim: Simulator, client: httpx.Client, url: str) -> None:
    response = client.get(sim.base_url + url)
    assert response.status_code == 404 and _is_html(response)


def test_reset_is_a_transport_error(pod: Callable[..., str], client: httpx.Client) -> None:
    with pytest.raises(httpx.TransportError) as caught:
        client.get(pod("reset") + "/v1/models")
    assert not isinstance(caught.value, httpx.TimeoutException)


def test_stall_times_out(pod: Callable[..., str], client: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.get(pod("stall") + "/v1/models", timeout=0.5)


def test_endless_body_never_ends(pod: Callable[..., str], client: httpx.Client) -> None:
    # A chunk every 50 ms resets httpx's read timeout: only a total deadline stops it.
    chunks, deadline = 0, time.monotonic() + 0.5
    with client.stream("GET", pod("endless_body") + "/v1/models", timeout=0.5) as response:
        assert response.status_code == 200
        for _ in response.iter_raw():
            chunks += 1
            if time.monotonic() > deadline:
                break
        else:
            pytest.fail("the endless body ended")
    assert chunks >= 5


def test_huge_body_is_over_50_mb(pod: Callable[..., str], client: httpx.Client) -> None:
    received, cap = 0, 50 * 1024 * 1024
    with client.stream("GET", pod("huge_body") + "/v1/models") as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received += len(chunk)
            if received > cap:
                break
    assert received > cap


def test_survives_hostile_clients(pod: Callable[..., str], sim: Simulator) -> None:
    healthy = sim.pod_url("qwen-healthy") + "/v1/models"
    with httpx.Client(timeout=0.3) as client:
        for behaviour in ("reset", "stall", "endless_body", "huge_body"):
            # Read at most one chunk, then walk away mid-response.
            with (
                contextlib.suppress(httpx.HTTPError),
                client.stream("GET", pod(behaviour) + "/v1/models") as response,
            ):
                next(response.iter_raw())
            assert client.get(healthy).status_code == 200
    # Half a request, then hang up.
    with socket.create_connection(("127.0.0.1", sim.port)) as raw:
        raw.sendall(b"GET /proxy/qwen-healthy-8000/health HTTP/1.1\r\nHost: x\r\n")
    assert httpx.get(healthy).status_code == 200


def test_behaviour_switches_at_runtime(sim: Simulator, client: httpx.Client) -> None:
    sim.fleet.add_pod("switching", PodSpec())
    url = sim.pod_url("switching") + "/v1/models"
    statuses = []
    for behaviour in ("healthy", "stopped", "healthy", "server_down", "healthy"):
        sim.fleet.set_pod_behaviour("switching", behaviour)
        statuses.append(client.get(url).status_code)
    assert statuses == [200, 404, 200, 502, 200]


def test_keep_alive_and_chunked_request_body(sim: Simulator) -> None:
    body = b'{"messages":[{"role":"user","content":"What is 2+2?"}]}'
    request = (
        b"POST /proxy/qwen-healthy-8000/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
        + b"GET /proxy/qwen-healthy-8000/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as raw:
        raw.sendall(request)
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert b'"content":"4"' in received


def test_auth(client: httpx.Client) -> None:
    fleet = Fleet.default()
    fleet.add_pod("locked", PodSpec(api_key="pod-own-key"))
    with Simulator(fleet, api_key="sekrit-key") as sim:
        # RunPod's proxy asks for no key: a pod needs only its own vLLM --api-key, if any
        assert client.get(sim.pod_url("qwen-healthy") + "/v1/models").status_code == 200
        pod = sim.pod_url("locked")
        models = client.get(pod + "/v1/models")
        assert (models.status_code, models.json()) == (401, {"error": "Unauthorized"})
        assert client.get(pod + "/health").status_code == 200
        assert client.get(pod + "/metrics").status_code == 200
        good = {"Authorization": "Bearer sekrit-key"}
        assert client.get(pod + "/v1/models", headers=good).status_code == 401, "account key"
        own = {"Authorization": "Bearer pod-own-key"}
        assert client.get(pod + "/v1/models", headers=own).status_code == 200
        serverless = client.get(sim.api_base + "/vllm-healthy/health")
        assert serverless.status_code == 401 and "error" in serverless.json()
        assert client.get(sim.api_base + "/vllm-healthy/health", headers=good).status_code == 200
        assert client.get(sim.openai_base("fallback") + "/models").status_code == 401
        assert all("authorization" not in seen.headers for seen in sim.requests_seen)
        assert "sekrit" not in repr(sim) and "sekrit" not in str(sim.requests_seen)


def test_requests_seen(sim: Simulator, client: httpx.Client) -> None:
    import hashlib

    client.get(sim.pod_url("qwen-healthy") + "/health?probe=1",
               headers={"X-Probe": "yes", "Authorization": "Bearer pod-key"})
    method, path, headers, sent = sim.requests_seen[-1]
    assert (method, path, headers["x-probe"]) == (
        "GET",
        "/proxy/qwen-healthy-8000/health?probe=1",
        "yes",
    )
    assert "authorization" not in headers
    assert sent == hashlib.sha256(b"Bearer pod-key").hexdigest(), "which key, never the key"
    assert sim.request_count >= len(sim.requests_seen)


def test_stop_ends_stalled_connections_and_frees_the_port() -> None:
    fleet = Fleet()
    fleet.add_pod("stuck", PodSpec("stall"))
    sim = Simulator(fleet).start()
    port = sim.port
    raw = socket.create_connection(("127.0.0.1", port), timeout=2)
    raw.sendall(b"GET /proxy/stuck-8000/health HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.05)
    start = time.monotonic()
    sim.stop()
    assert time.monotonic() - start < 1.0
    assert raw.recv(1) == b""  # the server closed it
    raw.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5)


def test_fleet_validation() -> None:
    fleet = Fleet()
    with pytest.raises(ValueError, match="unknown behaviour"):
        fleet.add_pod("x", PodSpec("exploded"))
    with pytest.raises(ValueError, match="id"):
        fleet.add_pod("a/b", PodSpec())
    fleet.add_pod("x", PodSpec())
    with pytest.raises(ValueError, match="already exists"):
        fleet.add_pod("x", PodSpec())
    with pytest.raises(ValueError, match="unknown behaviour"):
        fleet.set_pod_behaviour("x", "exploded")
    with pytest.raises(ValueError, match="bench:N"):
        Fleet.named("bench:zero")
    assert list(Fleet.named("bench:3").pods) == ["bench-0000", "bench-0001", "bench-0002"]


def test_default_fleet() -> None:
    fleet = Fleet.default()
    assert fleet.pods["small-ctx"].max_model_len == 8192
    assert fleet.pods["slow-pod"].delay_s == 30.0
    assert {ep: spec.behaviour for ep, spec in fleet.serverless.items()} == {
        "vllm-healthy": "healthy",
        "vllm-incident": "incident",
        "vllm-cold": "cold_start",
    }
    assert list(fleet.openai) == ["fallback"]


def test_standalone_serves_until_sigterm() -> None:
    env = {**os.environ, "SIM_TEST_KEY": "k3y"}
    command = [
        sys.executable,
        "-m",
        "probe.simulator",
        "--port",
        "0",
        "--fleet",
        "bench:2",
        "--api-key-env",
        "SIM_TEST_KEY",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        lines = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(3))
        assert lines["proxy_template"].endswith("/proxy/{pod_id}-{port}")
        assert lines["api_base"] == lines["base_url"] + "/v2"
        url = lines["proxy_template"].format(pod_id="bench-0001", port=8000) + "/v1/models"
        assert httpx.get(url, headers={"Authorization": "Bearer k3y"}).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0
        assert "k3y" not in process.stdout.read()


def test_echo_auth_model_names_its_model_after_the_callers_key(pod: Callable[..., str],
                                                              client: httpx.Client) -> None:
    response = client.get(pod("echo_auth_model") + "/v1/models",
                          headers={"Authorization": "Bearer sim-secret-0000"})
    assert _models(response)["id"] == "Bearer sim-secret-0000"


@pytest.mark.parametrize("cut", [0, 1, 8, 15, 16, 40])
def test_echo_auth_cut_places_the_key_across_the_120th_byte(pod: Callable[..., str],
                                                           client: httpx.Client,
                                                           cut: int) -> None:
    key = "sim-secret-0000-abcd"
    response = client.get(pod("echo_auth_cut", cut_at=cut) + "/v1/models",
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    kept = min(cut, len(key))
    assert response.content[:120].endswith(b"-" + key[:kept].encode())
    assert response.content[120:].startswith(key[kept:].encode() + b" was the key")
