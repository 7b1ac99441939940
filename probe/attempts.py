"""Run one check against one endpoint: deadline, retries, and the one place that turns
exceptions into outcomes (most specific first: a timeout is also a transport error)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import ssl
import time
from datetime import UTC, datetime

import httpx

from probe.check import CheckContext, CheckFn, CheckSpec
from probe.config.model import Endpoint
from probe.http import BadBody
from probe.job import Attempts
from probe.loopwatch import LoopWatch
from probe.net import BodyTooLarge, ProbeClient
from probe.outcome import RETRYABLE, Observation, Outcome, ProbeResult

log = logging.getLogger(__name__)


# The probe's own resources ran out (open files, buffers, memory): nothing was learned of
# the endpoint, so the result is the probe's (unknown), never the endpoint's connect error.
OWN_EXHAUSTION = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def observation_from_exception(exc: BaseException, timeout_s: float) -> Observation:
    if (exhausted := own_exhaustion(exc)) is not None:
        return Observation(
            Outcome.UNKNOWN, f"not observed: runpod-probe ran out of its own resources "
            f"({os.strerror(exhausted)}; raise LimitNOFILE= or lower scheduler.max_concurrent)",
            details={"probe_exhausted": errno.errorcode.get(exhausted, str(exhausted))})
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return Observation(Outcome.TIMEOUT, f"no complete answer within {timeout_s:g}s")
    if isinstance(exc, BodyTooLarge | BadBody):
        return Observation(Outcome.BAD_RESPONSE, str(exc))
    if _caused_by_tls(exc):
        return Observation(Outcome.TLS_ERROR, f"TLS failed: {_reason(exc)}")
    if isinstance(exc, httpx.ConnectError):
        return Observation(Outcome.CONNECT_ERROR, f"cannot connect: {_reason(exc)}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return Observation(Outcome.CONNECT_ERROR, f"connection broken: {_reason(exc)}")
    if isinstance(exc, httpx.TransportError):
        return Observation(Outcome.CONNECT_ERROR, f"transport error: {_reason(exc)}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return Observation(Outcome.ERROR, f"invalid URL: {_reason(exc)}")
    log.error("check raised an unexpected exception (a runpod-probe bug)", exc_info=exc)
    return Observation(Outcome.ERROR, f"internal error: {type(exc).__name__}")


def own_exhaustion(exc: BaseException) -> int | None:
    """The errno of an exhausted resource of the probe's own in ``exc``'s chain, if any."""
    seen: BaseException | None = exc
    for _ in range(16):  # a chain is short; a cycle must not hang the check
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in OWN_EXHAUSTION:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    return None


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


async def attempt(check: CheckFn, endpoint: Endpoint, client: ProbeClient,
                  ctx: CheckContext, timeout_s: float) -> Observation:
    """One attempt under its total deadline (connect + headers + body)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await check(endpoint, client, ctx)
    except Exception as exc:  # noqa: BLE001 - every failure becomes data here
        return observation_from_exception(exc, timeout_s)


# A timeout during which the probe's event loop was stalled for at least this share of the
# deadline is the probe's own (``probe.loopwatch``): the answer may have come and sat unread.
OVERLOAD_SHARE = 0.2


def overloaded(observation: Observation, stalled_s: float, timeout_s: float) -> Observation:
    """``observation``, or, when it is a timeout and the loop was stalled for
    ``OVERLOAD_SHARE`` of ``timeout_s`` or more meanwhile, ``unknown``: nothing was observed
    of the endpoint (fail closed: unknown is not a pass either). Other outcomes are answers
    (or refusals) the endpoint really gave, and stand."""
    if observation.outcome is not Outcome.TIMEOUT or stalled_s < OVERLOAD_SHARE * timeout_s:
        return observation
    return Observation(
        Outcome.UNKNOWN,
        f"not observed: runpod-probe was overloaded (its event loop stalled {stalled_s:.1f}s "
        f"of the {timeout_s:g}s deadline); the check saw {observation.outcome}: "
        f"{observation.message}"[:1000],
        details={**observation.details, "overloaded": True,
                 "overload_outcome": str(observation.outcome),
                 "stalled_s": round(stalled_s, 3)})


def _stopping(ctx: CheckContext) -> bool:
    return ctx.stopping is not None and ctx.stopping.is_set()


async def run_check(name: str, spec: CheckSpec, endpoint: Endpoint, client: ProbeClient,
                    ctx: CheckContext, attempts: Attempts | None = None,
                    watch: LoopWatch | None = None) -> ProbeResult:
    """Run check ``name`` (answered by ``spec``) with retries; ``attempts`` defaults to the
    endpoint's own settings (a job may override them). With ``watch``, a timeout while the
    event loop was stalled is the probe's overload, not the endpoint's (``overloaded``)."""
    plan = attempts or Attempts.of(endpoint)
    started_at = datetime.now(UTC)
    tries = 0
    while True:
        tries += 1
        began = time.perf_counter()
        stalled_s = watch.stalled_s() if watch is not None else 0.0
        observation = await attempt(spec.run, endpoint, client, ctx, plan.timeout_s)
        latency_s = time.perf_counter() - began
        if watch is not None and observation.outcome is Outcome.TIMEOUT:
            observation = overloaded(observation, watch.stalled_s() - stalled_s,
                                     plan.timeout_s)
        if observation.outcome not in RETRYABLE or tries >= plan.tries or _stopping(ctx):
            break  # stopping: what was observed is the result, no attempt starts after it
        await asyncio.sleep(plan.retry_delay_s)
        if _stopping(ctx):
            break
    # A check's policy reads the final observation in its own terms (e.g. a control-plane
    # check turns "could not ask" into unknown); retries above still see the raw outcome.
    if spec.policy is not None:
        observation = spec.policy(observation)
    return ProbeResult(
        endpoint=endpoint.name, kind=endpoint.kind, check=name, outcome=observation.outcome,
        started_at=started_at, latency_s=latency_s, attempts=tries,
        url=endpoint.display_url, message=observation.message, http_status=observation.http_status,
        details=observation.details, role=spec.role,
    )
