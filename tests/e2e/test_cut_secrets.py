"""Issue 20, item 3: a key a hostile server places across the cut of a body's preview is
nowhere the daemon writes or prints, not even its first characters. One pod per offset of
the cut (0 to the whole key); every surface is read as bytes and searched for every prefix
of 8 characters or more of every configured key."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from daemon_harness import ledger_rows, run_daemon, scrape, until
from simconfig import header, pods, write

from probe.daemon import Daemon
from probe.simulator import Fleet, PodSpec, Simulator

FRAGMENT_CHARS = 8  # the bound: no run of 8 characters of a key may show
ACCOUNT = "rk-account-cut-7Qm2Zx9Lp4Vb"
POD_KEY = "vk-pod-cut-K3t8Wq1Jd6Ry0Hn5Ug"  # 30 characters: 31 cuts, 0 to 30


def prefixes(key: str) -> list[bytes]:
    return [key[:n].encode() for n in range(FRAGMENT_CHARS, len(key) + 1)]


def leaks(where: str, data: bytes) -> list[str]:
    return [f"{where}: {p.decode()!r}" for key in (ACCOUNT, POD_KEY) for p in prefixes(key)
            if p in data]


def files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory``, the database's WAL and journal included."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_key_cut_at_any_offset_is_nowhere(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    env = {**os.environ, "RUNPOD_API_KEY": ACCOUNT, "POD_KEY": POD_KEY}
    caplog.set_level(logging.DEBUG)
    offsets = range(len(POD_KEY) + 1)
    fleet = Fleet()
    for cut in offsets:
        fleet.add_pod(f"cut{cut}", PodSpec("echo_auth_cut", cut_at=cut))
    state = tmp_path / "state"
    state.mkdir()
    learning = state / "LEARNING.md"
    learning.write_text("| Date | Pattern | Source |\n|---|---|---|\n")
    seen: dict[str, bytes] = {}
    with Simulator(fleet, api_key=None) as sim:
        config = write(tmp_path / "c.yaml", header(sim, state, interval="300ms", timeout="250ms")
                       + pods(*(f"cut{c} cut{c} api_key_env: POD_KEY, checks: [models, health]"
                                for c in offsets))
                       + f'learning: {{path: "{learning}"}}\n'
                       + "ledger: {down_after: 1, up_after: 1}\n")

        async def scenario(daemon: Daemon) -> None:
            def all_down() -> bool:
                down = {name for name, event in ledger_rows(state / "probe.db")
                        if event == "down"}
                return down >= {f"cut{c}" for c in offsets}
            await until(all_down, timeout_s=30, what="every pod down in the ledger")
            await asyncio.sleep(1.5)  # the writers' next batch, LEARNING.md's rows
            seen["metrics"] = (await scrape(daemon)).encode()
            for page in ("/", "/status.json"):
                url = daemon.metrics_url.replace("/metrics", page)
                seen[page] = (await asyncio.to_thread(httpx.get, url)).content
            seen.update({f"running {name}": data for name, data in files(state).items()})

        run_daemon(config, env, scenario)
        for args in (["once"], ["once", "--json"], ["gate", "cut12", "--timeout", "1s"],
                     ["ledger", "list"]):
            done = subprocess.run([sys.executable, "-m", "probe", *args, "--config",
                                   str(config)], env=env, capture_output=True, timeout=120)
            seen[" ".join(args)] = done.stdout + done.stderr
    seen.update({f"stopped {name}": data for name, data in files(state).items()})
    seen["logs"] = caplog.text.encode()
    assert "running probe.db-wal" in seen, "the WAL was read while the daemon ran"
    assert b"HTTP 400" in seen["/status.json"], "the hostile answers reached the page"
    assert b"***" in seen["once --json"], "a cut long enough to matter was masked"
    found = [leak for where, data in seen.items() for leak in leaks(where, data)]
    assert not found, found[:10]
