"""The ledger over real checks: a simulated pod probed over real sockets with the real
clock for I/O, while only the wall clock (result times, hysteresis windows) is frozen."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from helpers import parse_config, plan
from ledgerhelpers import Wired, sync
from simconfig import header, pods

from probe.app import PLUGINS
from probe.ledger.book import LedgerBook, connect, read_entries
from probe.ledger.chain import LedgerEntry, verify
from probe.net import make_client
from probe.prober import Prober
from probe.simulator import Fleet, PodSpec, Simulator
from probe.store import ResultStore, history

T0 = datetime(2026, 2, 18, 9, 0, tzinfo=UTC)
POD = "RunPod pod deepseek (g0aelua3ct8eb4)"


def drive(tmp_path: Path, steps: list[tuple[float, str]]) -> tuple[list[LedgerEntry], Any]:
    """Probe the pod once per step: (minutes after T0, simulator behaviour)."""
    fleet = Fleet()
    fleet.add_pod("g0aelua3ct8eb4", PodSpec())
    with Simulator(fleet, api_key=None) as sim:
        config = parse_config(
            header(sim, tmp_path, interval="30s", timeout="2s")
            + pods("deepseek g0aelua3ct8eb4 api_key_env: null, checks: [models]")
            + "ledger: {down_after: 3, up_after: 2, persistent_after: 30m}\n", env={})

        async def scenario() -> None:
            store = ResultStore(config.storage.path, batch_interval_s=0.01)
            book = LedgerBook(config.storage.path, batch_interval_s=0.01)
            ledger = Wired(book, config.sections["ledger"])
            sync(ledger, config, now=T0 - timedelta(minutes=1))
            (job,) = plan(config)
            try:
                async with make_client(4) as client:
                    prober = Prober(client, ledger.state, PLUGINS.resolve, 4, 1 << 20, store)
                    prober.judged.append(ledger.ledger.judged)
                    with freeze_time(T0, real_asyncio=True) as clock:
                        for minutes, behaviour in steps:
                            fleet.set_pod_behaviour("g0aelua3ct8eb4", behaviour)
                            clock.move_to(T0 + timedelta(minutes=minutes))
                            await prober.run_job(job)
            finally:
                store.close()
                book.close()

        asyncio.run(scenario())
    return read_entries(connect(config.storage.path)), config


def test_outage_yields_down_persistent_and_recovered_and_nothing_else(tmp_path: Path) -> None:
    steps = [(0, "healthy"), (0.5, "healthy"), (1, "healthy"),
             (1.5, "stopped"), (2, "stopped"), (2.5, "stopped"),  # 404 for 3 checks: down
             (3, "stopped"), (20, "stopped"),  # still down, below the persistence threshold
             (31.5, "stopped"),  # 30m after the first 404: persistently down, once
             (32, "stopped"), (35, "stopped"),
             (40, "healthy"), (40.5, "healthy")]  # up after 2 passes
    entries, config = drive(tmp_path, steps)
    rows = {r["id"]: r for r in history(config.storage.path, "deepseek")}
    assert [rows[i]["outcome"] for i in sorted(rows)] == \
        ["ok"] * 3 + ["http_404"] * 8 + ["ok"] * 2, "real checks saw the simulated pod"
    # when each change was observed is in its evidence; its ts is when it was appended
    assert [e.ts for e in entries] == sorted(e.ts for e in entries)
    assert [(e.evidence.observed_at, e.severity, e.event, e.pattern) for e in entries] == [
        ("2026-02-18T08:59:00+00:00", "info", "appeared", f"{POD} added to the probed fleet"),
        ("2026-02-18T09:02:30+00:00", "critical", "down",
         f"{POD} down (404) — pod stopped or destroyed, or port not exposed"),
        ("2026-02-18T09:31:30+00:00", "critical", "persistent",
         f"{POD} persistently down (404) for 30m — needs manual restart from the RunPod "
         "dashboard; not fixable via API"),
        ("2026-02-18T09:40:30+00:00", "info", "recovered",
         f"{POD} recovered after 38m30s down (404)"),
    ]
    down, persistent, recovered = (e.evidence for e in entries[1:])
    url = f"{config.runpod.proxy_url.format(pod_id='g0aelua3ct8eb4', port=8000)}"
    assert (down.check, down.outcome, down.first_row, down.last_row, down.url) == \
        ("models", "http_404", 4, 6, url)
    assert (persistent.first_row, persistent.last_row) == (4, 9)
    assert (recovered.outcome, recovered.first_row, recovered.last_row) == ("http_404", 4, 13)
    assert verify(entries).ok


@pytest.mark.parametrize(
    "pattern",
    ["SSFFSFFSFFSS", "SSFSFSFSFSSS", "SSFXSXFSXXSS"],
    ids=["two-failures-at-a-time", "alternating", "404-and-502-mixed"],
)
def test_flapping_below_the_thresholds_yields_no_entries(tmp_path: Path, pattern: str) -> None:
    behaviours = {"S": "healthy", "F": "stopped", "X": "server_down"}
    entries, _ = drive(tmp_path, [(i * 0.5, behaviours[c]) for i, c in enumerate(pattern)])
    assert [e.event for e in entries] == ["appeared"], "nothing but the config fact"


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [("incident", [("critical", "RunPod serverless endpoint vllm (vllm-sia7z3a2gk6wr4) workers "
                                "crash-looping — "),
                   ("info", "RunPod serverless endpoint vllm (vllm-sia7z3a2gk6wr4) workers "
                            "healthy again after ")]),
     ("rate_limited", [])],
    ids=["crash-loop-then-healthy", "control-plane-429-is-neither-up-nor-down"],
)
def test_serverless_conditions_through_the_real_queue_check(
        tmp_path: Path, behaviour: str, expected: list[tuple[str, str]]) -> None:
    from probe.simulator import ServerlessSpec

    fleet = Fleet()
    fleet.add_serverless("vllm-sia7z3a2gk6wr4", ServerlessSpec())
    with Simulator(fleet, api_key="sim-key-0000") as sim:
        config = parse_config(
            header(sim, tmp_path, interval="30s", timeout="2s")
            + "endpoints:\n  - {name: vllm, kind: serverless, endpoint_id: vllm-sia7z3a2gk6wr4}\n"
            + "ledger: {down_after: 1, up_after: 1}\n", env={"RUNPOD_API_KEY": "sim-key-0000"})

        async def scenario() -> None:
            book = LedgerBook(config.storage.path, batch_interval_s=0.01)
            ledger = Wired(book, config.sections["ledger"])
            sync(ledger, config, now=T0)
            try:
                async with make_client(4) as client:
                    prober = Prober(client, ledger.state, PLUGINS.resolve, 4, 1 << 20,
                                    env={"RUNPOD_API_KEY": "sim-key-0000"})
                    prober.judged.append(ledger.ledger.judged)
                    for name in ("healthy", behaviour, behaviour, "healthy"):
                        fleet.set_serverless_behaviour("vllm-sia7z3a2gk6wr4", name)
                        for job in plan(config):
                            await prober.run_job(job)
            finally:
                book.close()

        asyncio.run(scenario())
    entries = read_entries(connect(config.storage.path))[1:]  # after "appeared"
    assert len(entries) == len(expected)
    for entry, (severity, start) in zip(entries, expected, strict=True):
        assert entry.severity == severity and entry.pattern.startswith(start), entry.pattern
    assert all(e.evidence.check == "queue" for e in entries)
