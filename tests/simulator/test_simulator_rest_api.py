"""The simulator's RunPod REST API v2 (control plane), over real sockets with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator

KEY = "rest-key-0a1b2c3d"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    fleet = Fleet()
    fleet.add_pod("p-run", PodSpec(name="vllm qwen"))
    fleet.add_pod("p-stop", PodSpec("stopped", gpu_type="NVIDIA A40", data_center="US-TX-3"))
    fleet.add_pod("p-jup", PodSpec("server_down", port=8888))
    fleet.add_serverless("e-queue", ServerlessSpec(name="queue -fb"))
    fleet.add_serverless("e-lb", ServerlessSpec(type="LOAD_BALANCER"))
    with Simulator(fleet, api_key=KEY) as simulator:
        yield simulator


def get(sim: Simulator, route: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{sim.rest_api_base}/{route}", headers={**AUTH, **headers})


def test_pods_are_listed_from_the_fleet(sim: Simulator) -> None:
    response = get(sim, "pods")
    assert response.status_code == 200 and response.headers["content-type"] == \
        "application/json"
    pods = {p["id"]: p for p in response.json()["pods"]}
    assert sorted(pods) == ["p-jup", "p-run", "p-stop"]
    assert (pods["p-run"]["name"], pods["p-run"]["status"]) == ("vllm qwen", "RUNNING")
    assert pods["p-run"]["ports"] == ["8000/http", "22/tcp"]
    assert pods["p-run"]["runtime"]["uptime"] > 0
    assert (pods["p-stop"]["name"], pods["p-stop"]["status"]) == ("p-stop", "EXITED")
    assert pods["p-stop"]["runtime"] is None and pods["p-stop"]["cost"] == 0.0
    assert pods["p-jup"]["status"] == "RUNNING", "a crashed server: the container still runs"
    assert pods["p-jup"]["ports"] == ["8888/http", "22/tcp"]


def test_pods_say_their_gpu_type_and_data_centre_as_the_v2_reference_does(
        sim: Simulator) -> None:
    """RunPod's v2 pod object: ``gpu`` = ``{id, count}`` and ``dataCenterId`` (what the group
    patterns group by); the fleet's default is one A4500 in EU-RO-1."""
    pods = {p["id"]: p for p in get(sim, "pods").json()["pods"]}
    assert (pods["p-run"]["gpu"], pods["p-run"]["dataCenterId"]) == \
        ({"id": "NVIDIA RTX A4500", "count": 1}, "EU-RO-1")
    assert (pods["p-stop"]["gpu"], pods["p-stop"]["dataCenterId"]) == \
        ({"id": "NVIDIA A40", "count": 1}, "US-TX-3")


def test_serverless_endpoints_are_listed_from_the_fleet(sim: Simulator) -> None:
    endpoints = {e["id"]: e for e in get(sim, "serverless").json()["endpoints"]}
    assert sorted(endpoints) == ["e-lb", "e-queue"]
    assert (endpoints["e-queue"]["name"], endpoints["e-queue"]["type"]) == ("queue -fb", "QUEUE")
    assert endpoints["e-lb"]["type"] == "LOAD_BALANCER"
    # v2's dataCenterIds: where its workers may run (the simulator's default: two)
    assert endpoints["e-queue"]["dataCenterIds"] == ["EU-RO-1", "US-TX-3"]
    health = endpoints["e-queue"]["requestUrls"]["health"]
    assert health == f"{sim.api_base}/e-queue/health"
    assert httpx.get(health, headers=AUTH).status_code == 200, "the URL it lists works"


def test_runtime_changes_show_at_once(sim: Simulator) -> None:
    sim.fleet.add_pod("p-new")
    sim.fleet.remove_pod("p-run")
    sim.fleet.set_pod_behaviour("p-stop", "healthy")
    pods = {p["id"]: p["status"] for p in get(sim, "pods").json()["pods"]}
    assert pods == {"p-jup": "RUNNING", "p-new": "RUNNING", "p-stop": "RUNNING"}


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    ("mode", "status", "retry_after"),
    [("restricted", 403, None), ("rate_limited", 429, "2"), ("api_error", 500, None)],
    ids=["restricted", "rate-limited", "api-error"],
)
def test_modes_answer_problem_json_on_every_list(sim: Simulator, mode: str, status: int,
                                                 retry_after: str | None) -> None:
    sim.fleet.set_api_mode(mode)
    for route in ("pods", "serverless"):
        response = get(sim, route)
        assert response.status_code == status
        assert response.headers.get("retry-after") == retry_after
        problem(response)
    sim.fleet.set_api_mode("ok")
    assert get(sim, "pods").status_code == 200


def test_a_wrong_or_missing_key_is_401(sim: Simulator) -> None:
    assert problem(get(sim, "pods", Authorization="Bearer wrong"))["status"] == 401
    assert problem(httpx.get(f"{sim.rest_api_base}/pods"))["status"] == 401


@pytest.mark.parametrize(("method", "route", "status"),
                         [("GET", "pods/p-run/logs", 404), ("POST", "pods", 405),
                          ("GET", "graphql", 404)],
                         ids=["unknown-route", "wrong-method", "not-rest"])
def test_other_routes_are_refused(sim: Simulator, method: str, route: str, status: int) -> None:
    response = httpx.request(method, f"{sim.rest_api_base}/{route}", headers=AUTH)
    assert response.status_code == status
    problem(response)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown API mode 'sometimes'"):
        Fleet().set_api_mode("sometimes")
