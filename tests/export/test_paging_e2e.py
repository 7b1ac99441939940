"""One page per incident, end to end: the real daemon against the simulated fleet, a real
Prometheus with the shipped rules, a real Alertmanager with the shipped example, and a
webhook receiver counting what a person on call would get.

Time is scaled down 30 times: every duration in the rules (``for``, range windows) and the
Alertmanager's timers is divided by ``SCALE``, the daemon probes every second (a probe
every 30 s), Prometheus scrapes and evaluates every second. The rules are otherwise the
shipped ones, byte for byte.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from export_servers import WebhookSink, free_port, running, wait_for
from helpers import tool

from probe.export import ALERTS_FILE

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "alerts" / "alertmanager.example.yml"
SCALE = 30
KEY = "paging-e2e-made-up-key"
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def scaled(duration: str) -> str:
    seconds = sum(float(n) * UNITS[unit] for n, unit in
                  re.findall(r"(\d+)(ms|[smhd])", duration)) / SCALE
    return f"{round(seconds * 1000)}ms"


def scaled_rules(text: str) -> str:
    """The shipped rules with every ``for``, range window and group interval divided by
    ``SCALE``."""
    text = re.sub(r"\[(\d+(?:ms|[smhd]))\]", lambda m: f"[{scaled(m.group(1))}]", text)
    return re.sub(r"^(\s*(?:- )?(?:for|interval): )(\d+(?:[smhd]|m\d+s))$",
                  lambda m: m.group(1) + scaled(m.group(2)), text, flags=re.M)


def test_scaling_keeps_the_rules_but_their_durations() -> None:
    assert scaled("1m") == "2000ms" and scaled("15m") == "30000ms" and scaled("0m") == "0ms"
    assert scaled("2m30s") == "5000ms" and scaled("7200s") == "240000ms"
    text = "    expr: rate(x[5m]) and slo:sli_error:ratio_rate5m\n    for: 1m\n"
    assert scaled_rules(text) == \
        "    expr: rate(x[10000ms]) and slo:sli_error:ratio_rate5m\n    for: 2000ms\n"
    group = "- name: runpod-probe-slo-long\n  interval: 2m30s\n"
    assert scaled_rules(group) == "- name: runpod-probe-slo-long\n  interval: 5000ms\n"


class Daemon:
    """``runpod-probe run`` as a process, stopped (SIGTERM) and started again at will."""

    def __init__(self, config: Path, log: Path, metrics_url: str) -> None:
        self.config, self.log, self.metrics_url = config, log, metrics_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNPOD_API_KEY": KEY}
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "probe", "run", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def daemon_config(sim: Any, state: Path, port: int, pods: list[str]) -> str:
    endpoints = "".join(f"  - {{name: {p}, kind: pod, pod_id: {p}, port: 8000, "
                        "model: Qwen/Qwen2.5-7B-Instruct}\n" for p in pods)
    return (
        f'runpod: {{api_key_env: RUNPOD_API_KEY, api_base: "{sim.api_base}", '
        f'proxy_url: "{sim.proxy_template}"}}\n'
        "defaults: {interval: 1s, timeout: 800ms, tries: 1, retry_delay: 50ms}\n"
        f'storage: {{path: "{state / "probe.db"}"}}\n'
        f'metrics: {{listen: "127.0.0.1:{port}"}}\n'
        "vantage: {interval: 2s, timeout: 1s}\n"  # 15s scaled down 7.5 times: a minute
        "endpoints:\n" + endpoints +
        "prompts:\n"
        '  - {name: arithmetic, prompt: "What is 2+2? Answer with the number only.", '
        "expect: {regex: '^\\s*4\\s*$'}, cross: RUNPOD.md Test table, max_tokens: 16, "
        "interval: 1s}\n")


@contextmanager
def paging_stack(tmp_path: Path, pods: dict[str, str]) -> Iterator[
        tuple[Daemon, WebhookSink, Any]]:
    """The simulated ``pods`` (name -> behaviour), the daemon probing them, Prometheus and
    Alertmanager, and the webhook receiver; yields the daemon, the receiver, the simulator."""
    from probe.simulator import Fleet, PodSpec, Simulator

    fleet = Fleet()
    for pod, behaviour in pods.items():
        fleet.add_pod(pod, PodSpec(behaviour))
    metrics_port, prom_port, am_port = free_port(), free_port(), free_port()
    with Simulator(fleet, api_key=KEY) as sim, WebhookSink() as sink:
        config = tmp_path / "config.yaml"
        config.write_text(daemon_config(sim, tmp_path, metrics_port, list(pods)))
        daemon = Daemon(config, tmp_path / "daemon.log",
                        f"http://127.0.0.1:{metrics_port}/metrics")

        am = yaml.safe_load(EXAMPLE.read_text())
        am["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
        for route in am["route"].get("routes", []):
            route["repeat_interval"] = "1h"
        for receiver in am["receivers"]:
            for hook in receiver["webhook_configs"]:
                hook["url"] = f"{sink.url}/{receiver['name']}"
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am))
        rules = tmp_path / "rules.yml"
        rules.write_text(scaled_rules((ROOT / ALERTS_FILE).read_text()))
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "runpod-probe", "static_configs": [
                {"targets": [f"127.0.0.1:{metrics_port}"]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        alertmanager = [tool("prometheus-alertmanager"),
                        f"--config.file={tmp_path / 'alertmanager.yml'}",
                        f"--storage.path={tmp_path / 'am'}",
                        f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="]
        prometheus = [tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                      f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                      f"--web.listen-address=127.0.0.1:{prom_port}",
                      "--query.lookback-delta=10s", "--rules.alert.resend-delay=2s",
                      "--web.enable-lifecycle"]
        daemon.start()
        try:
            wait_for(lambda: httpx.get(daemon.metrics_url, timeout=2).status_code == 200, 30,
                     "the daemon's /metrics")
            with running(alertmanager, f"http://127.0.0.1:{am_port}/-/ready",
                         tmp_path / "alertmanager.log"), \
                    running(prometheus, f"http://127.0.0.1:{prom_port}/-/ready",
                            tmp_path / "prometheus.log"):
                # The rules once the daemon is scraped: a Prometheus that has not scraped
                # yet would see no target at all for a scaled minute (RunpodProbeAbsent).
                api = f"http://127.0.0.1:{prom_port}"
                wait_for(lambda: httpx.get(f"{api}/api/v1/query", params={
                    "query": 'up{job="runpod-probe"} == 1'}, timeout=5).json()["data"]["result"],
                    30, "the first scrape")
                (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(
                    {**prom_config, "rule_files": [str(rules)]}))
                httpx.post(f"{api}/-/reload", timeout=10).raise_for_status()
                yield daemon, sink, sim
        finally:
            daemon.stop()


def summary(notifications: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(receiver path, status, the alerts' names and endpoints) of each notification."""
    return [(n["path"], n["status"], " ".join(sorted(
        f"{a['labels']['alertname']}:{a['labels'].get('endpoint', '')}:{a['status']}"
        for a in n["alerts"]))) for n in notifications]


QUIET_S = 10  # 5 scaled minutes: every slower alert (for: 5m) would have notified by then


def arrives(sink: WebhookSink, expected: set[tuple[str, str, str]], timeout: float) -> None:
    try:
        wait_for(lambda: expected <= set(summary(sink.received)), timeout, str(expected))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; received {summary(sink.received)}") from None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Daemon, WebhookSink, Any]]:
    """pod-a healthy, pod-b stopped (a dead pod), pod-c answering wrongly (degraded)."""
    with paging_stack(tmp_path, {"pod-a": "healthy", "pod-b": "stopped",
                                 "pod-c": "wrong_answer"}) as running_stack:
        yield running_stack


def test_a_dead_pod_pages_once_a_degraded_one_tickets_and_a_restart_pages_once(
        stack: tuple[Daemon, WebhookSink, Any]) -> None:
    daemon, sink, _ = stack
    page_b = ("/page", "firing", "RunpodEndpointDown:pod-b:firing")
    ticket_c = ("/ticket", "firing", "RunpodEndpointDegraded:pod-c:firing")
    arrives(sink, {page_b, ticket_c}, 90)
    time.sleep(QUIET_S)
    before = summary(sink.received)
    assert sorted(before) == sorted([page_b, ticket_c]), before

    stopped = time.monotonic()
    daemon.stop()
    down = ("/page", "firing", "RunpodProbeDown::firing")
    arrives(sink, {down}, 30)
    time.sleep(max(0.0, stopped + 6 - time.monotonic()))  # stopped 3 scaled minutes
    daemon.start()
    resolved = ("/page", "resolved", "RunpodProbeDown::resolved")
    arrives(sink, {resolved}, 30)
    time.sleep(QUIET_S)
    after = summary(sink.received)[len(before):]
    assert after == [down, resolved], after
