"""Maintenance windows with the daemon running as a process against the simulator:
`runpod-probe maintenance start/end/list` from another process, the ledger's started and
ended entries (and no down entry inside the window), the metric, the down entry at once
when the window ends on a failing endpoint, bad input refused with nothing written, a window
kept across a restart, and a config window."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import ledger_rows
from helpers import free_port
from simconfig import header, pods, write

from probe.simulator import Fleet, PodSpec, Simulator


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], env={**env, "USER": "alice"},
                          capture_output=True, text=True, timeout=60)


def until(what: str, condition: Callable[[], Any], timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s}s")


class Running:
    def __init__(self, config: Path, env: dict[str, str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.proc = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config",
                                      str(config)], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def metrics(self) -> str:
        try:
            return httpx.get(self.url, timeout=2).text
        except httpx.HTTPError:
            return ""

    def shows(self, line: str) -> bool:
        return line in self.metrics()

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, out
        return out


@pytest.fixture
def fleet(sim_env: dict[str, str]) -> Iterator[Simulator]:
    f = Fleet()
    f.add_pod("qwen-healthy", PodSpec())
    with Simulator(f, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        yield sim


def setup(sim: Simulator, tmp_path: Path, extra: str = "") -> tuple[Path, int]:
    port = free_port()
    text = header(sim, tmp_path, interval="500ms", timeout="400ms").replace(
        '"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    return write(tmp_path / "c.yaml", text + pods("qwen qwen-healthy checks: [models]")
                 + "ledger: {down_after: 2, up_after: 2}\n" + extra), port


STATE = 'runpod_probe_endpoint_state{endpoint="qwen",state="%s"} 1.0'
IN_WINDOW = 'runpod_probe_maintenance{endpoint="qwen"} 1.0'
OUT_OF_WINDOW = 'runpod_probe_maintenance{endpoint="qwen"} 0.0'


def entries(db: Path) -> list[tuple[str, str, str]]:
    return [(e, ev, p) for e, ev, p in ledger_rows(db, "endpoint, event, pattern")
            if e == "qwen" and ev != "appeared"]


def test_start_list_and_end_from_the_command_line(fleet: Simulator, tmp_path: Path,
                                                  sim_env: dict[str, str]) -> None:
    config, port = setup(fleet, tmp_path)
    db = tmp_path / "probe.db"
    daemon = Running(config, sim_env, port)
    try:
        until("up", lambda: daemon.shows(STATE % "up") and daemon.shows(OUT_OF_WINDOW))
        started = probe(sim_env, "maintenance", "start", "qwen", "--for", "2h", "--reason",
                        "moving to an H100", "--config", str(config))
        assert started.returncode == 0, started.stderr
        assert "qwen: in maintenance until " in started.stdout
        assert started.stdout.rstrip().endswith("The running daemon applies it within 2 s.")
        until("in maintenance", lambda: daemon.shows(IN_WINDOW)
              and daemon.shows(STATE % "maintenance"))

        fleet.fleet.set_pod_behaviour("qwen-healthy", "stopped")  # 404 from the proxy
        time.sleep(2.5)  # five results: more than down_after, inside the window
        assert daemon.shows(STATE % "maintenance")
        assert [ev for _, ev, _ in entries(db)] == ["maintenance_started"]
        assert "declared by cli (alice)" in entries(db)[0][2]
        assert "moving to an H100" in entries(db)[0][2]

        listed = probe(sim_env, "maintenance", "list", "--json", "--config", str(config))
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert (row["window"], row["endpoints"], row["origin"], row["state"]) == (
            "manual #1", ["qwen"], "cli (alice)", "on")

        ended = probe(sim_env, "maintenance", "end", "qwen", "--config", str(config))
        assert ended.returncode == 0, ended.stderr
        until("the window's end in the ledger", lambda: len(entries(db)) >= 3)
        (_, _, start), (_, e1, p1), (_, e2, p2) = entries(db)[:3]
        assert (e1, e2) == ("maintenance_ended", "down"), "down at once, no hysteresis wait"
        assert "still failing at the end (models: http_404)" in p1
        assert "down (404)" in p2 and "still failing when its maintenance window ended" in p2
        until("out of the window", lambda: daemon.shows(OUT_OF_WINDOW)
              and daemon.shows(STATE % "down"))
        after = probe(sim_env, "maintenance", "list", "--config", str(config))
        assert "ended (ended by alice)" in after.stdout
    finally:
        daemon.stop()


def rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        found = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'maintenance'")
        if not found.fetchone()[0]:
            return 0
        return int(conn.execute("SELECT count(*) FROM maintenance").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize(("args", "message"), [
    (("start", "nope", "--for", "1h", "--reason", "x"), 'no endpoint named "nope"'),
    (("start", "qwen", "--for", "8d", "--reason", "x"),
     "--for 8d: must be more than 0 and at most max_duration (7d)"),
    (("start", "qwen", "--for", "soon", "--reason", "x"), '--for: expected a duration like'),
    (("start", "qwen", "--for", "1h", "--reason", "  "), "--reason: say why"),
    (("end", "qwen"), "qwen is not in a maintenance window started from the command line"),
], ids=["unknown-endpoint", "over-the-maximum", "bad-duration", "no-reason", "nothing-to-end"])
def test_bad_input_exits_2_and_writes_nothing(fleet: Simulator, tmp_path: Path,
                                              sim_env: dict[str, str], args: tuple[str, ...],
                                              message: str) -> None:
    config, _ = setup(fleet, tmp_path)
    done = probe(sim_env, "maintenance", *args, "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith("runpod-probe maintenance: " + message), done.stderr
    assert not (tmp_path / "probe.db").exists() or rows(tmp_path / "probe.db") == 0


def test_overlapping_windows_are_refused(fleet: Simulator, tmp_path: Path,
                                         sim_env: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%H:%M")  # daily, 3 h from now
    config, _ = setup(fleet, tmp_path, "maintenance:\n  windows:\n    - {name: nightly, "
                                       "endpoints: [qwen], reason: redeploy, weekly: "
                                       "{days: [mon, tue, wed, thu, fri, sat, sun], "
                                       f"start: '{later}', duration: 1h}}}}\n")
    first = probe(sim_env, "maintenance", "start", "qwen", "--for", "1h", "--reason", "a",
                  "--config", str(config))
    assert first.returncode == 0, first.stderr
    again = probe(sim_env, "maintenance", "start", "qwen", "--for", "1h", "--reason", "b",
                  "--config", str(config))
    assert again.returncode == 2
    assert "qwen is already in maintenance until" in again.stderr
    assert probe(sim_env, "maintenance", "end", "qwen", "--config", str(config)).returncode == 0
    day = probe(sim_env, "maintenance", "start", "qwen", "--for", "1d", "--reason", "c",
                "--config", str(config))
    assert day.returncode == 2
    assert "overlaps the config's window \"nightly\"" in day.stderr
    assert rows(tmp_path / "probe.db") == 1


def test_with_no_daemon_running_a_window_is_stored_and_said_so(
        fleet: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    """issue 24: `maintenance start` with no daemon said "applies it within seconds"; `list`
    on a missing database said "no maintenance window"."""
    config, port = setup(fleet, tmp_path)
    missing = probe(sim_env, "maintenance", "list", "--config", str(config))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.splitlines() == [
        f"runpod-probe maintenance: no database at {tmp_path / 'probe.db'} (the daemon creates "
        "it when it starts; is --config the service's?)"]
    started = probe({k: v for k, v in sim_env.items() if k != "RUNPOD_API_KEY"},
                    "maintenance", "start", "qwen", "--for", "1h", "--reason", "r",
                    "--config", str(config))  # sends nothing: no key needed
    assert started.returncode == 0, started.stderr
    assert started.stdout.rstrip().endswith(
        f"No daemon answers at http://127.0.0.1:{port}/: it is stored in "
        f"{tmp_path / 'probe.db'} and applied when the daemon starts.")
    daemon = Running(config, sim_env, port)
    try:
        until("applied at start", lambda: daemon.shows(IN_WINDOW))
    finally:
        daemon.stop()


def test_a_window_is_kept_across_a_restart(fleet: Simulator, tmp_path: Path,
                                           sim_env: dict[str, str]) -> None:
    config, port = setup(fleet, tmp_path)
    db = tmp_path / "probe.db"
    daemon = Running(config, sim_env, port)
    try:
        until("up", lambda: daemon.shows(STATE % "up"))
        assert probe(sim_env, "maintenance", "start", "qwen", "--for", "1h", "--reason", "r",
                     "--config", str(config)).returncode == 0
        until("in maintenance", lambda: daemon.shows(IN_WINDOW))
    finally:
        daemon.stop()
    again = Running(config, sim_env, port)
    try:
        until("metrics again", lambda: again.shows(STATE % "maintenance"))
        time.sleep(1.5)
        assert again.shows(IN_WINDOW)
        assert [ev for _, ev, _ in entries(db)] == ["maintenance_started"], "not twice"
    finally:
        again.stop()


def test_a_config_window_that_is_on_now(fleet: Simulator, tmp_path: Path,
                                        sim_env: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    start = (now - timedelta(minutes=5)).isoformat(timespec="seconds")
    end = (now + timedelta(hours=1)).isoformat(timespec="seconds")
    config, port = setup(fleet, tmp_path, "maintenance:\n  windows:\n    - {name: swap, "
                         f"endpoints: ['qw*'], reason: gpu swap, start: '{start}', "
                         f"end: '{end}'}}\n")
    daemon = Running(config, sim_env, port)
    try:
        until("in maintenance", lambda: daemon.shows(STATE % "maintenance"))
        ((_, event, pattern),) = until("the started entry", lambda: entries(tmp_path / "probe.db"))
        assert event == "maintenance_started" and "(swap: gpu swap; declared by config)" \
            in pattern
        once = probe(sim_env, "once", "--config", str(config))
        assert once.returncode == 0, once.stdout + once.stderr
        assert once.stdout.splitlines()[:2] == [
            "1 endpoint: 1 maintenance", "  MAINTENANCE  qwen  swap: gpu swap (the checks say up)"]
        refused = probe(sim_env, "maintenance", "end", "qwen", "--config", str(config))
        assert refused.returncode == 2
        assert 'qwen is in the config\'s window "swap"' in refused.stderr
    finally:
        daemon.stop()


def test_a_reason_is_stored_and_printed_without_secrets_or_escape_codes(
        fleet: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    """Issue 20, item 11: a key typed into a reason, and terminal escape codes or line breaks
    in it, reach neither the database nor the terminal."""
    config, _ = setup(fleet, tmp_path)
    db = tmp_path / "probe.db"
    key = sim_env["RUNPOD_API_KEY"]
    reason = f"\x1b[2J\x1b]0;pwned\x07moving\r\nFAKE: ok\tkey {key} and {key[:10]}\x9b31m"
    started = probe(sim_env, "maintenance", "start", "qwen", "--for", "1h", "--reason", reason,
                    "--config", str(config))
    assert started.returncode == 0, started.stderr
    conn = sqlite3.connect(db)
    try:
        # an older row written before reasons were cleaned on the way in
        conn.execute("INSERT INTO maintenance (endpoint, starts_at, ends_at, reason, "
                     "started_by) VALUES ('qwen', '2000-01-01T00:00:00.000000+00:00', "
                     "'2999-01-01T00:00:00.000000+00:00', ?, ?)", (reason, "\x1b[31mmallory"))
        conn.commit()
        (stored,) = conn.execute("SELECT reason FROM maintenance ORDER BY id LIMIT 1").fetchone()
    finally:
        conn.close()
    listed = probe(sim_env, "maintenance", "list", "--config", str(config))
    listed_json = probe(sim_env, "maintenance", "list", "--json", "--config", str(config))
    again = probe(sim_env, "maintenance", "start", "qwen", "--for", "1h", "--reason", "x",
                  "--config", str(config))
    assert again.returncode == 2 and "already in maintenance" in again.stderr
    for text in (stored, started.stdout + started.stderr, listed.stdout, listed_json.stdout,
                 again.stderr):
        assert key[:8] not in text, text
        assert not any(c in text for c in "\x1b\x07\r\t\x9b"), repr(text)
    assert stored.count("\n") == 0 and "moving FAKE: ok key *** and ***" in stored
    assert "mallory" in listed.stdout and "\n" not in json.loads(listed_json.stdout)[0]["reason"]
