"""The shipped Alertmanager example, in a real Alertmanager: one page per incident.

The example's grouping and inhibit rules are loaded as shipped; only the receivers' URLs
(a local webhook sink) and the group timers (seconds, not minutes) are changed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from export_servers import (
    EXAMPLE,
    WebhookSink,
    alertmanager_argv,
    example_alertmanager,
    free_port,
    running,
    wait_for,
)
from helpers import tool


def test_the_example_passes_amtool_check_config() -> None:
    done = subprocess.run([tool("amtool"), "check-config", str(EXAMPLE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, WebhookSink]]:
    with WebhookSink() as sink:
        path = tmp_path / "alertmanager.yml"
        path.write_text(yaml.safe_dump(example_alertmanager(sink, group_wait="1s",
                                                            group_interval="1s")))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(alertmanager_argv(path, tmp_path / "data", port), f"{base}/-/ready",
                     tmp_path / "alertmanager.log"):
            yield base, sink


def alert(name: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels},
            "annotations": {"summary": f"{name} (test)"}}


def post(base: str, *alerts: dict[str, Any]) -> None:
    httpx.post(f"{base}/api/v2/alerts", json=list(alerts), timeout=5).raise_for_status()


def statuses(base: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """(alertname, endpoint, severity) -> the alert as GET /api/v2/alerts shows it."""
    alerts = httpx.get(f"{base}/api/v2/alerts", timeout=5).json()
    return {(a["labels"]["alertname"], a["labels"].get("endpoint", ""),
             a["labels"].get("severity", "")): a for a in alerts}


DEAD_POD = [
    alert("RunpodEndpointDown", endpoint="pod-a", severity="critical", cause="pod_gone",
          check="models", outcome="http_404"),
    alert("RunpodCheckFailing", endpoint="pod-a", check="models", severity="warning"),
    alert("RunpodPromptFailing", endpoint="pod-a", prompt="arithmetic", severity="warning"),
    alert("RunpodErrorBudgetBurn", endpoint="pod-a", slo="availability", severity="critical"),
]


def test_a_dead_pod_pages_once_and_the_daemon_down_mutes_everything(
        alertmanager: tuple[str, WebhookSink]) -> None:
    base, sink = alertmanager
    post(base, *DEAD_POD,
         alert("RunpodCheckFailing", endpoint="pod-b", check="health", severity="warning"),
         alert("RunpodEndpointDegraded", endpoint="pod-c", severity="warning",
               cause="answer_wrong"),
         alert("RunpodPromptFailing", endpoint="pod-c", prompt="arithmetic", severity="warning"),
         alert("RunpodErrorBudgetBurn", endpoint="pod-d", slo="latency", severity="critical"),
         alert("RunpodErrorBudgetBurn", endpoint="pod-d", slo="latency", severity="warning"))

    def inhibited(expected: set[tuple[str, ...]]) -> dict[tuple[str, ...], dict[str, Any]]:
        now = statuses(base)
        return now if {k for k, a in now.items() if a["status"]["inhibitedBy"]} == expected \
            else {}

    now = wait_for(lambda: inhibited({
        ("RunpodCheckFailing", "pod-a", "warning"), ("RunpodPromptFailing", "pod-a", "warning"),
        ("RunpodErrorBudgetBurn", "pod-a", "critical"), ("RunpodPromptFailing", "pod-c", "warning"),
        ("RunpodErrorBudgetBurn", "pod-d", "warning")}), 10, "the endpoint-level inhibitions")
    down = now[("RunpodEndpointDown", "pod-a", "critical")]
    assert now[("RunpodCheckFailing", "pod-a", "warning")]["status"]["inhibitedBy"] == \
        [down["fingerprint"]]

    # One notification for pod-a's incident, to the pager, naming only the cause.
    def pod_a_pages() -> list[dict[str, Any]]:
        return [n for n in sink.received if n["groupLabels"] == {"endpoint": "pod-a"}]
    pages = wait_for(pod_a_pages, 10, "pod-a's notification")
    assert [n["path"] for n in pages] == ["/page"]
    assert [a["labels"]["alertname"] for a in pages[0]["alerts"]] == ["RunpodEndpointDown"]

    post(base, alert("RunpodProbeDown", severity="critical", instance="127.0.0.1:9464",
                     job="runpod-probe"))
    everything_but_the_daemon = {k for k in statuses(base) if k[0] != "RunpodProbeDown"}
    now = wait_for(lambda: inhibited(everything_but_the_daemon), 10, "the daemon's inhibition")
    assert not now[("RunpodProbeDown", "", "critical")]["status"]["inhibitedBy"]
