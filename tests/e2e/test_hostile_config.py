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


def test_check_config_refuses_an_alias_bomb_and_a_huge_file(tmp_path: Path,
                                                            sim_env: dict[str, str]) -> None:
    path = write(tmp_path / "bomb.yaml", bomb(9))
    done = run("check-config", "--config", str(path), env=sim_env)
    assert done.returncode == 2
    assert done.stderr.splitlines()[1:] == [
        "  line 1: the document expands to more than 100000 values (aliases nested in "
        "aliases?)"]
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as out:  # a sparse file: nothing to write, nothing to read
        out.truncate(30 * 1024 * 1024)
    done = run("check-config", "--config", str(huge), env=sim_env)
    assert done.returncode == 2
    assert f"bytes is more than the {MAX_BYTES} bytes a config may have" in done.stderr


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
            deadline = time.monotonic() + 20
            while True:
                try:
                    return httpx.get(url, timeout=5).text
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, "no /metrics"
                    time.sleep(0.1)

        def results() -> int:
            rows = latest_results(tmp_path / "probe.db") if (tmp_path / "probe.db").exists() \
                else []
            return max((r["id"] for r in rows), default=0)

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
