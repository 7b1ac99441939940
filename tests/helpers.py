"""Small builders shared by unit tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from probe.config.model import (
    Config,
    Endpoint,
    MetricsSettings,
    RunpodSettings,
    SchedulerSettings,
    StorageSettings,
)


def endpoint(**overrides: Any) -> Endpoint:
    values: dict[str, Any] = dict(
        name="pod-a", kind="pod", openai_base="http://pod.test/v1", root_url="http://pod.test",
        interval_s=30.0, timeout_s=2.0, tries=1, retry_delay_s=0.0, checks=("models",),
        api_key_env=None, model=None, min_context=None, pod_id="a", port=8000,
    )
    values.update(overrides)
    return Endpoint(**values)


def config_of(*endpoints: Endpoint) -> Config:
    """A minimal valid Config around ``endpoints`` (unit tests of state and metrics)."""
    return Config(RunpodSettings("K", "http://x/v2", "http://x/{pod_id}-{port}"),
                  StorageSettings(path=Path("x.db")), MetricsSettings("127.0.0.1", 0),
                  SchedulerSettings(), endpoints)


def tool(name: str) -> str:
    """Path of an external tool; skipped locally when missing, a failure in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("RUNPOD_PROBE_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"{name} is required (apt-get install prometheus)")
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return path
