"""Fleet incidents and the probe's own vantage, end to end: the real daemon against the
simulator over real sockets.

- every pod behind the proxy failing at once is one incident (one ledger entry when it
  opens, one when it closes; the endpoints' own entries cite it), on /metrics and the
  status page;
- the probe cut off (its one vantage target, a reference URL, on a closed port) while the
  pods fail: endpoints are unknown, never down, ``runpod_probe_offline`` is 1, and no
  incident opens.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import ledger_rows, run_daemon, scrape, until
from helpers import parse_config
from simconfig import header

from probe.cli import main
from probe.daemon import Daemon
from probe.simulator import Fleet, Simulator
from probe.simulator.specs import PodSpec

PODS = [f"bench-{i:04d}" for i in range(5)]


@pytest.fixture
def fleet(sim_env: dict[str, str]) -> Iterator[Any]:
    with Simulator(Fleet.bench(len(PODS)), api_key=sim_env["RUNPOD_API_KEY"]) as simulator:
        yield simulator


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(sim: Any, state: Path, vantage: str = "") -> str:
    rows = "\n".join(f"  - {{name: {p}, kind: pod, pod_id: {p}}}" for p in PODS)
    return (header(sim, state) + "verdict: {down_after: 2, up_after: 1}\n" + vantage
            + "endpoints:\n" + rows + "\n")


def value(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_proxy_outage_is_one_incident(fleet: Any, tmp_path: Path,
                                        sim_env: dict[str, str]) -> None:
    config = parse_config(config_text(fleet, tmp_path), sim_env)
    db = tmp_path / "probe.db"
    scope = "proxy:" + fleet.proxy_template.split("/")[2]

    async def scenario(daemon: Daemon) -> None:
        await until(lambda: daemon.state.states().get("up") == len(PODS), what="all up")
        for pod in PODS:
            fleet.fleet.set_pod_behaviour(pod, "stopped")
        await until(lambda: daemon.state.states().get("down") == len(PODS), what="all down")
        text = await scrape(daemon)
        assert value(text, f'runpod_probe_incident{{cause="http_404",scope="{scope}"}}') == 1
        members = [line for line in text.splitlines()
                   if line.startswith("runpod_probe_endpoint_incident{")]
        assert len(members) == len(PODS)
        assert value(text, "runpod_probe_offline") == 0
        assert value(text, 'runpod_probe_vantage_up{target="runpod_api"}') == 1
        page = json.loads((await _get(daemon, "/status.json")).text)
        assert [(i["scope"], i["cause"], i["failing_now"]) for i in page["incidents"]["open"]] \
            == [(scope, "http_404", len(PODS))]
        html = (await _get(daemon, "/")).text
        assert f"✖ {scope}" in html and f"{len(PODS)} of {len(PODS)}" in html
        await until(lambda: any(e == "incident_opened" for _, e in ledger_rows(db)),
                    what="the incident's entry")
        for pod in PODS:
            fleet.fleet.set_pod_behaviour(pod, "healthy")
        await until(lambda: daemon.state.states().get("up") == len(PODS), what="all up again")
        await until(lambda: any(e == "incident_closed" for _, e in ledger_rows(db)),
                    what="the closing entry")
        text = await scrape(daemon)
        assert "runpod_probe_incident{" not in text
        assert "runpod_probe_endpoint_incident{" not in text
        page = json.loads((await _get(daemon, "/status.json")).text)
        assert page["incidents"]["open"] == []
        assert [h["event"] for h in page["incidents"]["history"]] == \
            ["incident_closed", "incident_opened"]
        html = (await _get(daemon, "/")).text
        assert "Fleet incidents" in html and "incident_opened" not in html

    run_daemon(config, sim_env, scenario)
    rows = ledger_rows(db, "endpoint, event, pattern")
    incident = [r for r in rows if r[1].startswith("incident_")]
    assert [(r[0], r[1]) for r in incident] == [(scope, "incident_opened"),
                                                (scope, "incident_closed")]
    assert f"of {len(PODS)} endpoints" in incident[0][2]
    downs = [r for r in rows if r[1] == "down"]
    assert len(downs) == len(PODS)  # the endpoints' entries still exist ...
    ident = incident[0][2].split(":")[0].removeprefix("Fleet incident ")
    cited = [r for r in rows if r[1] in ("down", "recovered") and "part of fleet incident" in r[2]]
    assert cited, "endpoint entries inside the incident point at it"
    assert all(ident.split("/")[0] in r[2] for r in cited)


def test_an_offline_probe_sees_unknown_never_down(fleet: Any, tmp_path: Path) -> None:
    closed = closed_port()
    vantage = f'vantage: {{reference_urls: ["http://127.0.0.1:{closed}/"]}}\n'
    env: dict[str, str] = {}  # no RunPod key: the reference URL is the only vantage target
    config = parse_config(config_text(fleet, tmp_path, vantage), env)
    for pod in PODS:
        fleet.fleet.set_pod_behaviour(pod, "stopped")
    db = tmp_path / "probe.db"

    async def scenario(daemon: Daemon) -> None:
        def seen(pod: str) -> int:
            check = daemon.state.snapshot().checks.get((pod, "models"))
            return 0 if check is None else sum(check.outcomes.values())

        await until(lambda: all(seen(p) >= 4 for p in PODS), what="four results of every pod")
        assert daemon.state.states() == {"unknown": len(PODS)}
        text = await scrape(daemon)
        assert value(text, "runpod_probe_offline") == 1
        assert value(text, f'runpod_probe_vantage_up{{target="reference:http://127.0.0.1:'
                           f'{closed}/"}}') == 0
        assert "runpod_probe_incident{" not in text
        page = json.loads((await _get(daemon, "/status.json")).text)
        assert page["incidents"]["offline"] is True
        assert {e["state"] for e in page["endpoints"]} == {"unknown"}
        assert "the probe itself is offline" in (await _get(daemon, "/")).text

    run_daemon(config, env, scenario)
    assert [e for _, e in ledger_rows(db) if e in ("down", "incident_opened")] == []


async def _get(daemon: Daemon, path: str) -> httpx.Response:
    import asyncio

    url = daemon.metrics_url.removesuffix("/metrics") + path
    return await asyncio.to_thread(httpx.get, url)


def test_a_probe_cut_off_mid_run_sees_unknown_never_down(fleet: Any, tmp_path: Path) -> None:
    """The reference answers, then goes away together with every pod: the first failure asks
    for a vantage check at once, so no pod reaches ``down_after`` failures."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    reference = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=reference.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{reference.server_address[1]}/"
    vantage = f'vantage: {{reference_urls: ["{url}"]}}\n'
    config = parse_config(config_text(fleet, tmp_path, vantage).replace(
        "verdict: {down_after: 2, up_after: 1}", "verdict: {down_after: 3, up_after: 1}"), {})
    db = tmp_path / "probe.db"

    async def scenario(daemon: Daemon) -> None:
        await until(lambda: daemon.state.states().get("up") == len(PODS), what="all up")
        assert value(await scrape(daemon), "runpod_probe_offline") == 0
        reference.shutdown()
        reference.server_close()  # the port refuses from now on
        for pod in PODS:
            fleet.fleet.set_pod_behaviour(pod, "stopped")
        await until(lambda: daemon.state.states().get("unknown") == len(PODS), timeout_s=30,
                    what="all unknown")
        text = await scrape(daemon)
        assert value(text, "runpod_probe_offline") == 1
        assert value(text, f'runpod_probe_vantage_up{{target="reference:{url}"}}') == 0

    run_daemon(config, {}, scenario)
    assert [e for _, e in ledger_rows(db) if e in ("down", "incident_opened")] == []


HOSTILE = "bench-0004 [part of fleet incident 1]"


def test_a_proxy_outage_is_one_learning_row(sim_env: dict[str, str], tmp_path: Path) -> None:
    """Every pod 502 at once: LEARNING.md gets a row for the fleet incident as it opens and
    its recovery row as it closes (its endpoints in the rows' evidence), none per endpoint,
    although the first endpoints went down before the incident existed. Names reading "[part of fleet incident 1]" change nothing: one is
    in the incident like the others, one fails alone (404) and keeps its own row."""
    fleet = Fleet.bench(len(PODS))
    fleet.add_pod("loner", PodSpec("stopped"))
    names = {**{p: p for p in PODS}, "bench-0004": HOSTILE}
    learning = tmp_path / "LEARNING.md"
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        rows = "\n".join(f"  - {{name: \"{names[p]}\", kind: pod, pod_id: {p}}}" for p in PODS)
        text = (header(sim, tmp_path) + "verdict: {down_after: 2, up_after: 1}\n"
                + f'learning: {{path: "{learning}"}}\n' + "endpoints:\n" + rows
                + '\n  - {name: "loner [part of fleet incident 1]", kind: pod, pod_id: loner}\n')
        config = parse_config(text, sim_env)
        db = tmp_path / "probe.db"

        async def scenario(daemon: Daemon) -> None:
            await until(lambda: daemon.state.states().get("up") == len(PODS), what="all up")
            for pod in PODS:  # RunPod's proxy answers 502 for every pod at once
                sim.fleet.set_pod_behaviour(pod, "server_down")
            await until(lambda: any(e == "incident_opened" for _, e in ledger_rows(db)),
                        what="the incident's entry")
            # while it is open, LEARNING.md says so (not only once it closes)
            await until(lambda: "— open; " in learning.read_text(), what="the open row")
            for pod in PODS:
                sim.fleet.set_pod_behaviour(pod, "healthy")
            await until(lambda: daemon.state.states().get("up") == len(PODS), what="all up")
            await until(lambda: any(e == "incident_closed" for _, e in ledger_rows(db)),
                        what="the closing entry")

        run_daemon(config, sim_env, scenario)
    entries = ledger_rows(db, "id, endpoint, event")
    downs = [n for n, endpoint, event in entries if event == "down" and endpoint in names.values()]
    assert len(downs) == len(PODS), entries
    found = [line for line in learning.read_text().splitlines() if line.startswith("| 20")]
    assert len(found) == 4, "\n".join(found)
    assert "6 endpoints added to the probed fleet" in found[0]
    assert "RunPod pod loner [part of fleet incident 1] (loner) down (404)" in found[1]
    opened = next(n for n, _, event in entries if event == "incident_opened")
    closed = next(n for n, _, event in entries if event == "incident_closed")
    assert "Fleet incident proxy:" in found[2] and f"ledger #{opened} sha256:" in found[2]
    assert "Fleet incident proxy:" in found[3] and f"ledger #{closed} sha256:" in found[3]
    assert " closed after " in found[3] and " — ended by " in found[3]
    assert all(f"#{n}" in found[3] for n in downs), "every endpoint's down entry is evidence"
    assert HOSTILE in found[3] and "bench-0000" in found[3]
    assert main(["ledger", "verify", "--db", str(db), "--learning", str(learning)]) == 0


def test_a_pod_down_again_after_the_incident_closed_has_a_row_of_its_own(
        sim_env: dict[str, str], tmp_path: Path) -> None:
    """Every pod 502, then every pod back (the incident closes), then one pod 502 again at
    once, well within ``SETTLE`` of the close: a new failure, not the closed incident's.
    Its down entry does not cite the old incident and LEARNING.md has a row for it."""
    learning = tmp_path / "LEARNING.md"
    with Simulator(Fleet.bench(len(PODS)), api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        text = (config_text(sim, tmp_path).replace(
            "endpoints:\n", f'learning: {{path: "{learning}"}}\nendpoints:\n', 1))
        config = parse_config(text, sim_env)
        db = tmp_path / "probe.db"

        async def scenario(daemon: Daemon) -> None:
            await until(lambda: daemon.state.states().get("up") == len(PODS), what="all up")
            for pod in PODS:
                sim.fleet.set_pod_behaviour(pod, "server_down")
            await until(lambda: any(e == "incident_opened" for _, e in ledger_rows(db)),
                        what="the incident's entry")
            for pod in PODS:
                sim.fleet.set_pod_behaviour(pod, "healthy")
            await until(lambda: daemon.state.states().get("up") == len(PODS), what="all up")
            await until(lambda: any(e == "incident_closed" for _, e in ledger_rows(db)),
                        what="the closing entry")
            sim.fleet.set_pod_behaviour(PODS[0], "server_down")
            await until(lambda: ledger_rows(db)[-1] == (PODS[0], "down"),
                        what="the pod's new down entry")

        run_daemon(config, sim_env, scenario)
    entries = ledger_rows(db, "id, endpoint, event, incident")
    closed = max(n for n, _, event, _ in entries if event == "incident_closed")
    again = [(n, incident) for n, endpoint, event, incident in entries
             if endpoint == PODS[0] and event == "down" and n > closed]
    assert len(again) == 1 and again[0][1] is None, entries  # not the closed incident's
    found = [line for line in learning.read_text().splitlines() if line.startswith("| 20")]
    assert any(f"ledger #{again[0][0]} sha256:" in line and "down (502)" in line
               for line in found), "\n".join(found)
    assert main(["ledger", "verify", "--db", str(db), "--learning", str(learning)]) == 0
