"""Real third-party servers for the export tests (Prometheus, Alertmanager), on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from helpers import tool

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "alerts" / "alertmanager.example.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


@contextmanager
def running(argv: list[str], ready_url: str, log: Path, timeout: float = 30) -> Iterator[None]:
    """Start ``argv``, wait until ``ready_url`` answers 200, stop it (by its pid) afterwards."""
    with serving((argv, ready_url, log), timeout=timeout):
        yield


@contextmanager
def serving(*servers: tuple[list[str], str, Path], timeout: float = 30) -> Iterator[None]:
    """Start every server (argv, ready URL, log) at once, wait until each ready URL answers
    200, stop them all (each by its pid) afterwards."""
    procs: list[tuple[subprocess.Popen[bytes], list[str], str, Path]] = []
    try:
        for argv, ready_url, log in servers:
            with log.open("w") as out:
                procs.append((subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT),
                              argv, ready_url, log))
        for proc, argv, ready_url, log in procs:
            def ready(proc: subprocess.Popen[bytes] = proc, argv: list[str] = argv,
                      ready_url: str = ready_url, log: Path = log) -> bool:
                assert proc.poll() is None, f"{argv[0]} exited:\n{log.read_text()}"
                return httpx.get(ready_url, timeout=2).status_code == 200
            wait_for(ready, timeout, f"{argv[0]} at {ready_url}")
        yield
    finally:
        for proc, *_ in procs:
            proc.terminate()
        for proc, *_ in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class WebhookSink:
    """An Alertmanager webhook receiver that keeps every notification's JSON body."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                sink.received.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def example_alertmanager(sink: WebhookSink, **timers: str) -> dict[str, Any]:
    """The shipped Alertmanager example with every receiver's URL at ``sink`` (its path the
    receiver's name) and the route's ``timers`` (group_wait, group_interval, ...) replaced;
    a ``repeat_interval`` given replaces the sub-routes' too."""
    config: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    config["route"].update(timers)
    if "repeat_interval" in timers:
        for route in config["route"].get("routes", []):
            route["repeat_interval"] = timers["repeat_interval"]
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{sink.url}/{receiver['name']}"
    return config


def alertmanager_argv(config: Path, data: Path, port: int) -> list[str]:
    """A real Alertmanager on 127.0.0.1:``port``, alone (no cluster)."""
    return [tool("prometheus-alertmanager"), f"--config.file={config}",
            f"--storage.path={data}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address="]


@contextmanager
def alerting_stack(tmp_path: Path, targets: list[str], rules: str,
                   sink: WebhookSink) -> Iterator[str]:
    """A real Alertmanager with the shipped example (receivers at ``sink``, timers in
    seconds, no repeat within a test) and a real Prometheus scraping ``targets`` (job
    runpod-probe) and evaluating every second, sending its alerts to that Alertmanager.

    The ``rules`` are loaded once Prometheus has scraped every target: a Prometheus that has
    not scraped yet would see no target at all for a scaled minute (RunpodProbeAbsent).
    Yields Prometheus's base URL."""
    am_port, prom_port = free_port(), free_port()
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(example_alertmanager(
        sink, group_wait="1s", group_interval="2s", repeat_interval="1h")))
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(rules)
    prom_config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "runpod-probe",
                            "static_configs": [{"targets": targets}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    prometheus = [tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                  f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                  f"--web.listen-address=127.0.0.1:{prom_port}",
                  "--query.lookback-delta=10s", "--rules.alert.resend-delay=2s",
                  "--web.enable-lifecycle"]
    api = f"http://127.0.0.1:{prom_port}"
    with serving((alertmanager_argv(tmp_path / "alertmanager.yml", tmp_path / "am", am_port),
                  f"http://127.0.0.1:{am_port}/-/ready", tmp_path / "alertmanager.log"),
                 (prometheus, f"{api}/-/ready", tmp_path / "prometheus.log")):
        def scraped() -> bool:
            up = httpx.get(f"{api}/api/v1/query", params={"query": 'up{job="runpod-probe"} == 1'},
                           timeout=5).json()["data"]["result"]
            return {r["metric"]["instance"] for r in up} == set(targets)
        wait_for(scraped, 60, f"the first scrape of {targets}")
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(
            {**prom_config, "rule_files": [str(rules_file)]}))
        httpx.post(f"{api}/-/reload", timeout=10).raise_for_status()
        yield api
