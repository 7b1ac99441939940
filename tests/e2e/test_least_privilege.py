"""Least privilege: RunPod's account key goes only where RunPod's API wants it (serverless
endpoints, discovery), never to a pod's own server, whoever runs its container. A pod with
vLLM's --api-key gets its own key, from its own variable."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import parse_config
from simconfig import header, pods

from probe.app import PLUGINS
from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator
from probe.sweep import sweep

ACCOUNT = "rk-account-key-0000"
POD_OWN = "vllm-own-key-0000"


def digest(key: str) -> str:
    return hashlib.sha256(f"Bearer {key}".encode()).hexdigest()


def test_the_account_key_never_reaches_a_pod(tmp_path: Path) -> None:
    fleet = Fleet()
    fleet.add_pod("open", PodSpec())
    fleet.add_pod("locked", PodSpec(api_key=POD_OWN))
    fleet.add_pod("found", PodSpec(name="discovered pod"))
    fleet.add_serverless("queue", ServerlessSpec())
    env = {"RUNPOD_API_KEY": ACCOUNT, "VLLM_API_KEY": POD_OWN}
    with Simulator(fleet, api_key=ACCOUNT) as sim:
        config = parse_config(
            header(sim, tmp_path) + f'discovery: {{api: "{sim.rest_api_base}", timeout: 2s}}\n'
            + pods("open open api_key_env: null", "locked locked")
            + "  - {name: queue, kind: serverless, endpoint_id: queue}\n", env=env)
        results = asyncio.run(sweep(config, PLUGINS, env=env))
        seen = sim.requests_seen
    by = {(r.endpoint, r.check): r for r in results}
    assert all(r.ok for r in results), [(r.endpoint, r.check, r.message) for r in results
                                        if not r.ok]
    assert ("discovered-pod-found", "models") in by, "a discovered pod is probed too"
    to_pods = [r for r in seen if r.path.startswith("/proxy/")]
    to_runpod = [r for r in seen if r.path.startswith(("/v2/", "/api/v2/"))]
    assert to_pods and to_runpod
    assert all(r.authorization_sha256 != digest(ACCOUNT) for r in to_pods)
    assert {r.authorization_sha256 for r in to_pods if "/proxy/open-" in r.path} == {None}
    locked = {r.authorization_sha256 for r in to_pods if "/proxy/locked-" in r.path
              and "/v1/" in r.path}
    assert locked == {digest(POD_OWN)}, "the pod's own key, from VLLM_API_KEY"
    assert {r.authorization_sha256 for r in to_runpod} == {digest(ACCOUNT)}


@pytest.mark.parametrize(("runpod", "row"), [
    ("pod_api_key_env: RUNPOD_API_KEY", ""),
    ("", ", api_key_env: RUNPOD_API_KEY"),
    ("", ", api_key_env: COPY_OF_ACCOUNT"),  # another variable holding the same key
], ids=["pods-key-variable", "pod-key", "pod-key-same-value"])
def test_check_config_refuses_a_config_that_sends_the_account_key_to_a_pod(
        tmp_path: Path, runpod: str, row: str) -> None:
    fleet = Fleet()
    fleet.add_pod("open", PodSpec())
    env = {**os.environ, "RUNPOD_API_KEY": ACCOUNT, "COPY_OF_ACCOUNT": ACCOUNT}
    with Simulator(fleet, api_key=ACCOUNT) as sim:
        text = header(sim, tmp_path) + pods(f"open open checks: [models]{row}")
        if runpod:
            text = text.replace("runpod: {", f"runpod: {{{runpod}, ")
        path = tmp_path / "c.yaml"
        path.write_text(text)
        done = subprocess.run([sys.executable, "-m", "probe", "check-config", "--config",
                               str(path)], env=env, capture_output=True, text=True, timeout=60)
        seen = sim.requests_seen
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()  # one problem, one line
    assert "account key" in line and ACCOUNT not in done.stderr + done.stdout
    assert not seen, "nothing was probed"
