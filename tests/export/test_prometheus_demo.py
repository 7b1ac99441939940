"""The shipped rules and dashboards in a real Prometheus scraping `runpod-probe demo`.

Every dashboard target and every recording rule is evaluated through Prometheus's HTTP
API and must return data for the demo's fleet; the alerts Prometheus evaluates must catch
the broken simulated endpoints and leave the healthy ones alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from export_servers import free_port, running, wait_for
from helpers import tool
from prometheus_api import checks, empty

from probe.export.files import ALERTS_FILE

# Both tests read one module-scoped stack (a Prometheus scraping a demo daemon): under
# pytest-xdist they run on the same worker, so it starts once.
pytestmark = pytest.mark.xdist_group("prometheus-demo")

ROOT = Path(__file__).parents[2]
# Broken beyond doubt in the simulated fleet, and how the daemon's cause names each.
DOWN = {"deepseek-stopped": "pod_gone", "vllm-down": "server_down",
        "dead-engine": "engine_dead", "vllm-incident": "serverless_crash_loop",
        "garbage-pod": "bad_response"}
HEALTHY = {"qwen-healthy", "vllm-healthy", "fallback"}
VARIABLES = {"$endpoint": ".*", "$kind": ".*", "$job": "runpod-probe", "$instance": ".*",
             "$__rate_interval": "20s"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prometheus = tool("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus-demo")
    metrics_port, prom_port = free_port(), free_port()
    demo = [sys.executable, "-m", "probe", "demo", "--state-dir", str(tmp / "demo"),
            "--metrics-port", str(metrics_port), "--interval", "2s", "--every", "600",
            "--duration", "300"]
    # The slower SLO groups (2m30s, 1h) at Prometheus's pace here, so that every recorded
    # series has data within the test's minutes; the rules are otherwise the shipped ones.
    rules = tmp / "rules.yml"
    rules.write_text(re.sub(r"^  interval: .*\n", "", (ROOT / ALERTS_FILE).read_text(),
                            flags=re.M))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "runpod-probe", "static_configs": [
            {"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    server = [prometheus, f"--config.file={tmp / 'prometheus.yml'}",
              f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    with (tmp / "demo.log").open("w") as log:
        daemon = subprocess.Popen(demo, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        with running(server, f"http://127.0.0.1:{prom_port}/-/ready", tmp / "prometheus.log"):
            wait_for(lambda: httpx.get(metrics_url, timeout=2).status_code == 200, 30,
                     "the demo's /metrics")
            yield {"api": api, "metrics_url": metrics_url, "daemon": daemon, "tmp": tmp}
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def exported_metrics(metrics_url: str) -> set[str]:
    text = httpx.get(metrics_url, timeout=5).text
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def test_every_exported_metric_is_documented(stack: dict[str, Any]) -> None:
    """docs/metrics.md names every family the daemon exports (without the runpod_probe_
    prefix; histograms by their base name; the process collector as process_*)."""
    documented = set(re.findall(r"`([a-z_:*]+)`", (ROOT / "docs" / "metrics.md").read_text()))
    missing = []
    for name in sorted(exported_metrics(stack["metrics_url"])):
        base = re.sub(r"_(bucket|sum|count|created)$", "", name)
        short = base.removeprefix("runpod_probe_")
        if not ({short, base} & documented or (base.startswith("process_")
                                               and "process_*" in documented)):
            missing.append(name)
    assert not missing, f"not in docs/metrics.md: {missing}"


def test_every_dashboard_target_and_recording_rule_has_data_and_alerts_catch_the_broken(
        stack: dict[str, Any]) -> None:
    api = stack["api"]
    targets = checks((ROOT / ALERTS_FILE).read_text(), VARIABLES)
    # Histograms need two scrapes in the rate window, round trips one job: poll a while (a
    # minute is plenty alone; beside a parallel suite on a busy machine 150 s was not).
    try:
        wait_for(lambda: not empty(api, targets), 240, "data for every target", step=2)
    except AssertionError:
        pytest.fail("no data for:\n  " + "\n  ".join(empty(api, targets)))

    def active() -> dict[str, dict[str, set[str]]]:
        by_endpoint: dict[str, dict[str, set[str]]] = {}
        for alert in httpx.get(f"{api}/alerts", timeout=5).json()["data"]["alerts"]:
            labels = alert["labels"]
            by_endpoint.setdefault(labels.get("endpoint", ""), {}).setdefault(
                labels["alertname"], set()).add(labels.get("cause", ""))
        return by_endpoint
    now = wait_for(lambda: (a := active()) and all(
        "RunpodEndpointDown" in a.get(e, {}) for e in DOWN) and a, 30,
        "RunpodEndpointDown pending for every broken endpoint")
    for endpoint, cause in DOWN.items():
        assert now[endpoint]["RunpodEndpointDown"] == {cause}
    assert not HEALTHY & set(now), {e: now[e] for e in HEALTHY & set(now)}
    assert not {"RunpodProbeDown", "RunpodProbeAbsent"} & set(now.get("", {}))

    # The daemon dies: Prometheus sees it at the next scrape.
    stack["daemon"].terminate()
    stack["daemon"].wait(timeout=30)
    wait_for(lambda: "RunpodProbeDown" in active().get("", {}), 15,
             "RunpodProbeDown pending after the daemon stopped")
