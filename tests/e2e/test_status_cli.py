"""``runpod-probe status`` against a running daemon (a real process, its real listener): the
same verdicts as ``/status.json``, and not one request sent to an endpoint; with the daemon
stopped, the verdicts it kept, said so, exit 3. And the daemon's log as journald reads it: a
down endpoint's line carries a priority ``journalctl -p warning`` shows."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from simconfig import header, pods, write

from probe.simulator import Fleet, PodSpec, Simulator

KEY = "sim-status-key-0000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    fleet = Fleet()
    fleet.add_pod("fine-pod", PodSpec())
    fleet.add_pod("gone-pod", PodSpec("stopped"))
    with Simulator(fleet, api_key=KEY) as simulator:
        yield simulator


def settled(url: str) -> dict[str, Any] | None:
    """The status document once every check of every endpoint has a result."""
    try:
        document = httpx.get(url, timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        return None
    checks = [c for e in document["endpoints"] for c in e["checks"]]
    return document if checks and all(c["outcome"] for c in checks) else None


def wait_for(url: str, daemon: subprocess.Popen[str]) -> dict[str, Any]:
    for _ in range(300):
        assert daemon.poll() is None, "the daemon stopped"
        document = settled(url)
        if document is not None:
            return document
        time.sleep(0.1)
    raise AssertionError(f"{url} never showed every check's result")


def stop(daemon: subprocess.Popen[str]) -> str:
    daemon.terminate()
    _, err = daemon.communicate(timeout=60)
    return err


def test_status_lists_the_daemons_verdicts_and_sends_nothing_to_endpoints(
        sim: Simulator, tmp_path: Path) -> None:
    port = free_port()
    # one round, then an hour of quiet: every request the simulator sees after it is ours
    text = header(sim, tmp_path, interval="1h").replace('127.0.0.1:0', f'127.0.0.1:{port}')
    config = write(tmp_path / "c.yaml", text + pods("fine fine-pod", "gone gone-pod")
                   + "verdict: {down_after: 1, up_after: 1}\n")
    env = {"PATH": os.environ["PATH"], "RUNPOD_API_KEY": KEY, "RUNPOD_PROBE_CONFIG": str(config)}
    daemon = subprocess.Popen([sys.executable, "-m", "probe", "run"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = wait_for(f"http://127.0.0.1:{port}/status.json", daemon)
        before = sim.request_count
        without_key = {k: v for k, v in env.items() if k != "RUNPOD_API_KEY"}
        as_json = probe("status", "--json", env=without_key)  # needs no secret
        as_text = probe("status", env=without_key)
        sent = sim.request_count - before
    finally:
        stop(daemon)
    assert sent == 0, "status probes nothing"
    assert as_json.returncode == 1, as_json.stderr  # gone is down
    shown = json.loads(as_json.stdout)
    assert shown["daemon"]["running"] is True
    assert [(e["name"], e["state"]) for e in shown["endpoints"]] == \
        [(e["name"], e["state"]) for e in page["endpoints"]] == [("gone", "down"), ("fine", "up")]
    assert as_text.returncode == 1
    lines = as_text.stdout.splitlines()
    assert lines[0].startswith("daemon: running, runpod-probe ")
    assert lines[1] == "2 endpoints: 1 down, 1 up"
    assert lines[2].split()[:3] == ["DOWN", "gone", "models:"]  # worst first
    assert lines[3].split() == ["UP", "fine"]
    assert lines[-1] == "maintenance windows on now: none"

    # the daemon stopped: the verdicts it kept, said so, exit 3
    offline = probe("status", env=without_key)
    assert offline.returncode == 3, offline.stderr
    assert offline.stdout.startswith("daemon: NOT RUNNING")
    assert [line.split()[:2] for line in offline.stdout.splitlines()[2:4]] == [
        ["DOWN", "gone"], ["UP", "fine"]]


def test_a_down_endpoint_reaches_the_journal_at_warning_or_above(
        sim: Simulator, tmp_path: Path) -> None:
    """stderr is the journal's stream ($JOURNAL_STREAM names it): every line carries its
    syslog priority and no timestamp of its own (journald adds one)."""
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="1h")
                   + pods("gone gone-pod") + "verdict: {down_after: 1, up_after: 1}\n")
    read_end, write_end = os.pipe()
    found = os.fstat(write_end)
    env = {"PATH": os.environ["PATH"], "RUNPOD_API_KEY": KEY,
           "JOURNAL_STREAM": f"{found.st_dev}:{found.st_ino}"}
    daemon = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config", str(config)],
                              env=env, stdout=subprocess.DEVNULL, stderr=write_end, text=True)
    os.close(write_end)
    lines: list[str] = []
    with os.fdopen(read_end, encoding="utf-8") as journal:
        try:
            lines = until_line(journal, "down (404)")
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    assert all(line.startswith("<") and line[1].isdigit() and line[2] == ">"
               for line in lines), lines
    assert lines[0].startswith("<6>probe.daemon: runpod-probe "), "the first line names the build"
    assert "metrics on http://127.0.0.1:" in lines[0]
    warning_or_above = [line for line in lines if int(line[1]) <= 4]  # journalctl -p warning
    assert any("gone" in line and "down (404)" in line for line in warning_or_above), lines
    assert not any(line[3:7].isdigit() for line in lines), "no timestamp: journald adds one"


def until_line(stream: IO[str], text: str) -> list[str]:
    lines = []
    for line in stream:
        lines.append(line.rstrip("\n"))
        if text in line:
            return lines
    raise AssertionError(f"the daemon's log ended without {text!r}: {lines}")
