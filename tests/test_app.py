"""The composition root: features are values, merged in one place, and what runs does not
depend on what the process happened to import or parse before."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from helpers import config_of, endpoint

import probe
from probe.app import FEATURES, PLUGINS
from probe.check import CheckSpec
from probe.config import parse_config
from probe.config.model import ConfigExtension, StorageSettings
from probe.core_checks import models
from probe.daemon import Daemon
from probe.features import Feature, Plugins
from probe.outcome import CheckRole


def families(daemon_plugins: Plugins, tmp_path: Path) -> list[str]:
    """The metric families a running daemon exposes on /metrics."""
    config = replace(config_of(endpoint(root_url="http://127.0.0.1:9",
                                        openai_base="http://127.0.0.1:9/v1")),
                     storage=StorageSettings(tmp_path / "p.db"))

    async def main() -> list[str]:
        daemon = Daemon(config, daemon_plugins, env={})
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop, install_signals=False))
        await daemon.ready.wait()
        text = (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text
        stop.set()
        await task
        return sorted({line.split()[2] for line in text.splitlines()
                       if line.startswith("# TYPE ")})

    return asyncio.run(main())


def test_metrics_families_are_the_same_before_and_after_a_config_was_parsed(
        tmp_path: Path) -> None:
    before = families(PLUGINS, tmp_path / "a")
    parse_config("endpoints:\n  - {name: p, kind: pod, pod_id: x}\nprompts: []\n",
                 {"RUNPOD_API_KEY": "k" * 8}, PLUGINS.config)
    after = families(PLUGINS, tmp_path / "b")
    assert before == after
    # every feature's own collector is there: vLLM, prompts, serverless, ledger
    for family in ("runpod_probe_vllm_requests_waiting", "runpod_probe_prompt_pass",
                   "runpod_probe_serverless_jobs", "runpod_probe_endpoint_state"):
        assert family in before


def test_importing_every_module_registers_nothing() -> None:
    """Importing any module has no side effect on what runs: the merged plugins built before
    and after importing every module of the package are equal."""
    fresh = Plugins.of(*FEATURES)
    for info in pkgutil.walk_packages(probe.__path__, "probe."):
        if info.name != "probe.__main__":
            importlib.import_module(info.name)
    assert Plugins.of(*FEATURES) == fresh
    assert [s.name for s in PLUGINS.checks] == [
        "models", "health", "vllm_metrics", "context", "context_active", "prompt", "queue",
        "roundtrip"]


def test_a_config_parsed_without_a_features_extension_refuses_its_section() -> None:
    text = "endpoints:\n  - {name: p, kind: pod, pod_id: x}\nprompts: []\n"
    with pytest.raises(Exception, match="prompts: unknown key"):
        parse_config(text, {"RUNPOD_API_KEY": "k" * 8}, ConfigExtension())


def test_features_merge_in_order_and_refuse_a_name_claimed_twice() -> None:
    one = Feature("one", checks=(CheckSpec("models", models.check),))
    two = Feature("two", checks=(CheckSpec("models", models.check),))
    with pytest.raises(ValueError, match='check "models" is claimed by two features'):
        Plugins.of(one, two)
    with pytest.raises(ValueError, match="listed twice"):
        Plugins.of(one, one)
    section = ConfigExtension(sections={"x": lambda raw, path, problems, ctx: raw})
    with pytest.raises(ValueError, match='config section "x" is claimed by two features'):
        Plugins.of(Feature("a", config=section), Feature("b", config=section))
    assert PLUGINS.resolve("prompt:anything").name == "prompt"
    with pytest.raises(KeyError):
        PLUGINS.resolve("nope")
    # asked again (now from what was resolved): the same answers
    assert PLUGINS.resolve("prompt:anything").name == "prompt"
    assert PLUGINS.resolve("prompt:other") is PLUGINS.resolve("prompt:anything")
    assert PLUGINS.resolve("models") is PLUGINS.resolve("models")
    assert PLUGINS.resolve("models").name == "models"
    with pytest.raises(KeyError):
        PLUGINS.resolve("nope")
    with pytest.raises(KeyError):
        PLUGINS.resolve("models:x")


def test_check_roles_come_from_the_specs() -> None:
    assert PLUGINS.role_of("models") is CheckRole.SERVED_MODEL
    assert PLUGINS.role_of("prompt:arithmetic") is CheckRole.ANSWERS
    assert PLUGINS.role_of("health") is CheckRole.AVAILABILITY
    assert PLUGINS.role_of("context") is CheckRole.AVAILABILITY
    # a standing pseudo-endpoint's check, which no feature answers
    assert PLUGINS.role_of("no-such-check") is CheckRole.AVAILABILITY
