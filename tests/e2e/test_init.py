"""`runpod-probe init` as a real process against the simulator's REST API: the file it writes
passes `check-config` with nothing but RUNPOD_API_KEY in the environment, names what the
account runs (the same endpoints `discover --yaml` prints), survives hostile names from the
API, and never overwrites a file without --force."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import parse_config

from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator

HOSTILE = 'x"\nmetrics: {listen: "0.0.0.0:80"}\n# '


@pytest.fixture
def sim(sim_env: dict[str, str]) -> Iterator[Simulator]:
    fleet = Fleet()
    fleet.add_pod("p-run", PodSpec(name="Qwen Pod"))
    fleet.add_pod("p-stop", PodSpec("stopped", name=HOSTILE))
    fleet.add_serverless("e-q", ServerlessSpec(name="queue -fb"))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as simulator:
        yield simulator


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no keys besides the ones given."""
    keep = {k: v for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "SYSTEMROOT")}
    return {**keep, **extra}


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_init_lists_the_account_and_the_file_passes_check_config(
        sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    key = sim_env["RUNPOD_API_KEY"]
    path = tmp_path / "etc" / "config.yaml"
    done = probe(bare_env(RUNPOD_API_KEY=key), "init", "--config", str(path),
                 "--api", sim.rest_api_base, "--state", str(tmp_path / "state"))
    assert done.returncode == 0, done.stderr
    assert "(2 endpoints from RunPod's API)" in done.stdout
    text = path.read_text()
    assert key not in text

    loaded = yaml.safe_load(text)
    assert set(loaded) == {"runpod", "defaults", "storage", "metrics", "endpoints"}
    assert loaded["metrics"] == {"listen": "127.0.0.1:9464"}  # the hostile name stayed a comment
    assert loaded["endpoints"] == [
        {"name": "qwen-pod-p-run", "kind": "pod", "pod_id": "p-run", "port": 8000},
        {"name": "queue-e-q", "kind": "serverless", "endpoint_id": "e-q"}]
    assert "pod p-stop" in text and "only RUNNING pods are probed" in text

    checked = probe(bare_env(RUNPOD_API_KEY=key), "check-config", "--config", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "per day:" in checked.stdout
    # checking a file sends nothing: an unset key is a warning naming it, not a failure
    unset = probe(bare_env(), "check-config", "--config", str(path))
    assert unset.returncode == 0, unset.stderr
    assert unset.stdout.startswith(f"{path}: ok (2 endpoints)")
    [warning] = unset.stderr.splitlines()
    assert warning.startswith("runpod-probe: warning: ") and "RUNPOD_API_KEY is not set" in warning

    config = parse_config(text, env={"RUNPOD_API_KEY": key})
    assert [(e.name, e.display_url) for e in config.endpoints] == [
        ("qwen-pod-p-run", "https://p-run-8000.proxy.runpod.net"),
        ("queue-e-q", "https://api.runpod.ai/v2/e-q")]


def test_init_without_a_key_writes_a_template_with_discovery(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    done = probe(bare_env(), "init", "--config", str(path), "--state", str(tmp_path))
    assert done.returncode == 0, done.stderr
    loaded = yaml.safe_load(path.read_text())
    assert loaded["discovery"] == {"interval": "5m", "port": 8000}
    assert "endpoints" not in loaded

    checked = probe(bare_env(RUNPOD_API_KEY="any-value"), "check-config", "--config", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "discovered at run time are not counted" in checked.stdout


def test_init_with_a_key_that_may_not_list_writes_the_template_and_says_why(
        sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    sim.fleet.set_api_mode("restricted")
    path = tmp_path / "config.yaml"
    done = probe(bare_env(RUNPOD_API_KEY=sim_env["RUNPOD_API_KEY"]), "init", "--config",
                 str(path), "--api", sim.rest_api_base, "--state", str(tmp_path))
    assert done.returncode == 0, "a template is written: an install script goes on"
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("runpod-probe init: warning: RunPod's API did not list")
    assert "unauthorized" in warning and "writing a template" in warning
    text = path.read_text()
    assert "discovery" in yaml.safe_load(text)
    assert "No RUNPOD_API_KEY" not in text, "the template tells the truth about the key"
    assert "RunPod's API did not list the account when this was written (unauthorized" in text
    checked = probe(bare_env(RUNPOD_API_KEY="any-value"), "check-config", "--config", str(path))
    assert checked.returncode == 0, checked.stderr


def test_init_with_the_api_unreachable_writes_the_template_and_exits_0(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: the API is unreachable
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    path = tmp_path / "config.yaml"
    done = probe(bare_env(RUNPOD_API_KEY="some-key"), "init", "--config", str(path),
                 "--api", f"http://127.0.0.1:{closed}/v2", "--state", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and "connect_error" in done.stderr
    assert "discovery" in yaml.safe_load(path.read_text())


def test_init_to_an_unwritable_place_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    done = probe(bare_env(), "init", "--config", str(blocker / "config.yaml"))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"runpod-probe init: cannot write {blocker / 'config.yaml'}")


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("mine: true\n")
    refused = probe(bare_env(), "init", "--config", str(path))
    assert refused.returncode == 2
    assert "exists (--force to overwrite)" in refused.stderr
    assert path.read_text() == "mine: true\n"

    forced = probe(bare_env(), "init", "--config", str(path), "--force", "--state",
                   str(tmp_path))
    assert forced.returncode == 0
    assert "discovery" in yaml.safe_load(path.read_text())
