"""Native histograms end to end: the real daemon (``metrics: {native_histograms: true}``)
probing a simulated pod that answers in 0.3 s, scraped by two real Prometheus servers at
once. One runs with ``--enable-feature=native-histograms``: it asks for protobuf, stores
the latency as a native histogram, and the median PromQL reads from it is within a
schema-3 bucket (about 9 %) of the pod's answer time, where the classic buckets (0.25 and
1 s around it) can only say "between 0.25 and 1". The other, without the feature, reads the
text page: every classic bucket series is there.

Then the shipped rules and dashboards with every form a Prometheus may store: classic
buckets only, the native histogram only, or both (promtool 2.42's rule tests cannot feed
native histograms: its series notation has no ``{{schema:...}}`` yet, so this runs on
real Prometheus servers)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from daemon_harness import run_daemon
from export_servers import free_port, running, serving
from helpers import parse_config, tool
from prometheus_api import checks, dashboard_targets, empty, has_data
from simconfig import header, pods

from probe.daemon import Daemon
from probe.demo import DEMO_KEY_ENV, DEMO_PROVIDER_KEY_ENV, demo_config
from probe.export.files import ExportOptions, render_rules
from probe.export.slo import SloSettings
from probe.state import KIND_BUCKETS, les_of

DELAY_S = 0.3  # the simulated pod's answer time
LATENCY = 'runpod_probe_latency_seconds{endpoint="lagging",check_kind="api"}'
MEDIAN = f"histogram_quantile(0.5, rate({LATENCY}[1m]))"
SERIES = '{__name__=~"runpod_probe_.*",endpoint="lagging"}'


def prometheus_config(tmp: Path, name: str, metrics_port: int) -> Path:
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "runpod-probe", "static_configs": [
            {"targets": [f"127.0.0.1:{metrics_port}"]}]}]}))
    return path


def query(api: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=30).json()
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

    async def scenario(daemon: Daemon) -> tuple[float, list[dict[str, Any]],
                                                dict[str, list[dict[str, Any]]]]:
        for _ in range(600):
            median = await asyncio.to_thread(query, native_api, MEDIAN)
            buckets = await asyncio.to_thread(
                query, classic_api, f"{LATENCY.replace('_seconds{', '_seconds_bucket{')}")
            if median and median[0]["value"][1] not in ("NaN",) and len(buckets) == 5:
                # while the daemon still runs: once stopped, the next scrape would say 0 and
                # mark every series it had stale (an instant query no longer returns them)
                seen = {name: await asyncio.to_thread(query, api, expr) for name, api, expr in (
                    ("up", native_api, 'up{job="runpod-probe"}'),
                    ("native", native_api, SERIES), ("classic", classic_api, SERIES))}
                return float(median[0]["value"][1]), buckets, seen
            await asyncio.sleep(0.2)
        raise AssertionError("Prometheus never had the latency of the pod")

    with running(servers["native"], f"http://127.0.0.1:{native_port}/-/ready",
                 tmp_path / "native.log"), \
            running(servers["classic"], f"http://127.0.0.1:{classic_port}/-/ready",
                    tmp_path / "classic.log"):
        median, buckets, seen = run_daemon(parse_config(text, env=sim_env), sim_env, scenario)
    native_targets, native_series, classic_series = seen["up"], seen["native"], seen["classic"]

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


# The latency SLO's threshold for the test below: the lagging pod (1.5 s) misses it, a
# healthy pod (a few ms, the odd check slowed by a busy machine) meets it. 1 s is a bound of
# both forms (2^0 in schema 3), so the native fraction up to it is exact, as the classic
# bucket is.
SLOW_SLO = SloSettings(latency_threshold_s=1.0)
LAGGING_S = 1.5
VARIABLES = {"$endpoint": ".*", "$kind": ".*", "$job": "runpod-probe", "$instance": ".*",
             "$__rate_interval": "20s"}
LATENCY_SLO = 'slo:sli_error:ratio_rate{window}{{slo="latency",endpoint=~"lagging|qwen-healthy"}}'
FORMS = ("classic", "native", "both")
PROVIDER_KEY = "made-up-provider-key-for-the-demo-fleet"


def rules_file(tmp: Path) -> Path:
    """The shipped rules for ``SLOW_SLO``, every group at Prometheus's pace (1 s) and every
    alert firing as soon as its condition holds (no ``for``)."""
    text = render_rules(ExportOptions(slo=SLOW_SLO))
    path = tmp / "rules.yml"
    path.write_text(re.sub(r"^ +(interval|for): .*\n", "", text, flags=re.M))
    return path


def forms_config(tmp: Path, form: str, metrics_port: int, classic_port: int) -> Path:
    """A Prometheus of ``form``: ``classic`` and ``native`` scrape the daemon (native with
    the feature on, as protobuf); ``both`` also federates the classic buckets from the
    classic one, under the daemon's own labels: a Prometheus that keeps both forms."""
    jobs: list[dict[str, Any]] = [{"job_name": "runpod-probe", "static_configs": [
        {"targets": [f"127.0.0.1:{metrics_port}"]}]}]
    if form == "both":
        jobs.append({"job_name": "classic-buckets", "honor_labels": True,
                     "metrics_path": "/federate",
                     "params": {"match[]": ['{__name__=~"runpod_probe_latency_seconds_.+"}']},
                     "static_configs": [{"targets": [f"127.0.0.1:{classic_port}"]}]})
    path = tmp / f"{form}.yml"
    path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file(tmp))], "scrape_configs": jobs}))
    return path


def by_endpoint(api: str, expr: str) -> dict[str, float]:
    return {s["metric"]["endpoint"]: float(s["value"][1]) for s in query(api, expr)}


def latency_burns(api: str) -> set[tuple[str, str, str]]:
    alerts = httpx.get(f"{api}/alerts", timeout=30).json()["data"]["alerts"]
    return {(a["labels"]["endpoint"], a["labels"]["severity"], a["state"]) for a in alerts
            if a["labels"]["alertname"] == "RunpodErrorBudgetBurn"
            and a["labels"]["slo"] == "latency"}


def test_shipped_rules_and_dashboards_read_classic_native_or_both_forms(
        sim_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    """The demo's fleet plus a pod that answers in 1.5 s, probed by the daemon with native
    histograms on, scraped by three Prometheus servers: one without the feature (classic
    buckets), one with it (the native histogram only) and one with it that also federates
    the classic buckets (both forms, as ``scrape_classic_histograms`` keeps them on 2.45+).
    From each, every dashboard target and every recording rule of the shipped rules has
    data, the latency SLO says the same (all of the lagging pod's checks slow, next to none
    of the healthy pod's), its fast burn pages the lagging pod and not the healthy one, each
    latency panel draws one line per label set, and the Prometheus with both forms counts
    each check once (as many API checks per second as the classic one, not twice)."""
    from probe.simulator import Fleet, PodSpec, Simulator

    prometheus = tool("prometheus")
    monkeypatch.setenv(DEMO_KEY_ENV, sim_env["RUNPOD_API_KEY"])
    monkeypatch.setenv(DEMO_PROVIDER_KEY_ENV, PROVIDER_KEY)
    fleet = Fleet.default(provider_key=PROVIDER_KEY)
    fleet.add_pod("lagging", PodSpec("slow", delay_s=LAGGING_S))
    metrics_port = free_port()
    ports = {form: free_port() for form in FORMS}
    sim = Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]).start()
    request.addfinalizer(sim.stop)
    # (every 3 s with a 3 s timeout: the lagging pod answers, slowly, even on a busy
    # machine, and is never down, which would hold its burn page)
    text = demo_config(sim, fleet, tmp_path, metrics_port, "3s").replace(
        f'  listen: "127.0.0.1:{metrics_port}"\n',
        f'  listen: "127.0.0.1:{metrics_port}"\n  native_histograms: true\n').replace(
        "  timeout: 2s\n", "  timeout: 3s\n")
    assert "native_histograms: true" in text and "  timeout: 2s\n" not in text
    apis = {form: f"http://127.0.0.1:{port}/api/v1" for form, port in ports.items()}
    servers = [([prometheus, *([] if form == "classic" else ["--enable-feature=native-histograms"]),
                 f"--config.file={forms_config(tmp_path, form, metrics_port, ports['classic'])}",
                 f"--storage.tsdb.path={tmp_path / form}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                f"http://127.0.0.1:{port}/-/ready", tmp_path / f"{form}.log")
               for form, port in ports.items()]
    targets = checks(rules_file(tmp_path).read_text(), VARIABLES)

    def settled() -> bool:
        return all(("lagging", "critical", "firing") in latency_burns(api)
                   and has_data(api, targets) for api in apis.values())

    async def scenario(daemon: Daemon) -> dict[str, Any]:
        # round trips and the guard's 20 checks a check take a minute or two (five on a
        # busy machine)
        deadline = asyncio.get_running_loop().time() + 420
        while asyncio.get_running_loop().time() < deadline:
            if await asyncio.to_thread(settled):
                return {form: await asyncio.to_thread(snapshot, api)
                        for form, api in apis.items()}
            await asyncio.sleep(2)
        raise AssertionError("no data for:\n  " + "\n  ".join(
            f"{form}: {what}" for form, api in apis.items() for what in empty(api, targets)))

    def snapshot(api: str) -> dict[str, Any]:
        return {
            "buckets": query(api, 'count(runpod_probe_latency_seconds_bucket{check_kind="api"})'),
            "native": query(api, 'count(histogram_count(runpod_probe_latency_seconds))'),
            "5m": by_endpoint(api, LATENCY_SLO.format(window="5m")),
            "1h": by_endpoint(api, LATENCY_SLO.format(window="1h")),
            "events": by_endpoint(api, 'slo:sli_events:rate5m{slo="latency",endpoint="lagging"}'),
            "checks": by_endpoint(api, 'slo:sli_checks:count{slo="latency",endpoint="lagging"}'),
            "burns": latency_burns(api),
            "quantiles": {what: sorted(str(sorted(s["metric"].items()))
                                       for s in query(api, expr))
                          for what, expr in dashboard_targets(VARIABLES)
                          if "histogram_quantile" in expr}}

    with serving(*servers):
        seen = run_daemon(parse_config(text, env=dict(os.environ)), dict(os.environ), scenario)

    # what each stores: the classic buckets, the native histogram, both
    assert [bool(seen[f]["buckets"]) for f in FORMS] == [True, False, True]
    assert [bool(seen[f]["native"]) for f in FORMS] == [False, True, True]
    for form in FORMS:
        # every check of the lagging pod slower than 1 s (but the odd one while it started),
        # next to none of the healthy pod's (the odd one slowed by a busy machine)
        assert seen[form]["5m"]["lagging"] == 1.0, form
        assert seen[form]["1h"]["lagging"] >= 0.95, form
        # (present, not dropped: bad events are all minus fast ones, clamped at 0, so a
        # -1e-7 of float noise is not a negative count the ratio's ">= 0" would drop)
        assert seen[form]["5m"]["qwen-healthy"] < 0.1, form
        assert seen[form]["1h"]["qwen-healthy"] < 0.1, form
        # the fast burn pages the lagging pod, not the healthy one
        assert ("lagging", "critical", "firing") in seen[form]["burns"], form
        assert "qwen-healthy" not in {e for e, _, _ in seen[form]["burns"]}, form
        # one series per panel line, whichever form: the "or" never draws both
        assert seen[form]["quantiles"] == seen["classic"]["quantiles"], form
    # the API checks per second: every form counts each check once (both: not twice)
    classic = seen["classic"]["events"]["lagging"] / seen["classic"]["checks"]["lagging"]
    for form in ("native", "both"):
        rate = seen[form]["events"]["lagging"] / seen[form]["checks"]["lagging"]
        assert 0.8 * classic <= rate <= 1.25 * classic, (form, rate, classic)
