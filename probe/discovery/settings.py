"""The ``discovery:`` config section, validated with exact messages.

```yaml
discovery:
  api: https://api.runpod.io/v2   # RunPod REST v2 (key: runpod.api_key_env); default
                                  # $RUNPOD_API_BASE_URL/v2 when that is set (RunPod's SDK
                                  # reads the same variable)
  interval: 5m                    # list again this often
  timeout: 30s                    # per listing attempt (both lists)
  pods: true                      # list pods (only RUNNING ones are probed)
  serverless: true                # list serverless endpoints (QUEUE type)
  port: 8000                      # the pod port to probe; it must be exposed as "8000/http"
  include: "^prod-"               # regex searched in RunPod's name (optional)
  exclude: "scratch"              # regex searched in RunPod's name (optional)
  defaults: {model: Qwen/Qwen2.5-7B-Instruct, min_context: 32768, interval: 30s}
  stopped_pods_are_maintenance: false  # a configured pod RunPod lists as EXITED: maintenance
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from probe.config.fields import Fields, Problems, url_problem
from probe.config.load import SETTINGS, ConfigError, build_endpoint
from probe.config.model import Config, ParseContext

SECTION = "discovery"
DEFAULT_API = "https://api.runpod.io/v2"
API_BASE_ENV = "RUNPOD_API_BASE_URL"  # RunPod's SDK: the API host, default https://api.runpod.io
API_ENDPOINT = "runpod-api"  # the pseudo-endpoint discovery's own results are stored under
KEYS = ("api", "interval", "timeout", "pods", "serverless", "port", "include", "exclude",
        "defaults", "stopped_pods_are_maintenance")
# ``checks`` is per kind (a pod and a serverless endpoint run different ones): not a default.
DEFAULT_KEYS = tuple(key for key in SETTINGS if key != "checks")


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    api: str = DEFAULT_API
    interval_s: float = 300.0
    timeout_s: float = 30.0
    pods: bool = True
    serverless: bool = True
    port: int = 8000
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    # Raw endpoint keys every discovered endpoint gets, read by the loader like an
    # ``endpoints:`` item's own keys.
    defaults: dict[str, Any] = field(default_factory=dict)
    # A configured pod RunPod lists as EXITED (stopped by its owner) is in maintenance, not
    # down, until it runs again.
    stopped_pods_are_maintenance: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind, on in (("pod", self.pods), ("serverless", self.serverless))
                     if on)

    @classmethod
    def of(cls, config: Config) -> DiscoverySettings | None:
        """The config's ``discovery:`` section; None when discovery is off."""
        settings = config.sections.get(SECTION)
        return settings if isinstance(settings, DiscoverySettings) else None


def default_api(env: Mapping[str, str]) -> str:
    """RunPod's REST v2 API: ``$RUNPOD_API_BASE_URL/v2`` when set, else the public one."""
    base = env.get(API_BASE_ENV, "").strip().rstrip("/")
    return f"{base}/v2" if base else DEFAULT_API


def parse_section(raw: Any, path: str, problems: Problems,
                  context: ParseContext) -> DiscoverySettings | None:
    if raw is None:
        return None
    f = Fields(raw, path, problems, KEYS)
    default = DiscoverySettings()
    api = default_api(context.env)
    problem = None if f.has("api") else url_problem(api)
    if problem:
        problems.add(f"env.{API_BASE_ENV}", problem)
        api = DEFAULT_API
    settings = DiscoverySettings(
        api=f.url("api", api).rstrip("/"),
        interval_s=f.duration("interval", default.interval_s),
        timeout_s=f.duration("timeout", default.timeout_s),
        pods=f.boolean("pods", True), serverless=f.boolean("serverless", True),
        port=_port(f), include=_regex(f, "include"), exclude=_regex(f, "exclude"),
        defaults=_defaults(f, context.endpoint_keys),
        stopped_pods_are_maintenance=f.boolean("stopped_pods_are_maintenance", False),
    )
    if f.has("pods") or f.has("serverless"):
        if not settings.kinds:
            problems.add(path, "pods and serverless are both false: nothing to discover")
    if settings.timeout_s > settings.interval_s:
        f.fail("timeout", f"timeout ({settings.timeout_s:g}s) must not be longer than the "
                          f"interval ({settings.interval_s:g}s)")
    return settings


def _port(f: Fields) -> int:
    port = f.integer("port", 8000, minimum=1)
    if port > 65535:
        f.fail("port", f"must be at most 65535, got {port}")
        return 8000
    return int(port)


def _regex(f: Fields, key: str) -> re.Pattern[str] | None:
    text = f.text(key)
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        f.fail(key, f'not a valid regular expression ("{text}"): {exc}')
        return None


def _defaults(f: Fields, feature_keys: tuple[str, ...]) -> dict[str, Any]:
    allowed = (*DEFAULT_KEYS, *feature_keys)
    inner = Fields(f.raw.get("defaults"), f"{f.path}.defaults", f.problems, (*allowed, "checks"))
    if "checks" in inner.raw:
        inner.fail("checks", "not a discovery default: pods and serverless endpoints run "
                             "different checks (each kind runs its default ones)")
    return {key: value for key, value in inner.raw.items() if key in allowed}


def validate(config: Config, problems: Problems, env: Mapping[str, str]) -> None:
    """Discovery needs the RunPod key, a name of its own, and defaults that build endpoints."""
    settings = DiscoverySettings.of(config)
    if settings is None:
        return
    key_env = config.runpod.api_key_env
    if not env.get(key_env):
        problems.add("discovery", f"needs the RunPod API key: environment variable {key_env} "
                                  "(runpod.api_key_env) is not set")
    for index, endpoint in enumerate(config.endpoints):
        if endpoint.name == API_ENDPOINT:
            problems.add(f"endpoints[{index}].name", f'"{API_ENDPOINT}" is reserved for '
                                                     "discovery's own results")
    kind = settings.kinds[0] if settings.kinds else "pod"
    sample: dict[str, Any] = {"name": "sample", "kind": kind, **settings.defaults}
    sample.update({"pod_id": "sample", "port": settings.port} if kind == "pod"
                  else {"endpoint_id": "sample"})
    # the RunPod key's absence is reported once, above, not again as a default's problem
    sample_env = {**env, key_env: env.get(key_env) or "reported above"}
    try:
        build_endpoint(sample, "discovery.defaults", config, sample_env)
    except ConfigError as exc:
        problems.lines.extend(exc.problems)
