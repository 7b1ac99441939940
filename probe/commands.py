"""What every command shares: exit codes, the default config path, loading a config or
reporting every problem, and logging set-up. The CLI (``probe.cli``) and every feature's
commands import this; nothing here imports a command."""

from __future__ import annotations

import logging
import os
import sys

from probe.config import Config, ConfigError, load_config
from probe.config.model import ConfigExtension
from probe.secrets import Redactor, install_log_redaction

EXIT_OK, EXIT_FAILING, EXIT_CONFIG = 0, 1, 2
CONFIG_ENV = "RUNPOD_PROBE_CONFIG"
LOG_LEVEL_ENV = "RUNPOD_PROBE_LOG_LEVEL"


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


def load_or_report(path: str, extension: ConfigExtension) -> Config | None:
    """Load the config, or print every problem (one line each) to stderr."""
    try:
        config = load_config(path, None, extension)
    except ConfigError as exc:
        print(f"runpod-probe: invalid config {path}:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return None
    install_log_redaction(Redactor(config.secret_env_names()))
    return config
