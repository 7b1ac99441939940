"""The daemon as a process: SIGTERM finishes in-flight checks; a real Prometheus scrapes it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from helpers import tool
from simconfig import header, pods, write

from probe.store import latest_results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "probe", "run", "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_metrics(url: str, needle: str, timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            text = httpx.get(url, timeout=2).text
            if needle in text:
                return text
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never appeared on {url}")


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
        while time.monotonic() < deadline and len(series) < 2:
            try:
                answer = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                   params={"query": "runpod_probe_up"}, timeout=2).json()
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
