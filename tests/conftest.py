"""Shared fixtures: the simulated RunPod fleet on 127.0.0.1 and config files pointing at it."""

from __future__ import annotations

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
