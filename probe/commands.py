"""What every command shares: exit codes, the default config path, loading a config or
reporting every problem, and logging set-up. The CLI (``probe.cli``) and every feature's
commands import this; nothing here imports a command."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from probe.config import Config, ConfigError
from probe.config.load import config_of, read_document
from probe.config.model import ConfigExtension
from probe.logs import setup_logging
from probe.secrets import Redactor, install_log_redaction

EXIT_OK, EXIT_FAILING, EXIT_CONFIG = 0, 1, 2
CONFIG_ENV = "RUNPOD_PROBE_CONFIG"
LOG_LEVEL_ENV = "RUNPOD_PROBE_LOG_LEVEL"
# The key variables a config names by default (runpod.api_key_env, runpod.pod_api_key_env).
DEFAULT_KEY_ENVS = ("RUNPOD_API_KEY", "VLLM_API_KEY")
# What an unset key variable reads as for a command that sends nothing (never sent, never
# stored: such a command opens no connection).
NOT_SENT = "unset (this command sends nothing)"
__all__ = ["setup_logging"]  # every command's logging, set up by probe.cli


# Where the install recipe (README, "Install on a VM") puts the service's files: the config,
# and the credentials directory holding its keys. ``$RUNPOD_PROBE_ETC`` moves it (another
# layout, or an install into a throwaway root).
SERVICE_DIR_ENV, SERVICE_DIR = "RUNPOD_PROBE_ETC", "/etc/runpod-probe"


def service_dir() -> Path:
    return Path(os.environ.get(SERVICE_DIR_ENV) or SERVICE_DIR)


def default_config() -> str:
    """``--config`` when not given: ``$RUNPOD_PROBE_CONFIG``, else the service's config
    (/etc/runpod-probe/config.yaml) when it exists, else ``./config.yaml``: on the VM, every
    command reads the file the service runs with."""
    given = os.environ.get(CONFIG_ENV)
    if given:
        return given
    service = service_dir() / "config.yaml"
    return str(service) if service.is_file() else "config.yaml"


def service_credentials() -> Path:
    """The install recipe's credentials directory (root's alone): what a command run by
    root reads when systemd's ``$CREDENTIALS_DIRECTORY`` is not set."""
    return service_dir() / "credentials"


def default_log_level() -> str:
    return os.environ.get(LOG_LEVEL_ENV) or "INFO"


def load_or_report(path: str, extension: ConfigExtension,
                   keys_needed: bool = True) -> Config | None:
    """Load the config, or print every problem (one line each) to stderr. ``keys_needed``
    False: a command that sends nothing (``ledger``, ``learning``) loads it without the
    service's secrets; the key variables it names may be unset."""
    try:
        raw = read_document(path)
        env = None if keys_needed else keys_stand_in(raw)
        config = config_of(raw, env, extension, source=Path(path))
    except ConfigError as exc:
        _report(path, exc)
        return None
    install_log_redaction(Redactor(config.secret_env_names()))
    return config


def load_without_keys(path: str, extension: ConfigExtension) -> tuple[Config, list[str]] | None:
    """``check-config``: the config loaded without the service's secrets (as
    ``load_or_report(keys_needed=False)``) and what it lacks to run here: the problems of
    building it with the process's environment (only unset key variables, then). The file
    is read and parsed once; the second build runs only when the first read a stand-in."""
    try:
        raw = read_document(path)
        env = keys_stand_in(raw)
        config = config_of(raw, env, extension, source=Path(path))
    except ConfigError as exc:
        _report(path, exc)
        return None
    install_log_redaction(Redactor(config.secret_env_names()))
    missing: list[str] = []
    if env.read:
        try:
            config_of(raw, None, extension, source=Path(path))
        except ConfigError as exc:
            missing = list(exc.problems)
    return config, missing


def _report(path: str, exc: ConfigError) -> None:
    if len(exc.problems) == 1:  # one problem, one line (a journal or a CI log reads it)
        print(f"runpod-probe: invalid config {path}: {exc.problems[0]}", file=sys.stderr)
        return
    print(f"runpod-probe: invalid config {path}:", file=sys.stderr)
    for line in exc.problems:
        print(f"  {line}", file=sys.stderr)


def keys_stand_in(raw: Any) -> StandIns:
    """The process's environment, with every key variable the config document ``raw`` names
    (and the default ones) that is unset standing in as ``NOT_SENT`` and its name (each its
    own value: two unset variables are not one key, which the config refuses to send twice)."""
    env = dict(os.environ)
    names = set(DEFAULT_KEY_ENVS) | set(_key_envs(raw))
    stand_ins = {name: f"{NOT_SENT}: {name}" for name in names if not env.get(name)}
    return StandIns({**env, **stand_ins}, frozenset(stand_ins))


class StandIns(Mapping[str, str]):
    """An environment holding stand-ins for unset key variables; ``read`` says whether a
    stand-in was looked up (if not, the process's own environment builds the same config)."""

    def __init__(self, env: dict[str, str], stand_ins: frozenset[str]) -> None:
        self._env, self._stand_ins, self.read = env, stand_ins, False

    def __getitem__(self, name: str) -> str:
        if name in self._stand_ins:
            self.read = True
        return self._env[name]

    def __iter__(self) -> Iterator[str]:
        self.read = self.read or bool(self._stand_ins)  # a walk sees every stand-in
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def _key_envs(node: Any) -> Iterator[str]:
    """Every variable named by an ``*_env`` key (``api_key_env``, ``pod_api_key_env``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                yield value
            else:
                yield from _key_envs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _key_envs(item)


def unknown_endpoint(name: str, known: Iterable[str]) -> str:
    """``no endpoint named "x"`` and the known names closest to it (difflib), or how many
    are known when none is close."""
    names = list(dict.fromkeys(known))  # in the config's order
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        hint = f"did you mean {', '.join(close)}?"
    elif len(names) <= 10:
        hint = f"known: {', '.join(names)}" if names else "no endpoint is configured"
    else:
        hint = f"{len(names)} endpoints known; `runpod-probe status` lists them"
    return f'no endpoint named "{name}" ({hint})'


def group_help(parser: argparse.ArgumentParser) -> Callable[..., int]:
    """The handler of a bare group command (``runpod-probe ledger``): its help, exit 2."""

    def handler(_args: argparse.Namespace, _plugins: object) -> int:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG

    return handler


LISTENER_TIMEOUT_S = 2.0


def listener_url(config: Config, path: str = "/") -> str:
    """The running daemon's listener (``metrics.listen``) as this machine reaches it."""
    host = config.metrics.host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.metrics.port}{path}"


def daemon_answers(config: Config) -> bool:
    """Whether a daemon answers on the config's listener (``HEAD /metrics``)."""
    import httpx

    try:
        with httpx.Client(timeout=LISTENER_TIMEOUT_S, trust_env=False) as client:
            return client.head(listener_url(config, "/metrics")).status_code == 200
    except httpx.HTTPError:
        return False
