"""Two shards of the real daemon (two processes) against one simulated fleet, configured
and discovered endpoints together: they split it exactly, and each says which shard it is."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from export_servers import free_port, wait_for
from simconfig import header, pods, write

from probe.config.model import owner

# The simulator's default fleet as discovery finds it (tests/e2e/test_discovery.py), with
# qwen-healthy configured under another name (a configured endpoint wins its pod).
DISCOVERED = {"vllm-down", "slow-pod", "small-ctx", "other-model", "garbage-pod",
              "endless-pod", "dead-engine", "wrong-answer", "vllm-healthy", "vllm-incident",
              "vllm-cold"}
CONFIGURED = {"front"}
INFO = re.compile(r'^runpod_probe_endpoint_info\{endpoint="([^"]+)"', re.MULTILINE)


def shard_config(sim: Any, tmp: Path, index: int, port: int) -> Path:
    state = tmp / f"shard-{index}"
    state.mkdir()
    text = header(sim, state, interval="2s").replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    text += (f'discovery: {{api: "{sim.rest_api_base}", interval: 1m, timeout: 1s}}\n'
             f"shard: {{index: {index}, count: 2}}\n")
    return write(state / "config.yaml", text + pods("front qwen-healthy"))


def discovered(base: str) -> str | None:
    """/metrics once discovery has run (None before)."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return text if 'runpod_probe_up{check="discovery",endpoint="runpod-api"} 1.0' in text \
        else None


def test_two_shards_split_the_fleet_exactly(sim: Any, tmp_path: Path,
                                            sim_env: dict[str, str]) -> None:
    ports = [free_port(), free_port()]
    daemons = []
    try:
        for index, port in enumerate(ports):
            config = shard_config(sim, tmp_path, index, port)
            with (tmp_path / f"shard-{index}.log").open("w") as log:
                daemons.append(subprocess.Popen(
                    [sys.executable, "-m", "probe", "run", "--config", str(config)],
                    env=sim_env, stdout=log, stderr=subprocess.STDOUT))
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        pages = [wait_for(lambda b=b: discovered(b), 30, f"discovery on {b}") for b in bases]
        shares = [set(INFO.findall(page)) for page in pages]
        docs = [httpx.get(f"{b}/status.json", timeout=5).json() for b in bases]
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            daemon.wait(timeout=30)
    fleet = DISCOVERED | CONFIGURED
    assert shares[0] | shares[1] == fleet
    assert shares[0] & shares[1] == set()
    assert all(shares), "each shard probes part of the fleet"
    for index, share in enumerate(shares):
        assert {name for name in fleet if owner(name, 2) == index} == share
        assert docs[index]["shard"] == {"index": index, "count": 2}
        assert docs[index]["summary"]["endpoints"] == len(share)
        assert "shard" not in pages[index], "no series carries the shard"
        assert (tmp_path / f"shard-{index}" / "probe.db").exists(), "each its own database"
