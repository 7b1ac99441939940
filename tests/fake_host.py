"""A ``Host`` (``probe.features``) that records what a feature's start-up hook asks of the
daemon, so each feature's ``plugin.py`` is tested without starting one."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from prometheus_client.registry import Collector

from probe.config.model import Config
from probe.features import (
    Attachment,
    Changed,
    Expander,
    Host,
    Judged,
    Observer,
    Route,
    StartupHook,
    StatusPart,
)
from probe.job import Job
from probe.outcome import ProbeResult
from probe.verdict import EndpointVerdict


class FakeHost:
    """Every call a hook makes is kept in a list (or mapping) of its own; what it reads
    (config, plan, verdicts, views, latest results) is what the test set."""

    def __init__(self, config: Config, jobs: Sequence[Job] = (),
                 env: Mapping[str, str] | None = None,
                 client: httpx.AsyncClient | None = None,
                 standing: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.file_config = config
        self.jobs = jobs
        self.env = env
        self._client = client
        self.ready = asyncio.Event()
        self.standing = dict(standing or {})
        self.collectors: list[Collector] = []
        self.observers: list[Observer] = []
        self.judged: list[Judged] = []
        self.changed: list[Changed] = []
        self.routes: dict[str, Route] = {}
        self.parts: dict[str, StatusPart] = {}
        self.restored: list[dict[str, EndpointVerdict]] = []
        self.published: list[ProbeResult] = []
        self.standing_declared: list[tuple[str, str]] = []
        self.expanders: list[Expander] = []
        self.applied: list[Config] = []
        self.verdicts: dict[str, EndpointVerdict] = {}
        self.views: dict[str, Any] = {}
        self.results: dict[tuple[str, str], ProbeResult] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "this test gave the host no client"
        return self._client

    def redact(self, text: str) -> str:
        return text.replace("secret", "[redacted]")

    def register(self, collector: Collector) -> None:
        self.collectors.append(collector)

    def observe(self, observer: Observer) -> None:
        self.observers.append(observer)

    def on_judged(self, judged: Judged) -> None:
        self.judged.append(judged)

    def on_changed(self, changed: Changed) -> None:
        self.changed.append(changed)

    def verdict(self, endpoint: str) -> EndpointVerdict | None:
        return self.verdicts.get(endpoint)

    def endpoint_views(self) -> Mapping[str, Any]:
        return self.views

    def latest(self, endpoint: str, check: str) -> ProbeResult | None:
        return self.results.get((endpoint, check))

    def add_route(self, path: str, route: Route) -> None:
        assert path not in self.routes, f"{path} added twice"
        self.routes[path] = route

    def add_status_part(self, name: str, part: StatusPart) -> None:
        self.parts[name] = part

    def status_parts(self) -> Mapping[str, StatusPart]:
        return self.parts

    def restore(self, saved: dict[str, EndpointVerdict]) -> None:
        self.restored.append(saved)

    def publish(self, result: ProbeResult) -> ProbeResult:
        self.published.append(result)
        return result

    def declare_standing(self, endpoint: str, check: str) -> None:
        self.standing_declared.append((endpoint, check))

    def add_expander(self, expander: Expander) -> None:
        self.expanders.append(expander)

    def apply(self, config: Config) -> bool:
        for expand in self.expanders:
            config = expand(config)
        self.applied.append(config)
        changed = config != self.config
        self.config = config
        return changed


def as_host(fake: FakeHost) -> Host:
    """The fake, typed as what a hook receives (mypy checks it keeps to the protocol)."""
    return fake


async def start(hook: StartupHook, host: FakeHost) -> Attachment | None:
    """Run a start-up hook as the daemon does (awaited when it is a coroutine)."""
    started = hook(as_host(host))
    if inspect.isawaitable(started):
        return await started
    return started
