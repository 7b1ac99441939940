"""Benchmark: the status page at fleet scale.

Builds the daemon's in-memory state for N pod endpoints (every check with a result, a share
of them failing), a SQLite database as the daemon keeps it (results for the sparklines, a
week of hourly uptime counts for every endpoint), and serves ``/`` and ``/status.json``
through the daemon's listener (``probe.listener``) on 127.0.0.1; then times real HTTP
requests: the first page, a later page, a state filter, a name search, the JSON document.
Also shown: the endpoints' views alone (what every page reads from the state, under its
lock) and the bytes sent.

    python bench/status.py                  # N = 10,000 (the table in BENCHMARKS.md)
    python bench/status.py --endpoints 1000 --requests 20
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scale import machine  # noqa: E402 - bench/ is not a package

from probe.app import PLUGINS
from probe.config import parse_config  # noqa: E402
from probe.listener import serve, with_pages  # noqa: E402
from probe.outcome import CheckRole, Outcome, ProbeResult  # noqa: E402
from probe.state import FleetState  # noqa: E402
from probe.status import html  # noqa: E402
from probe.status.page import Query, document  # noqa: E402
from probe.status.uptime import UptimeBook  # noqa: E402
from probe.store import open_db  # noqa: E402

CHECKS = ("models", "health", "vllm_metrics")
SPARK_ROWS = 30  # results kept per endpoint and check for the sparklines
FAILING_EVERY = 20  # one endpoint in 20 answers 404


def build(n: int, tmp: Path) -> tuple[FleetState, Path]:
    text = "endpoints:\n" + "".join(
        f"  - {{name: pod-{i:05d}, kind: pod, pod_id: p{i:05d}}}\n" for i in range(n))
    config = parse_config(text + "ledger: {down_after: 1, up_after: 1}\n",
                          {"RUNPOD_API_KEY": "bench"}, PLUGINS.config)
    state = FleetState(role_of)
    state.configure(config, PLUGINS.plan(config))
    now = datetime.now(UTC)
    db_path = tmp / "probe.db"
    db = open_db(db_path)
    rows = []
    row_id = 0
    for i in range(n):
        name = f"pod-{i:05d}"
        failing = i % FAILING_EVERY == 0
        for check in CHECKS:
            outcome = Outcome.HTTP_404 if failing else Outcome.OK
            for k in range(SPARK_ROWS):
                row_id += 1
                at = now - timedelta(seconds=15 * (SPARK_ROWS - k))
                rows.append({"id": row_id, "ts": at.isoformat(timespec="milliseconds"),
                             "endpoint": name, "kind": "pod", "check_name": check,
                             "outcome": str(outcome), "latency_s": 0.01 + (k % 7) / 1000})
            state.update(ProbeResult(name, "pod", check, outcome, now, 0.012, 1,
                                     f"https://p{i:05d}-8000.proxy.runpod.net",
                                     "HTTP 404" if failing else "ok", 404 if failing else 200,
                                     role=role_of(check)))
    db["results"].insert_all(rows, batch_size=20_000)
    db.close()
    conn = sqlite3.connect(db_path)  # open_db made every table (probe.storage)
    hours = [(now - timedelta(hours=h)).strftime("%Y-%m-%dT%H") for h in range(168)]
    with conn:
        conn.executemany("INSERT INTO uptime_hourly VALUES (?, ?, ?, ?)",
                         ((f"pod-{i:05d}", hour, 720, 36 if i % FAILING_EVERY == 0 else 0)
                          for i in range(n) for hour in hours))
    conn.close()
    return state, db_path


def timed(client: httpx.Client, url: str, count: int) -> tuple[float, float, int]:
    samples, size = [], 0
    for _ in range(count):
        began = time.perf_counter()
        answer = client.get(url)
        samples.append(time.perf_counter() - began)
        answer.raise_for_status()
        size = len(answer.content)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        state, db_path = build(args.endpoints, Path(tmp))
        print(f"built {args.endpoints} endpoints in {time.perf_counter() - began:.1f}s")
        book = UptimeBook(db_path)

        def doc(params: Any) -> dict[str, Any]:
            return document(state.views(), state.latest, Query.of(params), book, db_path, {})

        pages = {
            "/": lambda p: (200, "text/html; charset=utf-8", html.render(doc(p)).encode()),
            "/status.json": lambda p: (200, "application/json",
                                       json.dumps(doc(p), default=str).encode()),
        }
        server = serve(with_pages(lambda e, s: [b""], pages), "127.0.0.1", 0)
        base = f"http://127.0.0.1:{server.server_port}"
        snap = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            state.views()
            snap.append(time.perf_counter() - t0)
        print(machine())
        print(f"endpoints: {args.endpoints:,} ({args.endpoints // FAILING_EVERY:,} down), "
              f"{len(CHECKS)} checks each; {args.requests} requests per row")
        print(f"{'request':<34}{'median ms':>10}{'p90 ms':>9}{'bytes':>11}")
        print(f"{'endpoint views alone (in process)':<34}{statistics.median(snap) * 1000:>10.1f}"
              f"{sorted(snap)[int(0.9 * (len(snap) - 1))] * 1000:>9.1f}{'':>11}")
        last = -(-args.endpoints // 100)
        with httpx.Client(timeout=60) as client:
            for label, path in (("/ (first page)", "/"), (f"/?page={last}", f"/?page={last}"),
                                ("/?state=down", "/?state=down"),
                                ("/?q=pod-0999", "/?q=pod-0999"),
                                ("/status.json", "/status.json")):
                median, p90, size = timed(client, base + path, args.requests)
                print(f"{label:<34}{median * 1000:>10.1f}{p90 * 1000:>9.1f}{size:>11,}")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()


def role_of(check: str) -> CheckRole:
    return PLUGINS.role_of(check)
