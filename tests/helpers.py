"""Small builders shared by unit tests."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from probe import config as _config
from probe.app import PLUGINS
from probe.check import CheckFn, CheckSpec
from probe.config.model import (
    Config,
    Endpoint,
    MetricsSettings,
    RunpodSettings,
    SchedulerSettings,
    StorageSettings,
)
from probe.job import Job
from probe.outcome import CheckRole
from probe.state import FleetState


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
                  SchedulerSettings(), endpoints, extension=PLUGINS.config)


def tool(name: str) -> str:
    """Path of an external tool; skipped locally when missing, a failure in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("RUNPOD_PROBE_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"{name} is required (.ci/run installs it)")
        pytest.skip(f"{name} not installed (.ci/run lists the packages)")
    return path


# -- the app's plugins, for tests that parse configs or run checks the way the CLI does ------
def parse_config(text: str, env: Any = None, source: Path | None = None) -> Config:
    """``probe.config.parse_config`` with every feature of the composition root."""
    return _config.parse_config(text, env, PLUGINS.config, source)


def load_config(path: Path | str, env: Any = None) -> Config:
    return _config.load_config(path, env, PLUGINS.config)


def plan(config: Config) -> list[Job]:
    return PLUGINS.plan(config)


def fleet_state(config: Config) -> FleetState:
    """A state with every planned check of ``config`` declared."""
    state = FleetState(role_of)
    state.configure(config, plan(config))
    return state


def spec(name: str, run: CheckFn) -> CheckSpec:
    """``run`` as check ``name``, with the policy the app gives that check (if any)."""
    try:
        policy = PLUGINS.resolve(name).policy
    except KeyError:
        policy = None
    return CheckSpec(name, run, policy)


def job_of(target: Endpoint, *checks: str) -> Job:
    """The endpoint's own job (its checks, or ``checks``)."""
    return Job(f"{target.name}/checks", target, checks or target.checks, target.interval_s)


def role_of(check: str) -> CheckRole:
    """The role the composition root's check specs give ``check`` (what a result of it made
    by the real runner carries)."""
    return PLUGINS.role_of(check)


def free_port() -> int:
    """A port the OS had free a moment ago, for a server a test starts on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_metrics(url: str, needle: str, timeout_s: float = 30) -> str:
    """The /metrics page at ``url`` once it shows ``needle``; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            text = httpx.get(url, timeout=2).text
            if needle in text:
                return text
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never appeared on {url}")
