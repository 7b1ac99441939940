"""The queue check against canned /health answers (unit level: tests/local_server.py), run
through the runner so the control-plane policy (unknown, never down) is part of the test."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from helpers import spec
from local_server import answering
from serverless_helpers import ROOT, health_json, serverless

from probe.attempts import run_check
from probe.check import CheckContext
from probe.outcome import Outcome, ProbeResult
from probe.serverless import queue


class Api:
    """Answers /health from a script and records what was asked."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)


def probe(api: Api, ctx: CheckContext | None = None, **overrides: Any) -> ProbeResult:
    async def go() -> ProbeResult:
        async with answering(api) as client:
            return await run_check("queue", spec("queue", queue.check), serverless(**overrides), client,
                                   ctx or CheckContext(env={"RUNPOD_API_KEY": "rk-test-1234"}))

    return asyncio.run(go())


def test_healthy_queue_is_ok_and_keeps_counters() -> None:
    api = Api(health_json(completed=72, failed=1, in_progress=6, idle=4, ready=4, running=1))
    result = probe(api)
    assert result.outcome is Outcome.OK
    assert result.details["jobs"]["completed"] == 72
    assert result.details["workers"]["running"] == 1
    assert result.details["absent"] == []
    request = api.seen[0]
    assert (request.method, str(request.url)) == ("GET", f"{ROOT}/health")
    assert request.headers["authorization"] == "Bearer rk-test-1234"


def test_seeded_incident_is_crash_looping_at_once() -> None:
    result = probe(Api(health_json(in_queue=7, unhealthy=1)))
    assert result.outcome is Outcome.CRASH_LOOPING
    assert result.details["conditions"][0] == "crash_looping"


def test_deltas_are_stored_between_runs() -> None:
    ctx = CheckContext()
    probe(Api(health_json(completed=5, running=1)), ctx)
    result = probe(Api(health_json(completed=9, failed=1, running=1)), ctx)
    assert result.details["deltas"] == {"completed": 4, "failed": 1, "retried": 0}


CONTROL_PLANE = [
    ("429", httpx.Response(429, json={"error": "slow down"}, headers={"retry-after": "5"}),
     429, "rate_limited"),
    ("500", httpx.Response(500, json={"error": "Internal server error."}), 500, "http_5xx"),
    ("502", httpx.Response(502, text="<html>bad gateway</html>"), 502, "http_502"),
    ("read-timeout", httpx.ReadTimeout("slow"), None, "timeout"),
    ("refused", httpx.ConnectError("refused"), None, "connect_error"),
]


@pytest.mark.parametrize(("answer", "status", "reason"), [c[1:] for c in CONTROL_PLANE],
                         ids=[c[0] for c in CONTROL_PLANE])
def test_control_plane_failures_are_unknown(answer: Any, status: int | None,
                                            reason: str) -> None:
    result = probe(Api(answer))
    assert result.outcome is Outcome.UNKNOWN
    assert result.details["reason"] == reason
    assert result.http_status == status and result.details.get("http_status") == status
    assert "unknown" in result.message


def test_deadline_exceeded_is_unknown_not_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=health_json())

    async def go() -> ProbeResult:
        async with answering(slow) as client:
            return await run_check("queue", spec("queue", queue.check), serverless(timeout_s=0.05), client,
                                   CheckContext())

    result = asyncio.run(go())
    assert (result.outcome, result.details["reason"]) == (Outcome.UNKNOWN, "timeout")


@pytest.mark.parametrize("status", [401, 403], ids=["401", "403"])
def test_a_key_without_permission_is_a_finding(status: int) -> None:
    result = probe(Api(httpx.Response(status, json={"error": "Unauthorized"})))
    assert result.outcome is Outcome.UNAUTHORIZED


@pytest.mark.parametrize(
    "body",
    [b"<html>oops</html>", json.dumps({"jobs": {"inQueue": "x"}, "workers": {}}).encode(),
     json.dumps([1]).encode()],
    ids=["html", "bad-counter", "list"],
)
def test_bad_answers_are_bad_response(body: bytes) -> None:
    assert probe(Api(httpx.Response(200, content=body))).outcome is Outcome.BAD_RESPONSE


def test_retry_after_is_honoured_before_asking_again() -> None:
    ctx = CheckContext()
    api = Api(httpx.Response(429, headers={"retry-after": "30"}), health_json())
    first = probe(api, ctx)
    assert first.details["retry_after_s"] == 30.0
    second = probe(api, ctx)
    assert len(api.seen) == 1  # the second run did not ask
    assert second.outcome is Outcome.UNKNOWN and second.details["skipped"] is True


def test_asks_again_once_retry_after_has_passed() -> None:
    ctx = CheckContext()
    api = Api(httpx.Response(429, headers={"retry-after": "0"}), health_json())
    probe(api, ctx)
    assert probe(api, ctx).outcome is Outcome.OK
    assert len(api.seen) == 2


def test_a_transient_5xx_is_retried_before_becoming_unknown() -> None:
    api = Api(httpx.Response(503), health_json())
    result = probe(api, tries=2)
    assert result.outcome is Outcome.OK and result.attempts == 2


UNCONFIRMED = [
    # the hostile fleet's two cases: "3 queued, every worker count 0" and "2 queued, 0 in
    # progress, 5 failed" with no worker
    ("queued-no-workers", health_json(in_queue=3), "no_workers"),
    ("queued-no-workers-jobs-failed", health_json(in_queue=2, failed=5), "no_workers"),
    ("queue-not-moving-legacy-counters",
     {"jobs": {"inQueue": 2, "inProgress": 0}, "workers": {"idle": 0, "running": 0}},
     "queue_stalled"),
]


@pytest.mark.parametrize(("answer", "condition"), [c[1:] for c in UNCONFIRMED],
                         ids=[c[0] for c in UNCONFIRMED])
def test_a_condition_that_needs_more_readings_is_not_a_pass(answer: Any,
                                                            condition: str) -> None:
    ctx = CheckContext()
    first = probe(Api(answer), ctx)
    assert first.outcome is Outcome.UNKNOWN, first.message
    assert first.details["unconfirmed"] == {"condition": condition, "readings": 1, "needed": 3}
    assert "not judged yet (1 of 3 readings) — not a pass" in first.message
    second = probe(Api(answer), ctx)
    assert second.outcome is Outcome.UNKNOWN and second.details["unconfirmed"]["readings"] == 2
    assert probe(Api(answer), ctx).outcome == condition


def test_a_queue_that_is_served_clears_the_suspicion() -> None:
    ctx = CheckContext()
    assert probe(Api(health_json(in_queue=3)), ctx).outcome is Outcome.UNKNOWN
    served = probe(Api(health_json(in_queue=0, completed=3, running=1, idle=1)), ctx)
    assert served.outcome is Outcome.OK and "unconfirmed" not in served.details


def test_the_queue_history_survives_a_restart() -> None:
    """Readings before a restart count: the third reading confirms, whatever restarted in
    between (the durable memory is what the verdict keeps in the database)."""
    durable: dict[str, Any] = {}
    for _ in range(2):
        assert probe(Api(health_json(in_queue=3)), CheckContext(durable=durable)).outcome \
            is Outcome.UNKNOWN
    kept = json.loads(json.dumps(durable))  # what a restart reads back
    restarted = CheckContext(durable=kept)
    assert probe(Api(health_json(in_queue=3)), restarted).outcome is Outcome.NO_WORKERS


def test_a_404_names_an_unknown_endpoint_id_not_a_pod() -> None:
    result = probe(Api(httpx.Response(404, json={"error": "Endpoint not found."})))
    assert (result.outcome, result.http_status) == (Outcome.HTTP_404, 404)
    assert result.message == ("HTTP 404 (not found: RunPod knows no serverless endpoint with "
                              "this id (wrong or deleted), or the route is wrong): Endpoint "
                              "not found.")
