"""systemd's notify protocol, against a datagram socket of the test's own: the daemon says
READY=1 once it probes, pings the watchdog from its event loop (and stops pinging while the
loop is blocked), and tells STATUS, RELOADING and STOPPING."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import run_daemon
from simconfig import header, pods, write

from probe.daemon import Daemon
from probe.notify import Notifier


class Systemd:
    """The receiving end of $NOTIFY_SOCKET: every datagram, with when it arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def lines(self, since: float = 0.0, until: float = float("inf")) -> list[str]:
        return [line for at, text in list(self.messages) if since <= at <= until
                for line in text.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[Systemd]:
    receiver = Systemd(tmp_path / "notify.sock")
    yield receiver
    receiver.close()


@pytest.mark.parametrize(("env", "interval"), [
    ({"WATCHDOG_USEC": "2000000"}, 1.0),
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 1.0),
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({}, None),
], ids=["enabled", "enabled-for-us", "for-another-process", "zero", "not-set"])
def test_watchdog_interval_is_half_the_timeout(env: dict[str, str],
                                               interval: float | None) -> None:
    assert Notifier({"NOTIFY_SOCKET": "/run/x", **env}).watchdog_interval_s == interval


def test_abstract_socket_names_and_no_socket(tmp_path: Path) -> None:
    name = f"runpod-probe-test-{os.getpid()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    receiver.settimeout(2)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready("probing")
        assert receiver.recv(100) == b"READY=1\nSTATUS=probing"
    finally:
        receiver.close()
    silent = Notifier({})
    assert not silent.enabled
    silent.ready("nobody listens")  # not under systemd: nothing to do, nothing raised


def test_ready_watchdog_from_the_loop_and_silence_while_it_is_blocked(
        sim: Any, tmp_path: Path, sim_env: dict[str, str], systemd: Systemd) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="1s")
                   + pods("qwen qwen-healthy checks: [models]"))
    env = {**sim_env, "NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "200000"}

    async def scenario(daemon: Daemon) -> tuple[float, float]:
        await asyncio.sleep(0.5)  # pings every 100 ms
        blocked_from = time.monotonic()
        time.sleep(1.0)  # the event loop hangs: nothing may ping for it
        blocked_until = time.monotonic()
        await asyncio.sleep(0.5)
        return blocked_from, blocked_until

    blocked_from, blocked_until = run_daemon(config, env, scenario)
    lines = systemd.lines()
    ready = lines.index("READY=1")
    # before READY=1 only the start's request for time while the database opened
    assert set(lines[:ready]) == {
        "EXTEND_TIMEOUT_USEC=30000000",
        "STATUS=opening the database (its schema may be upgraded)"}
    assert lines[ready + 1] == "STATUS=1 endpoint: 1 unknown"
    assert lines.count("WATCHDOG=1") >= 6
    # a ping already on its way may land just after the block began
    assert systemd.lines(blocked_from + 0.05, blocked_until - 0.05).count("WATCHDOG=1") == 0
    assert systemd.lines(blocked_until).count("WATCHDOG=1") >= 2, "pings resume"
    assert any(line.startswith("STOPPING=1") for line in lines)


def test_the_process_notifies_ready_and_reload(sim: Any, tmp_path: Path,
                                               sim_env: dict[str, str],
                                               systemd: Systemd) -> None:
    import signal

    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods("qwen qwen-healthy"))
    env = {**sim_env, "NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        while "READY=1" not in systemd.lines():
            assert time.monotonic() < deadline and proc.poll() is None, "never ready"
            time.sleep(0.05)
        while "STATUS=1 endpoint: 1 up" not in systemd.lines():  # refreshed with the pings
            assert time.monotonic() < deadline, systemd.lines()
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        while "STATUS=config reloaded; 1 endpoint: 1 up" not in systemd.lines():
            assert time.monotonic() < deadline, systemd.lines()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "RELOADING=1" in systemd.lines() and "STOPPING=1" in systemd.lines()


def test_an_invalid_config_exits_2_from_run_itself(tmp_path: Path,
                                                   sim_env: dict[str, str]) -> None:
    """No ExecStartPre: the main process fails closed, so RestartPreventExitStatus=2
    applies and systemd does not restart it."""
    config = write(tmp_path / "c.yaml", "endpoints: []\n")
    done = subprocess.run([sys.executable, "-m", "probe", "run", "--config", str(config)],
                          env=sim_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "endpoints: at least one endpoint is required" in done.stderr


# -- the unit file ------------------------------------------------------------------------------
UNIT = Path(__file__).parents[1] / "systemd" / "runpod-probe.service"


def installed_unit(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointing at this machine's runpod-probe (verify checks
    the executable exists)."""
    import shutil

    binary = shutil.which("runpod-probe")
    if binary is None:
        pytest.skip("runpod-probe is not installed as a command (pip install -e .)")
    unit = tmp_path / "runpod-probe.service"
    unit.write_text(UNIT.read_text().replace("/opt/runpod-probe/bin/runpod-probe", binary))
    return unit


def test_the_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    from helpers import tool

    analyze = tool("systemd-analyze")
    unit = installed_unit(tmp_path)
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    security = subprocess.run([analyze, "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True)
    overall = [line for line in security.stdout.splitlines() + security.stderr.splitlines()
               if "Overall exposure level" in line]
    assert overall, security.stdout + security.stderr
    exposure = float(overall[0].split(":")[1].split()[0])
    assert exposure <= 1.5, overall[0]


def test_the_unit_fails_closed_and_covers_the_drain() -> None:
    from probe.daemon import STOP_LIMIT_S

    text = UNIT.read_text()
    assert "ExecStartPre" not in text, "RestartPreventExitStatus= applies to the main process"
    assert "RestartPreventExitStatus=2" in text and "Type=notify" in text
    stop = float(text.split("TimeoutStopSec=")[1].split("s")[0])
    assert stop > STOP_LIMIT_S + 10, "the drain plus closing the writers fits in the stop"


def test_credentials_become_environment_variables(tmp_path: Path) -> None:
    from probe.secrets import import_credentials

    (tmp_path / "RUNPOD_API_KEY").write_text("rk-from-systemd-0000\n")
    (tmp_path / "not a name").write_text("x")
    (tmp_path / "ALREADY_SET").write_text("from the file")
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path), "ALREADY_SET": "from the environment"}
    assert import_credentials(environ) == ["RUNPOD_API_KEY"]
    assert environ["RUNPOD_API_KEY"] == "rk-from-systemd-0000"
    assert environ["ALREADY_SET"] == "from the environment"
    assert import_credentials({}) == []


def test_blocking_start_up_work_asks_systemd_for_more_time(systemd: Systemd) -> None:
    """A schema upgrade of a large database may outlast TimeoutStartSec=: while it runs the
    daemon asks for more time, again and again, and stops asking when it is done."""
    notifier = Notifier({"NOTIFY_SOCKET": str(systemd.path)})
    with notifier.extending("upgrading the database", every_s=0.05, by_s=30):
        deadline = time.monotonic() + 10
        while (len([line for line in systemd.lines() if line.startswith("EXTEND_TIMEOUT_USEC=")])
               < 3 and time.monotonic() < deadline):
            time.sleep(0.01)
    ended = time.monotonic()
    extends = [line for line in systemd.lines() if line.startswith("EXTEND_TIMEOUT_USEC=")]
    assert len(extends) >= 3
    assert set(extends) == {"EXTEND_TIMEOUT_USEC=30000000"}
    assert "STATUS=upgrading the database" in systemd.lines()
    time.sleep(0.2)  # four periods: nothing more once the work is done
    assert not [line for line in systemd.lines(since=ended + 0.01)
                if line.startswith("EXTEND_TIMEOUT_USEC=")]


def test_without_systemd_extending_starts_no_thread() -> None:
    with Notifier({}).extending("upgrading the database", every_s=0.01):
        assert "start-timeout" not in [thread.name for thread in threading.enumerate()]
