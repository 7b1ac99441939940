"""Microbenchmark: CPU per stored result, in the event loop (``ResultStore.record``) and in
the writer thread (the rows built, secrets scrubbed, the batch inserted and committed).

Results of the default pod's shapes (``models``, ``context``, ``health``, ``vllm_metrics``
every round, a governed prompt every few; the texts and details are those of a short real
run against ``bench/scale.py``'s nginx) for ``--pods`` pods in turn are recorded at
``--rate`` results a second (the default: 5,000 pods every 15 s) into a real file in /tmp
that already holds ``--history`` rows of the same fleet (the indexes' B-trees are large, not
empty: an insert into an index keyed by endpoint touches a page of its own, which an empty
file does not show). The redactor knows two (made-up) secrets, as a
deployment with a RunPod key and an endpoint key does.

The loop records a slice of results every 10 ms and sleeps in between (its caches are as
cold as between two checks of the daemon; at low rates a slice is one result and the
figure is mostly that). The loop's CPU is ``time.thread_time`` around ``record``; the
writer's is its thread's
runtime from /proc/self/task/TID/schedstat, from before the first result until every result
is on disk. Best of ``--repeat`` runs, each on a fresh copy of the history file.

    python bench/store.py                       # 5,000 pods, 30,000 results, best of 3
    python bench/store.py --pods 2000 --results 10000 --history 200000
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from probe.outcome import CheckRole, Outcome, ProbeResult  # noqa: E402
from probe.secrets import Redactor  # noqa: E402
from probe.store import INSERT, ResultStore, result_values  # noqa: E402

MODEL = "Qwen/Qwen2.5-7B-Instruct"
ANSWER = "4. On validation failure it fails closed."
SECRETS = {"BENCH_RUNPOD_KEY": "bench-not-a-real-runpod-key-0123456789abcdef",
           "BENCH_POD_KEY": "bench-not-a-real-pod-key-fedcba9876543210"}


def pod(i: int) -> tuple[str, str]:
    return f"pod-{i:05d}", f"http://127.10.{i // 250}.{i % 250 + 1}:52387/p8000"


def round_of(i: int, n: int, at: datetime) -> list[ProbeResult]:
    """Pod ``i``'s results of round ``n`` (as the default pod's checks make them)."""
    name, url = pod(i)
    lat = 0.002 + (i * 7 + n * 13) % 97 / 10_000

    def result(check: str, message: str, details: dict[str, Any],
               role: CheckRole = CheckRole.AVAILABILITY) -> ProbeResult:
        return ProbeResult(name, "pod", check, Outcome.OK, at, lat, 1, url, message, 200,
                           details, role)

    out = [
        result("models", f"serving {MODEL} (max_model_len 32768)",
               {"max_model_len": 32768, "model": MODEL, "served_models": [MODEL]},
               CheckRole.SERVED_MODEL),
        result("context", "max_model_len 32768 fits required_context 8000 + max_tokens 64",
               {"completion_tokens": 64, "max_model_len": 32768, "model": MODEL,
                "required_context": 8000}, CheckRole.ANSWERS),
        result("health", "engine alive", {}),
        result("vllm_metrics", f"0 waiting, {n % 5} running, 0.0 tokens/s, KV cache "
               f"{n % 10}.0%, an answer completed since the last scrape",
               {"answered_since_last_scrape": True, "counter_reset": False, "engines": 1,
                "generation_tokens_per_s": 0.0, "generation_tokens_total": 780178.0 + n * 9,
                "kv_cache_usage": n % 10 / 100, "models": [MODEL],
                "prompt_tokens_total": 3027445.0 + n * 20, "running": float(n % 5),
                "stuck_streak": 0, "waiting": 0.0}),
    ]
    if (i + n) % 3 == 0:  # the two prompts run less often than the interval's checks
        prompt, check = (("arithmetic", 'contains "4"') if n % 2
                         else ("validation-failure", 'icontains "fails closed"'))
        out.append(result(
            f"prompt:{prompt}", f"answer passed 1 expectation(s), TTFT {lat:.3f}s, 9 tokens "
            f"in {lat:.3f}s",
            {"answer": ANSWER, "cross": "bench", "findings": [
                f'{check}: passed, answer "{ANSWER}"'], "finish_reason": "stop",
             "prompt": prompt, "streamed": True, "tokens_per_s": round(9 / lat, 2),
             "total_s": round(lat, 4), "ttft_s": round(lat, 4),
             "usage": {"completion_tokens": 9, "prompt_tokens": 20}}, CheckRole.ANSWERS))
    return out


START = datetime(2026, 12, 1, tzinfo=UTC)


def fleet_results(pods: int) -> Iterator[ProbeResult]:
    """The fleet's results, pods in turn, round after round (15 s apart)."""
    for n in itertools.count():
        at = START + timedelta(seconds=15 * n)
        for i in range(pods):
            yield from round_of(i, n, at + timedelta(milliseconds=i * 15_000 // pods))


def history_file(pods: int, rows: int, cache: Path) -> Path:
    """A database holding ``rows`` results of the fleet (made once, then copied)."""
    path = cache / f"history-{pods}-{rows}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    store = ResultStore(tmp)  # migrated to the current schema
    store.close()
    conn = sqlite3.connect(tmp, isolation_level=None)
    redact = Redactor(SECRETS, SECRETS)
    made, fleet = 0, fleet_results(pods)
    while made < rows:
        batch = list(itertools.islice(fleet, min(rows - made, 100_000)))
        conn.execute("BEGIN")
        conn.executemany(INSERT, [result_values(made + k + 1, r, redact)
                                  for k, r in enumerate(batch)])
        conn.execute("COMMIT")
        made += len(batch)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    tmp.rename(path)
    return path


def thread_cpu_s(native_id: int) -> float:
    """The thread's CPU time so far (schedstat: nanoseconds on the CPU)."""
    text = Path(f"/proc/self/task/{native_id}/schedstat").read_text()
    return int(text.split()[0]) / 1e9


def one_run(history: Path, results: list[ProbeResult], rate: float,
            work: Path) -> dict[str, float]:
    db = work / "probe.db"
    for suffix in ("", "-wal", "-shm"):
        (work / f"probe.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(history, db)
    store = ResultStore(db, redact=Redactor(SECRETS, SECRETS))
    time.sleep(0.2)  # the writer thread has opened its connection
    writer = store._thread.native_id
    assert writer is not None
    writer0 = thread_cpu_s(writer)
    loop_cpu, step = 0.0, max(1, int(rate / 100))  # a slice every 10 ms
    t0 = time.monotonic()
    for k in range(0, len(results), step):
        c0 = time.thread_time()
        for r in results[k:k + step]:
            store.record(r)
        loop_cpu += time.thread_time() - c0
        time.sleep(max(0.0, t0 + (k + step) / rate - time.monotonic()))
    while store.pending:
        time.sleep(0.05)
    writer_cpu = thread_cpu_s(writer) - writer0
    wal = (work / "probe.db-wal").stat().st_size if (work / "probe.db-wal").exists() else 0
    store.close()
    written = sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    n = len(results)
    return {"loop_us": 1e6 * loop_cpu / n, "writer_us": 1e6 * writer_cpu / n,
            "total_us": 1e6 * (loop_cpu + writer_cpu) / n, "wal_mb": wal / 1e6,
            "written": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--results", type=int, default=30_000)
    parser.add_argument("--history", type=int, default=1_000_000,
                        help="rows already in the file")
    parser.add_argument("--rate", type=float, default=None,
                        help="results a second (default: the default pod's, 4.1 a pod every 15 s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) /
                        "runpod-probe-bench-store")
    args = parser.parse_args()
    rate = args.rate or args.pods * 4.1 / 15  # as bench/scale.py schedules the default pod
    args.cache.mkdir(parents=True, exist_ok=True)
    history = history_file(args.pods, args.history, args.cache)
    results = list(itertools.islice(fleet_results(args.pods), args.history,
                                    args.history + args.results))
    print(f"{args.results} results of {args.pods} pods at {rate:.0f}/s into a file of "
          f"{args.history} rows ({history.stat().st_size / 1e6:.0f} MB); "
          f"thread {threading.get_native_id()}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="runpod-probe-bench-store-") as tmp:
        for _ in range(args.repeat):
            r = one_run(history, results, rate, Path(tmp))
            assert r["written"] == args.history + args.results, r
            runs.append(r)
            print(f"  loop {r['loop_us']:6.1f} us  writer {r['writer_us']:6.1f} us  "
                  f"total {r['total_us']:6.1f} us per result  (WAL {r['wal_mb']:.1f} MB)",
                  flush=True)
    best = min(runs, key=lambda r: r["total_us"])
    print(f"best: loop {best['loop_us']:.1f} us + writer {best['writer_us']:.1f} us = "
          f"{best['total_us']:.1f} us per result")


if __name__ == "__main__":
    main()
