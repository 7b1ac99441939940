"""Benchmark: the generated rule groups evaluated by a real Prometheus at fleet scale.

Builds the daemon's state for N `kind: pod` endpoints with the default engine checks
(models, health, vllm_metrics; 2 % of the models checks failing with a 502, so the SLIs have
bad events), writes their /metrics page once with the daemon's own collector, and serves it
from a local HTTP server whose counters grow at every scrape (each counter's value times
the scrape's number: buckets stay below their count). A real Prometheus scrapes it every
``--scrape`` seconds with the generated rules (``runpod-probe generate``; ``--rules`` for
another file) and evaluates them for ``--minutes``; then the largest
``prometheus_rule_group_last_duration_seconds`` seen per group is compared with the group's
interval (the target: under 10 %). The 1h period group runs every 2m30s here so that it
evaluates several times; its share is shown against its shipped interval.

The windows hold only the bench's minutes: the 3d and 30d sums read that much history, not
three or thirty days (the samples they read at full history are printed beside them).

    python bench/rules.py                    # N = 10,000, 10 minutes (BENCHMARKS.md)
    python bench/rules.py --endpoints 1000 --minutes 4
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scale import machine  # noqa: E402 - bench/ is not a package

from probe.app import PLUGINS  # noqa: E402
from probe.config import parse_config  # noqa: E402
from probe.export.files import ExportOptions, render_rules  # noqa: E402
from probe.exposition.text import render_chunks  # noqa: E402
from probe.metrics import ProbeCollector, make_registry  # noqa: E402
from probe.outcome import Outcome, ProbeResult  # noqa: E402
from probe.state import FleetState  # noqa: E402

CHECKS = ("models", "health", "vllm_metrics")
TEXT = "text/plain; version=0.0.4; charset=utf-8"
COUNTER = re.compile(rb"^[a-z_:]+(_total|_count|_bucket|_sum)[{ ]")
SHIPPED = {"runpod-probe-slo-period": 3600.0}  # groups whose interval the bench shortens


def page(n: int) -> bytes:
    """The daemon's /metrics for ``n`` pods with three results per check."""
    text = "endpoints:\n" + "".join(
        f"  - {{name: pod-{i:05d}, kind: pod, pod_id: p{i:05d}, "
        f"checks: [{', '.join(CHECKS)}]}}\n" for i in range(n))
    config = parse_config(text, {"RUNPOD_API_KEY": "bench"}, PLUGINS.config)
    state = FleetState()
    collector = ProbeCollector(state, write_ahead=False)
    state.configure(config, PLUGINS.plan(config))
    now = datetime.now(UTC)
    for round_ in range(3):
        for i in range(n):
            for check in CHECKS:
                failing = check == "models" and i % 50 == round_
                state.update(ProbeResult(
                    f"pod-{i:05d}", "pod", check,
                    Outcome.HTTP_502 if failing else Outcome.OK, now,
                    0.02 + (i % 97) * 0.031, 1, f"https://p{i:05d}-8000.proxy.runpod.net",
                    "bad gateway" if failing else "ok", 502 if failing else 200, {}))
    chunks, _ = render_chunks(make_registry(collector), TEXT)
    return b"".join(chunks)


class GrowingPage:
    """The page with every counter multiplied by the number of scrapes so far."""

    def __init__(self, body: bytes) -> None:
        self.lines: list[tuple[bytes, float | None]] = []
        for line in body.split(b"\n"):
            if line and not line.startswith(b"#") and COUNTER.match(line):
                head, _, value = line.rpartition(b" ")
                self.lines.append((head + b" ", float(value)))
            else:
                self.lines.append((line, None))
        self.scrapes = 0
        self.series = sum(1 for line, _ in self.lines if line and not line.startswith(b"#"))

    def next(self) -> bytes:
        self.scrapes += 1
        k = self.scrapes
        return b"\n".join(line if v is None else line + b"%g" % (v * k)
                          for line, v in self.lines)


def serve(growing: GrowingPage) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = growing.next()
            self.send_response(200)
            self.send_header("Content-Type", TEXT)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def interval_s(text: str) -> float:
    return sum(float(n) * {"s": 1, "m": 60, "h": 3600}[u]
               for n, u in re.findall(r"(\d+)([smh])", text))


def query(api: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{api}/api/v1/query", params={"query": expr}, timeout=30).json()
    return answer["data"]["result"]  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--scrape", default="15s", help="scrape and evaluation interval")
    parser.add_argument("--rules", help="a rules file (default: the generated one)")
    parser.add_argument("--prometheus", default="prometheus")
    args = parser.parse_args()
    version = subprocess.run([args.prometheus, "--version"], capture_output=True,
                             text=True).stdout.split("\n")[0]
    print(machine())
    print(version)
    started = time.perf_counter()
    growing = GrowingPage(page(args.endpoints))
    print(f"endpoints {args.endpoints}: {growing.series} series per scrape "
          f"(page built in {time.perf_counter() - started:.0f} s)")
    rules_text = Path(args.rules).read_text() if args.rules else render_rules(ExportOptions())
    rules = yaml.safe_load(rules_text)
    intervals = {}
    for group in rules["groups"]:
        shipped = interval_s(group.get("interval", args.scrape))
        intervals[group["name"]] = (min(shipped, 150.0), SHIPPED.get(group["name"], shipped))
        if "interval" in group:
            group["interval"] = f"{intervals[group['name']][0]:g}s"
    server = serve(growing)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        (tmp / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
        port = server.server_address[1]
        (tmp / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": args.scrape, "evaluation_interval": args.scrape,
                       "scrape_timeout": args.scrape},
            "rule_files": [str(tmp / "rules.yml")],
            "scrape_configs": [{"job_name": "runpod-probe", "static_configs": [
                {"targets": [f"127.0.0.1:{port}"]}]}]}))
        prom_port = free_port()
        with (tmp / "prometheus.log").open("w") as log:
            proc = subprocess.Popen(
                [args.prometheus, f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=log, stderr=subprocess.STDOUT)
            api = f"http://127.0.0.1:{prom_port}"
            try:
                load_before = os.getloadavg()[0]
                worst = watch(api, args.minutes * 60)
                load_after = os.getloadavg()[0]
                scrape = query(api, 'scrape_duration_seconds{job="runpod-probe"}')
                own = own_metrics(api)
                costly = slowest(api)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    server.shutdown()
    head = sum(own.get("prometheus_tsdb_head_series", {}).values())
    rss = sum(own.get("process_resident_memory_bytes", {}).values())
    last = float(scrape[0]["value"][1]) if scrape else float("nan")
    cpu = sum(own.get("process_cpu_seconds_total", {}).values())
    print(f"{growing.scrapes} scrapes; last scrape {last:.2f} s; head series {head:.0f}; "
          f"Prometheus RSS {rss / 2**20:.0f} MiB, CPU {cpu:.0f} s in all")
    print(f"load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end "
          f"(on 2 cores, above 2 the groups wait for a core)")
    print(f"{'group':28} {'evals':>5} {'worst s':>8} {'median s':>8} {'interval':>9} "
          f"{'worst/interval':>14}")
    ok = True
    for name, (_, shipped) in intervals.items():
        seen = worst.get(name, [])
        if not seen:
            print(f"{name:28} never evaluated")
            ok = False
            continue
        top, mid = max(seen), sorted(seen)[len(seen) // 2]
        share = top / shipped
        ok = ok and share < 0.10
        print(f"{name:28} {len(seen):5d} {top:8.3f} {mid:8.3f} {shipped:8g}s {share:13.1%}")
    print("every group under 10 % of its interval" if ok else "a group is over 10 %")
    print("slowest rules at their last evaluation:")
    for seconds, group, rule in costly:
        print(f"  {seconds:7.3f} s  {group}: {rule}")


def slowest(api: str, top: int = 8) -> list[tuple[float, str, str]]:
    """The rules that took longest at their last evaluation (from /api/v1/rules)."""
    groups = httpx.get(f"{api}/api/v1/rules", timeout=30).json()["data"]["groups"]
    rules = [(float(r.get("evaluationTime", 0)), g["name"],
              r["name"] + " " + " ".join(f"{k}={v}" for k, v in r.get("labels", {}).items()
                                         if k in ("slo", "cause", "severity")))
             for g in groups for r in g["rules"]]
    return sorted(rules, reverse=True)[:top]


def own_metrics(api: str) -> dict[str, dict[str, float]]:
    """Prometheus's own /metrics: {name: {labels text: value}} (it does not scrape itself)."""
    out: dict[str, dict[str, float]] = {}
    for line in httpx.get(f"{api}/metrics", timeout=30).text.splitlines():
        if line.startswith("#") or not line:
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        out.setdefault(name, {})[labels] = float(value)
    return out


def group_of(labels: str) -> str:
    found = re.search(r'rule_group="[^"]*;([^"]+)"', labels)
    return found.group(1) if found else labels


def watch(api: str, seconds: float) -> dict[str, list[float]]:
    """Each group's evaluation durations, one per evaluation seen, for ``seconds``."""
    deadline = time.monotonic() + seconds
    seen: dict[str, dict[float, float]] = {}
    while time.monotonic() < deadline:
        time.sleep(3)
        try:
            metrics = own_metrics(api)
        except httpx.HTTPError:
            continue
        stamps = metrics.get("prometheus_rule_group_last_evaluation_timestamp_seconds", {})
        for labels, duration in metrics.get("prometheus_rule_group_last_duration_seconds",
                                            {}).items():
            stamp = stamps.get(labels, 0.0)
            if stamp > 0:
                seen.setdefault(group_of(labels), {})[stamp] = duration
    return {g: list(d.values()) for g, d in seen.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
