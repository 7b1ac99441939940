"""The simulated RunPod serverless queue API: /health per behaviour, the job round trip,
cold starts, slow queues, failures, refusals and the worker's OpenAI route."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from probe.simulator import SERVERLESS_BEHAVIOURS, Simulator

PROMPT = {"input": {"prompt": "What is 2+2?"}}
ZERO_WORKERS = {"idle": 0, "initializing": 0, "ready": 0, "running": 0, "throttled": 0,
                "unhealthy": 0}  # fmt: skip


def _workers(**counts: int) -> dict[str, int]:
    return {**ZERO_WORKERS, **counts}


def _health(client: httpx.Client, base: str) -> dict[str, Any]:
    response = client.get(base + "/health")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert list(body) == ["jobs", "workers"]
    assert list(body["jobs"]) == ["completed", "failed", "inProgress", "inQueue", "retried"]
    assert list(body["workers"]) == list(ZERO_WORKERS)
    return body


# behaviour, inQueue on the first read, workers
HEALTH_CASES = [
    ("healthy", 0, _workers(idle=1, ready=1)),
    ("incident", 7, _workers(unhealthy=1)),
    ("scaled_to_zero", 3, _workers()),
    ("throttled", 2, _workers(throttled=1)),
    ("cold_start", 0, _workers()),
    ("jobs_failing", 0, _workers(idle=1, ready=1)),
    ("slow_queue", 0, _workers(running=1)),
    ("initializing_forever", 1, _workers(initializing=1)),
    ("queued_while_idle", 2, _workers(idle=2, ready=2)),
    ("status_failing", 2, _workers(unhealthy=1)),
]
REFUSING = {"rate_limited", "api_error"}
PARTIAL_HEALTH = {"legacy_stalled"}  # /health without every worker counter


def test_every_serverless_behaviour_is_covered() -> None:
    covered = {case[0] for case in HEALTH_CASES} | REFUSING | PARTIAL_HEALTH
    assert covered == set(SERVERLESS_BEHAVIOURS)


@pytest.mark.parametrize(
    ("behaviour", "in_queue", "workers"), HEALTH_CASES, ids=[c[0] for c in HEALTH_CASES]
)
def test_health_per_behaviour(
    endpoint: Callable[..., str], client: httpx.Client, behaviour: str, in_queue: int,
    workers: dict[str, int],
) -> None:  # fmt: skip
    body = _health(client, endpoint(behaviour))
    assert body["jobs"]["inQueue"] == in_queue
    assert body["workers"] == workers


def test_legacy_stalled_answers_like_the_documented_example(
    endpoint: Callable[..., str], client: httpx.Client
) -> None:
    base = endpoint("legacy_stalled")
    bodies = [client.get(base + "/health").json() for _ in range(2)]
    assert bodies[0] == bodies[1]  # the queue never moves
    assert bodies[0]["workers"] == {"idle": 0, "running": 0}
    assert bodies[0]["jobs"]["inQueue"] == 2


def test_queue_grows_while_idle(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("queued_while_idle")
    first, second = (_health(client, base)["jobs"]["inQueue"] for _ in range(2))
    assert second > first


@pytest.mark.parametrize("behaviour", sorted(REFUSING))
def test_refusals(endpoint: Callable[..., str], client: httpx.Client, behaviour: str) -> None:
    base = endpoint(behaviour)
    status = 429 if behaviour == "rate_limited" else 500
    for response in (client.get(base + "/health"), client.post(base + "/run", json=PROMPT),
                     client.get(base + "/openai/v1/models")):  # fmt: skip
        assert response.status_code == status
        assert "error" in response.json()
        if status == 429:
            assert response.headers["retry-after"] == "2"


def test_runsync_completes_and_counts(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("healthy")
    body = client.post(base + "/runsync", json=PROMPT).json()
    assert body["id"].startswith("sync-") and body["status"] == "COMPLETED"
    assert body["output"] == [{"choices": [{"tokens": ["4"]}], "usage": {"input": 3, "output": 1}}]
    assert 40 <= body["delayTime"] <= 60 and 90 <= body["executionTime"] <= 110
    assert _health(client, base)["jobs"]["completed"] == 1


def test_run_status_round_trip(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("healthy")
    queued = client.post(base + "/run", json=PROMPT).json()
    assert queued["status"] == "IN_QUEUE"
    assert client.get(f"{base}/status/{queued['id']}").json()["status"] == "IN_QUEUE"
    time.sleep(0.2)
    done = client.get(f"{base}/status/{queued['id']}").json()
    assert done["status"] == "COMPLETED" and done["output"][0]["choices"][0]["tokens"] == ["4"]
    assert done["workerId"]
    assert client.get(base + "/status/nope").status_code == 404


def test_cancel_and_purge(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("incident")
    job = client.post(base + "/run", json=PROMPT).json()
    assert _health(client, base)["jobs"]["inQueue"] == 8
    cancelled = client.post(f"{base}/cancel/{job['id']}").json()
    assert cancelled == {"id": job["id"], "status": "CANCELLED"}
    assert client.get(f"{base}/status/{job['id']}").json()["status"] == "CANCELLED"
    client.post(base + "/run", json=PROMPT)
    purged = client.post(base + "/purge-queue").json()
    assert purged == {"removed": 8, "status": "completed"}
    assert _health(client, base)["jobs"]["inQueue"] == 0
    assert client.post(base + "/cancel/nope").status_code == 404


def test_incident_jobs_never_complete(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("incident")
    body = client.post(base + "/runsync?wait=200", json=PROMPT).json()
    assert body["status"] == "IN_QUEUE" and "output" not in body
    assert client.get(f"{base}/status/{body['id']}").json()["status"] == "IN_QUEUE"


def test_slow_queue_needs_polling(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("slow_queue", complete_after_s=0.5)
    start = time.monotonic()
    body = client.post(base + "/runsync?wait=200", json=PROMPT).json()
    assert body["status"] in ("IN_QUEUE", "IN_PROGRESS")
    assert 0.2 <= time.monotonic() - start < 0.4
    while (status := client.get(f"{base}/status/{body['id']}").json())["status"] != "COMPLETED":
        assert time.monotonic() - start < 2, status
        time.sleep(0.05)
    assert time.monotonic() - start >= 0.5
    assert status["output"][0]["choices"][0]["tokens"] == ["4"]


def test_jobs_failing(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("jobs_failing")
    for _ in range(2):
        body = client.post(base + "/runsync", json=PROMPT).json()
        assert body["status"] == "FAILED" and "out of memory" in body["error"]
    jobs = _health(client, base)["jobs"]
    assert (jobs["failed"], jobs["retried"], jobs["completed"]) == (2, 2, 0)


def test_cold_start(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("cold_start", cold_start_s=0.4)
    queued = client.post(base + "/run", json=PROMPT).json()
    assert _health(client, base)["workers"] == _workers(initializing=1)
    time.sleep(0.6)
    first = client.get(f"{base}/status/{queued['id']}").json()
    assert first["status"] == "COMPLETED" and first["delayTime"] >= 400
    assert _health(client, base)["workers"] == _workers(idle=1, ready=1)
    warm = client.post(base + "/runsync", json=PROMPT).json()
    assert warm["status"] == "COMPLETED" and warm["delayTime"] < 100


def test_switching_behaviour_replans_queued_jobs(
    sim: Simulator, endpoint: Callable[..., str], client: httpx.Client
) -> None:
    base = endpoint("incident")
    job = client.post(base + "/run", json=PROMPT).json()
    sim.fleet.set_serverless_behaviour(base.rsplit("/", 1)[1], "healthy")
    body = _health(client, base)
    assert body["workers"] == _workers(idle=1, ready=1) and body["jobs"]["inQueue"] == 1
    time.sleep(0.2)
    assert client.get(f"{base}/status/{job['id']}").json()["status"] == "COMPLETED"
    assert _health(client, base)["jobs"]["completed"] == 1


def test_openai_route(endpoint: Callable[..., str], client: httpx.Client) -> None:
    base = endpoint("healthy")
    card = client.get(base + "/openai/v1/models").json()["data"][0]
    assert card["max_model_len"] == 32768
    question = {"messages": [{"role": "user", "content": "2+2"}]}
    answer = client.post(base + "/openai/v1/chat/completions", json=question).json()
    assert answer["choices"][0]["message"]["content"] == "4"
    assert _health(client, base)["jobs"]["completed"] == 2
    with pytest.raises(httpx.ReadTimeout):
        client.get(endpoint("incident") + "/openai/v1/models", timeout=0.5)


def test_unknown_endpoint_and_route(sim: Simulator, client: httpx.Client) -> None:
    missing = client.get(sim.api_base + "/nope/health")
    assert missing.status_code == 404 and "error" in missing.json()
    assert client.get(sim.api_base + "/vllm-healthy/nowhere").status_code == 404
    assert client.post(sim.api_base + "/vllm-healthy/run", json={"x": 1}).status_code == 400


def test_status_failing_accepts_jobs_but_cannot_report_them(endpoint: Callable[..., str],
                                                             client: httpx.Client) -> None:
    base = endpoint("status_failing")
    job = client.post(f"{base}/run", json={"input": {"prompt": "2+2"}}).json()
    assert job["status"] == "IN_QUEUE"
    assert client.get(f"{base}/status/{job['id']}").status_code == 500
    assert client.post(f"{base}/cancel/{job['id']}").json()["status"] == "CANCELLED"
