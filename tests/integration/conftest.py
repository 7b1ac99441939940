"""Fixtures for the integration tier: a real vLLM OpenAI server serving a tiny random Llama.

Everything under this directory is marked ``integration`` (deselected by default; run with
``python -m pytest -m integration tests/integration``). The server runs from the venv that
``.ci/vllm-env`` builds; point ``RUNPOD_PROBE_VLLM_PYTHON`` at that venv's python. Without it
the tier is skipped, unless ``RUNPOD_PROBE_REQUIRE_INTEGRATION=1`` (set in CI) makes it fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from vllm_harness import (
    StartVllmServer,
    VllmServer,
    build_tiny_model,
    launch_server,
    start_server,
)

HERE = Path(__file__).parent


def _cache_root() -> Path:
    """The machine-wide cache ``.ci/vllm-env`` builds its venv in (same default)."""
    if root := os.environ.get("RUNPOD_PROBE_CI_CACHE"):
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "runpod-probe"


_startups: list[tuple[str, float]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vllm_throwaway(keep_alive_on_engine_death): the test takes a throwaway vLLM server "
        "of this kind (start_vllm_server), so the run starts it ahead, during the test before",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _startups:
        terminalreporter.section("vLLM server start-up")
        for label, seconds in _startups:
            terminalreporter.write_line(f"{label}: healthy after {seconds:.1f} s")


def _unavailable(reason: str) -> None:
    if os.environ.get("RUNPOD_PROBE_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"{reason} (and RUNPOD_PROBE_REQUIRE_INTEGRATION=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The python of the vLLM venv, from ``RUNPOD_PROBE_VLLM_PYTHON``."""
    value = os.environ.get("RUNPOD_PROBE_VLLM_PYTHON", "")
    if not value:
        _unavailable(
            "RUNPOD_PROBE_VLLM_PYTHON is not set; run "
            "`export RUNPOD_PROBE_VLLM_PYTHON=$(.ci/vllm-env | tail -1)` first"
        )
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        _unavailable(f"RUNPOD_PROBE_VLLM_PYTHON={value} is not an executable file")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(vllm_python: Path) -> Path:
    """The tiny model, built once and cached beside the vLLM venv
    (``RUNPOD_PROBE_TINY_MODEL_DIR`` overrides)."""
    outdir = Path(os.environ.get("RUNPOD_PROBE_TINY_MODEL_DIR") or _cache_root() / "tiny-llama")
    return build_tiny_model(vllm_python, outdir)


class ThrowawayServers:
    """Throwaway servers started one test ahead. A server takes ~40 s of CPU-bound start-up;
    a destructive test mostly waits (for the engine's death to show). So when a test takes
    its server, the server of the next test marked ``vllm_throwaway`` (in run order) is
    launched, and starts while this test runs. A test whose kind was not launched ahead
    launches its own; one launched ahead and never taken is stopped at the end."""

    def __init__(self, vllm_python: Path, model_dir: Path, workdirs: pytest.TempPathFactory,
                 demand: list[bool]) -> None:
        self.vllm_python, self.model_dir, self.workdirs = vllm_python, model_dir, workdirs
        self.demand = demand  # keep_alive_on_engine_death of each marked test, in run order
        self.ahead: list[VllmServer] = []

    def launch(self, keep_alive_on_engine_death: bool) -> VllmServer:
        return launch_server(self.vllm_python, self.model_dir,
                             self.workdirs.mktemp("vllm-throwaway"),
                             keep_alive_on_engine_death=keep_alive_on_engine_death)

    def launch_next(self) -> None:
        if self.demand and not self.ahead:
            self.ahead.append(self.launch(self.demand.pop(0)))

    def take(self, keep_alive_on_engine_death: bool) -> VllmServer:
        match = [s for s in self.ahead if s.keep_alive_on_engine_death
                 == keep_alive_on_engine_death]
        if match:
            server = match[0]
            self.ahead.remove(server)
        else:
            server = self.launch(keep_alive_on_engine_death)
        self.launch_next()
        return server.until_healthy()

    def stop(self) -> None:
        for server in self.ahead:
            server.stop(grace_s=5)


def _throwaway_demand(items: list[pytest.Item]) -> list[bool]:
    return [bool(mark.kwargs.get("keep_alive_on_engine_death", False))
            for item in items if (mark := item.get_closest_marker("vllm_throwaway"))]


@pytest.fixture(scope="session")
def throwaway_servers(
    request: pytest.FixtureRequest, vllm_python: Path, tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ThrowawayServers]:
    servers = ThrowawayServers(vllm_python, tiny_model_dir, tmp_path_factory,
                               _throwaway_demand(request.session.items))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def vllm_server(
    vllm_python: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory,
    throwaway_servers: ThrowawayServers,
) -> Iterator[VllmServer]:
    """One healthy server shared by the whole session. Do not break it: use
    ``start_vllm_server`` for destructive tests. The first throwaway server starts beside
    it."""
    throwaway_servers.launch_next()
    server = start_server(vllm_python, tiny_model_dir, tmp_path_factory.mktemp("vllm-session"))
    _startups.append(("session server", server.startup_s))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_vllm_server(throwaway_servers: ThrowawayServers) -> Iterator[StartVllmServer]:
    """Factory for throwaway servers, e.g. ``start_vllm_server(keep_alive_on_engine_death=True)``.

    Each call gives a separate server (one started ahead when the test is marked
    ``vllm_throwaway`` with that kind); all are stopped when the test ends.
    """
    started: list[VllmServer] = []

    def start(keep_alive_on_engine_death: bool = False) -> VllmServer:
        server = throwaway_servers.take(keep_alive_on_engine_death)
        started.append(server)
        _startups.append(
            (f"throwaway server (keep_alive={keep_alive_on_engine_death})", server.startup_s)
        )
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
