"""Benchmark: the real daemon probing N pods served by nginx, against blackbox_exporter.

Each pod is its own host (127.x.y.z on nginx's one port: all of 127.0.0.0/8 is loopback),
so connections are per pod as they are behind RunPod's proxy. For every row:

1. nginx starts on the other core with ``bench/nginx.conf.in`` (static vLLM-shaped
   ``/v1/models``, ``/health`` and ``/metrics`` from ``bench/www``, and a canned streamed
   chat completion for the default pod's prompts): never the bottleneck.
2. ``python -m probe run`` runs as its own process pinned to core 0 on a generated config of
   N ``kind: pod`` endpoints. After one interval of warm-up it is measured for ``--seconds``:
   probes started in the window (SQLite results table), scheduling lag (deltas of the
   ``runpod_probe_scheduler_lag_seconds`` histogram), CPU (utime+stime of all its threads
   from /proc/PID/stat), peak RSS (VmHWM). Meanwhile ``/metrics`` is scraped every
   ``--scrape-every`` seconds (15 by default) the way Prometheus scrapes it (OpenMetrics,
   gzip), so the CPU and lag include serving it; the slowest scrape's wall time is kept.
3. blackbox_exporter runs alone on the same core with ``bench/blackbox.yml``, driven at the
   same rate against the same URLs by a driver in this process on the other core
   (``GET /probe?target=...&module=...``), and is measured the same way.
4. ``check-config`` on the N-endpoint file is timed.

The daemon runs on this interpreter, beside whatever else it has installed, unless
``--venv DIR`` names a venv holding only the project and its dependencies, as the systemd
unit runs it (``python -m venv DIR && DIR/bin/pip install .``; made when missing, the
checkout installed into it on every run): the checkout's code on ``PYTHONPATH`` either
way. A package the daemon does not need but finds installed can still be imported
(sqlite-utils imports numpy when it is there: 14 MB).

    python bench/scale.py --standard                  # the rows in BENCHMARKS.md
    python bench/scale.py --endpoints 10000 --interval 15s --checks models --seconds 60
    python bench/scale.py --endpoints 10000 --interval 15s --checks default  # the default pod
    python bench/scale.py --endpoints 1000 --fresh    # nginx closes after every answer

``--fresh`` makes nginx close every connection after one answer (``keepalive_timeout 0``),
so both sides pay a TCP connect per probe; blackbox_exporter always does (it disables
keep-alive), so its figures do not depend on the mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BLACKBOX = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MEASURED_CORE, OTHER_CORE = 0, 1
CHECKS = {"models": ("models",), "full": ("models", "health", "vllm_metrics"),
          "default": ("models", "health", "vllm_metrics")}
PATHS = {"models": "/v1/models", "health": "/health", "vllm_metrics": "/metrics",
         "context": "/v1/models", "chat": "/v1/chat/completions"}
# The default pod ("default"): its three checks at the interval, the context fit (a job of
# its own at the interval: required_context set) and two governed prompts at their default
# interval, all answered by nginx (bench/nginx.conf.in: one streamed answer both accept).
REQUIRED_CONTEXT = 8000
PROMPT_INTERVAL_S = 300.0  # probe.prompts.config.DEFAULT_INTERVAL_S
PROMPTS = ('prompts:\n'
           '  - {name: arithmetic, prompt: "What is 2+2?", expect: {contains: "4"}, '
           'cross: "bench"}\n'
           '  - {name: validation-failure, prompt: "What happens on validation failure?", '
           "expect: {icontains: 'fails closed'}, cross: \"bench\"}\n")
# scheduler.max_concurrent for the daemon (--max-concurrent; empty: the daemon's default)
MAX_CONCURRENT: list[int] = []
# The daemon's interpreter (--venv: a venv as the unit's; else this one)
DAEMON_PYTHON = [sys.executable]
POD_PORT = 8000  # the pod's port as RunPod's proxy sees it; carried in the URL path here
# (endpoints, interval, checks, fresh): the must-show rows.
STANDARD = [(100, "15s", "models", False), (1000, "15s", "models", False),
            (3000, "15s", "models", False), (10000, "15s", "models", False),
            (3000, "15s", "full", False), (10000, "15s", "default", False),
            (100, "15s", "models", True), (10000, "15s", "models", True)]


def schedule(checks: str, interval_s: float) -> list[tuple[str, str, float]]:
    """A pod's probes: (path under its root, blackbox module, seconds between runs)."""
    out = [(PATHS[c], c, interval_s) for c in CHECKS[checks]]
    if checks == "default":
        out.append((PATHS["context"], "models", interval_s))
        out += [(PATHS["chat"], "chat", PROMPT_INTERVAL_S)] * 2
    return out


def warm_up_s(checks: str, interval_s: float) -> float:
    """Until every job of the interval has run once, and a minute: the prompts' first runs
    (a longer interval) are spread over at least a minute, over their whole interval at
    10,000 pods (``probe.scheduler.spread_window_s``), so that the window sees their steady
    rate rather than the start-up's (between 600 and 3,000 pods, 20 first runs a second for
    longer than the minute: more than their steady rate)."""
    longest = max(every for _, _, every in schedule(checks, interval_s))
    return min(longest, max(interval_s, 60.0)) + 5


def probes_per_s(n: int, checks: str, interval_s: float) -> float:
    return n * sum(1 / every for _, _, every in schedule(checks, interval_s))


# -- processes, pinning and /proc -----------------------------------------------------------

# systemd/runpod-probe.service's LimitNOFILE=: the open files the daemon has where it runs.
# A default pod may hold a connection per check that runs side by side (three), beyond the
# 20,000 a login shell may allow here.
UNIT_NOFILE = 65536


def pinned(core: int, nofile: int | None = None) -> Any:
    """preexec_fn: the child and every thread it starts run on ``core`` only; with
    ``nofile``, its open-files limit (soft and hard) is that, as the unit sets it."""
    def child() -> None:
        os.sched_setaffinity(0, {core})
        if nofile is not None:
            import resource
            with contextlib.suppress(ValueError, OSError):  # not root: the shell's limit
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    return child


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {timeout_s:g}s")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def core_busy_seconds(core: int) -> float:
    """Busy time of one core so far (everything but idle and iowait), in seconds."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK
    return float("nan")


def open_files(pid: int) -> int:
    """The process's open file descriptors now (its kept-alive connections, mostly)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the fleet --------------------------------------------------------------------------------

def pod_host(i: int) -> str:
    """Pod ``i``'s own loopback address (127.10.0.1, 127.10.0.2, ...; 62,500 per /8 octet)."""
    return f"127.{10 + i // 62500}.{i // 250 % 250 + 1}.{i % 250 + 1}"


def pod_root(i: int, port: int) -> str:
    return f"http://{pod_host(i)}:{port}/p{POD_PORT}"


class Nginx:
    def __init__(self, run: Path, fresh: bool) -> None:
        self.run, self.port, self.status_port, self.fresh = run, free_port(), free_port(), fresh
        www = run / "www"
        shutil.copytree(BENCH / "www", www)
        conf = (BENCH / "nginx.conf.in").read_text()
        for marker, value in (("@RUN@", run), ("@WWW@", www), ("@PORT@", self.port),
                              ("@STATUS_PORT@", self.status_port),
                              ("@KEEPALIVE@", "0" if fresh else "120s")):
            conf = conf.replace(marker, str(value))
        (run / "nginx.conf").write_text(conf)
        for path in (run, www):  # nginx workers run as an unprivileged user
            path.chmod(0o755)
        self.proc = subprocess.Popen([NGINX, "-p", str(run), "-c", str(run / "nginx.conf"),
                                      "-e", str(run / "nginx-error.log")],
                                     preexec_fn=pinned(OTHER_CORE))
        wait_port(self.port, self.proc, "nginx")

    def accepted(self) -> int:
        """Connections nginx has accepted since it started (stub_status)."""
        url = f"http://127.0.0.1:{self.status_port}/status"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return int(text.splitlines()[2].split()[0]) - 1  # not counting this request

    def close(self) -> None:
        stop(self.proc, 10)


# -- the daemon --------------------------------------------------------------------------------

def daemon_config(n: int, interval: str, checks: str, nginx_port: int, db: Path,
                  metrics_port: int) -> str:
    # RunPod's proxy names a pod by host; here the "pod id" is host:port, because the loader
    # rejects a template with "{pod_id}:{port}" (its check formats the port as a word).
    lines = ['runpod: {proxy_url: "http://{pod_id}/p{port}"}',
             f"defaults: {{interval: {interval}, timeout: 5s, tries: 1, api_key_env: null, "
             f"checks: [{', '.join(CHECKS[checks])}]}}",
             f'storage: {{path: "{db}"}}',
             f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}',
             "scheduler: {spread: true"
             + (f", max_concurrent: {MAX_CONCURRENT[0]}" if MAX_CONCURRENT else "") + "}",
             # the probe's own vantage as a deployment has it (RunPod's API, reachable): a
             # target on the same nginx. Without one the default target is RunPod's API on
             # the internet, unreachable here, and the daemon would call itself offline.
             f'vantage: {{reference_urls: ["http://127.0.0.1:{nginx_port}/vantage"]}}',
             "endpoints:"]
    extra = f", required_context: {REQUIRED_CONTEXT}" if checks == "default" else ""
    lines += [f'  - {{name: pod-{i:05d}, kind: pod, pod_id: "{pod_host(i)}:{nginx_port}"{extra}}}'
              for i in range(n)]
    return "\n".join(lines) + "\n" + (PROMPTS if checks == "default" else "")


def unit_venv(path: Path) -> str:
    """The interpreter of a venv holding the project and its dependencies only, as the
    systemd unit runs it (README, "Install on a VM"): made when it is missing, and the
    checkout installed into it on every run (about 4 s), so a venv made before a change of
    the dependencies runs the ones the checkout asks for."""
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    return str(python)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def scrape(url: str) -> tuple[float, str]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        text = response.read().decode()
    return time.perf_counter() - began, text


# What Prometheus 2.42 sends when it scrapes a target.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}


class Scraper(threading.Thread):
    """Scrapes /metrics every ``every`` seconds as Prometheus does (OpenMetrics, gzip) while
    the window is measured, so the daemon's CPU and lag include serving them; keeps each
    scrape's wall time (request sent to the last byte read)."""

    def __init__(self, url: str, every: float) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.times: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            began = time.perf_counter()
            request = urllib.request.Request(self.url, headers=PROMETHEUS_HEADERS)
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
            self.times.append(time.perf_counter() - began)


SAMPLE = re.compile(r'^(\w+)(?:\{([^}]*)\})? (\S+)$')


def lag_buckets(text: str) -> list[tuple[float, float]]:
    out = []
    for line in text.splitlines():
        if line.startswith("runpod_probe_scheduler_lag_seconds_bucket"):
            m = SAMPLE.match(line)
            if m:
                le = re.search(r'le="([^"]+)"', m.group(2) or "")
                if le:
                    out.append((float(le.group(1)), float(m.group(3))))
    return sorted(out)


def sample_value(text: str, name: str) -> float:
    """The value of the unlabelled series ``name`` in an exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def histogram_quantile(q: float, before: list[tuple[float, float]],
                       after: list[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile over the delta of two cumulative bucket lists."""
    delta = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in delta:
        if count >= rank:
            if le == float("inf"):
                return float("inf")  # beyond the last bound: printed as ">5s"
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = le, count
    return lower


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def run_daemon(n: int, interval_s: float, interval: str, checks: str, seconds: float,
               nginx: Nginx, run: Path, profile: Path | None = None,
               scrape_every: float = 15.0) -> dict[str, Any]:
    metrics_port = free_port()
    config = run / "probe.yaml"
    db = run / "probe.db"
    config.write_text(daemon_config(n, interval, checks, nginx.port, db, metrics_port))
    log = (run / "daemon.log").open("wb")
    proc = subprocess.Popen([DAEMON_PYTHON[0], "-m", "probe", "run", "--config", str(config)],
                            cwd=ROOT, env=child_env(), stdout=log, stderr=log,
                            preexec_fn=pinned(MEASURED_CORE, UNIT_NOFILE))
    try:
        wait_port(metrics_port, proc, "runpod-probe")
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        time.sleep(warm_up_s(checks, interval_s))  # the spread start-up: every job has run once
        scrape0, text0 = scrape(url)
        t0, cpu0, conn0 = time.time(), cpu_seconds(proc.pid), nginx.accepted()
        busy0 = core_busy_seconds(MEASURED_CORE)
        scraper = Scraper(url, scrape_every)
        if scrape_every > 0:
            scraper.start()
        spy = None
        if profile is not None:  # sampled from the other core; it slows the daemon a little
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(proc.pid), "--rate", "250",
                                    "--duration", str(int(seconds)), "--nonblocking",
                                    "--format", "raw", "--output", str(profile)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   preexec_fn=pinned(OTHER_CORE))
        time.sleep(seconds)
        if spy is not None:
            spy.wait()
        scraper.halt.set()
        if scraper.is_alive():
            scraper.join()
        cpu1, t1, conn1 = cpu_seconds(proc.pid), time.time(), nginx.accepted()
        busy1 = core_busy_seconds(MEASURED_CORE)
        scrape1, text1 = scrape(url)
        rss = peak_rss_mb(proc.pid)
        fds = open_files(proc.pid)
    finally:
        stop(proc)
        log.close()
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT outcome, COUNT(*) FROM results WHERE ts >= ? AND ts < ? "
                                 "GROUP BY outcome", (iso(t0), iso(t1))).fetchall())
        # the non-ok results' kinds (check, outcome, message with digits folded), commonest first
        kinds = conn.execute(
            "SELECT check_name, outcome, CASE WHEN instr(message, 'the check saw ') > 0 "
            "THEN substr(message, instr(message, 'the check saw '), 100) "
            "ELSE substr(message, 1, 80) END, COUNT(*) AS n FROM results "
            "WHERE ts >= ? AND ts < ? AND outcome != 'ok' GROUP BY 1, 2, 3 ORDER BY n DESC "
            "LIMIT 8", (iso(t0), iso(t1))).fetchall()
    probes = sum(rows.values())
    before, after = lag_buckets(text0), lag_buckets(text1)
    return {"done_per_s": probes / (t1 - t0), "ok_share": rows.get("ok", 0) / max(probes, 1),
            "outcomes": rows, "non_ok": kinds, "cpu_ms": 1000 * (cpu1 - cpu0) / max(probes, 1),
            "core_share": (cpu1 - cpu0) / (t1 - t0),
            "conn_per_probe": (conn1 - conn0 - 1) / max(probes, 1),
            "others": max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / (t1 - t0),
            "lag_p50": histogram_quantile(0.5, before, after),
            "lag_p99": histogram_quantile(0.99, before, after),
            "rss_mb": rss, "scrape_s": max(scraper.times or [scrape0, scrape1]),
            "scrapes": [round(x, 2) for x in scraper.times], "scrape_kb": len(text1) / 1024,
            "open_files": fds, "config": config,
            # the event loop's stalls over the window (late by more than 50 ms), and the
            # lag histogram's delta: what a lag quantile is made of
            "stalled_s": (sample_value(text1, "runpod_probe_loop_stalled_seconds_total")
                          - sample_value(text0, "runpod_probe_loop_stalled_seconds_total")),
            "lag_delta": [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]}


def time_check_config(config: Path) -> float:
    began = time.perf_counter()
    subprocess.run([DAEMON_PYTHON[0], "-m", "probe", "check-config", "--config", str(config)],
                   cwd=ROOT, env=child_env(), check=True, stdout=subprocess.DEVNULL,
                   preexec_fn=pinned(MEASURED_CORE))
    return time.perf_counter() - began


# -- blackbox_exporter ------------------------------------------------------------------------

@dataclass
class DriverStats:
    started: list[float] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    errors: int = 0


async def drive(port: int, targets: list[tuple[str, str, float]], until: float,
                stats: DriverStats) -> None:
    """GET /probe for every (target, module, interval) once per its interval, spread over
    the interval the way the daemon spreads its jobs, until ``until`` (time.time())."""
    import aiohttp  # the bench extra

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        tasks: set[asyncio.Task[None]] = set()

        async def probe(target: str, module: str) -> None:
            began = time.time()
            try:
                async with session.get(f"http://127.0.0.1:{port}/probe",
                                       params={"target": target, "module": module}) as r:
                    body = await r.text()
                stats.started.append(began)
                stats.ok.append(r.status == 200 and "\nprobe_success 1" in body)
            except Exception:  # noqa: BLE001 - counted
                stats.errors += 1

        start = time.time()
        count = len(targets)
        # (due, target index): each target first at its share of its own interval
        due = [(start + j * every / count, j) for j, (_, _, every) in enumerate(targets)]
        heapq.heapify(due)
        while True:
            at, j = heapq.heappop(due)
            if at >= until:
                await asyncio.gather(*tasks)
                return
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            target, module, every = targets[j]
            heapq.heappush(due, (at + every, j))
            task = asyncio.create_task(probe(target, module))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


def run_blackbox(n: int, interval_s: float, checks: str, seconds: float, nginx: Nginx,
                 run: Path) -> dict[str, Any]:
    if BLACKBOX is None:
        raise SystemExit("blackbox_exporter is not installed")
    port = free_port()
    log = (run / "blackbox.log").open("wb")
    proc = subprocess.Popen([BLACKBOX, f"--config.file={BENCH / 'blackbox.yml'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=log, preexec_fn=pinned(MEASURED_CORE))
    try:
        wait_port(port, proc, "blackbox_exporter")
        # pod by pod, the pod's checks one after another, as the daemon's jobs run them
        targets = [(pod_root(i, nginx.port) + path, module, every) for i in range(n)
                   for path, module, every in schedule(checks, interval_s)]
        stats = DriverStats()
        warm_until = time.time() + warm_up_s(checks, interval_s)
        end = warm_until + seconds + 1
        marks: dict[str, float] = {}

        async def main() -> None:
            async def sample() -> None:
                await asyncio.sleep(max(0.0, warm_until - time.time()))
                marks["t0"], marks["cpu0"] = time.time(), cpu_seconds(proc.pid)
                marks["busy0"] = core_busy_seconds(MEASURED_CORE)
                marks["conn0"] = await asyncio.to_thread(nginx.accepted)
                await asyncio.sleep(seconds)
                marks["cpu1"], marks["t1"] = cpu_seconds(proc.pid), time.time()
                marks["busy1"] = core_busy_seconds(MEASURED_CORE)
                marks["conn1"] = await asyncio.to_thread(nginx.accepted)

            await asyncio.gather(drive(port, targets, end, stats), sample())

        asyncio.run(main())
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
        log.close()
    t0, t1 = marks["t0"], marks["t1"]
    window = [ok for began, ok in zip(stats.started, stats.ok, strict=True) if t0 <= began < t1]
    probes = len(window)
    return {"done_per_s": probes / (t1 - t0), "ok_share": sum(window) / max(probes, 1),
            "cpu_ms": 1000 * (marks["cpu1"] - marks["cpu0"]) / max(probes, 1),
            "core_share": (marks["cpu1"] - marks["cpu0"]) / (t1 - t0), "rss_mb": rss,
            "conn_per_probe": (marks["conn1"] - marks["conn0"] - 1) / max(probes, 1),
            "others": max(0.0, (marks["busy1"] - marks["busy0"])
                          - (marks["cpu1"] - marks["cpu0"])) / (t1 - t0),
            "driver_errors": stats.errors}


# -- rows -------------------------------------------------------------------------------------

def parse_interval(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    if not m:
        raise SystemExit(f"bad interval {text!r} (like 15s)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def wait_quiet(limit_s: float = 900, sample_s: float = 3, busy: float = 0.1) -> None:
    """Wait (at most ``limit_s``) until neither core is more than ``busy`` used: another
    process on the machine would disturb the figures (the noise column shows what was)."""
    deadline, told = time.monotonic() + limit_s, False
    while time.monotonic() < deadline:
        before = [core_busy_seconds(c) for c in (MEASURED_CORE, OTHER_CORE)]
        time.sleep(sample_s)
        after = [core_busy_seconds(c) for c in (MEASURED_CORE, OTHER_CORE)]
        if all((a - b) / sample_s <= busy for a, b in zip(after, before, strict=True)):
            return
        if not told:
            print("(waiting for the machine to be quiet)", file=sys.stderr, flush=True)
            told = True


def one_row(n: int, interval: str, checks: str, fresh: bool, seconds: float,
            blackbox: bool, profile: Path | None = None, wait: bool = True,
            scrape_every: float = 15.0) -> dict[str, Any]:
    interval_s = parse_interval(interval)
    if wait:
        wait_quiet()
    with tempfile.TemporaryDirectory(prefix="runpod-probe-bench-") as tmp:
        run = Path(tmp)
        nginx = Nginx(run, fresh)
        try:
            ours = run_daemon(n, interval_s, interval, checks, seconds, nginx, run, profile,
                              scrape_every)
            check_config_s = time_check_config(ours["config"])
            theirs = (run_blackbox(n, interval_s, checks, seconds, nginx, run)
                      if blackbox else None)
        finally:
            nginx.close()
    return {"n": n, "interval": interval, "checks": checks, "conn": "fresh" if fresh else "keep",
            "sched_per_s": probes_per_s(n, checks, interval_s), "ours": ours,
            "theirs": theirs, "check_config_s": check_config_s}


HEADER = (f"{'pods':>6} {'int':>4} {'checks':>6} {'mode':>5} {'sched/s':>8} {'done/s':>8} "
          f"{'ok':>5} {'lag p50':>8} {'lag p99':>8} {'CPU ms':>7} {'core':>5} {'conn/p':>6} "
          f"{'RSS':>6} {'scrape':>7} {'chk-cfg':>7} | {'bb done/s':>9} {'bb ok':>5} "
          f"{'bb CPU ms':>9} {'bb conn/p':>9} {'bb RSS':>6} | {'ratio':>5} {'noise':>9}")


def ms(seconds: float) -> str:
    return f"{'>5s':>8}" if seconds == float("inf") else f"{seconds * 1000:>6.1f}ms"


def fmt_row(r: dict[str, Any]) -> str:
    o, t = r["ours"], r["theirs"]
    line = (f"{r['n']:>6} {r['interval']:>4} {r['checks']:>6} {r['conn']:>5} "
            f"{r['sched_per_s']:>8.1f} {o['done_per_s']:>8.1f} {o['ok_share']:>5.0%} "
            f"{ms(o['lag_p50'])} {ms(o['lag_p99'])} {o['cpu_ms']:>7.2f} "
            f"{o['core_share']:>5.0%} {o['conn_per_probe']:>6.2f} {o['rss_mb']:>4.0f}MB "
            f"{o['scrape_s']:>6.2f}s {r['check_config_s']:>6.2f}s | ")
    if t is None:
        return line + (f"{'-':>9} {'-':>5} {'-':>9} {'-':>9} {'-':>6} | {'-':>5} "
                       f"{o['others']:>4.0%}/{'-':>4}")
    return line + (f"{t['done_per_s']:>9.1f} {t['ok_share']:>5.0%} {t['cpu_ms']:>9.2f} "
                   f"{t['conn_per_probe']:>9.2f} "
                   f"{t['rss_mb']:>4.0f}MB | {o['cpu_ms'] / t['cpu_ms']:>5.2f} "
                   f"{o['others']:>4.0%}/{t['others']:>4.0%}")


def machine() -> str:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python "
            f"{platform.python_version()}, Linux {platform.release()}")


def versions() -> str:
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    bb = "none"
    if BLACKBOX:
        out = subprocess.run([BLACKBOX, "--version"], capture_output=True, text=True)
        found = re.search(r"version (\S+)", out.stdout + out.stderr)
        bb = found.group(1) if found else "?"
    return f"targets: {nginx}; blackbox_exporter {bb}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoints", type=int, help="one row with this many pods")
    parser.add_argument("--interval", default="15s")
    parser.add_argument("--checks", choices=sorted(CHECKS), default="models",
                        help="models: /v1/models only; full: a pod's default checks; "
                        "default: the default pod (its checks, the context fit and two "
                        "governed prompts)")
    parser.add_argument("--seconds", type=float, default=60, help="measured window per side")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--keepalive", dest="fresh", action="store_false", default=False,
                      help="nginx keeps connections open (default)")
    mode.add_argument("--fresh", dest="fresh", action="store_true",
                      help="nginx closes every connection after one answer")
    parser.add_argument("--no-blackbox", dest="blackbox", action="store_false")
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="do not wait for a quiet machine before each row")
    parser.add_argument("--standard", action="store_true", help="the rows in BENCHMARKS.md")
    parser.add_argument("--verbose", action="store_true", 
                        help="print every scrape's time and the commonest non-ok results")
    parser.add_argument("--scrape-every", type=float, default=15.0, metavar="SECONDS",
                        help="scrape /metrics as Prometheus would while measuring (0: never)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="py-spy the daemon over the window into FILE (collapsed stacks; "
                        "its CPU figures are then not comparable)")
    parser.add_argument("--venv", type=Path, metavar="DIR",
                        help="run the daemon from this venv of the project and its "
                        "dependencies only, as the systemd unit does (made when missing)")
    parser.add_argument("--max-concurrent", type=int, metavar="N",
                        help="the daemon's scheduler.max_concurrent (default: its own default)")
    args = parser.parse_args()
    if args.max_concurrent:
        MAX_CONCURRENT.append(args.max_concurrent)
    if args.venv:
        DAEMON_PYTHON[0] = unit_venv(args.venv.resolve())
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        raise SystemExit("needs 2 cores: one measured, one for nginx and the driver")
    if not args.standard and not args.endpoints:
        parser.error("give --endpoints N or --standard")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.sched_setaffinity(0, {OTHER_CORE})  # this process (the blackbox driver) stays off core 0
    rows = (STANDARD if args.standard
            else [(args.endpoints, args.interval, args.checks, args.fresh)])
    print(machine())
    print(versions())
    print(f"the daemon's interpreter: {DAEMON_PYTHON[0]}"
          + (" (a venv of the project and its dependencies only)" if args.venv else ""))
    print(f"each side alone on core {MEASURED_CORE} (runpod-probe, then blackbox_exporter); nginx "
          f"and the driver on core {OTHER_CORE}; {args.seconds:g}s measured after one interval "
          "of warm-up\n")
    print(HEADER, flush=True)
    results = []
    for n, interval, checks, fresh in rows:
        results.append(one_row(n, interval, checks, fresh, args.seconds, args.blackbox,
                               args.profile.resolve() if args.profile else None, args.wait,
                               args.scrape_every))
        print(fmt_row(results[-1]), flush=True)
        if args.verbose:
            print(f"  scrapes (s): {results[-1]['ours']['scrapes']}; open files at the end: "
                  f"{results[-1]['ours']['open_files']}; event loop stalled "
                  f"{results[-1]['ours']['stalled_s']:.2f}s of the window", flush=True)
            print(f"  lag (le, runs): {results[-1]['ours']['lag_delta']}", flush=True)
            for check, outcome, message, count in results[-1]["ours"]["non_ok"]:
                print(f"  {count:>7} {check} {outcome}: {message}", flush=True)
    print()
    print("CPU ms: CPU per probe (one check of one pod), everything a result goes through; "
          "core: share of core 0 used")
    print("lag: scheduled time -> start of the check (histogram quantiles over the window); "
          "scrape: the slowest /metrics scrape in the window (OpenMetrics, gzip)")
    print("mode: keep = nginx keeps connections open, fresh = nginx closes after each answer")
    print("conn/p: new TCP connections nginx accepted per probe (1.00: a fresh connection "
          "for every probe)")
    print("noise: share of core 0 used by other processes while runpod-probe / "
          "blackbox_exporter was measured (should be ~0%)")
    print("ratio: runpod-probe CPU per probe / blackbox_exporter CPU per probe, same targets "
          "and rate")
    for r in results:
        bad = {k: v for k, v in r["ours"]["outcomes"].items() if k != "ok"}
        if bad:
            print(f"  {r['n']} pods {r['checks']} {r['conn']}: non-ok outcomes {bad}")


if __name__ == "__main__":
    main()
