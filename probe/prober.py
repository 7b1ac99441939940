"""Execute jobs: one endpoint never probed twice at once, a global bound on concurrent
checks, and every result published to state, store and observers (the ledger)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from probe.checks.base import CheckContext
from probe.checks.registry import resolve
from probe.config.model import Endpoint
from probe.http import AiohttpTransport
from probe.outcome import ProbeResult
from probe.runner import run_check
from probe.scheduler import Job
from probe.state import FleetState

log = logging.getLogger(__name__)
Observer = Callable[[ProbeResult, int | None], None]


class Recorder(Protocol):
    """Anything with ``record(result) -> row id`` (the SQLite store)."""

    def record(self, result: ProbeResult) -> int: ...


def make_client(max_concurrent: int, keepalive: bool = True) -> httpx.AsyncClient:
    """The checks' client: httpx's API over aiohttp's pool (``probe.http.AiohttpTransport``).

    ``keepalive=False`` opens a fresh connection for every request. With an HTTP(S) proxy
    in the environment, httpx's own transport is kept: it honours the proxy variables (and
    NO_PROXY), which an explicit transport would silently bypass."""
    # Deadlines are enforced per attempt by the runner; this is only a backstop.
    timeout = httpx.Timeout(300.0)
    if _environment_proxies():
        limits = httpx.Limits(max_connections=max_concurrent,
                              max_keepalive_connections=max_concurrent if keepalive else 0,
                              keepalive_expiry=30)
        return httpx.AsyncClient(limits=limits, timeout=timeout, follow_redirects=False)
    transport = AiohttpTransport(max_concurrent, keepalive=keepalive, keepalive_expiry=30)
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)


def _environment_proxies() -> bool:
    return any(os.environ.get(name) for name in (
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"))


class Prober:
    def __init__(self, client: httpx.AsyncClient, state: FleetState, max_concurrent: int,
                 max_body_bytes: int, recorder: Recorder | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.state = state
        self.recorder = recorder
        self.env = env
        self.max_body_bytes = max_body_bytes
        self.observers: list[Observer] = []
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._contexts: dict[tuple[str, str], CheckContext] = {}
        self._shared: defaultdict[str, dict[str, Any]] = defaultdict(dict)

    def context(self, endpoint: Endpoint, check: str) -> CheckContext:
        key = (endpoint.name, check)
        if key not in self._contexts:
            self._contexts[key] = CheckContext(self.max_body_bytes, env=self.env,
                                               shared=self._shared[endpoint.name])
        return self._contexts[key]

    async def run_job(self, job: Job, scheduled_at: float | None = None) -> list[ProbeResult]:
        async with self._locks[job.endpoint.name], self._semaphore:
            if scheduled_at is not None:
                self.state.observe_lag(time.time() - scheduled_at)
            self.state.add_in_flight(1)
            try:
                return [await self.run_one(job.endpoint, name) for name in job.checks]
            finally:
                self.state.add_in_flight(-1)

    async def run_one(self, endpoint: Endpoint, name: str) -> ProbeResult:
        result = await run_check(name, resolve(name), endpoint, self.client,
                                 self.context(endpoint, name))
        self.publish(result)
        return result

    def publish(self, result: ProbeResult) -> None:
        log.debug("%s %s: %s (%d attempt(s), %.3fs) %s", result.endpoint, result.check,
                  result.outcome, result.attempts, result.latency_s, result.message)
        self.state.update(result)
        row_id = None
        if self.recorder is not None:
            try:
                row_id = self.recorder.record(result)
            except Exception:  # noqa: BLE001 - storage trouble must not stop probing
                log.exception("could not queue result for storage")
        for observer in self.observers:
            try:
                observer(result, row_id)
            except Exception:  # noqa: BLE001
                log.exception("result observer failed")
