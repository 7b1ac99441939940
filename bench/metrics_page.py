"""Benchmark: writing /metrics for N pod endpoints, in-process (no probing beside it).

Builds the daemon's state for N `kind: pod` endpoints (their `models` check with three
results each), then times what a scrape does when every check has had a new result since
the last one (as at 10,000 endpoints every 15 s, scraped every 15 s): the page written by
``probe.exposition.text`` (OpenMetrics, as Prometheus asks for it) with each check's lines
written ahead as the daemon writes them (its collector's series cache watching the state;
``--at-scrape``: a collector without one, so the scrape writes every line), and gzip of the
page by ISA-L (what the daemon uses) beside zlib's level 1. Also shown: the time
``lines_of`` takes per result (the cost moved onto the result path), and the memory the
state and the series cache hold. With ``--protobuf`` it also times the protobuf page (what a
Prometheus with native histograms on asks for; its series written ahead too, once the first
protobuf scrape has started their cache) and what a result costs with both caches kept;
``--native`` keeps the latency histograms' exponential buckets
(``metrics: {native_histograms: true}``).

    python bench/metrics_page.py                 # N = 10,000 (the table in BENCHMARKS.md)
    python bench/metrics_page.py --endpoints 1000 --at-scrape
    python bench/metrics_page.py --protobuf --native
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
import zlib
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from isal import isal_zlib  # noqa: E402
from scale import machine  # noqa: E402 - bench/ is not a package

from probe.app import PLUGINS
from probe.config import parse_config  # noqa: E402
from probe.exposition import protobuf  # noqa: E402
from probe.exposition.text import render_chunks  # noqa: E402
from probe.metrics import ProbeCollector, make_registry  # noqa: E402
from probe.outcome import CheckRole, Outcome, ProbeResult  # noqa: E402
from probe.state import FleetState  # noqa: E402

ACCEPT = "application/openmetrics-text; version=1.0.0"
# what Prometheus 2.42 sends with --enable-feature=native-histograms
PROTOBUF_ACCEPT = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                   "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
                   "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def role_of(check: str) -> CheckRole:
    return PLUGINS.role_of(check)


def results(n: int, round_: int) -> list[ProbeResult]:
    now = datetime.now(UTC)
    return [ProbeResult(f"pod-{i:05d}", "pod", "models", Outcome.OK, now,
                        0.012 + i * 1e-7 + round_ / 1000, 1,
                        f"https://p{i:05d}-8000.proxy.runpod.net", "ok", 200,
                        {"model": "m", "max_model_len": 8192}, role=role_of("models"))
            for i in range(n)]


def build(n: int, ahead: bool, native: bool = False, protobuf_on: bool = False
          ) -> tuple[FleetState, ProbeCollector, float]:
    """The state with every check's three results and its collector; returns them and the MB
    they hold."""
    text = "endpoints:\n" + "".join(
        f"  - {{name: pod-{i:05d}, kind: pod, pod_id: p{i:05d}, checks: [models]}}\n"
        for i in range(n))
    config = parse_config(text, {"RUNPOD_API_KEY": "bench"}, PLUGINS.config)
    plan = PLUGINS.plan(config)
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    state = FleetState(role_of, native=native)
    collector = ProbeCollector(state, write_ahead=ahead, protobuf=protobuf_on)
    state.configure(config, plan)
    for round_ in range(3):
        for result in results(n, round_):
            state.update(result)
    held = (tracemalloc.get_traced_memory()[0] - before) / 1e6
    tracemalloc.stop()
    return state, collector, held


def timed(action: object, runs: int, before: object = None) -> list[float]:
    out = []
    for run in range(runs):
        if before is not None:
            before(run)  # type: ignore[operator]
        start = time.perf_counter()
        action()  # type: ignore[operator]
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--at-scrape", action="store_true",
                        help="no lines written ahead: every scrape writes them all")
    parser.add_argument("--protobuf", action="store_true",
                        help="also time the protobuf page (Prometheus's native histograms)")
    parser.add_argument("--native", action="store_true",
                        help="latency histograms keep exponential buckets too")
    args = parser.parse_args()
    print(machine())
    state, collector, held = build(args.endpoints, not args.at_scrape, args.native,
                                   args.protobuf)
    registry = make_registry(collector)
    gc.freeze()  # as the daemon runs: its state frozen, garbage collected on a clock
    gc.disable()

    def page() -> bytes:
        chunks, _ = render_chunks(registry, ACCEPT)
        return b"".join(chunks)

    body = page()
    series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
    rounds = [results(args.endpoints, 10 + run) for run in range(args.runs)]

    def one_round(run: int) -> None:  # every check has a new result before each scrape
        for result in rounds[run]:
            state.update(result)
        gc.collect(0)  # the daemon's clocked young collection, between results and scrape
    write = timed(page, args.runs, one_round)

    def isal_gzip() -> bytes:
        c = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
        return c.compress(body) + c.flush()

    def zlib_gzip() -> bytes:
        c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(body) + c.flush()

    isal_s, zlib_s = timed(isal_gzip, args.runs), timed(zlib_gzip, args.runs)
    check = next(iter(state.snapshot().checks.items()))
    per_result = timed(lambda: [collector.checks.lines_of(*check) for _ in range(1000)],
                       args.runs)
    one = rounds[0][0]
    updates = timed(lambda: [state.update(one) for _ in range(1000)], args.runs)
    proto_rows: list[str] = []
    if args.protobuf:
        def proto_page() -> bytes:
            chunks, content_type = render_chunks(registry, PROTOBUF_ACCEPT, True)
            assert content_type == protobuf.CONTENT_TYPE
            return b"".join(chunks)
        proto_rounds = [results(args.endpoints, 20 + run) for run in range(args.runs)]

        def proto_round(run: int) -> None:
            for result in proto_rounds[run]:
                state.update(result)
            gc.collect(0)
        proto_write = timed(proto_page, args.runs, proto_round)
        proto_body = proto_page()
        c = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
        proto_gz = len(c.compress(proto_body) + c.flush())
        proto_rows = [
            f"  protobuf page    median {statistics.median(proto_write) * 1000:7.1f} ms   "
            f"min {min(proto_write) * 1000:7.1f} ms   {len(proto_body) / 1e6:.1f} MB "
            f"(gzip, ISA-L 1: {proto_gz / 1e6:.2f} MB)"]
    mode = "at scrape" if args.at_scrape else "written ahead"
    mode += ", native buckets" if args.native else ""
    mode += ", protobuf series kept too" if args.protobuf else ""
    print(f"endpoints {args.endpoints}, lines {mode}: page {len(body) / 1e6:.1f} MB, "
          f"{series} series; state and lines held {held:.1f} MB (tracemalloc)")
    print(f"  write the page   median {statistics.median(write) * 1000:7.1f} ms   "
          f"min {min(write) * 1000:7.1f} ms")
    print(f"  gzip, ISA-L 1    median {statistics.median(isal_s) * 1000:7.1f} ms   "
          f"-> {len(isal_gzip()) / 1e6:.2f} MB")
    print(f"  gzip, zlib 1     median {statistics.median(zlib_s) * 1000:7.1f} ms   "
          f"-> {len(zlib_gzip()) / 1e6:.2f} MB")
    print(f"  lines_of         median {statistics.median(per_result) * 1000:7.1f} µs "
          "per result (one check's lines, written ahead)")
    print(f"  update           median {statistics.median(updates) * 1000:7.1f} µs "
          "per result (the state, the check's and the endpoint's lines"
          f"{', text and protobuf' if args.protobuf else ''})")
    for row in proto_rows:
        print(row)


if __name__ == "__main__":
    main()

