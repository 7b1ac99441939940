"""The README's first command: `runpod-probe demo` shows every simulated endpoint's outcome."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

EXPECTED = {
    ("qwen-healthy", "models"): "ok",
    ("qwen-healthy", "prompt:arithmetic"): "ok",
    ("deepseek-stopped", "models"): "http_404",
    ("vllm-down", "models"): "http_502",
    ("slow-pod", "models"): "timeout",
    ("small-ctx", "models"): "context_too_small",
    ("small-ctx", "context"): "context_too_small",
    ("other-model", "models"): "model_missing",
    ("garbage-pod", "models"): "bad_response",
    ("endless-pod", "models"): "timeout",
    ("wrong-answer", "prompt:arithmetic"): "expectation_failed",
    ("dead-engine", "models"): "ok",
    ("dead-engine", "health"): "engine_dead",
    ("vllm-healthy", "queue"): "ok",
    ("vllm-incident", "queue"): "crash_looping",
    ("fallback", "models"): "ok",
}


def test_demo_shows_every_endpoint_and_serves_metrics(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "demo", "--duration", "10", "--every", "60",
         "--interval", "3s", "--metrics-port", "0", "--state-dir", str(tmp_path / "state"),
         "--checks"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    metrics_url = None
    while not lines or not lines[-1].startswith("Ctrl-C"):
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
        if match := re.search(r"metrics:\s+(http://\S+)", line):
            metrics_url = match.group(1)
    assert metrics_url is not None
    # an ok check is up; any other outcome is its current outcome's series
    wanted = [f'runpod_probe_up{{check="{check}",endpoint="{endpoint}"}} 1.0' if outcome == "ok"
              else f'runpod_probe_outcome{{check="{check}",endpoint="{endpoint}",'
                   f'outcome="{outcome}"}} 1.0'
              for (endpoint, check), outcome in EXPECTED.items()]
    deadline = time.monotonic() + 10
    metrics = ""
    while time.monotonic() < deadline and not all(w in metrics for w in wanted):
        time.sleep(0.5)
        metrics = httpx.get(metrics_url, timeout=5).text
    # the banner's hints work pasted into another shell: without the demo's key variable
    hints = re.findall(r"runpod-probe ((?:ledger list|status) --config \S+?)\)", "".join(lines))
    assert len(hints) == 2, lines
    for hint in hints:
        pasted = subprocess.run([sys.executable, "-m", "probe", *hint.split()],
                                capture_output=True, text=True, timeout=60,
                                env={"PATH": os.environ["PATH"]})
        assert pasted.returncode in (0, 1), (hint, pasted.stderr)  # status: 1 = some down
        assert pasted.stdout and "Traceback" not in pasted.stderr
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    table = {}
    for line in rest.splitlines():
        cells = line.split()
        if len(cells) >= 4 and cells[1] in ("pod", "serverless", "openai"):
            table[(cells[0], cells[2])] = cells[3]
    for key, outcome in EXPECTED.items():
        assert table.get(key) == outcome, (key, table.get(key))
    # piped: the banner once, then the verdicts (worst first) before the checks
    everything = "".join(lines) + rest
    assert everything.count("runpod-probe demo: ") == 1 and "\x1b" not in everything
    screen = [line for line in rest.splitlines() if " probe." not in line]  # not the log's
    at = next(i for i, line in enumerate(screen) if line.startswith("at "))
    summary = screen[at + 1:]
    assert summary[0].startswith("14 endpoints: "), summary
    assert summary[1].split()[0] == "DOWN" and summary[15] == ""
    assert summary[16].split()[:3] == ["ENDPOINT", "KIND", "CHECK"]
    assert [w for w in wanted if w not in metrics] == []
    assert (tmp_path / "state" / "probe.db").exists()
    # lessons, not a log: one fleet row, then at most one row per endpoint (the dead engine's
    # failing prompts are evidence of its engine-dead row, not rows of their own)
    learning = (tmp_path / "state" / "LEARNING.md").read_text()
    rows = [line for line in learning.splitlines() if line.startswith("| 20")]
    assert len(rows) <= 12, "\n".join(rows)
    assert sum("14 endpoints added to the probed fleet" in row for row in rows) == 1, rows
    assert not any("added to the probed fleet |" in row for row in rows), rows
    for name in ("dead-engine", "slow-pod", "garbage-pod", "endless-pod", "other-model"):
        assert sum(f"({name}) " in row.split(" | ")[1] for row in rows) <= 1, (name, rows)
    # the dead engine's one row is written, though the demo stops within the wait for a
    # fleet incident (the daemon's shutdown writes what still waits)
    assert sum("(dead-engine) engine dead" in row for row in rows) == 1, rows
