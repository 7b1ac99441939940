"""Hostile config input, as an operator could send it: an alias bomb or a huge file is
refused with one line and exit 2 by ``check-config``, and sent with SIGHUP it is refused
while the running daemon keeps probing and /metrics keeps answering."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from config.test_yaml_input import bomb
from simconfig import header, pods, write

from probe.config.yaml_input import MAX_BYTES
from probe.store import latest_results


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def metrics_page(url: str) -> str:
    """The daemon's /metrics text, waiting up to 20 s for its listener."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "no /metrics"
            time.sleep(0.1)


def latest_row(db: Path) -> int:
    """The id of the newest stored result (0 before the database exists)."""
    rows = latest_results(db) if db.exists() else []
    return max((r["id"] for r in rows), default=0)


def test_check_config_refuses_an_alias_bomb_and_a_huge_file(tmp_path: Path,
                                                            sim_env: dict[str, str]) -> None:
    path = write(tmp_path / "bomb.yaml", bomb(9))
    done = run("check-config", "--config", str(path), env=sim_env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"runpod-probe: invalid config {path}: line 1: the document expands to more than "
        "100000 values (aliases nested in aliases?)"]
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as out:  # a sparse file: nothing to write, nothing to read
        out.truncate(30 * 1024 * 1024)
    done = run("check-config", "--config", str(huge), env=sim_env)
    assert done.returncode == 2
    assert f"bytes is more than the {MAX_BYTES} bytes a config may have" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_bomb_sent_with_sighup_is_refused_while_probing_goes_on(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = header(sim, tmp_path, interval="500ms", timeout="400ms").replace(
        '"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    config = write(tmp_path / "c.yaml", text + pods("qwen qwen-healthy checks: [models]"))
    url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config", str(config)],
                            env=sim_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        def metrics() -> str:
            return metrics_page(url)

        def results() -> int:
            return latest_row(tmp_path / "probe.db")

        deadline = time.monotonic() + 20
        while 'runpod_probe_up{check="models",endpoint="qwen"} 1.0' not in metrics():
            assert time.monotonic() < deadline, "never probed"
            time.sleep(0.1)
        config.write_text(bomb(12))
        proc.send_signal(signal.SIGHUP)
        before = results()
        deadline = time.monotonic() + 20
        while "runpod_probe_config_last_reload_successful 0.0" not in (page := metrics()):
            assert time.monotonic() < deadline, "the reload was never refused"
            time.sleep(0.2)
        assert 'runpod_probe_up{check="models",endpoint="qwen"} 1.0' in page
        deadline = time.monotonic() + 20
        while results() <= before + 2:
            assert time.monotonic() < deadline, "probing stopped"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "config reload refused: line 1: the document expands to more than 100000 values" \
        in out


def test_a_deep_config_sent_with_sighup_keeps_the_old_one_and_a_good_one_applies(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    """``endpoints: [[[[…`` 500 deep (a 1 KB file) was a RecursionError inside the reload
    task: "Task exception was never retrieved" and the reload metric still 1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = header(sim, tmp_path, interval="500ms", timeout="400ms").replace(
        '"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    good = text + pods("qwen qwen-healthy checks: [models]")
    config = write(tmp_path / "c.yaml", good)
    url = f"http://127.0.0.1:{port}/metrics"
    reloaded = "runpod_probe_config_last_reload_successful"
    proc = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config", str(config)],
                            env=sim_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)

    def metrics() -> str:
        return metrics_page(url)

    def probed() -> int:
        return latest_row(tmp_path / "probe.db")

    def wait_for(line: str) -> str:
        deadline = time.monotonic() + 20
        while line not in (page := metrics()):
            assert time.monotonic() < deadline, f"never: {line}"
            time.sleep(0.2)
        return page

    try:
        wait_for('runpod_probe_up{check="models",endpoint="qwen"} 1.0')
        config.write_text("endpoints: " + "[" * 500 + "]" * 500 + "\n")
        proc.send_signal(signal.SIGHUP)
        page = wait_for(f"{reloaded} 0.0")
        assert 'runpod_probe_up{check="models",endpoint="qwen"} 1.0' in page
        before = probed()
        deadline = time.monotonic() + 20
        while probed() <= before + 2:
            assert time.monotonic() < deadline, "probing stopped"
            time.sleep(0.2)
        config.write_text(good + "  - {name: qwen2, kind: pod, pod_id: qwen-healthy, "
                                 "checks: [models]}\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(f"{reloaded} 1.0")
        wait_for('runpod_probe_up{check="models",endpoint="qwen2"} 1.0')
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "Task exception was never retrieved" not in out and "Traceback" not in out, out
    refused = [line for line in out.splitlines() if "config reload" in line and "ERROR" in line]
    assert len(refused) == 1 and refused[0].endswith(
        "config reload refused: line 1: nested more than 64 levels deep (lists and mappings "
        "inside each other)"), out
