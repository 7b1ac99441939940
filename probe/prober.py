"""Execute jobs: a job's checks side by side (one slow check never delays the endpoint's
others past the interval), one check of one endpoint never twice at once, a global bound on
concurrent checks, and every result published to state, store and observers (the ledger).

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
    return ProbeClient(transport, timeout=timeout, follow_redirects=False,
                       cookies=AnswerCookies())


class ProbeClient(httpx.AsyncClient):
    """The checks' ``httpx.AsyncClient`` over ``AiohttpTransport``, with a direct road for
    the plain GETs most checks make (``probe.http.get``): the same request on the wire
    (the headers httpx would send, computed once per set of request headers), the same
    transport and pool, the same errors and body cap, without building httpx's request and
    response objects around it. It is taken only while the client has no cookie to send
    (an answer that sets one is still given to the jar); everything else is httpx's."""

    MAX_HEADER_SETS = 4096
    MAX_URLS = 65536  # parsed URLs kept (about 400 bytes each)

    def __init__(self, transport: AiohttpTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.direct = transport
        self._sent: dict[tuple[tuple[str, str], ...], list[tuple[str, str]]] = {}
        self._urls: dict[str, httpx.URL] = {}

    def parsed(self, url: str) -> httpx.URL:
        """``httpx.URL(url)``, parsed once: a check asks the same few URLs of its endpoint
        at every run, and parsing one is a good part of httpx's cost per request."""
        parsed_url = self._urls.get(url)
        if parsed_url is None:
            if len(self._urls) >= self.MAX_URLS:
                self._urls.clear()
            parsed_url = self._urls[url] = httpx.URL(url)
        return parsed_url

    async def direct_get(self, url: httpx.URL, headers: Mapping[str, str],
                         limit: int) -> tuple[int, tuple[tuple[bytes, bytes], ...],
                                              bytes | None] | None:
        """(status, raw headers, body or None when over ``limit``), or None when this GET
        must go through httpx (cookies to send, a closed client)."""
        if self.is_closed or self.cookies:
            return None
        sent = self._headers_for(url, headers)
        status, raw, body = await self.direct.get(url, sent, limit, self.timeout)
        if any(name.lower() in (b"set-cookie", b"set-cookie2") for name, _ in raw):
            request = httpx.Request("GET", url, headers=sent)
            self.cookies.extract_cookies(httpx.Response(status, headers=raw, request=request))
        return status, raw, body

    def _headers_for(self, url: httpx.URL, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """What httpx sends: the client's headers merged with ``headers``, Host first."""
        key = tuple(headers.items())
        rest = self._sent.get(key)
        if rest is None:
            if len(self._sent) >= self.MAX_HEADER_SETS:
                self._sent.clear()
            built = self.build_request("GET", url, headers=headers).headers.raw
            rest = self._sent[key] = [(k.decode("latin-1"), v.decode("latin-1"))
                                      for k, v in built if k.lower() != b"host"]
        return [("Host", url.netloc.decode("ascii")), *rest]


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
        # (endpoint, check) -> held while that check runs: never twice at once
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
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
        """Run the job's checks side by side, each in a slot of the global bound: a check
        that cannot pass (a timeout) never holds back the endpoint's other checks, so each
        is judged every interval (a job's run takes its slowest check, which fits in the
        interval). One check of one endpoint never runs twice at once. Once stopping, a
        check still waiting for its slot does not start. Results in the job's order."""
        lag = [] if scheduled_at is None else [scheduled_at]
        if len(job.checks) == 1:
            result = await self._run_in_slot(job, job.checks[0], lag)
            return [] if result is None else [result]
        results = await asyncio.gather(*(self._run_in_slot(job, name, lag)
                                         for name in job.checks))
        return [result for result in results if result is not None]

    async def _run_in_slot(self, job: Job, name: str, lag: list[float]) -> ProbeResult | None:
        async with self._locks[(job.endpoint.name, name)], self._semaphore:
            if lag:  # the job's lag, counted once: when its first check has its slot
                self.state.observe_lag(time.time() - lag.pop())
            if self.stopping.is_set():
                return None  # stopped: the checks not yet begun do not start
            self.state.add_in_flight(1)
            try:
                return await self.run_one(job, name)
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
