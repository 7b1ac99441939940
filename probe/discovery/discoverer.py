"""One discovery run: list RunPod's fleet, keep what was last listed per kind, and report.

The run's own outcome is a ``ProbeResult`` of the check ``discovery`` of the pseudo-endpoint
``runpod-api``: ``ok`` with counts; ``unauthorized`` when the key may not list pods or
endpoints (a finding); ``unknown`` when the API did not answer (429, 5xx, timeout). A kind
that could not be listed keeps its last listing: an API hiccup never drops the fleet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from probe.attempts import run_check
from probe.check import CheckContext, CheckSpec
from probe.config.model import Config, Endpoint
from probe.control_plane import as_unknown
from probe.discovery import memory
from probe.discovery.fleet import DiscoveredFleet, build_fleet
from probe.discovery.listing import LISTED_KEY, Listed, make_check
from probe.discovery.settings import API_ENDPOINT, DiscoverySettings
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome, ProbeResult

CHECK = "discovery"
KIND = "runpod_api"


@dataclass(frozen=True, slots=True)
class Discovery:
    result: ProbeResult
    fleet: DiscoveredFleet
    config: Config  # the file's config plus what is discovered (or last known)


def api_endpoint(config: Config, settings: DiscoverySettings) -> Endpoint:
    """The pseudo-endpoint whose only check is the listing."""
    return Endpoint(name=API_ENDPOINT, kind=KIND, openai_base=settings.api,
                    root_url=settings.api, interval_s=settings.interval_s,
                    timeout_s=settings.timeout_s, tries=2, retry_delay_s=0.5, checks=(CHECK,),
                    api_key_env=config.runpod.api_key_env)


class Discoverer:
    """Holds the last listing of each kind between runs (and the API's back-off)."""

    def __init__(self, env: Mapping[str, str] | None = None, max_body_bytes: int = 16 << 20,
                 remember: Path | None = None):
        """``remember``: a file keeping the last successful listing across restarts."""
        self.env = env
        self.remember = remember
        self.listed: dict[str, tuple[Listed, ...]] = memory.load(remember) if remember else {}
        self.context = CheckContext(max_body_bytes, env=env)
        self.last: DiscoveredFleet | None = None

    def expand(self, config: Config) -> Config:
        """The file's config plus the last known discovered endpoints (no API call)."""
        settings = DiscoverySettings.of(config)
        if settings is None:
            return config
        self.last = build_fleet(config, settings, self.listed, self._env())
        return self.last.config(config)

    async def run(self, config: Config, client: ProbeClient) -> Discovery:
        settings = DiscoverySettings.of(config)
        if settings is None:
            raise ValueError("discovery is not configured")
        endpoint = api_endpoint(config, settings)
        result = await run_check(CHECK, CheckSpec(CHECK, make_check(settings.kinds)), endpoint,
                                 client, self.context)
        listed: dict[str, tuple[Listed, ...]] = self.context.memory.pop(LISTED_KEY, {})
        self.listed.update(listed)
        if listed and self.remember is not None:
            memory.save(self.remember, self.listed)
        expanded = self.expand(config)
        assert self.last is not None
        return Discovery(report(result, self.last, listed, settings), self.last, expanded)

    def _env(self) -> Mapping[str, str]:
        return os.environ if self.env is None else self.env


def _count(n: int, kind: str) -> str:
    noun = "pod" if kind == "pod" else "serverless endpoint"
    return f"{n} {noun}" + ("" if n == 1 else "s")


def report(result: ProbeResult, fleet: DiscoveredFleet, listed: Mapping[str, Any],
           settings: DiscoverySettings) -> ProbeResult:
    """The run's result: counts in the details; "could not ask" as unknown; the fleet kept."""
    counts = fleet.counts()
    details: dict[str, Any] = {
        **result.details, "discovered": counts, "configured": len(fleet.configured),
        "listed": {kind: len(items) for kind, items in listed.items()},
        "skipped": [{"kind": s.kind, "id": s.id, "name": s.name, "reason": s.reason}
                    for s in fleet.skipped],
        "api": settings.api,
    }
    found = ", ".join(_count(counts.get(kind, 0), kind) for kind in settings.kinds)
    if result.outcome is Outcome.OK:
        message = f"discovered {found}" + (f" ({len(fleet.skipped)} skipped)"
                                           if fleet.skipped else "")
        return replace(result, message=message, details=details)
    verdict = as_unknown(Observation(result.outcome, result.message, result.http_status, details))
    message = verdict.message
    if verdict.outcome is Outcome.UNKNOWN:  # the ledger quotes unauthorized: keep that short
        message = (f"RunPod's API did not answer ({result.outcome}: {result.message}); "
                   f"probing the last known fleet ({found})")
    return replace(result, outcome=verdict.outcome, message=message,
                   http_status=verdict.http_status, details=verdict.details)
