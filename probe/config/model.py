"""The validated, frozen configuration the daemon runs on.

Nothing here holds a secret: endpoints name the environment variable that holds
their key (``api_key_env``) and the key is read only when a request is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.config.extension import ConfigExtension

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
    # Feature keys (``required_context``, ``roundtrip``, ...) as their parsers returned them;
    # each feature reads its own through a typed accessor, never this dict directly.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def display_url(self) -> str:
        """The URL shown to people and stored as evidence (never carries a secret)."""
        return self.root_url


@dataclass(frozen=True, slots=True)
class RunpodSettings:
    api_key_env: str
    api_base: str
    proxy_url: str


@dataclass(frozen=True, slots=True)
class StorageSettings:
    path: Path
    retention_s: float | None = None


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    max_concurrent: int = 64
    spread: bool = True
    max_body_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Config:
    runpod: RunpodSettings
    storage: StorageSettings
    metrics: MetricsSettings
    scheduler: SchedulerSettings
    endpoints: tuple[Endpoint, ...]
    source: Path | None = None
    # Top-level sections added by features, already validated by their owners; each feature
    # reads its own through a typed accessor (e.g. ``PromptSection.of(config)``).
    sections: dict[str, Any] = field(default_factory=dict)
    # The file's endpoint defaults (after the scope's environment variables), kept so that
    # endpoints found at run time (discovery) are built like configured ones.
    defaults: dict[str, Any] = field(default_factory=dict)
    # What the config was parsed with: endpoints built later use the same keys.
    extension: ConfigExtension = field(default_factory=ConfigExtension)

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
        names = {self.runpod.api_key_env}
        names.update(e.api_key_env for e in self.endpoints if e.api_key_env)
        return frozenset(names)
