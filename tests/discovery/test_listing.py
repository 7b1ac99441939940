"""RunPod REST v2 list shapes and the listing check's verdicts (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from discovery_helpers import api_endpoint
from local_server import answering

from probe.check import CheckContext
from probe.discovery.listing import LISTED_KEY, Listed, make_check, parse_listing
from probe.http import BadBody
from probe.outcome import Observation, Outcome

POD = {"id": "7h9k2m4n6p", "name": "vllm-qwen", "status": "RUNNING",
       "ports": ["8000/http", "22/tcp"], "runtime": {"uptime": 3600}}
ENDPOINT = {"id": "4m7x2k9q", "name": "image-generator", "type": "QUEUE",
            "workers": {"min": 0, "max": 5, "idleTimeout": 5}}


@pytest.mark.parametrize(
    ("kind", "document", "expected"),
    [
        ("pod", {"pods": [POD]},
         (Listed("pod", "7h9k2m4n6p", "vllm-qwen", "RUNNING", None, ("8000/http", "22/tcp")),)),
        ("serverless", {"endpoints": [ENDPOINT]},
         (Listed("serverless", "4m7x2k9q", "image-generator", None, "QUEUE"),)),
        ("pod", {"pods": [{**POD, "gpu": {"id": "NVIDIA A40", "count": 1},
                           "dataCenterId": "EU-RO-1"}]},
         (Listed("pod", "7h9k2m4n6p", "vllm-qwen", "RUNNING", None, ("8000/http", "22/tcp"),
                 "NVIDIA A40", "EU-RO-1"),)),
        ("pod", {"pods": [{**POD, "gpu": "A40", "dataCenterId": "EU\nRO"}]},
         (Listed("pod", "7h9k2m4n6p", "vllm-qwen", "RUNNING", None, ("8000/http", "22/tcp")),)),
        ("serverless", {"endpoints": [{**ENDPOINT, "dataCenterIds": ["EU-RO-1"]},
                                      {**ENDPOINT, "id": "b", "dataCenterIds": ["EU-RO-1",
                                                                              "US-TX-3"]},
                                      {**ENDPOINT, "id": "c", "dataCenterIds": []},
                                      {**ENDPOINT, "id": "d", "dataCenterIds": "EU-RO-1"},
                                      {**ENDPOINT, "id": "e", "dataCenterIds": ["EU\nRO"]}]},
         (Listed("serverless", "4m7x2k9q", "image-generator", None, "QUEUE",
                 data_center="EU-RO-1"),
          *(Listed("serverless", i, "image-generator", None, "QUEUE") for i in "bcde"))),
        ("pod", {"pods": []}, ()),
        ("pod", {"pods": [{"id": "b", "status": "exited"}, {"id": "a", "name": "",
                                                            "ports": "8000/http"}]},
         (Listed("pod", "a", "a"), Listed("pod", "b", "b", "EXITED"))),
    ],
    ids=["pods", "endpoints", "hardware", "hostile-hardware", "serverless-data-centres",
         "empty", "sorted-lenient-fields"],
)
def test_listings_parse(kind: str, document: dict[str, Any], expected: tuple[Listed, ...]) -> None:
    assert parse_listing(kind, document) == expected


@pytest.mark.parametrize(
    ("kind", "document", "message"),
    [
        ("pod", {"endpoints": [ENDPOINT]}, 'expected {"pods": [objects]}'),
        ("serverless", {"endpoints": ["4m7x2k9q"]}, 'expected {"endpoints": [objects]}'),
        ("pod", {"pods": [{"name": "no id"}]}, "a listed pod has no string id"),
        ("serverless", {"endpoints": [{"id": 7}]}, "a listed serverless has no string id"),
    ],
    ids=["wrong-wrapper", "items-not-objects", "no-id", "id-not-string"],
)
def test_bad_shapes_are_bad_bodies(kind: str, document: Any, message: str) -> None:
    with pytest.raises(BadBody, match=message.replace("[", r"\[").replace("{", r"\{")):
        parse_listing(kind, document)


Route = tuple[int, Any, dict[str, str]]


def run(routes: dict[str, Route], kinds: tuple[str, ...] = ("pod", "serverless"),
        memory: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any], list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.path} {request.headers.get('authorization')}")
        status, body, headers = routes[request.url.path]
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    ctx = CheckContext(env={"RUNPOD_API_KEY": "k-123456"}, memory=memory or {})

    async def go() -> Observation:
        async with answering(answer) as client:
            return await make_check(kinds)(api_endpoint(), client, ctx)

    return asyncio.run(go()), ctx.memory, seen


OK_PODS: Route = (200, {"pods": [POD]}, {})
OK_ENDPOINTS: Route = (200, {"endpoints": [ENDPOINT]}, {})
FORBIDDEN: Route = (403, {"title": "Forbidden", "status": 403, "detail": "no permission"}, {})


def test_both_lists_are_asked_with_the_key() -> None:
    verdict, memory, seen = run({"/v2/pods": OK_PODS, "/v2/serverless": OK_ENDPOINTS})
    assert verdict.outcome is Outcome.OK
    assert seen == ["/v2/pods Bearer k-123456", "/v2/serverless Bearer k-123456"]
    assert [i.id for i in memory[LISTED_KEY]["pod"]] == ["7h9k2m4n6p"]
    assert [i.id for i in memory[LISTED_KEY]["serverless"]] == ["4m7x2k9q"]


def test_only_enabled_kinds_are_asked() -> None:
    _, memory, seen = run({"/v2/serverless": OK_ENDPOINTS}, kinds=("serverless",))
    assert [s.split()[0] for s in seen] == ["/v2/serverless"]
    assert set(memory[LISTED_KEY]) == {"serverless"}


@pytest.mark.parametrize(
    ("pods", "endpoints", "message", "listed"),
    [
        (FORBIDDEN, OK_ENDPOINTS,
         "key lacks pod management permissions — GET /pods returns 403; cannot list pods "
         "programmatically", {"serverless"}),
        (OK_PODS, (401, {"title": "Unauthorized"}, {}),
         "key lacks serverless endpoint permissions — GET /serverless returns 401; cannot list "
         "serverless endpoints programmatically", {"pod"}),
        (FORBIDDEN, FORBIDDEN,
         "key lacks pod management and serverless endpoint permissions — GET /pods and "
         "/serverless return 403; cannot list them programmatically",
         set()),
    ],
    ids=["pods-refused", "serverless-refused", "both-refused"],
)
def test_a_key_without_permission_is_unauthorized_and_keeps_what_it_could_list(
        pods: Route, endpoints: Route, message: str, listed: set[str]) -> None:
    verdict, memory, _ = run({"/v2/pods": pods, "/v2/serverless": endpoints})
    assert (verdict.outcome, verdict.message) == (Outcome.UNAUTHORIZED, message)
    assert set(memory[LISTED_KEY]) == listed


def test_the_problem_detail_goes_to_the_details() -> None:
    verdict, _, _ = run({"/v2/pods": FORBIDDEN, "/v2/serverless": OK_ENDPOINTS})
    assert verdict.details == {"refused": {"pod": {"http_status": 403,
                                                   "detail": "Forbidden: no permission"}}}


def test_a_429_backs_off_until_retry_after() -> None:
    limited: Route = (429, {"title": "Too Many Requests"}, {"retry-after": "120"})
    verdict, memory, seen = run({"/v2/pods": limited})
    assert verdict.outcome is Outcome.RATE_LIMITED and verdict.http_status == 429
    assert verdict.details["retry_after_s"] == 120.0
    again, _, seen_again = run({"/v2/pods": OK_PODS}, memory=memory)
    assert again.outcome is Outcome.RATE_LIMITED and again.details["skipped"] is True
    assert seen_again == [], "nothing is asked while backing off"


@pytest.mark.parametrize(
    ("route", "outcome", "message"),
    [
        ((500, {"title": "Internal Server Error", "detail": "try later"}, {}), Outcome.HTTP_5XX,
         "GET /pods: HTTP 500: Internal Server Error: try later"),
        ((502, b"<html>bad gateway</html>", {}), Outcome.HTTP_502,
         "GET /pods: HTTP 502: HTML page"),
        ((404, {"title": "Not Found"}, {}), Outcome.HTTP_4XX, "GET /pods: HTTP 404: Not Found"),
        ((503, b"", {}), Outcome.HTTP_5XX, "GET /pods: HTTP 503: empty body"),
        ((200, b"not json", {}), Outcome.BAD_RESPONSE, "GET /pods: body is not JSON ('not json')"),
        ((200, [POD], {}), Outcome.BAD_RESPONSE, "GET /pods: expected a JSON object, got list"),
    ],
    ids=["500-problem", "502-html", "404", "503-empty", "not-json", "v1-bare-list"],
)
def test_api_failures_are_verdicts(route: Route, outcome: Outcome, message: str) -> None:
    verdict, memory, _ = run({"/v2/pods": route})
    assert (verdict.outcome, verdict.message) == (outcome, message)
    assert memory[LISTED_KEY] == {}
