"""Work per result does not grow with the fleet (issue 11).

The daemon is assembled as ``Daemon.run`` assembles it (every feature's start-up hook:
the ledger and its book, the prompt, serverless and vLLM collectors; the SQLite store; the
redactor with a secret to scrub) over 100 and over 10,000 declared pod endpoints. The same
results for the same endpoint then go through ``Prober.publish``, and the work the event
loop does for them is counted: every Python function called (by name), every builtin
called (by name), and every bytecode executed. The counts must be equal: anything on the
result path that touches every endpoint in Python (a loop, a comprehension, a property
read per endpoint) shows up as a difference. A copy or sort done inside one builtin call
(``dict(states)``, ``sorted(names)``) runs no bytecode per item, but allocates per item:
the peak memory the same results allocate must be the same too (within a few KB; a list
of 10,000 references alone is 80 KB). Nothing here is timed.

The writers' own work (building rows, the batch's transaction) is per batch, in their
threads; ``test_writers_are_per_batch`` counts it the same way, for one batch.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from helpers import config_of, endpoint, role_of

from probe.app import PLUGINS
from probe.config.model import StorageSettings
from probe.daemon import Daemon
from probe.ledger.book import LedgerBook
from probe.outcome import Outcome, ProbeResult
from probe.prober import Prober
from probe.store import ResultStore
from probe.verdict import EndpointVerdict
from probe.writer import SingleWriter

SECRET = "sk-scale-secret-0123456789"
SMALL, LARGE = 100, 10_000
WHO = "pod-00042"  # in both fleets


def fleet(n: int, db: Path) -> Any:
    endpoints = [endpoint(name=f"pod-{i:05d}", pod_id=f"p{i}",
                          checks=("models", "health", "vllm_metrics"))
                 for i in range(n)]
    return replace(config_of(*endpoints), storage=StorageSettings(db))


def results(start: datetime) -> list[ProbeResult]:
    """A pod's checks passing, then failing long enough to go down, then recovering: state,
    verdict, ledger entries, vLLM gauges, a secret in a message to scrub."""
    out = []
    plan = [Outcome.OK] * 3 + [Outcome.TIMEOUT] * 4 + [Outcome.OK] * 3
    for i, outcome in enumerate(plan):
        at = start + timedelta(seconds=15 * i)
        ok = outcome is Outcome.OK
        details = {"served_models": ["m"], "model": "m", "max_model_len": 4096} if ok else {}
        out.append(ProbeResult(WHO, "pod", "models", outcome, at, 0.01, 1, "http://p42",
                               f"answer {SECRET}" if not ok else "serving m", 200 if ok else None,
                               details, role=role_of("models")))
        out.append(ProbeResult(WHO, "pod", "health", outcome, at, 0.01, 1, "http://p42", role=role_of("health")))
        out.append(ProbeResult(WHO, "pod", "vllm_metrics", outcome, at, 0.01, 1, "http://p42",
                               details={"waiting": 0, "running": 1, "kv_cache_usage": 0.1,
                                        "nested": {"note": SECRET}} if ok else {}, role=role_of("vllm_metrics")))
    return out


def counted(action: Callable[[], Any]) -> Counter[str]:
    """Python calls, builtin calls (by name) and bytecodes executed by ``action`` in this
    thread."""
    counts: Counter[str] = Counter()

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        if event == "call":
            frame.f_trace_opcodes = True
        elif event == "opcode":
            counts["bytecodes"] += 1
        return trace

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            counts[f"py {frame.f_code.co_qualname}"] += 1
        elif event == "c_call":
            counts[f"c {getattr(arg, '__qualname__', arg)}"] += 1

    gc.disable()  # a collection would run finalizers inside the count
    sys.settrace(trace)
    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
        sys.settrace(None)
        gc.enable()
    return counts


class _NoClient:
    """publish never uses the client."""


async def assembled(n: int, tmp_path: Path) -> tuple[Daemon, Callable[[], None]]:
    """The daemon as ``Daemon.run`` assembles it, without scheduling or listening (and
    without starting a client: ``publish`` never uses it)."""
    config = fleet(n, tmp_path / f"probe-{n}.db")
    env = {"K": SECRET}  # config_of names "K" as RunPod's key: the redactor scrubs it
    daemon = Daemon(config, PLUGINS, env)
    daemon.store = ResultStore(config.storage.path, redact=daemon.redact)
    daemon.prober = Prober(_NoClient(), daemon.state, PLUGINS.resolve,  # type: ignore[arg-type]
                           8, 1024, daemon.store, env, daemon.redactor)
    for hook in PLUGINS.startup:
        started = hook(daemon)
        attachment = await started if inspect.isawaitable(started) else started
        if attachment is not None:
            daemon._attach(attachment)  # wired as Daemon.run wires it
    daemon._announce_plan()

    def close() -> None:
        for attachment in daemon._attachments:
            if attachment.close is not None:
                attachment.close()
        assert daemon.store is not None
        daemon.store.close()
    return daemon, close


def peak_allocated(action: Callable[[], Any]) -> int:
    """The most memory ``action`` had allocated at once (bytes, Python allocators)."""
    gc.disable()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        action()
        _, peak = tracemalloc.get_traced_memory()
        return peak - before
    finally:
        tracemalloc.stop()
        gc.enable()


def result_path_work(n: int, tmp_path: Path) -> tuple[Counter[str], int]:
    async def main() -> tuple[Counter[str], int]:
        daemon, _close = await assembled(n, tmp_path)
        prober = daemon.prober
        assert prober is not None
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for result in results(start - timedelta(hours=2)):  # warm: caches, lazy state
            prober.publish(result)
        batch, again = results(start - timedelta(hours=1)), results(start)
        work = counted(lambda: [prober.publish(r) for r in batch])
        return work, peak_allocated(lambda: [prober.publish(r) for r in again])

    # The writers' threads are not started: what they queue stays queued, and no other
    # thread allocates while the memory is measured (their own work is counted below).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SingleWriter, "start", lambda self: None)
        return asyncio.run(main())


def test_work_per_result_is_independent_of_the_fleet_size(tmp_path: Path) -> None:
    small, small_peak = result_path_work(SMALL, tmp_path)
    large, large_peak = result_path_work(LARGE, tmp_path)
    assert small["bytecodes"] > 1000  # the count saw the result path
    assert any(key.endswith("Ledger.judged") for key in small)
    assert any(key.endswith("EngineMetrics.observe") for key in small)
    differences = {key: (small[key], large[key]) for key in small.keys() | large.keys()
                   if small[key] != large[key]}
    assert differences == {}, (
        f"per-result work differs between {SMALL} and {LARGE} endpoints (count at "
        f"{SMALL}, count at {LARGE}): {differences}")
    assert abs(large_peak - small_peak) < 8 * 1024, (
        f"the same results allocated {small_peak} bytes at most with {SMALL} endpoints and "
        f"{large_peak} with {LARGE}")


def _batch_work(n: int, tmp_path: Path) -> Counter[str]:
    """One writer cycle of each SQLite writer (a batch of one result, one state) with ``n``
    endpoints' rows and states already in the database."""
    db = tmp_path / f"writers-{n}.db"
    store = ResultStore(db)
    book = LedgerBook(db)
    try:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        verdict = EndpointVerdict()
        for i in range(n):
            store.record(ProbeResult(f"pod-{i:05d}", "pod", "models", Outcome.OK, at, 0.01, 1,
                                     "http://p", role=role_of("models")))
            book.submit({f"pod-{i:05d}": verdict.encoded()}, [])
    finally:
        store.close()
        book.close()
    with pytest.MonkeyPatch.context() as patch:  # writers whose threads never start: the
        patch.setattr(SingleWriter, "start", lambda self: None)  # test runs a cycle by hand
        store, book = ResultStore(db), LedgerBook(db)
    store_conn, book_conn = store.connect(), book.connect()
    try:
        store.record(ProbeResult(WHO, "pod", "models", Outcome.OK, at, 0.01, 1, "http://p", role=role_of("models")))
        book.submit({WHO: verdict.encoded()}, [])
        store.accept(list(_queued(store)))
        book.accept(list(_queued(book)))
        return counted(lambda: (store.write(store_conn), book.write(book_conn)))
    finally:
        store_conn.close()
        book_conn.close()


def _queued(writer: Any) -> Iterator[Any]:
    items, _ = writer._inbox.take(block=False)
    yield from items


@pytest.mark.parametrize("n", [LARGE])
def test_writers_are_per_batch(tmp_path: Path, n: int) -> None:
    small = _batch_work(SMALL, tmp_path)
    large = _batch_work(n, tmp_path)
    assert small["py ResultStore.write"] == 1 and small["py LedgerBook.write"] == 1
    differences = {key: (small[key], large[key]) for key in small.keys() | large.keys()
                   if small[key] != large[key]}
    assert differences == {}
