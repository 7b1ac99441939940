"""A ``Host`` (``probe.features``) that records what a feature's start-up hook asks of the
daemon, so each feature's ``plugin.py`` is tested without starting one. What the feature
adds (collectors, observers, pages, status parts) is in the ``Attachment`` it returns."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from probe.config.model import Config
from probe.features import (
    Attachment,
    Expander,
    Host,
    StartupHook,
    StatusPart,
)
from probe.job import Job
from probe.net import ProbeClient
from probe.outcome import ProbeResult
from probe.verdict import EndpointVerdict, Transition


class FakeHost:
    """Every call a hook makes is kept in a list of its own; what it reads (config, plan,
    verdicts, views, latest results, the other features' status parts) is what the test
    set."""

    def __init__(self, config: Config, jobs: Sequence[Job] = (),
                 env: Mapping[str, str] | None = None,
                 client: ProbeClient | None = None,
                 standing: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.file_config = config
        self.jobs = jobs
        self.env = env
        self._client = client
        self.ready = asyncio.Event()
        self.standing = dict(standing or {})
        self.parts: dict[str, StatusPart] = {}  # the other features' status parts
        self.restored: list[dict[str, EndpointVerdict]] = []
        self.published: list[ProbeResult] = []
        self.standing_declared: list[tuple[str, str]] = []
        self.expanders: list[Expander] = []
        self.applied: list[Config] = []
        self.verdicts: dict[str, EndpointVerdict] = {}
        self.views: dict[str, Any] = {}
        self.results: dict[tuple[str, str], ProbeResult] = {}
        self.announced: list[tuple[str, list[Transition]]] = []

    @property
    def client(self) -> ProbeClient:
        assert self._client is not None, "this test gave the host no client"
        return self._client

    def redact(self, text: str) -> str:
        return text.replace("secret", "[redacted]")

    def verdict(self, endpoint: str) -> EndpointVerdict | None:
        return self.verdicts.get(endpoint)

    def endpoint_views(self) -> Mapping[str, Any]:
        return self.views

    def endpoint_rows(self, names: Iterable[str]) -> Mapping[str, Any]:
        return {name: (self.views[name], tuple(self.results.get((name, c))
                                               for c in self.views[name].checks))
                for name in names if name in self.views}

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

    def announce(self, subject: str, transitions: list[Transition]) -> None:
        self.announced.append((subject, transitions))

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
