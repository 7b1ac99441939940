"""The status page on the daemon's listener: `/` and `/status.json` against the simulator
(names that are markup stay text, no secret shows, the same states as /metrics), and the
demo's page in a real headless Chromium (Debian's `chromium`), its DOM checked and a
screenshot saved."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from daemon_harness import run_daemon, until
from helpers import tool
from simconfig import header, write

from probe.daemon import Daemon
from probe.simulator import Fleet, PodSpec, Simulator

# (a name cannot hold a line break: the config refuses it, see test_load)
HOSTILE = '<script>alert("x")</script>\'" <b onmouseover=alert(1)>'
POD_KEY = "pod-secret-9f3b2d7c1a5e4f60"


class Rows(HTMLParser):
    """Each endpoint row's data attributes, and any script element or handler."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts += 1
        self.handlers += [name for name in found if name.startswith("on")]
        if tag == "tr" and "data-endpoint" in found:
            self.rows[found["data-endpoint"] or ""] = found.get("data-state") or ""


def parse(html: str) -> Rows:
    rows = Rows()
    rows.feed(html)
    return rows


def states_on_metrics(text: str) -> dict[str, str]:
    out = {}
    for name, state in re.findall(r'^runpod_probe_endpoint_state\{endpoint="((?:[^"\\]|\\.)*)",'
                                  r'state="(\w+)"\} 1\.0$', text, re.M):
        out[name.encode().decode("unicode_escape")] = state
    return out


def test_the_page_shows_every_name_as_text_and_no_secret(tmp_path: Path,
                                                          sim_env: dict[str, str]) -> None:
    fleet = Fleet()
    fleet.add_pod("healthy", PodSpec())
    fleet.add_pod("echo", PodSpec("echo_auth_model"))
    fleet.add_pod("gone", PodSpec("stopped"))
    env = {**sim_env, "VLLM_API_KEY": POD_KEY}
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        endpoints = [(HOSTILE, "healthy"), ("echo", "echo"), ("gone", "gone")]
        text = header(sim, tmp_path) + "endpoints:\n" + "".join(
            f"  - name: {json.dumps(name)}\n    kind: pod\n    pod_id: {pod}\n"
            f"    checks: [models]\n" for name, pod in endpoints)
        config = write(tmp_path / "c.yaml", text + "ledger: {down_after: 1, up_after: 1}\n")

        async def scenario(daemon: Daemon) -> tuple[httpx.Response, ...]:
            await until(lambda: all(daemon.state.latest(n, "models") for n, _ in endpoints),
                        what="every endpoint probed")
            base = daemon.metrics_url.removesuffix("/metrics")

            def fetch() -> tuple[httpx.Response, ...]:
                with httpx.Client(timeout=5) as client:
                    return (client.get(base + "/"), client.get(base + "/status.json"),
                            client.get(base + "/metrics"), client.head(base + "/"),
                            client.post(base + "/status.json"))
            import asyncio

            return await asyncio.to_thread(fetch)

        page, status, metrics, head, post = run_daemon(config, env, scenario)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert (head.status_code, head.content) == (200, b"")
    assert post.status_code == 405
    rows = parse(page.text)
    assert rows.scripts == 0 and rows.handlers == []
    assert HOSTILE in rows.rows, "the name is an attribute value, whole"
    assert "&lt;script&gt;" in page.text
    for body in (page.text, status.text, metrics.text):
        assert POD_KEY not in body
    doc = status.json()
    shown = {e["name"]: e["state"] for e in doc["endpoints"]}
    assert shown == states_on_metrics(metrics.text) == rows.rows, "one truth everywhere"
    assert shown["gone"] == "down" and shown[HOSTILE] == "up"


def test_the_demo_page_in_headless_chromium(tmp_path: Path) -> None:
    chromium = tool("chromium")
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "probe", "demo", "--state-dir", str(tmp_path / "demo"),
         "--metrics-port", str(port), "--interval", "2s", "--every", "600",
         "--duration", "120"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    try:
        doc = wait_for_states(base + "/status.json")
        dom = browse(chromium, tmp_path, base + "/", "--dump-dom")
        shot = tmp_path / "status.png"
        browse(chromium, tmp_path, base + "/", f"--screenshot={shot}",
               "--window-size=1400,1000", "--hide-scrollbars")
    finally:
        demo.terminate()
        demo.wait(timeout=60)
    rows = parse(dom)
    expected = {e["name"]: e["state"] for e in doc["endpoints"]}
    assert rows.scripts == 0
    assert set(rows.rows) == set(expected), "every simulated endpoint has its row"
    for name in ("qwen-healthy", "deepseek-stopped", "dead-engine", "vllm-down", "wrong-answer"):
        assert rows.rows[name] == expected[name], name
    assert (rows.rows["qwen-healthy"], rows.rows["deepseek-stopped"], rows.rows["dead-engine"],
            rows.rows["wrong-answer"]) == ("up", "down", "down", "degraded")
    assert "What it learned" in dom and "hash chain verified" in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_states(url: str, timeout_s: float = 60) -> dict[str, Any]:
    """The demo's document once its broken endpoints are judged (and stable for a read)."""
    deadline = time.monotonic() + timeout_s
    wanted = {"qwen-healthy": "up", "deepseek-stopped": "down", "dead-engine": "down",
              "wrong-answer": "degraded"}
    while time.monotonic() < deadline:
        try:
            doc: dict[str, Any] = httpx.get(url, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            time.sleep(0.5)
            continue
        states = {e["name"]: e["state"] for e in doc["endpoints"]}
        chain = doc.get("ledger", {}).get("chain", {})
        if all(states.get(n) == s for n, s in wanted.items()) and chain.get("valid"):
            return doc
        time.sleep(0.5)
    raise AssertionError(f"the demo never showed {wanted}")


def browse(chromium: str, tmp_path: Path, url: str, *args: str) -> str:
    done = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, url],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_uptime_is_time_in_each_state(tmp_path: Path, sim_env: dict[str, str]) -> None:
    """An endpoint down all run shows 0 %; a degraded one shows its degraded time, not up."""
    fleet = Fleet()
    fleet.add_pod("healthy", PodSpec())
    fleet.add_pod("gone", PodSpec("stopped"))
    fleet.add_pod("wrong", PodSpec("wrong_answer"))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        text = (header(sim, tmp_path) + "verdict: {down_after: 1, up_after: 1}\nendpoints:\n"
                + "".join(f"  - {{name: {n}, kind: pod, pod_id: {n}}}\n"
                          for n in ("healthy", "gone", "wrong"))
                + "prompts:\n  - {name: arithmetic, prompt: \"What is 2+2?\", "
                  "expect: {regex: '^\\s*4\\s*$'}, cross: RUNPOD.md Test table, max_tokens: 16, "
                  "interval: 1s}\n")
        config = write(tmp_path / "c.yaml", text)

        async def scenario(daemon: Daemon) -> dict[str, Any]:
            def endpoints() -> dict[str, Any]:
                url = daemon.metrics_url.removesuffix("metrics") + "status.json"
                doc = json.loads(httpx.get(url, timeout=10).text)
                return {e["name"]: e for e in doc["endpoints"]}

            shown: dict[str, Any] = {}

            def settled() -> bool:
                shown.update(endpoints())
                return (shown["wrong"]["state"] == "degraded"
                        and shown["wrong"]["time_in_state_s"]["24h"]["degraded"] >= 2
                        and shown["gone"]["time_in_state_s"]["24h"]["down"] >= 2
                        and shown["healthy"]["time_in_state_s"]["24h"]["up"] >= 2)

            await until(settled, timeout_s=30, what="time in each state")
            return shown

        shown = run_daemon(config, sim_env, scenario)
    assert shown["gone"]["state"] == "down" and shown["gone"]["uptime"]["24h"] == 0.0
    assert shown["wrong"]["uptime"]["24h"] < 1.0
    assert shown["healthy"]["uptime"]["24h"] == 1.0
    assert shown["healthy"]["time_in_state_s"]["24h"]["down"] == 0
