"""The paging stack of the export's end-to-end tests: the real daemon against the simulated
fleet, a real Prometheus with the shipped rules, a real Alertmanager with the shipped
example, and a webhook receiver counting what a person on call would get.

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from export_servers import ROOT, WebhookSink, alerting_stack, free_port, wait_for

from probe.export.files import ALERTS_FILE

SCALE = 30
KEY = "paging-e2e-made-up-key"
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
QUIET_S = 10  # 5 scaled minutes: every slower alert (for: 5m) would have notified by then


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


def shipped_rules_scaled() -> str:
    return scaled_rules((ROOT / ALERTS_FILE).read_text())


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

    def wait_ready(self) -> None:
        try:
            wait_for(lambda: httpx.get(self.metrics_url, timeout=2).status_code == 200, 30,
                     f"the daemon's {self.metrics_url}")
        except AssertionError as exc:  # say what the daemon said (and whether it is alive)
            exited = None if self.proc is None else self.proc.poll()
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise AssertionError(f"{exc}; the daemon's exit status: {exited}; its log's "
                                 f"end:\n{tail}") from None

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
    metrics_port = free_port()
    with Simulator(fleet, api_key=KEY) as sim, WebhookSink() as sink:
        config = tmp_path / "config.yaml"
        config.write_text(daemon_config(sim, tmp_path, metrics_port, list(pods)))
        daemon = Daemon(config, tmp_path / "daemon.log",
                        f"http://127.0.0.1:{metrics_port}/metrics")
        with paged(tmp_path, [daemon], [f"127.0.0.1:{metrics_port}"], sink):
            yield daemon, sink, sim


@contextmanager
def paged(tmp_path: Path, daemons: list[Daemon], targets: list[str],
          sink: WebhookSink) -> Iterator[str]:
    """``daemons`` started and ready (scraped at ``targets``), then Prometheus with the
    shipped rules scaled and Alertmanager paging ``sink``; yields Prometheus's API base.
    The daemons are stopped after."""
    for daemon in daemons:
        daemon.start()
    try:
        for daemon in daemons:
            daemon.wait_ready()
        with alerting_stack(tmp_path, targets, shipped_rules_scaled(), sink) as api:
            yield api
    finally:
        for daemon in daemons:
            daemon.stop()


def summary(notifications: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(receiver path, status, the alerts' names and endpoints) of each notification."""
    return [(n["path"], n["status"], " ".join(sorted(
        f"{a['labels']['alertname']}:{a['labels'].get('endpoint', '')}:{a['status']}"
        for a in n["alerts"]))) for n in notifications]


def arrives(sink: WebhookSink, expected: set[tuple[str, str, str]], timeout: float) -> None:
    try:
        wait_for(lambda: expected <= set(summary(sink.received)), timeout, str(expected))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; received {summary(sink.received)}") from None


def pages_by_endpoint(sink: WebhookSink) -> dict[str, list[str]]:
    """Firing page notifications: the endpoint (or the instance) -> each one's alert names."""
    out: dict[str, list[str]] = {}
    for n in sink.received:
        if n["path"] != "/page" or n["status"] != "firing":
            continue
        labels = n["alerts"][0]["labels"]
        key = labels.get("endpoint") or labels.get("instance", "")
        out.setdefault(key, []).append(" ".join(sorted({a["labels"]["alertname"]
                                                        for a in n["alerts"]})))
    return out
