"""The round-trip check against RunPod's real local worker API (``runpod`` package), so the
job answers it parses are RunPod's own, not only our simulator's.

Needs the ``integration`` extra (``pip install -e '.[integration]'``); run with
``python -m pytest -m integration tests/integration/test_runpod_worker.py``. Without
``runpod`` installed it skips, unless ``RUNPOD_PROBE_REQUIRE_INTEGRATION=1`` makes it fail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import fleet_state, parse_config, plan
from runpod_worker import LocalWorker, local_worker, runpod_installed

from probe.app import PLUGINS
from probe.net import make_client
from probe.outcome import Outcome, ProbeResult
from probe.prober import Prober

pytestmark = pytest.mark.integration
ENV = {"RUNPOD_API_KEY": "rk-local-worker-0000"}


@pytest.fixture(scope="module")
def worker() -> Iterator[LocalWorker]:
    if not runpod_installed():
        reason = "the runpod package is not installed (pip install -e '.[integration]')"
        if os.environ.get("RUNPOD_PROBE_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"{reason} (and RUNPOD_PROBE_REQUIRE_INTEGRATION=1)", pytrace=False)
        pytest.skip(reason)
    with local_worker() as running:
        yield running


def round_trip(worker: LocalWorker, tmp_path: Path, job_input: str) -> ProbeResult:
    config = parse_config(
        f'runpod: {{api_base: "{worker.api_base}"}}\n'
        f'storage: {{path: "{tmp_path / "probe.db"}"}}\n'
        "endpoints:\n"
        f"  - {{name: local, kind: serverless, endpoint_id: {worker.endpoint_id}, timeout: 10s,"
        f" roundtrip: {{input: {job_input}, wait: 5s, deadline: 20s}}}}\n", env=ENV)
    job = next(j for j in plan(config) if j.id == "local/roundtrip")

    async def go() -> list[ProbeResult]:
        async with make_client(4) as client:
            prober = Prober(client, fleet_state(config), PLUGINS.resolve, 4, 1 << 20, None, ENV)
            return await prober.run_job(job)

    return asyncio.run(go())[0]


def test_completed_job_from_runpods_worker_api(worker: LocalWorker, tmp_path: Path) -> None:
    result = round_trip(worker, tmp_path, "{prompt: hi}")
    assert result.outcome is Outcome.OK, result.message
    assert result.details["job_status"] == "COMPLETED"
    assert str(result.details["job_id"]).startswith("test-")
    assert result.details["polls"] == 0
    # The local worker API has no /health, so the start cannot be labelled.
    assert result.details["start"] == "unknown"


def test_failed_job_error_from_runpods_worker_api(worker: LocalWorker, tmp_path: Path) -> None:
    result = round_trip(worker, tmp_path, "{fail: true}")
    assert result.outcome is Outcome.JOB_FAILED
    assert result.details["error"] == "<class 'ValueError'>: boom requested"
    assert "boom requested" in result.message
