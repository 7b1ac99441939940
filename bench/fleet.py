"""Benchmark: the real daemon probing a simulated fleet of N pods for about a minute.

Prints probes/s achieved vs scheduled, scheduling lag p50/p99, CPU seconds per 1,000
probes and peak RSS. The simulator runs in its own process pinned to another core, so
the CPU figures are the daemon's alone; the daemon is pinned to one core.

    python bench/fleet.py                       # the standard runs (100 and 1,000 pods)
    python bench/fleet.py --pods 1000 --interval 15s --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from probe.app import PLUGINS
from probe.config import parse_config
from probe.daemon import Daemon
from probe.durations import parse_duration

# (pods, interval, checks per pod): the spine's /v1/models probe, then a pod's full default
# set (models + vLLM /health + vLLM /metrics, three requests per pod per interval).
STANDARD_RUNS = [(100, "1s", "models"), (1000, "15s", "models"), (1000, "5s", "models"),
                 (1000, "15s", "models,health,vllm_metrics")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(pods: int, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "probe.simulator", "--port", str(port),
                             "--fleet", f"bench:{pods}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(proc.pid, {1})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("simulator did not start")


def fleet_config(pods: int, interval: str, port: int, state: Path, checks: str) -> str:
    lines = [f'runpod: {{proxy_url: "http://127.0.0.1:{port}/proxy/{{pod_id}}-{{port}}"}}',
             f"defaults: {{interval: {interval}, timeout: 1s, tries: 1, api_key_env: null, "
             f"checks: [{checks}]}}",
             f'storage: {{path: "{state / "bench.db"}"}}',
             'metrics: {listen: "127.0.0.1:0"}',
             "scheduler: {max_concurrent: 256, spread: true}",
             "endpoints:"]
    lines += [f"  - {{name: bench-{i:04d}, kind: pod, pod_id: bench-{i:04d}}}"
              for i in range(pods)]
    return "\n".join(lines) + "\n"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


async def measure(config_text: str, seconds: float) -> dict[str, Any]:
    daemon = Daemon(parse_config(config_text, {}, PLUGINS.config), PLUGINS, env={})
    lags: list[float] = []
    observe = daemon.state.observe_lag

    def record(lag_s: float) -> None:
        lags.append(lag_s)
        observe(lag_s)

    daemon.state.observe_lag = record  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop, install_signals=False))
    await daemon.ready.wait()
    # Let the spread start-up phase pass one interval before measuring steady state.
    warmup = max(e.interval_s for e in daemon.config.endpoints)
    await asyncio.sleep(warmup)
    probes0, lags_at = daemon.state.daemon.probes_total, len(lags)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    probes = daemon.state.daemon.probes_total - probes0
    outcomes = {k: sum(s.outcomes.get(k, 0) for s in daemon.state.snapshot().checks.values())
                for k in ("ok",)}
    stop.set()
    await task
    window = lags[lags_at:]
    return {"probes": probes, "wall": wall, "cpu": cpu, "lag_p50": percentile(window, 0.5),
            "lag_p99": percentile(window, 0.99), "lag_max": max(window, default=float("nan")),
            "ok": outcomes["ok"], "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024}


def run(pods: int, interval: str, seconds: float, checks: str) -> dict[str, Any]:
    port = free_port()
    sim = start_simulator(pods, port)
    try:
        with tempfile.TemporaryDirectory() as state:
            config = fleet_config(pods, interval, port, Path(state), checks)
            result = asyncio.run(measure(config, seconds))
    finally:
        sim.terminate()
        sim.wait(10)
    scheduled = pods * len(checks.split(",")) / parse_duration(interval)
    achieved = result["probes"] / result["wall"]
    return {"pods": pods, "interval": interval, "checks": checks, "scheduled_per_s": scheduled,
            "achieved_per_s": achieved, **result,
            "cpu_per_1000": 1000 * result["cpu"] / max(result["probes"], 1)}


HEADER = (f"{'pods':>5} {'interval':>8} {'checks':>26} {'sched/s':>8} {'done/s':>8} {'lag p50':>9} "
          f"{'lag p99':>9} {'lag max':>9} {'CPU s/1k':>9} {'peak RSS':>9}")


def row(r: dict[str, Any]) -> str:
    return (f"{r['pods']:>5} {r['interval']:>8} {r['checks']:>26} {r['scheduled_per_s']:>8.1f} "
            f"{r['achieved_per_s']:>8.1f} {r['lag_p50'] * 1000:>7.1f}ms "
            f"{r['lag_p99'] * 1000:>7.1f}ms {r['lag_max'] * 1000:>7.1f}ms "
            f"{r['cpu_per_1000']:>9.2f} {r['rss_mb']:>7.0f}MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, help="one run with this many pods")
    parser.add_argument("--interval", default="15s")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--checks", default="models", help="comma-separated checks per pod")
    args = parser.parse_args()
    if args.pods:  # one run, in this process (peak RSS is per process)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})  # the daemon gets one core
        print(row(run(args.pods, args.interval, args.seconds, args.checks)), flush=True)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.platform()}")
    print(f"daemon pinned to 1 core, simulator in its own process on the other; {args.seconds:g}s "
          "measured after one interval of warm-up; each run in a fresh process\n")
    print(HEADER, flush=True)
    for pods, interval, checks in STANDARD_RUNS:
        subprocess.run([sys.executable, __file__, "--pods", str(pods), "--interval", interval,
                        "--seconds", str(args.seconds), "--checks", checks], check=True)


if __name__ == "__main__":
    main()
