"""The Grafana dashboard for runpod-probe's metrics, built as data and written as JSON.

Features that export their own series add panels through ``EXTRA_PANELS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PanelMaker = Callable[[], list[dict[str, Any]]]
EXTRA_PANELS: list[PanelMaker] = []


def panel(title: str, kind: str, targets: list[tuple[str, str]], unit: str = "short",
          width: int = 12, height: int = 8, **options: Any) -> dict[str, Any]:
    return {
        "title": title, "type": kind, "datasource": DATASOURCE,
        "gridPos": {"w": width, "h": height, "x": 0, "y": 0},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
                     "datasource": DATASOURCE} for i, (expr, legend) in enumerate(targets)],
        "options": options,
    }


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False,
            "gridPos": {"w": 24, "h": 1, "x": 0, "y": 0}, "panels": []}


SEL = 'endpoint=~"$endpoint"'


def core_panels() -> list[dict[str, Any]]:
    return [
        row("Fleet"),
        panel("Endpoint up", "stat", [(f"runpod_probe_endpoint_up{{{SEL}}}", "{{endpoint}}")],
              width=24, height=5, colorMode="background", graphMode="none"),
        panel("Current outcome", "table",
              [(f"runpod_probe_outcome{{{SEL}}} == 1", "")], width=24, height=8),
        panel("Outcome over time (non-ok)", "timeseries",
              [(f'sum by (endpoint, outcome) (runpod_probe_outcome{{{SEL},outcome!="ok"}})',
                "{{endpoint}} {{outcome}}")]),
        panel("Results by outcome (rate)", "timeseries",
              [(f"sum by (outcome) (rate(runpod_probe_results_total{{{SEL}}}[$__rate_interval]))",
                "{{outcome}}")], unit="ops"),
        row("Latency and context"),
        panel("Check latency p50 / p95", "timeseries", [
            (f"histogram_quantile(0.5, sum by (le, endpoint, check) (rate("
             f"runpod_probe_latency_seconds_bucket{{{SEL}}}[$__rate_interval])))",
             "p50 {{endpoint}} {{check}}"),
            (f"histogram_quantile(0.95, sum by (le, endpoint, check) (rate("
             f"runpod_probe_latency_seconds_bucket{{{SEL}}}[$__rate_interval])))",
             "p95 {{endpoint}} {{check}}")], unit="s"),
        panel("max_model_len", "timeseries",
              [(f"runpod_probe_max_model_len{{{SEL}}}", "{{endpoint}} {{model}}")]),
        panel("Last HTTP status", "timeseries",
              [(f"runpod_probe_last_http_status{{{SEL}}}", "{{endpoint}} {{check}}")]),
        panel("Passes that needed a retry", "timeseries",
              [(f"increase(runpod_probe_retried_successes_total{{{SEL}}}[1h])",
                "{{endpoint}} {{check}}")]),
        row("Ledger state (hysteresis: down after N failures, up after M passes)"),
        panel("Endpoint state", "state-timeline",
              [(f'max by (endpoint, state) (runpod_probe_endpoint_state{{{SEL}}}) == 1',
                "{{endpoint}} {{state}}")], width=24, height=8),
        row("Governed prompts"),
        panel("Prompt passing", "stat",
              [(f"runpod_probe_prompt_pass{{{SEL}}}", "{{endpoint}} {{prompt}}")],
              width=24, height=5, colorMode="background", graphMode="none"),
        panel("Time to first token p50 / p95", "timeseries", [
            (f"histogram_quantile(0.5, sum by (le, endpoint) (rate("
             f"runpod_probe_prompt_ttft_seconds_bucket{{{SEL}}}[$__rate_interval])))",
             "p50 {{endpoint}}"),
            (f"histogram_quantile(0.95, sum by (le, endpoint) (rate("
             f"runpod_probe_prompt_ttft_seconds_bucket{{{SEL}}}[$__rate_interval])))",
             "p95 {{endpoint}}")], unit="s", width=8),
        panel("Decode tokens/s", "timeseries",
              [(f"runpod_probe_prompt_tokens_per_second{{{SEL}}}", "{{endpoint}} {{prompt}}")],
              width=8),
        panel("Tokens spent by probing (per hour)", "timeseries",
              [(f"sum by (endpoint, type) (increase(runpod_probe_tokens_spent_total{{{SEL}}}[1h]))",
                "{{endpoint}} {{type}}")], width=8),
        row("vLLM pods: engine load"),
        panel("Requests waiting / running", "timeseries", [
            (f"runpod_probe_vllm_requests_waiting{{{SEL}}}", "waiting {{endpoint}}"),
            (f"runpod_probe_vllm_requests_running{{{SEL}}}", "running {{endpoint}}")], width=8),
        panel("KV-cache usage", "timeseries",
              [(f"runpod_probe_vllm_kv_cache_usage_ratio{{{SEL}}}", "{{endpoint}}")],
              unit="percentunit", width=8),
        panel("Generated tokens/s (all traffic)", "timeseries",
              [(f"runpod_probe_vllm_generation_tokens_per_second{{{SEL}}}", "{{endpoint}}")],
              width=8),
        row("Serverless queues"),
        panel("Jobs by state", "timeseries",
              [(f"runpod_probe_serverless_jobs{{{SEL}}}", "{{endpoint}} {{state}}")], width=8),
        panel("Workers by state", "timeseries",
              [(f"runpod_probe_serverless_workers{{{SEL}}}", "{{endpoint}} {{state}}")],
              width=8),
        panel("Round trip delay (queue + cold start) p95", "timeseries",
              [(f"histogram_quantile(0.95, sum by (le, endpoint, start) (rate("
                f"runpod_probe_serverless_delay_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                "{{endpoint}} {{start}}")], unit="s", width=8),
        row("Discovery (RunPod REST API)"),
        panel("Discovered endpoints", "timeseries",
              [("runpod_probe_discovered_endpoints", "discovered {{kind}}"),
               ("runpod_probe_discovery_skipped", "skipped {{kind}}")], width=12),
        panel("Discovery outcome", "state-timeline",
              [('runpod_probe_outcome{endpoint="runpod-api",check="discovery"} == 1',
                "{{outcome}}")], width=12),
        row("The daemon"),
        panel("Scheduler lag p99", "timeseries",
              [("histogram_quantile(0.99, sum by (le) (rate("
                "runpod_probe_scheduler_lag_seconds_bucket[$__rate_interval])))", "p99")],
              unit="s", width=8),
        panel("Checks in flight", "timeseries", [("runpod_probe_probes_in_flight", "in flight")],
              width=8),
        panel("Store", "timeseries", [
            ("runpod_probe_store_pending_results", "pending"),
            ("increase(runpod_probe_store_errors_total[$__rate_interval])", "errors"),
            ("increase(runpod_probe_store_dropped_total[$__rate_interval])", "dropped")],
              width=8),
    ]


def layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place panels left to right, top to bottom, on Grafana's 24-column grid."""
    x = y = row_height = 0
    for index, item in enumerate(panels, start=1):
        item["id"] = index
        grid = item["gridPos"]
        if x + grid["w"] > 24 or item["type"] == "row":
            x, y, row_height = 0, y + row_height, 0
        grid["x"], grid["y"] = x, y
        x += grid["w"]
        row_height = max(row_height, grid["h"])
        if item["type"] == "row":
            x, y, row_height = 0, y + grid["h"], 0
    return panels


def dashboard() -> dict[str, Any]:
    panels = core_panels()
    for extra in EXTRA_PANELS:
        panels.extend(extra())
    return {
        "uid": "runpod-probe", "title": "runpod-probe: RunPod LLM endpoints",
        "tags": ["runpod", "vllm", "llm"], "timezone": "utc", "schemaVersion": 39,
        "editable": True, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Data source"},
            {"name": "endpoint", "type": "query", "datasource": DATASOURCE,
             "query": {"query": "label_values(runpod_probe_endpoint_info, endpoint)",
                       "refId": "endpoints"},
             "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
             "current": {"text": "All", "value": "$__all"}},
        ]},
        "panels": layout(panels),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"
