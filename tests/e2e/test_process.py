"""The daemon as a process: SIGTERM finishes in-flight checks; a real Prometheus scrapes it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from helpers import free_port, tool, wait_metrics
from simconfig import header, pods, write

from probe.store import latest_results


def start_daemon(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "probe", "run", "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)



def test_sigterm_writes_in_flight_results(sim: Any, tmp_path: Path,
                                          sim_env: dict[str, str]) -> None:
    port = free_port()
    text = header(sim, tmp_path, interval="5s", timeout="3s").replace(
        '"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    config = write(tmp_path / "c.yaml", text + pods("qwen qwen-healthy", "slow slow-pod"))
    proc = start_daemon(config, sim_env)
    try:
        wait_metrics(f"http://127.0.0.1:{port}/metrics",
                     'runpod_probe_up{check="models",endpoint="qwen"} 1.0')
        time.sleep(0.5)  # the slow pod's check is in flight (it times out after 3 s)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    rows = {r["endpoint"]: r for r in latest_results(tmp_path / "probe.db")}
    assert rows["slow"]["outcome"] == "timeout", "the in-flight check finished and was written"
    assert "stopped" in out


def test_real_prometheus_scrapes_the_daemon(sim: Any, tmp_path: Path,
                                            sim_env: dict[str, str]) -> None:
    prometheus, promtool = tool("prometheus"), tool("promtool")
    port, prom_port = free_port(), free_port()
    text = header(sim, tmp_path).replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    config = write(tmp_path / "c.yaml", text + pods("qwen qwen-healthy", "gone deepseek-stopped"))
    prom_config = write(tmp_path / "prometheus.yml", (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: runpod-probe\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"))
    daemon = start_daemon(config, sim_env)
    prom = subprocess.Popen([prometheus, f"--config.file={prom_config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        exposition = wait_metrics(f"http://127.0.0.1:{port}/metrics",
                                  'runpod_probe_up{check="models",endpoint="gone"}')
        lint = subprocess.run([promtool, "check", "metrics"], input=exposition,
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        deadline = time.monotonic() + 30
        series: dict[str, float] = {}
        # One series per endpoint: runpod_probe_up has one per check, and the checks of
        # "qwen" that have not run yet would overwrite its models series in the dict.
        while time.monotonic() < deadline and series != {"qwen": 1.0, "gone": 0.0}:
            try:
                answer = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                   params={"query": 'runpod_probe_up{check="models"}'},
                                   timeout=2).json()
                series = {r["metric"]["endpoint"]: float(r["value"][1])
                          for r in answer["data"]["result"]}
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        assert series == {"qwen": 1.0, "gone": 0.0}
    finally:
        for proc in (prom, daemon):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _sigterm_once_seen(proc: subprocess.Popen[str], sim: Any, prefix: str,
                       never: str) -> tuple[str, float]:
    """Send SIGTERM as soon as the simulator has seen a request under ``prefix``; return
    the daemon's output and how long it took to stop."""
    try:
        deadline = time.monotonic() + 20
        while not any(r.path.startswith(prefix) for r in sim.requests_seen):
            assert time.monotonic() < deadline, never
            time.sleep(0.02)
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        return out, time.monotonic() - stopped_at
    finally:
        proc.kill()


def test_sigterm_during_a_round_trip_cancels_the_job_and_stores_the_result(
        tmp_path: Path, sim_env: dict[str, str]) -> None:
    """A paid job in flight when the daemon stops is cancelled at once (the simulator sees
    ``POST /cancel``), never left in the queue, and its result is stored; the stop does not
    wait for the round trip's 40 s deadline, nor cut it off after the endpoint's 2 s."""
    from probe.simulator import Fleet, ServerlessSpec, Simulator

    fleet = Fleet()
    fleet.add_serverless("stuck", ServerlessSpec("incident"))  # jobs never leave the queue
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        port = free_port()
        text = header(sim, tmp_path, interval="60s", timeout="2s").replace(
            '"127.0.0.1:0"', f'"127.0.0.1:{port}"')
        config = write(tmp_path / "c.yaml", text + (
            "endpoints:\n  - {name: stuck, kind: serverless, endpoint_id: stuck, "
            "roundtrip: {interval: 60s, input: {prompt: '2+2'}, wait: 1s, deadline: 40s}}\n"))
        proc = start_daemon(config, sim_env)
        out, took_s = _sigterm_once_seen(proc, sim, "/v2/stuck/status/",
                                         "the round trip never started polling")
        cancels = [r.path for r in sim.requests_seen if r.method == "POST"
                   and r.path.startswith("/v2/stuck/cancel/")]
    assert proc.returncode == 0, out
    assert len(cancels) == 1, "the job left in the queue was cancelled once"
    assert took_s < 10, f"stop took {took_s:.1f}s"
    rows = {(r["endpoint"], r["check_name"]): r for r in latest_results(tmp_path / "probe.db")}
    stored = rows[("stuck", "roundtrip")]
    assert stored["outcome"] == "unknown", stored["message"]
    assert '"cancelled": true' in stored["details"]
    assert cancels[0].rsplit("/", 1)[1] in stored["details"], "the cancelled job is the stored one"


def test_sigterm_starts_no_check_after_the_signal(tmp_path: Path,
                                                 sim_env: dict[str, str]) -> None:
    """A pod's job runs models, health and vllm_metrics side by side, each in a slot of the
    global bound; with one slot they wait for it in turn. Stopped while models is in
    flight, the daemon lets it finish and writes it, and starts neither of the other two:
    the pod's server sees one request, and the stop takes about the in-flight answer."""
    from probe.simulator import Fleet, PodSpec, Simulator

    fleet = Fleet()
    fleet.add_pod("slow-pod", PodSpec("slow", delay_s=2.0))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        text = header(sim, tmp_path, interval="60s", timeout="5s").replace(
            "scheduler: {spread: false}", "scheduler: {spread: false, max_concurrent: 1}")
        config = write(tmp_path / "c.yaml", text + pods("slow slow-pod"))
        proc = start_daemon(config, sim_env)
        out, took_s = _sigterm_once_seen(proc, sim, "/proxy/slow-pod-8000/",
                                         "the first check never started")
        seen = [r.path for r in sim.requests_seen if r.path.startswith("/proxy/slow-pod-8000/")]
    assert proc.returncode == 0, out
    assert seen == ["/proxy/slow-pod-8000/v1/models"], "no check started after SIGTERM"
    rows = {(r["endpoint"], r["check_name"]): r for r in latest_results(tmp_path / "probe.db")}
    assert set(rows) == {("slow", "models")}
    assert rows[("slow", "models")]["outcome"] == "ok", "the in-flight check finished"
    assert 1.0 < took_s < 5.0, f"stop took {took_s:.1f}s"
