"""The round-trip check against a scripted queue API (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import spec
from local_server import answering
from serverless_helpers import health_json, serverless

from probe.attempts import run_check
from probe.check import CheckContext
from probe.outcome import Outcome, ProbeResult
from probe.serverless import roundtrip
from probe.serverless.settings import RoundTripSettings

SDK_ERROR = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "boom requested",
                        "error_traceback": "Traceback ...", "hostname": "unknown",
                        "worker_id": "unknown", "runpod_version": "1.12.0"})
Route = Callable[[httpx.Request], httpx.Response]


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "sync-1-u1", "status": status, **extra}


class Api:
    """Routes by (method, path prefix); each route answers from its own script."""

    def __init__(self, routes: dict[tuple[str, str], list[Any]]) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v2/ep1")
        self.seen.append((request.method, path))
        for (method, prefix), script in self.routes.items():
            if request.method == method and path.startswith(prefix):
                answer = script.pop(0) if len(script) > 1 else script[0]
                return answer if isinstance(answer, httpx.Response) else \
                    httpx.Response(200, json=answer)
        return httpx.Response(404, json={"detail": "Not Found"})


def rt(**overrides: Any) -> RoundTripSettings:
    values: dict[str, Any] = dict(interval_s=600.0, wait_s=1.0, deadline_s=0.6,
                                  input={"prompt": "2+2"})
    values.update(overrides)
    return RoundTripSettings(**values)


def probe(api: Any, settings: RoundTripSettings | None = None, ctx: CheckContext | None = None,
          **overrides: Any) -> ProbeResult:
    extra = {"roundtrip": settings or rt()}
    ep = serverless(checks=("roundtrip",), extra=extra, timeout_s=5.0, model="Q", **overrides)

    async def go() -> ProbeResult:
        async with answering(api) as client:
            return await run_check("roundtrip", spec("roundtrip", roundtrip.check), ep, client,
                                   ctx or CheckContext())

    return asyncio.run(go())


WARM = health_json(idle=1, ready=1)
COLD = health_json()


def test_completed_job_records_delay_and_execution_time() -> None:
    api = Api({("GET", "/health"): [WARM], ("POST", "/runsync"): [
        job("COMPLETED", delayTime=824, executionTime=3391, output={"x": 1}, workerId="w1")]})
    result = probe(api)
    assert result.outcome is Outcome.OK
    assert (result.details["delay_s"], result.details["execution_s"]) == (0.824, 3.391)
    assert result.details["start"] == "warm" and result.details["worker_id"] == "w1"
    assert api.seen == [("GET", "/health"), ("POST", "/runsync")]


def test_runsync_sends_the_configured_input_and_wait() -> None:
    bodies: list[Any] = []

    def capture(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runsync"):
            bodies.append((request.url.params["wait"], json.loads(request.content)))
            return httpx.Response(200, json=job("COMPLETED"))
        return httpx.Response(200, json=COLD)

    ep = serverless(checks=("roundtrip",), extra={"roundtrip": rt(wait_s=2.5, input={"a": [1]})})

    async def go() -> ProbeResult:
        async with answering(capture) as client:
            return await run_check("roundtrip", spec("roundtrip", roundtrip.check), ep, client, CheckContext())

    assert asyncio.run(go()).details["start"] == "cold"
    assert bodies == [("2500", {"input": {"a": [1]}})]


@pytest.mark.parametrize(
    ("health", "start"),
    [(COLD, "cold"), (health_json(initializing=1), "cold"), (health_json(throttled=1), "cold"),
     (WARM, "warm"), (health_json(running=1), "warm"),
     (httpx.Response(404, json={"detail": "Not Found"}), "unknown"),
     (httpx.Response(200, text="nope"), "unknown")],
    ids=["no-workers", "initializing", "throttled", "idle", "running", "no-health-route",
         "garbage-health"],
)
def test_start_label(health: Any, start: str) -> None:
    api = Api({("GET", "/health"): [health], ("POST", "/runsync"): [job("COMPLETED")]})
    assert probe(api).details["start"] == start


@pytest.mark.parametrize(
    ("answer", "error"),
    [(job("FAILED", error=SDK_ERROR), "<class 'ValueError'>: boom requested"),
     (job("FAILED", error="Job ID not found"), "Job ID not found"),
     (job("TIMED_OUT"), None), (job("CANCELLED"), None)],
    ids=["sdk-error-json", "plain-error", "timed-out", "cancelled"],
)
def test_failed_jobs_are_job_failed_with_the_error(answer: dict[str, Any],
                                                   error: str | None) -> None:
    result = probe(Api({("GET", "/health"): [WARM], ("POST", "/runsync"): [answer]}))
    assert result.outcome is Outcome.JOB_FAILED
    assert result.details.get("error") == error
    assert answer["status"] in result.message


def test_queued_job_is_polled_until_completed() -> None:
    api = Api({("GET", "/health"): [WARM], ("POST", "/runsync"): [job("IN_QUEUE")],
               ("GET", "/status/sync-1-u1"): [job("IN_QUEUE"), job("IN_PROGRESS", delayTime=5),
                                              job("COMPLETED", delayTime=5, executionTime=7)]})
    result = probe(api, rt(deadline_s=5.0))
    assert result.outcome is Outcome.OK and result.details["polls"] == 3
    assert ("POST", "/cancel/sync-1-u1") not in api.seen


def test_stuck_job_is_cancelled_at_the_deadline() -> None:
    api = Api({("GET", "/health"): [COLD], ("POST", "/runsync"): [job("IN_QUEUE")],
               ("GET", "/status/"): [job("IN_QUEUE")],
               ("POST", "/cancel/"): [job("CANCELLED")]})
    result = probe(api, rt(deadline_s=0.5))
    assert result.outcome is Outcome.JOB_FAILED
    assert result.details["cancelled"] is True and result.details["job_status"] == "IN_QUEUE"
    assert api.seen[-1] == ("POST", "/cancel/sync-1-u1")
    assert "cancelled" in result.message


def test_failed_cancel_is_reported() -> None:
    api = Api({("GET", "/health"): [COLD], ("POST", "/runsync"): [job("IN_PROGRESS")],
               ("GET", "/status/"): [job("IN_PROGRESS")],
               ("POST", "/cancel/"): [httpx.Response(500)]})
    result = probe(api, rt(deadline_s=0.3))
    assert result.details["cancelled"] is False and "cancel failed" in result.message


def test_status_falls_back_to_post_for_runpods_local_worker_api() -> None:
    api = Api({("GET", "/health"): [COLD], ("POST", "/runsync"): [job("IN_PROGRESS")],
               ("GET", "/status/"): [httpx.Response(405, headers={"allow": "POST"})],
               ("POST", "/status/"): [job("COMPLETED")]})
    assert probe(api, rt(deadline_s=5.0)).outcome is Outcome.OK
    assert ("POST", "/status/sync-1-u1") in api.seen


CONTROL_PLANE = [
    ("429", httpx.Response(429, headers={"retry-after": "9"}), "rate_limited"),
    ("500", httpx.Response(500, json={"error": "Internal server error."}), "http_5xx"),
]


@pytest.mark.parametrize(("answer", "reason"), [c[1:] for c in CONTROL_PLANE],
                         ids=[c[0] for c in CONTROL_PLANE])
def test_runsync_refused_by_the_api_is_unknown(answer: httpx.Response, reason: str) -> None:
    result = probe(Api({("GET", "/health"): [WARM], ("POST", "/runsync"): [answer]}))
    assert (result.outcome, result.details["reason"]) == (Outcome.UNKNOWN, reason)


def test_rate_limited_round_trip_waits_before_submitting_again() -> None:
    ctx = CheckContext()
    api = Api({("GET", "/health"): [WARM], ("POST", "/runsync"): [
        httpx.Response(429, headers={"retry-after": "60"}), job("COMPLETED")]})
    probe(api, ctx=ctx)
    second = probe(api, ctx=ctx)
    assert second.outcome is Outcome.UNKNOWN and second.details["skipped"] is True
    assert api.seen.count(("POST", "/runsync")) == 1


@pytest.mark.parametrize(
    "answer",
    [{"id": "x"}, {"id": "x", "status": "DONE"}, job("COMPLETED", delayTime="slow")],
    ids=["no-status", "unknown-status", "bad-delay"],
)
def test_unreadable_job_answer_is_bad_response(answer: dict[str, Any]) -> None:
    result = probe(Api({("GET", "/health"): [WARM], ("POST", "/runsync"): [answer]}))
    assert result.outcome is Outcome.BAD_RESPONSE and result.attempts == 1


def chat(content: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(chat("4"), Outcome.OK), (chat("  "), Outcome.EMPTY_ANSWER),
     (httpx.Response(400, json={"error": {"message": "bad model"}}), Outcome.HTTP_4XX),
     ({"nope": 1}, Outcome.BAD_RESPONSE)],
    ids=["answered", "empty", "400", "wrong-shape"],
)
def test_openai_round_trip(answer: Any, outcome: Outcome) -> None:
    seen: list[Any] = []

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/health"):
            return httpx.Response(200, json=WARM)
        seen.append((request.url.path, json.loads(request.content)["model"]))
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    result = probe(route, rt(input=None, openai=True))
    assert result.outcome is outcome
    assert seen == [("/v2/ep1/openai/v1/chat/completions", "Q")]


def test_openai_round_trip_past_the_deadline_is_job_failed() -> None:
    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/health"):
            return httpx.Response(200, json=COLD)
        await asyncio.sleep(5)
        return httpx.Response(200, json=chat("4"))

    result = probe(route, rt(input=None, openai=True, deadline_s=0.2))
    assert result.outcome is Outcome.JOB_FAILED and result.details["start"] == "cold"


class Raising(Api):
    """An Api whose status route fails at the transport level."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v2/ep1/status/"):
            self.seen.append((request.method, request.url.path.removeprefix("/v2/ep1")))
            raise httpx.ReadError("connection reset by peer", request=request)
        return super().__call__(request)


UNFINISHED = [
    ("poll-5xx", Api, httpx.Response(503, json={"error": "down"}), Outcome.UNKNOWN, "503"),
    ("poll-404", Api, httpx.Response(404, json={"error": "Job ID not found"}), Outcome.HTTP_404,
     "404"),
    ("poll-garbage", Api, httpx.Response(200, text="<html>"), Outcome.BAD_RESPONSE, "JSON"),
    ("poll-reset", Raising, None, Outcome.UNKNOWN, "connection"),
]


@pytest.mark.parametrize(("make", "status_answer", "outcome", "words"),
                         [c[1:] for c in UNFINISHED], ids=[c[0] for c in UNFINISHED])
def test_a_job_left_unfinished_by_a_failed_poll_is_cancelled(
        make: type[Api], status_answer: Any, outcome: Outcome, words: str) -> None:
    routes: dict[tuple[str, str], list[Any]] = {
        ("GET", "/health"): [COLD], ("POST", "/runsync"): [job("IN_QUEUE")],
        ("POST", "/cancel/"): [job("CANCELLED")]}
    if status_answer is not None:
        routes[("GET", "/status/")] = [status_answer]
    api = make(routes)
    result = probe(api, rt(deadline_s=5.0))
    assert ("POST", "/cancel/sync-1-u1") in api.seen, api.seen
    assert result.outcome is outcome, result.message
    assert result.details["cancel"] == "cancelled" and result.details["cancelled"] is True
    assert words in result.message and "job cancelled" in result.message


def test_the_cancels_own_failure_is_recorded() -> None:
    api = Raising({("GET", "/health"): [COLD], ("POST", "/runsync"): [job("IN_QUEUE")],
                   ("POST", "/cancel/"): [httpx.Response(502, text="bad gateway")]})
    result = probe(api, rt(deadline_s=5.0))
    assert result.details["cancel"] == "HTTP 502" and result.details["cancelled"] is False
    assert "cancel failed (HTTP 502)" in result.message


def test_a_stopping_daemon_cancels_the_job_at_once_and_calls_it_unknown() -> None:
    api = Api({("GET", "/health"): [COLD], ("POST", "/runsync"): [job("IN_QUEUE")],
               ("GET", "/status/"): [job("IN_QUEUE")], ("POST", "/cancel/"): [job("CANCELLED")]})
    stopping = asyncio.Event()
    stopping.set()  # the daemon began to stop while /runsync was answering
    result = probe(api, rt(deadline_s=30.0), ctx=CheckContext(stopping=stopping))
    assert result.outcome is Outcome.UNKNOWN  # stopping says nothing about the endpoint
    assert api.seen[-1] == ("POST", "/cancel/sync-1-u1")
    assert result.details["cancelled"] is True and result.latency_s < 5
