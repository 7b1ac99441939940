"""The validated, frozen configuration the daemon runs on, and what features add to the loader.

Nothing here holds a secret: endpoints name the environment variable that holds
their key (``api_key_env``) and the key is read only when a request is built.

The loader (``probe.config.load``) knows the spine's own keys; everything else arrives in a
``ConfigExtension`` passed to ``parse_config``: top-level sections (``prompts:``,
``ledger:``, ...), extra per-endpoint keys (``required_context``, ``stuck_after``, ...),
cross-checks over the built config, the sections that supply endpoints at run time
(``discovery:``) and the check names an endpoint may list. Extensions merge in order, and
the order is the order problems are reported in.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from probe.config.fields import Fields, Problems

KINDS = ("pod", "serverless", "openai")
# The checks an endpoint runs when its config does not list them. A pod runs vLLM, whose
# /v1/models answers 200 even with a dead engine: /health (liveness) and /metrics (queue,
# engine_stuck) complete the picture, and the endpoint is up only when all three pass.
DEFAULT_CHECKS: dict[str, tuple[str, ...]] = {
    "pod": ("models", "health", "vllm_metrics"),
    # The queue check reads RunPod's free /health; the models route would wake (and bill) a
    # worker.
    "serverless": ("queue",),
    "openai": ("models",),
}
# Where an endpoint comes from: the config file, or RunPod's API (discovery).
ORIGINS = ("config", "discovery")


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What a section parser may need besides its raw value: the environment the config is
    loaded with and the endpoint keys every extension adds (``discovery.defaults`` accepts
    them)."""

    env: Mapping[str, str]
    endpoint_keys: tuple[str, ...] = ()


# (raw value, field path, problems, context) -> the section's value in ``Config.sections``
SectionParser = Callable[[Any, str, Problems, ParseContext], Any]
# the endpoint's fields -> its value in ``Endpoint.extra`` (None: absent, and not kept)
EndpointKeyParser = Callable[[Fields], Any]
# cross-checks over the built config; they add problems, and any problem fails the load
Validator = Callable[["Config", Problems], None]
# cross-checks that also need the environment; they run after every ``Validator``
EnvValidator = Callable[["Config", Problems, Mapping[str, str]], None]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class ConfigExtension:
    sections: Mapping[str, SectionParser] = field(default_factory=dict)
    endpoint_keys: Mapping[str, EndpointKeyParser] = field(default_factory=dict)
    validators: tuple[Validator, ...] = ()
    env_validators: tuple[EnvValidator, ...] = ()
    # top-level sections that supply endpoints at run time: with one present,
    # ``endpoints:`` may be empty
    endpoint_sources: frozenset[str] = frozenset()
    # check names an endpoint may list in ``checks:``
    checks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", _frozen(self.sections))
        object.__setattr__(self, "endpoint_keys", _frozen(self.endpoint_keys))

    @classmethod
    def merge(cls, *parts: ConfigExtension) -> ConfigExtension:
        """One extension holding every part, in order; a key claimed twice is a bug."""
        sections: dict[str, SectionParser] = {}
        keys: dict[str, EndpointKeyParser] = {}
        for part in parts:
            for name, section in part.sections.items():
                _claim(sections, name, section, "config section")
            for name, key in part.endpoint_keys.items():
                _claim(keys, name, key, "endpoint key")
        return cls(
            sections=sections, endpoint_keys=keys,
            validators=tuple(v for p in parts for v in p.validators),
            env_validators=tuple(v for p in parts for v in p.env_validators),
            endpoint_sources=frozenset(s for p in parts for s in p.endpoint_sources),
            checks=tuple(dict.fromkeys(c for p in parts for c in p.checks)),
        )


def _claim(into: dict[str, Any], name: str, value: Any, what: str) -> None:
    if name in into:
        raise ValueError(f'{what} "{name}" is claimed by two features')
    into[name] = value


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One thing we probe: a RunPod pod, a serverless endpoint or any OpenAI-compatible server."""

    name: str
    kind: str
    # OpenAI-compatible base, always ending in "/v1" (models at f"{openai_base}/models").
    openai_base: str
    # Where the server's own routes live: a pod's proxy root (/health, /metrics) or a
    # serverless endpoint's queue root (/health, /run, /runsync, /status).
    root_url: str
    interval_s: float
    timeout_s: float
    tries: int
    retry_delay_s: float
    checks: tuple[str, ...]
    api_key_env: str | None = None
    model: str | None = None
    min_context: int | None = None
    pod_id: str | None = None
    port: int | None = None
    endpoint_id: str | None = None
    origin: str = "config"  # one of ORIGINS
    # The pod's status per RunPod's API (set by discovery), e.g. "EXITED".
    runpod_status: str | None = None
    # The hardware it runs on, for endpoints that fail together (Meta-Patterns): RunPod's
    # GPU type id and data centre id, from discovery (pods) or the config.
    gpu_type: str | None = None
    data_center: str | None = None
    # Feature keys (``required_context``, ``roundtrip``, ...) as their parsers returned them;
    # each feature reads its own through a typed accessor, never this dict directly.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def display_url(self) -> str:
        """The URL shown to people and stored as evidence (never carries a secret)."""
        return self.root_url


@dataclass(frozen=True, slots=True)
class RunpodSettings:
    api_key_env: str  # RunPod's account key: serverless endpoints and discovery
    api_base: str
    proxy_url: str
    # A pod's own vLLM --api-key, sent to pods only when this variable is set: RunPod's
    # proxy asks for no key, and the account key must never reach a pod's server.
    pod_api_key_env: str = "VLLM_API_KEY"


@dataclass(frozen=True, slots=True)
class StorageSettings:
    path: Path
    retention_s: float | None = None


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    host: str
    port: int
    # Each check's own series too (its results by outcome, latency histogram, last status
    # and timestamps, interval): about 25 more per check (docs/metrics.md)
    per_check: bool = False
    # Latency histograms also in exponential buckets (schema 3), sent to a scraper that asks
    # for protobuf (docs/metrics.md#native-histograms)
    native_histograms: bool = False


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """The ``verdict:`` section: how many results make an endpoint's state (the keys were
    first read under ``ledger:``, which is still accepted)."""

    down_after: int = 3
    up_after: int = 2
    persistent_after_s: float = 1800.0

    @classmethod
    def of(cls, config: Config) -> Hysteresis:
        """The file's ``verdict:``, else its older ``ledger:`` keys, else the defaults."""
        if config.verdict is not None:
            return config.verdict
        legacy = config.sections.get("ledger")
        return legacy if isinstance(legacy, Hysteresis) else cls()


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    # Checks in flight at once; None (``auto``, the default): sized from the plan
    # (``probe.job.concurrency``).
    max_concurrent: int | None = None
    spread: bool = True
    max_body_bytes: int = 4 * 1024 * 1024
    # Keep connections open between probes (per host); false opens a fresh one per request.
    keepalive: bool = True


@dataclass(frozen=True, slots=True)
class Shard:
    """This daemon's share of the fleet (``shard:``; ``probe.config.shard``): the endpoints
    whose names shard ``index`` of ``count`` scores highest (rendezvous hashing)."""

    index: int
    count: int

    def owns(self, name: str) -> bool:
        return owner(name, self.count) == self.index


@dataclass(frozen=True, slots=True)
class Peers:
    """The other probes of this fleet (``peers:``; ``probe.config.vantage``): their base URLs
    (the metrics listener's), asked for their verdicts every ``every_s`` seconds, each
    answer within ``timeout_s``."""

    urls: tuple[str, ...]
    every_s: float = 30.0
    timeout_s: float = 5.0


def default_instance() -> str:
    """The host name, cut to what an instance name may hold (``probe.config.vantage``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:63].lstrip("._-")
    return name or "runpod-probe"


def score(name: str, index: int) -> int:
    """The weight shard ``index`` gives ``name``: a stable 64-bit hash of both."""
    digest = hashlib.blake2b(f"{index}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(name: str, count: int) -> int:
    """The shard (0 .. count-1) that probes ``name``."""
    return max(range(count), key=lambda index: score(name, index))


@dataclass(frozen=True, slots=True)
class Config:
    runpod: RunpodSettings
    storage: StorageSettings
    metrics: MetricsSettings
    scheduler: SchedulerSettings
    endpoints: tuple[Endpoint, ...]
    source: Path | None = None
    # The ``verdict:`` section as given (None: absent; ``Hysteresis.of`` reads the fallbacks).
    verdict: Hysteresis | None = None
    # Top-level sections added by features, already validated by their owners; each feature
    # reads its own through a typed accessor (e.g. ``PromptSection.of(config)``).
    sections: dict[str, Any] = field(default_factory=dict)
    # The file's endpoint defaults (after the scope's environment variables), kept so that
    # endpoints found at run time (discovery) are built like configured ones.
    defaults: dict[str, Any] = field(default_factory=dict)
    # What the config was parsed with: endpoints built later use the same keys.
    extension: ConfigExtension = field(default_factory=ConfigExtension)
    # ``shard:``: this daemon's share of the fleet (``probe.config.shard``); None: all of it
    shard: Shard | None = None
    # ``instance:``: this probe's name among the probes of the fleet (default: the host name);
    # every ledger entry carries it
    instance: str = field(default_factory=default_instance)
    # ``peers:``: the other probes of the same fleet (an HA pair); None: this one alone
    peers: Peers | None = None

    @property
    def probes(self) -> int:
        """How many probes this one knows of in its fleet: itself and its peers."""
        return 1 + (len(self.peers.urls) if self.peers is not None else 0)

    @property
    def adds_endpoints_at_run_time(self) -> bool:
        """A section that supplies endpoints at run time (discovery) is present."""
        return any(self.sections.get(key) is not None
                   for key in self.extension.endpoint_sources)

    def endpoint(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)

    def secret_env_names(self) -> frozenset[str]:
        """Every environment variable this config reads a secret from."""
        names = {self.runpod.api_key_env, self.runpod.pod_api_key_env}
        names.update(e.api_key_env for e in self.endpoints if e.api_key_env)
        return frozenset(names)
