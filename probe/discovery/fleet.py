"""From what RunPod's API lists to the endpoints the daemon probes.

Rules, in order: configured endpoints win (same pod id / endpoint id: the listed one is not
added, the configured one is annotated with the API's status); kinds not enabled and names
the include/exclude filters reject are dropped; a pod is probed only while RUNNING and only
on a port it exposes as HTTP; a serverless endpoint only when it is queue-based. Every item
left out is reported with its reason. Endpoints are built by the config loader from raw
keys, exactly like an ``endpoints:`` item, so URLs and defaults never diverge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from probe.config.load import ConfigError, build_endpoint
from probe.config.model import Config, Endpoint
from probe.discovery.listing import Listed
from probe.discovery.settings import API_ENDPOINT, DiscoverySettings

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_FLASHBOOT_SUFFIX = re.compile(r"\s+-fb$")  # RunPod appends " -fb" to FlashBoot endpoints


@dataclass(frozen=True, slots=True)
class Skipped:
    kind: str
    id: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class DiscoveredFleet:
    endpoints: tuple[Endpoint, ...]  # discovered, not configured
    configured: tuple[Endpoint, ...]  # the file's endpoints, annotated with API statuses
    skipped: tuple[Skipped, ...]

    def counts(self) -> dict[str, int]:
        out = {"pod": 0, "serverless": 0}
        for endpoint in self.endpoints:
            out[endpoint.kind] = out.get(endpoint.kind, 0) + 1
        return out

    def config(self, file_config: Config) -> Config:
        """The file's config with discovered endpoints added."""
        return replace(file_config, endpoints=(*self.configured, *self.endpoints))


def build_fleet(config: Config, settings: DiscoverySettings,
                listed: Mapping[str, tuple[Listed, ...]],
                env: Mapping[str, str]) -> DiscoveredFleet:
    """``listed``: kind -> items, for the kinds RunPod's API has listed (last known)."""
    by_id = {(e.kind, e.pod_id if e.kind == "pod" else e.endpoint_id): e
             for e in config.endpoints if e.kind in ("pod", "serverless")}
    seen: dict[str, Listed] = {}  # configured endpoint -> how the API lists it
    taken = {e.name for e in config.endpoints} | {API_ENDPOINT}
    endpoints: list[Endpoint] = []
    skipped: list[Skipped] = []
    for kind in settings.kinds:
        for item in listed.get(kind, ()):
            configured = by_id.get((kind, item.id))
            if configured is not None:
                seen[configured.name] = item
                continue
            reason = _reason(item, settings)
            if reason is None:
                name = unique_name(item, taken)
                built = _build(item, name, config, settings, env)
                if isinstance(built, str):
                    reason = built
                else:
                    taken.add(name)
                    endpoints.append(built)
                    continue
            skipped.append(Skipped(kind, item.id, item.name, reason))
    annotated = tuple(_annotate(e, seen.get(e.name)) for e in config.endpoints)
    return DiscoveredFleet(tuple(endpoints), annotated, tuple(skipped))


def _reason(item: Listed, settings: DiscoverySettings) -> str | None:
    """Why a listed item is not probed, or None."""
    if settings.include is not None and not settings.include.search(item.name):
        return f'name does not match include "{settings.include.pattern}"'
    if settings.exclude is not None and settings.exclude.search(item.name):
        return f'name matches exclude "{settings.exclude.pattern}"'
    if item.kind == "pod":
        if item.status != "RUNNING":
            return f"pod {item.status or 'with no status'} per RunPod API (only RUNNING pods " \
                   "are probed)"
        if f"{settings.port}/http" not in item.ports:
            exposed = ", ".join(item.ports) or "none"
            return f"port {settings.port} not exposed as http (ports: {exposed})"
    elif item.type not in (None, "QUEUE"):
        return f"{item.type} endpoint (only queue-based endpoints are probed)"
    return None


def sanitise(text: str) -> str:
    """Lower-case letters, digits, '.', '_' and '-': safe in metrics, logs and file names."""
    return _UNSAFE.sub("-", _FLASHBOOT_SUFFIX.sub("", text).lower()).strip("-._")


def unique_name(item: Listed, taken: set[str]) -> str:
    """RunPod's name plus its id (names are not unique on RunPod, ids are); the id alone when
    the name already carries it; a numbered suffix if a configured endpoint has the name."""
    name, item_id = sanitise(item.name), sanitise(item.id)
    base = name if name and item_id in name else "-".join(p for p in (name, item_id) if p)
    base = base or item.kind
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _build(item: Listed, name: str, config: Config, settings: DiscoverySettings,
           env: Mapping[str, str]) -> Endpoint | str:
    raw: dict[str, Any] = {"name": name, "kind": item.kind, **settings.defaults}
    raw.update({"pod_id": item.id, "port": settings.port} if item.kind == "pod"
               else {"endpoint_id": item.id})
    try:
        endpoint = build_endpoint(raw, f"discovery[{item.id}]", config, env)
    except ConfigError as exc:  # only the environment can differ from the load-time check
        return "cannot build: " + "; ".join(exc.problems)
    return replace(endpoint, origin="discovery", runpod_status=item.status,
                   gpu_type=endpoint.gpu_type or item.gpu_type,
                   data_center=endpoint.data_center or item.data_center)


def _annotate(endpoint: Endpoint, item: Listed | None) -> Endpoint:
    """A configured endpoint with what the API says of it: its status, and its GPU type
    and data centre unless the config gives them."""
    if item is None:
        return endpoint
    annotated = replace(endpoint, runpod_status=item.status or endpoint.runpod_status,
                        gpu_type=endpoint.gpu_type or item.gpu_type,
                        data_center=endpoint.data_center or item.data_center)
    return endpoint if annotated == endpoint else annotated
