"""``ledger verify --metrics URL`` holds the table against the head the running daemon's
writer reports on /metrics (``runpod_probe_ledger_head_id``) and its chain watch
(``runpod_probe_ledger_chain_valid``): entries removed from the end with the anchor file
removed too, or a forged tail sealed onto what is left, pass every check made from the
files alone, and fail this one. A page that cannot be read is exit 2, in one line."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import ledger_rows, run_daemon, until
from ledgerhelpers import draft
from simconfig import header, pods, write

from probe.cli import main
from probe.daemon import Daemon
from probe.ledger.anchor import anchor_path
from probe.ledger.book import LedgerBook, append, connect

# two endpoints, three entries (both appear, one goes down), then nothing changes
FLEET = ("qwen qwen-healthy", "gone deepseek-stopped")
CONFIG = "ledger: {down_after: 1, up_after: 1}\nlearning: false\n"


def verify(db: Path, env: dict[str, str], *extra: str) -> tuple[int, list[str], list[str]]:
    """``runpod-probe ledger verify`` as its own process, as an operator runs it."""
    done = subprocess.run([sys.executable, "-m", "probe", "ledger", "verify", "--db", str(db),
                           *extra], env=env, capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout.splitlines(), done.stderr.splitlines()


def scraped(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def page(daemon: Daemon) -> str:
    return (await asyncio.to_thread(httpx.get, daemon.metrics_url, timeout=5)).text


async def settled(daemon: Daemon, db: Path) -> None:
    """The three entries are written and the daemon reports them as its head."""
    await until(lambda: len(ledger_rows(db)) == 3, what="three ledger entries")
    head: list[float | None] = [None]

    async def poll() -> None:
        while head[0] != 3:
            head[0] = scraped(await page(daemon), "runpod_probe_ledger_head_id")
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), 15)


def remove_after(db: Path, keep: int) -> None:
    raw = sqlite3.connect(db)
    raw.execute("DROP TRIGGER ledger_no_delete")
    raw.execute("DELETE FROM ledger WHERE id > ?", (keep,))
    raw.commit()
    raw.close()


def test_entries_and_anchor_removed_while_the_daemon_runs_fail_verify_metrics(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    db = tmp_path / "probe.db"
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + CONFIG + pods(*FLEET))

    async def scenario(daemon: Daemon) -> tuple[str, tuple[int, list[str], list[str]],
                                                tuple[int, list[str], list[str]]]:
        await settled(daemon, db)
        remove_after(db, 1)
        anchor_path(db).unlink()
        url = daemon.metrics_url
        blind = await asyncio.to_thread(verify, db, sim_env)
        seen = await asyncio.to_thread(verify, db, sim_env, "--metrics", url)
        return url, blind, seen

    url, blind, seen = run_daemon(config, sim_env, scenario)
    assert blind[0] == 0, "what is left verifies from the files alone"
    code, out, err = seen
    assert (code, out) == (1, []) and len(err) == 1, err
    assert err[0] == (f"runpod-probe: ledger verify FAILED: ledger entry #2: missing: the "
                      f"daemon at {url} reports head #3 (runpod_probe_ledger_head_id), the "
                      "ledger ends at #1: entries removed from the end, and there is no "
                      "probe.db.ledger-head either")


def test_a_forged_tail_with_the_anchor_removed_fails_on_the_daemons_chain_watch(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    """The last entry replaced by one sealed onto the entry before it: the table reaches the
    daemon's head id and the chain verifies, but the daemon saw the entry it wrote vanish."""
    db = tmp_path / "probe.db"
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + CONFIG + pods(*FLEET))

    async def scenario(daemon: Daemon) -> tuple[str, tuple[int, list[str], list[str]],
                                                tuple[int, list[str], list[str]]]:
        await settled(daemon, db)
        remove_after(db, 2)
        anchor_path(db).unlink()
        forger = connect(db)
        forger.execute("BEGIN IMMEDIATE")
        assert append(forger, [draft(3)])[0].id == 3
        forger.execute("COMMIT")
        forger.close()

        async def invalid() -> None:
            while scraped(await page(daemon), "runpod_probe_ledger_chain_valid") != 0:
                await asyncio.sleep(0.1)

        await asyncio.wait_for(invalid(), 15)
        url = daemon.metrics_url
        blind = await asyncio.to_thread(verify, db, sim_env)
        seen = await asyncio.to_thread(verify, db, sim_env, "--metrics", url)
        return url, blind, seen

    url, blind, seen = run_daemon(config, sim_env, scenario)
    assert blind[0] == 0, "the forged chain verifies from the files alone"
    code, out, err = seen
    assert (code, out) == (1, []) and len(err) == 1, err
    assert err[0] == (f"runpod-probe: ledger verify FAILED: the daemon at {url} reports "
                      "runpod_probe_ledger_chain_valid 0: its chain watch found the ledger "
                      "broken (its log and /status say how)")


def test_an_untouched_ledger_verifies_against_the_running_daemon(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    db = tmp_path / "probe.db"
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + CONFIG + pods(*FLEET))

    async def scenario(daemon: Daemon) -> tuple[str, tuple[int, list[str], list[str]]]:
        await settled(daemon, db)
        url = daemon.metrics_url
        return url, await asyncio.to_thread(verify, db, sim_env, "--metrics", url)

    url, (code, out, err) = run_daemon(config, sim_env, scenario)
    assert (code, err) == (0, []) and len(out) == 1
    assert out[0].startswith("ledger ok: 3 entries, head sha256:")
    assert out[0].endswith(f"; anchored in probe.db.ledger-head; the daemon at {url} reports "
                           "head #3, chain valid")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def written(db: Path) -> None:
    book = LedgerBook(db, batch_interval_s=0.01)
    book.submit({}, [draft(1), draft(2)])
    deadline = time.monotonic() + 10
    while book.entries_total < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    book.close()


def test_an_unreachable_daemon_is_exit_2_in_one_line_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "p.db"
    written(db)
    url = f"http://127.0.0.1:{closed_port()}/metrics"
    started = time.monotonic()
    code = main(["ledger", "verify", "--db", str(db), "--metrics", url])
    assert time.monotonic() - started < 3
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"runpod-probe: cannot read the daemon's metrics at {url}: "), err


def test_a_page_without_the_ledgers_series_is_exit_2_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not the daemon's page (here: the simulator's, any HTTP server that is not ours)."""
    from probe.simulator import Fleet, Simulator

    db = tmp_path / "p.db"
    written(db)
    with Simulator(Fleet.default(), api_key=None) as sim:
        url = f"{sim.api_base}/metrics"
        code = main(["ledger", "verify", "--db", str(db), "--metrics", url])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"runpod-probe: cannot read the daemon's metrics at {url}: "), err

