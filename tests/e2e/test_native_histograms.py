"""Native histograms end to end: the real daemon (``metrics: {native_histograms: true}``)
probing a simulated pod that answers in 0.3 s, scraped by two real Prometheus servers at
once. One runs with ``--enable-feature=native-histograms``: it asks for protobuf, stores
the latency as a native histogram, and the median PromQL reads from it is within a
schema-3 bucket (about 9 %) of the pod's answer time, where the classic buckets (0.25 and
1 s around it) can only say "between 0.25 and 1". The other, without the feature, reads the
text page: every classic bucket series is there."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import yaml
from daemon_harness import run_daemon
from export_servers import free_port, running
from helpers import parse_config, tool
from simconfig import header, pods

from probe.daemon import Daemon
from probe.state import KIND_BUCKETS, les_of

DELAY_S = 0.3  # the simulated pod's answer time
LATENCY = 'runpod_probe_latency_seconds{endpoint="lagging",check_kind="api"}'
MEDIAN = f"histogram_quantile(0.5, rate({LATENCY}[1m]))"


def prometheus_config(tmp: Path, name: str, metrics_port: int) -> Path:
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "runpod-probe", "static_configs": [
            {"targets": [f"127.0.0.1:{metrics_port}"]}]}]}))
    return path


def query(api: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_prometheus_reads_native_latency_histograms_over_protobuf(
        sim: Any, sim_env: dict[str, str], tmp_path: Path) -> None:
    from probe.simulator import PodSpec

    prometheus = tool("prometheus")
    sim.fleet.add_pod("lagging", PodSpec("slow", delay_s=DELAY_S))
    metrics_port, native_port, classic_port = free_port(), free_port(), free_port()
    text = (header(sim, tmp_path, interval="1s", timeout="900ms").replace(
        'metrics: {listen: "127.0.0.1:0"}',
        f'metrics: {{listen: "127.0.0.1:{metrics_port}", native_histograms: true}}')
        + pods("lagging lagging checks: [models]"))
    assert "native_histograms: true" in text
    servers = {}
    for name, port, flags in (("native", native_port, ["--enable-feature=native-histograms"]),
                              ("classic", classic_port, [])):
        servers[name] = [prometheus, *flags,
                         f"--config.file={prometheus_config(tmp_path, name, metrics_port)}",
                         f"--storage.tsdb.path={tmp_path / name}",
                         f"--web.listen-address=127.0.0.1:{port}"]
    native_api = f"http://127.0.0.1:{native_port}/api/v1"
    classic_api = f"http://127.0.0.1:{classic_port}/api/v1"

    async def scenario(daemon: Daemon) -> tuple[float, list[dict[str, Any]]]:
        for _ in range(600):
            median = await asyncio.to_thread(query, native_api, MEDIAN)
            buckets = await asyncio.to_thread(
                query, classic_api, f"{LATENCY.replace('_seconds{', '_seconds_bucket{')}")
            if median and median[0]["value"][1] not in ("NaN",) and len(buckets) == 5:
                return float(median[0]["value"][1]), buckets
            await asyncio.sleep(0.2)
        raise AssertionError("Prometheus never had the latency of the pod")

    with running(servers["native"], f"http://127.0.0.1:{native_port}/-/ready",
                 tmp_path / "native.log"), \
            running(servers["classic"], f"http://127.0.0.1:{classic_port}/-/ready",
                    tmp_path / "classic.log"):
        median, buckets = run_daemon(parse_config(text, env=sim_env), sim_env, scenario)
        native_targets = query(native_api, 'up{job="runpod-probe"}')
        native_series = query(native_api, '{__name__=~"runpod_probe_.*",endpoint="lagging"}')
        classic_series = query(classic_api,
                               '{__name__=~"runpod_probe_.*",endpoint="lagging"}')

    # the native histogram's median: the schema-3 bucket holding 0.3 s is (0.297, 0.324]
    assert DELAY_S * 0.98 <= median <= DELAY_S * 1.1, median
    assert native_targets and native_targets[0]["value"][1] == "1"
    # the classic buckets, for a Prometheus without the feature (and the shipped rules)
    assert sorted(b["metric"]["le"] for b in buckets) == sorted(les_of(KIND_BUCKETS["api"]))
    # everything else the text page has reaches the Prometheus that read protobuf too
    names = {s["metric"]["__name__"] for s in native_series}
    classic_names = {s["metric"]["__name__"] for s in classic_series}
    assert classic_names - names == {f"runpod_probe_latency_seconds_{suffix}"
                                     for suffix in ("bucket", "count", "sum")}, \
        "only the classic latency series are replaced by the native histogram"
    assert "runpod_probe_latency_seconds" in names
