"""Load ``config.yaml`` into a frozen ``Config`` or fail closed with every problem listed.

Precedence for endpoint settings: built-in default < RunPod scope environment variables
(RUNPOD_TIMEOUT_MS, RUNPOD_TRIES, RUNPOD_RETRY_DELAY_MS, RUNPOD_MODEL/MODEL,
RUNPOD_BASE_URL) < the file's ``defaults`` < the endpoint's own keys.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from probe.config.account_key import endpoint_key_problem, pods_key_problem
from probe.config.fields import Fields, Problems, env_int, quoted, url_problem
from probe.config.literal_secrets import find_literal_secrets, mask_secrets
from probe.config.model import (
    DEFAULT_CHECKS,
    KINDS,
    Config,
    ConfigExtension,
    Endpoint,
    Hysteresis,
    MetricsSettings,
    ParseContext,
    RunpodSettings,
    SchedulerSettings,
    StorageSettings,
)
from probe.config.shard import parse_shard
from probe.config.vantage import parse_instance, parse_peers
from probe.config.yaml_input import MAX_BYTES, YamlRefused, load_yaml

DEFAULT_API_BASE = "https://api.runpod.ai/v2"
DEFAULT_PROXY_URL = "https://{pod_id}-{port}.proxy.runpod.net"
DEFAULT_STORAGE_PATH = "/var/lib/runpod-probe/probe.db"
DEFAULT_LISTEN = "127.0.0.1:9464"

TOP_LEVEL = ("runpod", "defaults", "storage", "metrics", "scheduler", "verdict", "shard",
             "instance", "peers", "endpoints")
HYSTERESIS_KEYS = ("down_after", "up_after", "persistent_after")
SETTINGS = ("interval", "timeout", "tries", "retry_delay", "model", "min_context", "api_key_env",
            "checks")
ENDPOINT_KEYS = ("name", "kind", "pod_id", "port", "endpoint_id", "base_url", "gpu_type",
                 "data_center", *SETTINGS)


class ConfigError(Exception):
    """The config must not run. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(path: str | Path, env: Mapping[str, str] | None,
                extension: ConfigExtension) -> Config:
    """Read and parse ``path`` with the keys ``extension`` adds (see ``parse_config``)."""
    return config_of(read_document(path), env, extension, source=Path(path))


def read_document(path: str | Path) -> Any:
    """The YAML document of the config at ``path``, or ``ConfigError`` (unreadable, too big,
    not UTF-8, not YAML we read). A command that builds the config twice (``check-config``:
    without the keys, then with them) reads and parses the file once."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # refused before reading it
            raise ConfigError([f"{path}: {size} bytes is more than the {MAX_BYTES} bytes a "
                               "config may have"])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    return _document(text)


def _document(text: str) -> Any:
    try:
        return load_yaml(text)
    except YamlRefused as exc:  # it may quote a key of the file
        raise ConfigError([mask_secrets(str(exc))]) from None


def parse_config(text: str, env: Mapping[str, str] | None, extension: ConfigExtension,
                 source: Path | None = None) -> Config:
    """The validated config, or ``ConfigError`` with every problem (see ``config_of``)."""
    return config_of(_document(text), env, extension, source)


def config_of(raw: Any, env: Mapping[str, str] | None, extension: ConfigExtension,
              source: Path | None = None) -> Config:
    """The validated config of a parsed YAML document, or ``ConfigError`` with every problem.
    ``env`` is the environment the config is read with (None: the process's); ``extension``
    holds what the features add (their sections, endpoint keys, validators and checks).
    ``raw`` is only read, never changed: one document may be built with two environments."""
    env = os.environ if env is None else env
    problems = Problems()
    for where, reason in find_literal_secrets(raw):
        problems.add(where, reason)
    top = Fields(raw, "", problems, (*TOP_LEVEL, *extension.sections))
    env_defaults = _env_defaults(env, problems)
    runpod = _runpod(Fields(top.raw.get("runpod"), "runpod", problems,
                            ("api_key_env", "pod_api_key_env", "api_base", "proxy_url")), env)
    refused = pods_key_problem(runpod, env)
    if refused:
        problems.add("runpod.pod_api_key_env", refused)
    defaults = _settings(Fields(top.raw.get("defaults"), "defaults", problems, SETTINGS),
                         env_defaults, extension.checks)
    storage = _storage(Fields(top.raw.get("storage"), "storage", problems, ("path", "retention")),
                       env)
    metrics = _metrics(Fields(top.raw.get("metrics"), "metrics", problems,
                              ("listen", "per_check", "native_histograms")))
    scheduler = _scheduler(Fields(top.raw.get("scheduler"), "scheduler", problems,
                                  ("max_concurrent", "spread", "max_body_bytes",
                                   "keepalive")))
    verdict = None if top.raw.get("verdict") is None else parse_hysteresis(
        Fields(top.raw.get("verdict"), "verdict", problems, HYSTERESIS_KEYS))
    shard = parse_shard(top.raw.get("shard"), problems)
    instance = parse_instance(top.raw.get("instance"), problems)
    peers = parse_peers(top.raw.get("peers"), problems)
    # a section that supplies endpoints at run time (discovery) makes the list optional
    optional = any(top.raw.get(key) is not None for key in extension.endpoint_sources)
    endpoints = _endpoints(top.raw.get("endpoints"), problems, runpod, defaults, env, extension,
                           optional)
    context = ParseContext(env, tuple(extension.endpoint_keys))
    sections = {key: parse(top.raw.get(key), key, problems, context)
                for key, parse in extension.sections.items()}
    config = Config(runpod=runpod, storage=storage, metrics=metrics, scheduler=scheduler,
                    endpoints=tuple(endpoints), source=source, verdict=verdict,
                    sections=sections,
                    defaults=defaults, extension=extension, shard=shard,
                    instance=instance, peers=peers)
    for validate in extension.validators:
        validate(config, problems)
    for env_validate in extension.env_validators:
        env_validate(config, problems, env)
    if problems:
        raise ConfigError([mask_secrets(line) for line in problems.lines])
    return config


def parse_hysteresis(f: Fields) -> Hysteresis:
    """``down_after``, ``up_after`` and ``persistent_after`` (``verdict:``, or the older
    ``ledger:``), with the defaults for what is not given."""
    default = Hysteresis()
    return Hysteresis(
        down_after=f.integer("down_after", default.down_after, minimum=1),
        up_after=f.integer("up_after", default.up_after, minimum=1),
        persistent_after_s=f.duration("persistent_after", default.persistent_after_s),
    )


def _env_defaults(env: Mapping[str, str], problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var, key, scale, minimum in (("RUNPOD_TIMEOUT_MS", "timeout", 0.001, 1),
                                     ("RUNPOD_TRIES", "tries", None, 1),
                                     ("RUNPOD_RETRY_DELAY_MS", "retry_delay", 0.001, 0)):
        number = env_int(env, var, minimum, problems)
        if number is not None:
            out[key] = number * scale if scale else number
    model = env.get("RUNPOD_MODEL") or env.get("MODEL")
    if model:
        out["model"] = model
    return out


def _runpod(f: Fields, env: Mapping[str, str]) -> RunpodSettings:
    api_base = env.get("RUNPOD_BASE_URL") or DEFAULT_API_BASE
    if not f.has("api_base") and url_problem(api_base):
        f.problems.add("env.RUNPOD_BASE_URL", url_problem(api_base) or "")
    return RunpodSettings(
        api_key_env=f.text("api_key_env", "RUNPOD_API_KEY"),
        api_base=f.url("api_base", api_base).rstrip("/"),
        proxy_url=f.url("proxy_url", DEFAULT_PROXY_URL,
                        placeholders=frozenset({"pod_id", "port"})).rstrip("/"),
        pod_api_key_env=f.text("pod_api_key_env", "VLLM_API_KEY"),
    )


def _default_key_env(kind: str | None, runpod: RunpodSettings,
                     env: Mapping[str, str]) -> str | None:
    """The key an endpoint sends when its config names none: RunPod's account key for a
    serverless endpoint (RunPod's API wants it), a pod's own vLLM key only if one is set
    (never the account key: whoever runs the pod's container would receive it), nothing
    for an OpenAI-compatible provider."""
    if kind == "serverless":
        return runpod.api_key_env
    if kind == "pod" and env.get(runpod.pod_api_key_env):
        return runpod.pod_api_key_env
    return None


def _settings(f: Fields, base: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """Read the per-endpoint settings block, layered over ``base``."""
    out = dict(base)
    for key, value in (("interval", f.duration("interval")), ("timeout", f.duration("timeout")),
                       ("tries", f.integer("tries", minimum=1)),
                       ("retry_delay", f.duration("retry_delay", positive=False)),
                       ("model", f.text("model")),
                       ("min_context", f.integer("min_context", minimum=1))):
        if value is not None:
            out[key] = value
    if "api_key_env" in f.raw:  # null means "send no key"
        out["api_key_env"] = f.raw["api_key_env"] and f.text("api_key_env")
    if f.has("checks"):
        checks = f.string_list("checks", ())
        unknown = [c for c in checks if c not in known]
        if unknown:
            f.fail("checks", f'unknown check "{unknown[0]}" (known: {", ".join(known)})')
        else:
            out["checks"] = checks
    return out


def default_storage_path(env: Mapping[str, str]) -> Path:
    """``probe.db`` in the state directory systemd gives the service (``$STATE_DIRECTORY``,
    from the unit's ``StateDirectory=``; its first entry), else /var/lib/runpod-probe."""
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / "probe.db" if state else Path(DEFAULT_STORAGE_PATH)


def _storage(f: Fields, env: Mapping[str, str]) -> StorageSettings:
    return StorageSettings(path=Path(f.text("path", default_storage_path(env))),
                           retention_s=f.duration("retention"))


def _metrics(f: Fields) -> MetricsSettings:
    listen = f.text("listen", DEFAULT_LISTEN)
    host, sep, port = str(listen).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        f.fail("listen", f'expected "host:port" like "127.0.0.1:9464", got "{listen}"')
        return MetricsSettings("127.0.0.1", 9464)
    return MetricsSettings(host.strip("[]"), int(port), f.boolean("per_check", False),
                           f.boolean("native_histograms", False))


def _concurrency(f: Fields) -> int | None:
    """``max_concurrent``: ``auto`` (the default: sized from the plan) or a whole number."""
    value = f.raw.get("max_concurrent")
    if value == "auto":
        return None
    if isinstance(value, str):
        f.fail("max_concurrent", f'expected a whole number or "auto", got "{value}"')
        return None
    limit: int | None = f.integer("max_concurrent", None, minimum=1)
    return limit


def _scheduler(f: Fields) -> SchedulerSettings:
    return SchedulerSettings(
        max_concurrent=_concurrency(f),
        spread=f.boolean("spread", True),
        max_body_bytes=f.integer("max_body_bytes", 4 * 1024 * 1024, minimum=1024),
        keepalive=f.boolean("keepalive", True),
    )


def _endpoints(raw: Any, problems: Problems, runpod: RunpodSettings,
               defaults: dict[str, Any], env: Mapping[str, str], extension: ConfigExtension,
               optional: bool = False) -> list[Endpoint]:
    if raw is None or raw == []:
        if not optional:
            problems.add("endpoints", "at least one endpoint is required")
        return []
    if not isinstance(raw, list):
        problems.add("endpoints", "expected a list of endpoints")
        return []
    seen: dict[str, int] = {}
    out = []
    for index, item in enumerate(raw):
        path = f"endpoints[{index}]"
        f = Fields(item, path, problems, (*ENDPOINT_KEYS, *extension.endpoint_keys))
        name = _name(f)
        if name is not None:
            if name in seen:
                f.fail("name", f'duplicate endpoint name "{name}" (also endpoints[{seen[name]}])')
            seen.setdefault(name, index)
        endpoint = _endpoint(f, name, runpod, defaults, env, extension)
        if endpoint is not None:
            out.append(endpoint)
    return out


def build_endpoint(raw: dict[str, Any], path: str, config: Config,
                   env: Mapping[str, str]) -> Endpoint:
    """Build one endpoint from raw config keys exactly as an ``endpoints:`` item would be
    (file defaults, URL templates, feature keys), for endpoints that are not in the file
    (discovered ones). Raises ``ConfigError`` with the problems, each under ``path``."""
    problems = Problems()
    extension = config.extension
    f = Fields(raw, path, problems, (*ENDPOINT_KEYS, *extension.endpoint_keys))
    endpoint = _endpoint(f, _name(f), config.runpod, config.defaults, env, extension)
    if problems or endpoint is None:
        raise ConfigError(problems.lines or [f"{path}: cannot build the endpoint"])
    return endpoint


def _name(f: Fields) -> str | None:
    """The endpoint's name: printable text on one line. It is written into every log line,
    ledger entry and report about the endpoint, where a line break would forge a line."""
    name: str | None = f.text("name", required=True)
    if name is not None and not name.isprintable():
        f.fail("name", f"{quoted(name)} has a line break, tab or control character; a name "
                       "is printable text on one line")
        return None
    return name


def _endpoint(f: Fields, name: str | None, runpod: RunpodSettings, defaults: dict[str, Any],
              env: Mapping[str, str], extension: ConfigExtension) -> Endpoint | None:
    kind = f.text("kind", required=True)
    if kind is not None and kind not in KINDS:
        f.fail("kind", f'unknown kind "{kind}" (expected one of: {", ".join(KINDS)})')
        kind = None
    s = _settings(f, {"interval": 30.0, "timeout": 10.0, "tries": 2, "retry_delay": 0.5,
                      "api_key_env": _default_key_env(kind, runpod, env),
                      **defaults}, extension.checks)
    if s["timeout"] > s["interval"]:
        f.fail("timeout", f"timeout ({s['timeout']:g}s) must not be longer than the interval "
                          f"({s['interval']:g}s)")
    elif attempts_s(s) > s["interval"]:
        f.fail("tries", f"{s['tries']} tries x timeout {_s(s['timeout'])} + {s['tries'] - 1} x "
                        f"retry_delay {_s(s['retry_delay'])} = {_s(attempts_s(s))} is longer "
                        f"than the interval ({_s(s['interval'])}): a check that cannot pass "
                        "must not hold the endpoint's next run back")
    key_env = s.get("api_key_env")
    if key_env and not env.get(key_env):
        f.fail("api_key_env", f"environment variable {key_env} is not set")
    urls = _urls(f, kind, runpod)
    if name is None or kind is None or urls is None:
        return None
    # a pods' key that is the account key is refused once, as runpod.pod_api_key_env
    if not (kind == "pod" and key_env == runpod.pod_api_key_env):
        refused = endpoint_key_problem(kind, key_env, urls[0], runpod, env)
        if refused:
            f.fail("api_key_env", refused)
    # Held per endpoint for the daemon's life (10,000 of them): the default checks' own tuple
    # when the list is the default one, and only the feature keys that are set (an endpoint
    # reads an absent key as None), 64-184 bytes of ``extra`` instead of 272 for all nine.
    checks = tuple(s.get("checks") or DEFAULT_CHECKS[kind])
    if checks == DEFAULT_CHECKS.get(kind):
        checks = DEFAULT_CHECKS[kind]
    extra = {key: parse(f) for key, parse in extension.endpoint_keys.items()}
    return Endpoint(
        name=name, kind=KINDS[KINDS.index(kind)], openai_base=urls[0], root_url=urls[1],
        interval_s=s["interval"], timeout_s=s["timeout"], tries=s["tries"],
        retry_delay_s=s["retry_delay"], checks=checks,
        api_key_env=_shared(key_env or None), model=_shared(s.get("model")),
        min_context=s.get("min_context"),
        pod_id=f.raw.get("pod_id"), port=f.raw.get("port", 8000) if kind == "pod" else None,
        endpoint_id=f.raw.get("endpoint_id"), gpu_type=_shared(f.text("gpu_type")),
        data_center=_shared(f.text("data_center")),
        extra={key: value for key, value in extra.items() if value is not None},
    )


def _shared(text: Any) -> Any:
    """A text many endpoints repeat (their model, key variable, GPU type, data centre) as
    one string: the YAML reader makes a string per occurrence, held per endpoint."""
    return sys.intern(text) if type(text) is str else text


def attempts_s(settings: Mapping[str, Any]) -> float:
    """The longest one check can take with these settings: every try timing out, with the
    pauses between them (``probe.job.Attempts.bound_s``); it must fit in the interval."""
    tries = int(settings["tries"])
    return float(tries * settings["timeout"] + (tries - 1) * settings["retry_delay"])


def _s(seconds: float) -> str:
    """Seconds as written in a problem: "6.5s", "1050049.5s" (never 1e+06)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _urls(f: Fields, kind: str | None, runpod: RunpodSettings) -> tuple[str, str] | None:
    """(openai_base, root_url) for the endpoint's kind, or None when it cannot be built."""
    wrong = {"pod": ("endpoint_id", "base_url"), "serverless": ("pod_id", "port", "base_url"),
             "openai": ("pod_id", "port", "endpoint_id")}.get(kind or "", ())
    for key in wrong:
        if key in f.raw:
            f.fail(key, f'not used by kind "{kind}"')
    if kind == "pod":
        pod_id = f.text("pod_id", required=True)
        port = f.integer("port", 8000, minimum=1)
        if port is not None and port > 65535:
            f.fail("port", f"must be at most 65535, got {port}")
            return None
        if pod_id is None or port is None:
            return None
        root = runpod.proxy_url.format(pod_id=pod_id, port=port)
        return f"{root}/v1", root
    if kind == "serverless":
        endpoint_id = f.text("endpoint_id", required=True)
        if endpoint_id is None:
            return None
        root = f"{runpod.api_base}/{endpoint_id}"
        return f"{root}/openai/v1", root
    if kind == "openai":
        base = f.url("base_url", required=True)
        if base is None:
            return None
        base = base.rstrip("/")
        root = base[: -len("/v1")] if base.endswith("/v1") else base
        return (base if base.endswith("/v1") else f"{base}/v1"), root
    return None
