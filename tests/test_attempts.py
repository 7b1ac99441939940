"""The one place exceptions become outcomes, and the retry rules."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import ssl
from typing import Any

import httpx
import pytest
from helpers import endpoint, spec
from local_server import answering

from probe.attempts import observation_from_exception, run_check
from probe.check import CheckContext
from probe.http import BadBody
from probe.net import BodyTooLarge
from probe.outcome import Observation, Outcome


def _tls_connect_error() -> httpx.ConnectError:
    error = httpx.ConnectError("handshake failed")
    error.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    return error


def _exhausted(code: int) -> httpx.ConnectError:
    error = httpx.ConnectError(f"cannot connect: [Errno {code}]")
    error.__cause__ = OSError(code, os.strerror(code))
    return error


MAPPING = [
    ("asyncio-timeout", TimeoutError(), Outcome.TIMEOUT),
    ("httpx-read-timeout", httpx.ReadTimeout("slow"), Outcome.TIMEOUT),
    ("httpx-connect-timeout", httpx.ConnectTimeout("slow"), Outcome.TIMEOUT),
    ("tls", _tls_connect_error(), Outcome.TLS_ERROR),
    ("refused", httpx.ConnectError("[Errno 111] Connection refused"), Outcome.CONNECT_ERROR),
    ("reset", httpx.ReadError("Connection reset by peer"), Outcome.CONNECT_ERROR),
    ("protocol", httpx.RemoteProtocolError("peer closed"), Outcome.CONNECT_ERROR),
    ("too-large", BodyTooLarge(10), Outcome.BAD_RESPONSE),
    ("bad-body", BadBody("not json"), Outcome.BAD_RESPONSE),
    ("our-bug", KeyError("oops"), Outcome.ERROR),
    ("own-files", _exhausted(errno.EMFILE), Outcome.UNKNOWN),
    ("own-memory", _exhausted(errno.ENOBUFS), Outcome.UNKNOWN),
]


@pytest.mark.parametrize(("exc", "outcome"), [m[1:] for m in MAPPING], ids=[m[0] for m in MAPPING])
def test_exception_to_outcome(exc: BaseException, outcome: Outcome) -> None:
    assert observation_from_exception(exc, 2.0).outcome is outcome


def _scripted(*verdicts: Observation | BaseException) -> Any:
    queue = list(verdicts)

    async def check(endpoint: Any, client: Any, ctx: Any) -> Observation:
        item = queue.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    return check


def _run(check: Any, **overrides: Any) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            return await run_check("models", spec("models", check), endpoint(**overrides), client, CheckContext())

    return asyncio.run(go())


def test_transient_failure_then_pass_is_a_visible_retry() -> None:
    result = _run(_scripted(httpx.ConnectError("refused"), Observation(Outcome.OK)), tries=3)
    assert result.outcome is Outcome.OK and result.attempts == 2 and result.retried


def test_clean_pass_is_not_retried() -> None:
    result = _run(_scripted(Observation(Outcome.OK)), tries=3)
    assert result.attempts == 1 and not result.retried


def test_deterministic_failures_are_not_retried() -> None:
    result = _run(_scripted(Observation(Outcome.HTTP_404), Observation(Outcome.OK)), tries=3)
    assert result.outcome is Outcome.HTTP_404 and result.attempts == 1


def test_tries_bound_the_attempts() -> None:
    result = _run(_scripted(*[Observation(Outcome.HTTP_502)] * 3), tries=3)
    assert result.outcome is Outcome.HTTP_502 and result.attempts == 3


def test_deadline_covers_a_check_that_never_returns() -> None:
    async def hang(endpoint: Any, client: Any, ctx: Any) -> Observation:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    result = _run(hang, timeout_s=0.2)
    assert result.outcome is Outcome.TIMEOUT
    assert 0.15 < result.latency_s < 5


@pytest.mark.parametrize("stop_during", ["attempt", "retry-delay"])
def test_no_attempt_starts_once_stopping(stop_during: str) -> None:
    # a stop waits for the attempt in flight, never for the tries still to come
    stopping = asyncio.Event()
    attempts = 0

    async def hangs(endpoint: Any, client: Any, ctx: Any) -> Observation:
        nonlocal attempts
        attempts += 1
        if stop_during == "attempt":
            stopping.set()
        else:
            asyncio.get_running_loop().call_later(0.1, stopping.set)
        return Observation(Outcome.TIMEOUT)

    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            return await run_check("models", spec("models", hangs),
                                   endpoint(tries=5, retry_delay_s=0.3), client,
                                   CheckContext(stopping=stopping))

    result = asyncio.run(go())
    assert result.outcome is Outcome.TIMEOUT and attempts == result.attempts == 1


def test_a_probe_out_of_open_files_observes_nothing_over_a_real_socket() -> None:
    """A pod that answers, asked by a probe that cannot open a socket (its RLIMIT_NOFILE
    reached, as at 10,000 default pods under a low limit): unknown, the probe's own, never
    the pod's connect error."""
    async def models(ep: Any, client: Any, ctx: Any) -> Observation:
        status, _, _ = await client.fetch("http://pod.test/v1/models", {}, 1024)
        return Observation(Outcome.OK if status == 200 else Outcome.HTTP_ERROR, "")

    async def go() -> Any:
        async with answering(lambda request: httpx.Response(200, json={"data": []})) as client:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            # a new descriptor takes the lowest free number, which must be over the limit:
            # no new file at all beside stdin, stdout and stderr (open ones stay open)
            resource.setrlimit(resource.RLIMIT_NOFILE, (3, hard))
            try:
                return await run_check("models", spec("models", models), endpoint(),
                                       client, CheckContext())
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    result = asyncio.run(go())
    assert result.outcome is Outcome.UNKNOWN, result
    assert "ran out of its own resources" in result.message
    assert result.details["probe_exhausted"] == "EMFILE"
