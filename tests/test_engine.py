"""The probing engine is built in one place (``probe.engine.probing``), from the config."""

from __future__ import annotations

import ast
import asyncio
from dataclasses import replace
from pathlib import Path

from helpers import config_of, endpoint, role_of

import probe
from probe.app import PLUGINS
from probe.config.model import SchedulerSettings
from probe.engine import probing
from probe.outcome import ProbeResult
from probe.state import FleetState

PACKAGE = Path(probe.__file__).parent


def prober_constructions() -> list[str]:
    """Every module of probe that calls ``Prober(...)``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "Prober":
                    found.append(path.relative_to(PACKAGE).as_posix())
    return found


def test_the_engine_is_constructed_in_one_module() -> None:
    assert prober_constructions() == ["engine.py"]


class Kept:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []

    def record(self, result: ProbeResult) -> int:
        self.results.append(result)
        return len(self.results)


def test_probing_builds_the_prober_from_the_config_and_closes_its_client() -> None:
    config = replace(config_of(endpoint(api_key_env="POD_KEY")),
                     scheduler=SchedulerSettings(max_concurrent=3, max_body_bytes=777))
    env = {"POD_KEY": "secret-" + "k" * 24, "K": "runpod-" + "r" * 24}
    recorder, state = Kept(), FleetState(role_of)

    async def main() -> None:
        async with probing(config, PLUGINS, recorder, env, state) as prober:
            assert prober.state is state and prober.recorder is recorder and prober.env is env
            assert prober.max_body_bytes == 777
            assert prober.resolve("models") is PLUGINS.resolve("models")
            assert prober.redactor(f"key {env['POD_KEY']}") != f"key {env['POD_KEY']}"
            client = prober.client
            assert not client.is_closed
        assert client.is_closed

    asyncio.run(main())


def test_a_sweep_gets_fresh_state_of_its_own() -> None:
    config = config_of(endpoint())

    async def main() -> tuple[FleetState, FleetState]:
        async with probing(config, PLUGINS) as first, probing(config, PLUGINS) as second:
            assert first.recorder is None
            return first.state, second.state

    first, second = asyncio.run(main())
    assert first is not second
