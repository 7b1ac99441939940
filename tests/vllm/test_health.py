"""The health check against canned answers (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from helpers import endpoint, spec
from local_server import answering, refusing

from probe.attempts import run_check
from probe.check import CheckContext
from probe.outcome import Outcome, ProbeResult
from probe.vllm import health

HTML = "text/html; charset=utf-8"
PROXY_404 = b"<html><head><title>404 Not Found</title></head><body>404</body></html>"
PROXY_502 = b"<html><body><center><h1>502 Bad Gateway</h1></center></body></html>"


def answer(status: int, body: bytes = b"", content_type: str | None = None) -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return lambda request: httpx.Response(status, content=body, headers=headers)


def run(handler: Any, tries: int = 1) -> ProbeResult:
    async def go() -> ProbeResult:
        async with answering(handler) if handler is not None else refusing() as client:
            return await run_check("health", spec("health", health.check), endpoint(tries=tries), client,
                                   CheckContext())

    return asyncio.run(go())


CASES = [
    ("alive-empty-200", answer(200), Outcome.OK),
    ("alive-json-200", answer(200, b'{"status":"ok"}', "application/json"), Outcome.OK),
    ("dead-503-empty", answer(503), Outcome.ENGINE_DEAD),
    ("dead-500-old-vllm", answer(500, b"Internal Server Error", "text/plain"),
     Outcome.ENGINE_DEAD),
    ("dead-500-json", answer(500, b'{"error":{"message":"EngineDeadError","code":500}}',
                             "application/json"), Outcome.ENGINE_DEAD),
    ("proxy-503-html-is-not-the-engine", answer(503, b"<html>Service Unavailable</html>", HTML),
     Outcome.HTTP_5XX),
    ("proxy-500-html-without-type", answer(500, b"<HTML><body>oops</body></HTML>"),
     Outcome.HTTP_5XX),
    ("stopped-pod-404", answer(404, PROXY_404, HTML), Outcome.HTTP_404),
    ("server-not-listening-502", answer(502, PROXY_502, HTML), Outcome.HTTP_502),
    ("no-health-route", answer(404, b'{"detail":"Not Found"}', "application/json"),
     Outcome.HTTP_404),
    ("unauthorized", answer(401, b'{"error":"Unauthorized"}', "application/json"),
     Outcome.UNAUTHORIZED),
    ("proxy-timeout-524", answer(524, b"<html>timeout</html>", HTML), Outcome.HTTP_5XX),
    # one cap for every body: scheduler.max_body_bytes (default 4 MiB)
    ("huge-body", answer(200, b"x" * (CheckContext().max_body_bytes + 1)), Outcome.BAD_RESPONSE),
]


@pytest.mark.parametrize(("handler", "outcome"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_health_outcomes(handler: Any, outcome: Outcome) -> None:
    result = run(handler)
    assert result.outcome is outcome, result.message


def test_request_goes_to_the_pod_root_health_route() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200)

    assert run(handler).ok
    assert seen == ["http://pod.test/health"]


def test_engine_dead_is_not_retried_and_says_why() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503)

    result = run(handler, tries=3)
    assert result.outcome is Outcome.ENGINE_DEAD and result.http_status == 503
    assert len(calls) == 1, "a dead engine is an observation, not a transient failure"
    assert "503" in result.message and "empty body" in result.message


def test_connection_refused_while_loading_is_connect_error() -> None:
    result = run(None)  # nothing listens on the port yet
    assert result.outcome is Outcome.CONNECT_ERROR
    assert "cannot connect" in result.message and "Errno 111" in result.message
