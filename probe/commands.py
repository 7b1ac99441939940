"""What every command shares: exit codes, the default config path, loading a config or
reporting every problem, and logging set-up. The CLI (``probe.cli``) and every feature's
commands import this; nothing here imports a command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from probe.config import Config, ConfigError, load_config
from probe.config.model import ConfigExtension
from probe.config.yaml_input import YamlRefused, load_yaml
from probe.secrets import Redactor, install_log_redaction

EXIT_OK, EXIT_FAILING, EXIT_CONFIG = 0, 1, 2
CONFIG_ENV = "RUNPOD_PROBE_CONFIG"
LOG_LEVEL_ENV = "RUNPOD_PROBE_LOG_LEVEL"
# The key variables a config names by default (runpod.api_key_env, runpod.pod_api_key_env).
DEFAULT_KEY_ENVS = ("RUNPOD_API_KEY", "VLLM_API_KEY")
# What an unset key variable reads as for a command that sends nothing (never sent, never
# stored: such a command opens no connection).
NOT_SENT = "unset (this command sends nothing)"


def default_config() -> str:
    """``--config`` when not given: ``$RUNPOD_PROBE_CONFIG``, else ``./config.yaml``."""
    return os.environ.get(CONFIG_ENV, "config.yaml")


def default_log_level() -> str:
    return os.environ.get(LOG_LEVEL_ENV, "INFO")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Skipped overlapping runs are counted in runpod_probe_skipped_runs_total instead.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def load_or_report(path: str, extension: ConfigExtension,
                   keys_needed: bool = True) -> Config | None:
    """Load the config, or print every problem (one line each) to stderr. ``keys_needed``
    False: a command that sends nothing (``ledger``, ``learning``) loads it without the
    service's secrets; the key variables it names may be unset."""
    env = None if keys_needed else keys_stand_in(path)
    try:
        config = load_config(path, env, extension)
    except ConfigError as exc:
        if len(exc.problems) == 1:  # one problem, one line (a journal or a CI log reads it)
            print(f"runpod-probe: invalid config {path}: {exc.problems[0]}", file=sys.stderr)
            return None
        print(f"runpod-probe: invalid config {path}:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return None
    install_log_redaction(Redactor(config.secret_env_names()))
    return config


def keys_stand_in(path: str) -> dict[str, str]:
    """The process's environment, with every key variable the config at ``path`` names (and
    the default ones) that is unset standing in as ``NOT_SENT`` and its name (each its own
    value: two unset variables are not one key, which the config refuses to send twice)."""
    env = dict(os.environ)
    names = set(DEFAULT_KEY_ENVS)
    try:
        names.update(_key_envs(load_yaml(Path(path).read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, YamlRefused):
        pass  # not readable: load_config reports why
    for name in names:
        if not env.get(name):
            env[name] = f"{NOT_SENT}: {name}"
    return env


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
