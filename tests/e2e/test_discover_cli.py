"""`runpod-probe discover` and `runpod-probe once` with discovery, as real processes against
the simulator: output shapes and exit codes (0 listed, 1 not listed, 2 config error)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import parse_config
from simconfig import header, pods, write

from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator


@pytest.fixture
def sim(sim_env: dict[str, str]) -> Iterator[Simulator]:
    fleet = Fleet()
    fleet.add_pod("p-run", PodSpec(name="Qwen Pod", gpu_type="NVIDIA GeForce RTX 4090",
                                   data_center="US-KS-2"))
    fleet.add_pod("p-stop", PodSpec("stopped", name="old"))
    fleet.add_pod("p-jup", PodSpec(port=8888, name="notebook"))
    fleet.add_serverless("e-q", ServerlessSpec(name="queue -fb", data_centers=("EU-SE-1",)))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as simulator:
        yield simulator


def config(sim: Simulator, tmp_path: Path, endpoints: str = "") -> Path:
    text = header(sim, tmp_path) + f'discovery: {{api: "{sim.rest_api_base}", timeout: 2s, ' \
                                   "defaults: {min_context: 4096}}\n"
    return write(tmp_path / "c.yaml", text + endpoints)


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_discover_prints_what_would_be_probed(sim: Simulator, tmp_path: Path,
                                              sim_env: dict[str, str]) -> None:
    path = config(sim, tmp_path, pods("mine p-stop"))
    done = probe(sim_env, "discover", "--config", str(path), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["discovery"]["outcome"] == "ok"
    assert [(e["name"], e["source"], e["status"]) for e in out["endpoints"]] == [
        ("mine", "config", "EXITED"), ("qwen-pod-p-run", "discovered", "RUNNING"),
        ("queue-e-q", "discovered", None)]
    assert [(s["id"], s["reason"]) for s in out["skipped"]] == [
        ("p-jup", "port 8000 not exposed as http (ports: 8888/http, 22/tcp)")]
    # the hardware RunPod lists (gpu.id, dataCenterId), for the group patterns; a configured
    # pod gets it too; a serverless endpoint the data centre its dataCenterIds lists alone
    assert [(e["name"], e["gpu_type"], e["data_center"]) for e in out["endpoints"]] == [
        ("mine", "NVIDIA RTX A4500", "EU-RO-1"),
        ("qwen-pod-p-run", "NVIDIA GeForce RTX 4090", "US-KS-2"), ("queue-e-q", None, "EU-SE-1")]

    table = probe(sim_env, "discover", "--config", str(path))
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["ENDPOINT", "KIND", "SOURCE", "RUNPOD", "ID",
                                                   "STATUS", "URL"]
    assert "discovery: ok: discovered 1 pod, 1 serverless endpoint (1 skipped)" in table.stdout


def test_discover_yaml_lines_load_as_the_same_endpoints(sim: Simulator, tmp_path: Path,
                                                        sim_env: dict[str, str]) -> None:
    path = config(sim, tmp_path)
    done = probe(sim_env, "discover", "--config", str(path), "--yaml")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == {"endpoints": [
        {"name": "qwen-pod-p-run", "kind": "pod", "pod_id": "p-run", "port": 8000,
         "min_context": 4096},
        {"name": "queue-e-q", "kind": "serverless", "endpoint_id": "e-q", "min_context": 4096}]}
    pasted = parse_config(header(sim, tmp_path) + done.stdout, env=sim_env)
    listed = json.loads(probe(sim_env, "discover", "--config", str(path), "--json").stdout)
    assert [(e.name, e.display_url) for e in pasted.endpoints] == [
        (e["name"], e["url"]) for e in listed["endpoints"]]


def test_discover_exit_codes(sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    path = config(sim, tmp_path)
    sim.fleet.set_api_mode("restricted")
    refused = probe(sim_env, "discover", "--config", str(path), "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["discovery"]["outcome"] == "unauthorized"
    assert "runpod-probe: discovery unauthorized: key lacks pod management and serverless " \
           "endpoint permissions" in refused.stderr
    sim.fleet.set_api_mode("api_error")
    assert probe(sim_env, "discover", "--config", str(path)).returncode == 1
    no_section = write(tmp_path / "plain.yaml", header(sim, tmp_path) + pods("mine p-run"))
    done = probe(sim_env, "discover", "--config", str(no_section))
    assert done.returncode == 2 and "has no discovery: section" in done.stderr
    broken = write(tmp_path / "broken.yaml", header(sim, tmp_path) + "discovery: {port: 0}\n")
    done = probe(sim_env, "discover", "--config", str(broken))
    assert done.returncode == 2 and "discovery.port: must be at least 1, got 0" in done.stderr


def test_once_discovers_first_and_fails_when_discovery_does(
        sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    path = config(sim, tmp_path, pods("mine p-stop"))
    done = probe(sim_env, "once", "--config", str(path), "--json")
    rows = {(r["endpoint"], r["check"]): r for r in json.loads(done.stdout)}
    assert rows[("runpod-api", "discovery")]["outcome"] == "ok"
    assert rows[("qwen-pod-p-run", "models")]["outcome"] == "ok"
    assert rows[("queue-e-q", "queue")]["outcome"] == "ok"
    assert rows[("mine", "models")]["message"].startswith("pod EXITED per RunPod API: HTTP 404")
    assert done.returncode == 1, "mine is down"

    only = probe(sim_env, "once", "--config", str(path), "--endpoint", "qwen-pod-p-run")
    assert only.returncode == 0, only.stdout + only.stderr
    assert "runpod-api" not in only.stdout and "qwen-pod-p-run" in only.stdout

    sim.fleet.set_api_mode("restricted")
    path = config(sim, tmp_path, pods("mine p-run"))
    refused = probe(sim_env, "once", "--config", str(path), "--json")
    rows = {(r["endpoint"], r["check"]): r for r in json.loads(refused.stdout)}
    assert rows[("runpod-api", "discovery")]["outcome"] == "unauthorized"
    assert rows[("mine", "models")]["outcome"] == "ok", "configured endpoints still probed"
    assert refused.returncode == 1
    unknown = probe(sim_env, "once", "--config", str(path), "--endpoint", "nobody")
    assert unknown.returncode == 2 and 'no endpoint named "nobody"' in unknown.stderr


def test_gate_knows_discovered_endpoints(sim: Simulator, tmp_path: Path,
                                         sim_env: dict[str, str]) -> None:
    """``gate`` runs the same preparers as ``once``: an endpoint that only RunPod's API lists
    is gated like a configured one, and an unknown name lists what discovery found."""
    path = config(sim, tmp_path)
    passed = probe(sim_env, "gate", "qwen-pod-p-run", "--config", str(path), "--timeout", "5s",
                   "--json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    report = json.loads(passed.stdout)
    assert report["passed"] is True and report["endpoint"] == "qwen-pod-p-run"
    assert {r["check"] for r in report["results"]} == {"models", "health", "vllm_metrics"}

    sim.fleet.set_pod_behaviour("p-run", "server_down")
    failed = probe(sim_env, "gate", "qwen-pod-p-run", "--config", str(path), "--timeout", "1s",
                   "--poll", "200ms")
    assert failed.returncode == 1 and "GATE FAILED: qwen-pod-p-run" in failed.stdout

    unknown = probe(sim_env, "gate", "nobody", "--config", str(path))
    assert unknown.returncode == 2
    assert 'no endpoint named "nobody" (known: qwen-pod-p-run, queue-e-q)' in unknown.stderr
