"""Shared fixtures: the simulated RunPod fleet on 127.0.0.1 and config files pointing at it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test modules import shared helpers by name (helpers, simconfig, ledgerhelpers, ...): the
# directories that hold them are on the path (pytest runs with --import-mode=importlib, so
# test files in different directories may share a name, e.g. test_daemon.py).
for _helpers in ("", "ledger", "export", "integration", "storage", "exposition"):
    sys.path.insert(0, str(Path(__file__).parent / _helpers))

SIM_KEY = "sim-key-5b2f0c1e9a7d4c3b"
DURATIONS = Path(__file__).parent / "durations.json"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` starts two workers per core: the suite waits (for daemons, servers and
    scaled clocks) more than it computes. With one worker per core a clean run kept the two
    cores 58 % busy (628 CPU-s in 541 s)."""
    return 2 * len(os.sched_getaffinity(0))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the longest tests first, so that the run does not end with one
    worker alone on a long test while the others are idle. Seconds per test come from
    tests/durations.json (the slow ones only; `.ci/test-durations` writes it); a test not
    listed counts as fast and keeps its place. Tests of one xdist_group are one unit of
    work: they move together, in their order, weighed by their sum."""
    if "PYTEST_XDIST_WORKER" not in os.environ or not DURATIONS.is_file():
        return  # serially (-n 0) the order stays as written
    seconds: dict[str, float] = json.loads(DURATIONS.read_text())

    def unit(item: pytest.Item) -> str:
        group = item.get_closest_marker("xdist_group")
        return f"group {group.args[0]}" if group else item.nodeid

    def listed(item: pytest.Item) -> float:  # xdist adds "@<group>" to a grouped test's id
        group = item.get_closest_marker("xdist_group")
        nodeid = item.nodeid.removesuffix(f"@{group.args[0]}") if group else item.nodeid
        return seconds.get(nodeid, 0.0)

    weight: dict[str, float] = {}
    for item in items:
        weight[unit(item)] = weight.get(unit(item), 0.0) + listed(item)
    items.sort(key=lambda item: -weight[unit(item)])


@pytest.fixture
def sim_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The key the simulator expects, in the env var the generated configs name."""
    monkeypatch.setenv("RUNPOD_API_KEY", SIM_KEY)
    return {**os.environ, "RUNPOD_API_KEY": SIM_KEY}


@pytest.fixture
def sim() -> Iterator[object]:
    from probe.simulator import Fleet, Simulator

    with Simulator(Fleet.default(), api_key=SIM_KEY) as simulator:
        yield simulator
