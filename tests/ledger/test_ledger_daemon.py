"""The ledger inside the real daemon: start-up hook, observer, reload, LEARNING.md, metrics;
a daemon stopped with SIGTERM keeps every streak and a restart goes on from them; and a
daemon killed with SIGKILL mid-write leaves a ledger that still verifies."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from daemon_harness import ledger_rows, run_daemon, until
from simconfig import header, pods, write

from probe.daemon import Daemon
from probe.ledger.book import connect, read_entries
from probe.ledger.chain import verify
from probe.ledger.learning import cited
from probe.ledger.lessons import lessons

SEED = Path(__file__).parents[1] / "data" / "learning" / "LEARNING.md"
FAST = "ledger: {down_after: 1, up_after: 1}\n"


def events(db: Path) -> list[Any]:
    return ledger_rows(db)


def test_daemon_keeps_the_ledger_and_appends_learning(sim: Any, tmp_path: Path,
                                                      sim_env: dict[str, str]) -> None:
    learning = tmp_path / "LEARNING.md"
    shutil.copyfile(SEED, learning)
    original = learning.read_bytes()
    db = tmp_path / "probe.db"
    base = header(sim, tmp_path) + FAST + f"learning: {{path: {learning}}}\n"
    config = write(tmp_path / "c.yaml", base + pods("qwen qwen-healthy", "gone deepseek-stopped"))

    async def scenario(daemon: Daemon) -> str:
        await until(lambda: ("gone", "down") in events(db))
        await until(lambda: len(cited(learning.read_text())) == 2)  # the fleet, the 404
        text = (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text
        config.write_text(base + pods("qwen qwen-healthy", "small small-ctx"))
        assert await daemon.reload()
        await until(lambda: ("small", "appeared") in events(db))
        return text

    text = run_daemon(config, sim_env, scenario)
    assert 'runpod_probe_endpoint_state{endpoint="gone",state="down"} 1.0' in text
    assert 'runpod_probe_endpoint_state{endpoint="qwen",state="up"} 1.0' in text
    assert 'runpod_probe_endpoint_state{endpoint="qwen",state="down"}' not in text, \
        "the current state only"
    assert "runpod_probe_ledger_entries_total 3.0" in text
    assert "runpod_probe_ledger_head_id 3.0" in text
    assert "runpod_probe_learning_append_errors_total 0.0" in text
    recorded = events(db)
    assert sorted(recorded[:2]) == [("gone", "appeared"), ("qwen", "appeared")]
    assert recorded[2:] == [("gone", "down"), ("small", "appeared"), ("gone", "disappeared")]
    entries = read_entries(connect(db))
    assert verify(entries).ok
    grown = learning.read_bytes()
    assert grown.startswith(original)
    assert "RunPod pod gone (deepseek-stopped) down (404)" in grown.decode()
    assert "2 endpoints added to the probed fleet: 2 pods" in grown.decode()
    assert sorted(cited(grown.decode())) == [lesson.cite.id for lesson in lessons(entries)], \
        "every lesson, once"


def models_results(db: Path, endpoint: str) -> tuple[int, set[str]]:
    """How many ``models`` results the store holds for ``endpoint``, and their outcomes."""
    if not db.exists():
        return 0, set()
    conn = sqlite3.connect(db, timeout=5)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone():
            return 0, set()
        rows = conn.execute("SELECT outcome FROM results WHERE endpoint = ? AND "
                            "check_name = 'models'", (endpoint,)).fetchall()
    finally:
        conn.close()
    return len(rows), {str(row[0]) for row in rows}


def kept_passes(db: Path, endpoint: str) -> tuple[str, int]:
    """The state and the ``models`` streak of passes the database keeps for ``endpoint``."""
    conn = sqlite3.connect(db, timeout=5)
    try:
        state, data = conn.execute("SELECT state, data FROM endpoint_state WHERE endpoint = ?",
                                   (endpoint,)).fetchone()
    finally:
        conn.close()
    return state, int(json.loads(data)["availability"]["streaks"]["models"]["passes"])


def test_sigterm_keeps_every_streak_and_a_restart_goes_on_from_it(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    """Streaks that move on without an entry wait (a minute at most) before they are kept:
    a stop hands what waits to the book before it closes, so the database holds the streak
    of every result written, and the next run counts on from it."""
    db = tmp_path / "probe.db"
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="200ms", timeout="150ms")
                   + FAST + pods("qwen qwen-healthy checks: [models]"))
    for floor in (10, 20):  # a first run, then a restart
        proc = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config", str(config)],
                                env=sim_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            deadline = time.monotonic() + 30
            while models_results(db, "qwen")[0] < floor:
                assert time.monotonic() < deadline and proc.poll() is None, "no results"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
        finally:
            proc.kill()
        assert proc.returncode == 0, out
        results, outcomes = models_results(db, "qwen")
        assert outcomes == {"ok"}
        assert kept_passes(db, "qwen") == ("up", results), \
            "every result's pass kept, the last ones at the stop"
    assert [e for n, e in events(db) if n == "qwen"] == ["appeared"], \
        "the restart went on from the kept verdict: no second appearance, nothing else"


def test_sigkill_mid_write_then_restart_leaves_a_verifiable_ledger(
        tmp_path: Path, sim_env: dict[str, str]) -> None:
    from probe.simulator import Fleet, PodSpec, Simulator

    fleet = Fleet()
    names = [f"flap-{i}" for i in range(6)]
    for name in names:
        fleet.add_pod(name, PodSpec())
    stop = threading.Event()

    def flap() -> None:  # every pod changes often, so entries are written all the time
        i = 0
        while not stop.is_set():
            for n, name in enumerate(names):
                fleet.set_pod_behaviour(name, "stopped" if (i + n) % 2 else "healthy")
            i += 1
            time.sleep(0.15)

    db = tmp_path / "probe.db"
    with Simulator(fleet, api_key=None) as sim:
        text = header(sim, tmp_path, interval="200ms", timeout="150ms") + FAST
        config = write(tmp_path / "c.yaml", text + pods(
            *(f"{n} {n} api_key_env: null" for n in names)))
        flapper = threading.Thread(target=flap, daemon=True)
        flapper.start()
        counts = []
        try:
            for _ in range(3):
                proc = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config",
                                         str(config)], env=sim_env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                try:
                    floor = len(events(db)) + 10
                    deadline = time.monotonic() + 30
                    while len(events(db)) < floor:
                        assert time.monotonic() < deadline, "no entries written"
                        time.sleep(0.05)
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)
                counts.append(len(events(db)))
        finally:
            stop.set()
            flapper.join()
    check = subprocess.run([sys.executable, "-m", "probe", "ledger", "verify", "--config",
                            str(config)], env=sim_env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"ledger ok: {counts[-1]} entries" in check.stdout
    assert counts[0] < counts[1] < counts[2], "each restart continued the chain"
    recorded = events(db)
    assert sum(1 for _, e in recorded if e == "appeared") == len(names), \
        "the persisted state made restarts continue, not start over"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
