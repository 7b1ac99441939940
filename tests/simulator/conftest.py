"""One simulator for the whole session, plus helpers that add fresh targets to it so tests
that change state (counters, behaviours) never see each other's traffic."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import httpx
import pytest

from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator

# Fast timings so the whole suite stays well under 20 s.
FAST_POD = {"delay_s": 0.3, "ttft_delay_s": 0.3}
FAST_ENDPOINT = {"cold_start_s": 0.4, "complete_after_s": 0.5}

_ids = itertools.count()


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    with Simulator(Fleet.default()) as simulator:
        yield simulator


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=2.0) as http:
        yield http


@pytest.fixture()
def pod(sim: Simulator) -> Callable[..., str]:
    """Add a pod with this behaviour and return its base URL (proxy URL)."""

    def make(behaviour: str = "healthy", **fields: object) -> str:
        pod_id = f"t{next(_ids):04d}-{behaviour.replace('_', '-')}"
        spec = PodSpec(behaviour, **{**FAST_POD, **fields})  # type: ignore[arg-type]
        sim.fleet.add_pod(pod_id, spec)
        return sim.pod_url(pod_id)

    return make


@pytest.fixture()
def endpoint(sim: Simulator) -> Callable[..., str]:
    """Add a serverless endpoint with this behaviour and return its base URL."""

    def make(behaviour: str = "healthy", **fields: object) -> str:
        endpoint_id = f"t{next(_ids):04d}-{behaviour.replace('_', '-')}"
        spec = ServerlessSpec(behaviour, **{**FAST_ENDPOINT, **fields})  # type: ignore[arg-type]
        sim.fleet.add_serverless(endpoint_id, spec)
        return f"{sim.api_base}/{endpoint_id}"

    return make
