"""Execute jobs: one endpoint never probed twice at once, a global bound on concurrent
checks, and every result published to state, store and observers (the ledger).

``publish`` is the one door every result goes through, so it is where secrets are scrubbed
(a server may echo the key back): what the state, the database, /metrics, the ledger and
the commands' output see is already clean."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar
from typing import Any, Protocol

import httpx

from probe.check import CheckContext, CheckSpec
from probe.config.model import Config
from probe.job import Job
from probe.outcome import ProbeResult
from probe.runner import run_check
from probe.secrets import Redactor
from probe.state import FleetState
from probe.transport import AiohttpTransport
from probe.verdict import EndpointVerdict, Transition

log = logging.getLogger(__name__)
Observer = Callable[[ProbeResult, int | None], None]
Judged = Callable[[ProbeResult, int | None, list[Transition], EndpointVerdict | None], Any]
Resolver = Callable[[str], CheckSpec]


class Recorder(Protocol):
    """Anything with ``record(result) -> row id`` (the SQLite store)."""

    def record(self, result: ProbeResult) -> int: ...


# Idle connections are kept at least this long, and longer than the longest endpoint
# interval (with slack for the spread and scheduling lag) so a pod's connection is still
# there at its next probe; never longer than KEEPALIVE_MAX_S.
KEEPALIVE_MIN_S, KEEPALIVE_SLACK, KEEPALIVE_MAX_S = 30.0, 1.5, 900.0


def keepalive_expiry_s(config: Config) -> float:
    """How long an idle connection is kept: 1.5x the longest interval among the endpoints'
    own checks (and the file's default interval), within [30 s, 15 min]."""
    intervals = [e.interval_s for e in config.endpoints]
    default = config.defaults.get("interval")
    if isinstance(default, int | float):
        intervals.append(float(default))
    longest = max(intervals, default=0.0)
    return min(max(KEEPALIVE_MIN_S, longest * KEEPALIVE_SLACK), KEEPALIVE_MAX_S)


def make_client(max_concurrent: int, keepalive: bool = True,
                keepalive_expiry: float = KEEPALIVE_MIN_S) -> httpx.AsyncClient:
    """The checks' client: httpx's API over aiohttp's pool (``probe.transport.AiohttpTransport``).

    ``keepalive=False`` opens a fresh connection for every request; otherwise idle
    connections are kept per host for ``keepalive_expiry`` seconds. With an HTTP(S) proxy
    in the environment, httpx's own transport is kept: it honours the proxy variables (and
    NO_PROXY), which an explicit transport would silently bypass."""
    # Deadlines are enforced per attempt by the runner; this is only a backstop.
    timeout = httpx.Timeout(300.0)
    if _environment_proxies():
        limits = httpx.Limits(max_connections=max_concurrent,
                              max_keepalive_connections=max_concurrent if keepalive else 0,
                              keepalive_expiry=keepalive_expiry)
        return httpx.AsyncClient(limits=limits, timeout=timeout, follow_redirects=False)
    transport = AiohttpTransport(max_concurrent, keepalive=keepalive,
                                 keepalive_expiry=keepalive_expiry)
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False,
                             cookies=AnswerCookies())


class AnswerCookies(CookieJar):
    """httpx's cookie jar, reading an answer only when it sets a cookie. httpx hands every
    answer to the jar through urllib views (an ``email.Message`` of all its headers), which
    costs more than the rest of its answer handling; an answer without ``Set-Cookie`` (or
    ``Set-Cookie2``) adds no cookie, so it is skipped. Cookies that are set behave as before."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        headers = getattr(getattr(response, "response", None), "headers", None)
        if (isinstance(headers, httpx.Headers) and "set-cookie" not in headers
                and "set-cookie2" not in headers):
            return
        super().extract_cookies(response, request)


def _environment_proxies() -> bool:
    return any(os.environ.get(name) for name in (
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"))


class Prober:
    def __init__(self, client: httpx.AsyncClient, state: FleetState, resolve: Resolver,
                 max_concurrent: int, max_body_bytes: int, recorder: Recorder | None = None,
                 env: Mapping[str, str] | None = None,
                 redactor: Redactor | None = None) -> None:
        self.client = client
        self.state = state
        self.resolve = resolve
        self.recorder = recorder
        self.env = env
        self.redactor = redactor or Redactor((), env)
        self.max_body_bytes = max_body_bytes
        self.observers: list[Observer] = []
        self.judged: list[Judged] = []
        # Set when the daemon stops: no check starts after it, and long checks (a round
        # trip) see it in their context and wind down.
        self.stopping = asyncio.Event()
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._contexts: dict[tuple[str, str], CheckContext] = {}
        self._shared: defaultdict[str, dict[str, Any]] = defaultdict(dict)

    def context(self, job: Job, check: str) -> CheckContext:
        key = (job.endpoint.name, check)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = CheckContext(
                self.max_body_bytes, env=self.env, shared=self._shared[job.endpoint.name],
                stopping=self.stopping, durable=self.state.durable(*key))
        ctx.params = job.params
        return ctx

    async def run_job(self, job: Job, scheduled_at: float | None = None) -> list[ProbeResult]:
        async with self._locks[job.endpoint.name], self._semaphore:
            if scheduled_at is not None:
                self.state.observe_lag(time.time() - scheduled_at)
            self.state.add_in_flight(1)
            try:
                results = []
                for name in job.checks:
                    if self.stopping.is_set():
                        break  # stopped: the checks not yet begun do not start
                    results.append(await self.run_one(job, name))
                return results
            finally:
                self.state.add_in_flight(-1)

    async def run_one(self, job: Job, name: str) -> ProbeResult:
        result = await run_check(name, self.resolve(name), job.endpoint, self.client,
                                 self.context(job, name), job.attempts)
        return self.publish(result)

    def publish(self, result: ProbeResult) -> ProbeResult:
        """Scrub, store, judge and hand on ``result``; returns the scrubbed result."""
        result = self.redactor.result(result)
        log.debug("%s %s: %s (%d attempt(s), %.3fs) %s", result.endpoint, result.check,
                  result.outcome, result.attempts, result.latency_s, result.message)
        row_id = None
        if self.recorder is not None:
            try:
                row_id = self.recorder.record(result)
            except Exception:  # noqa: BLE001 - storage trouble must not stop probing
                log.exception("could not queue result for storage")
        transitions = self.state.update(result, row_id)
        for observer in self.observers:
            try:
                observer(result, row_id)
            except Exception:  # noqa: BLE001
                log.exception("result observer failed")
        if self.judged:
            verdict = self.state.verdict(result.endpoint)
            for judged in self.judged:
                try:
                    judged(result, row_id, transitions, verdict)
                except Exception:  # noqa: BLE001
                    log.exception("verdict listener failed")
        return result
