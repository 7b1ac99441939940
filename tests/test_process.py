"""The daemon's process tuning: garbage collected on a clock, the C heap trimmed on a clock and
its arenas bounded, the switch interval and the collector put back when it stops, the
open-files limit raised toward what the fleet needs."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from probe.process import (
    GC_MIDDLE_EVERY,
    GC_OLD_EVERY,
    GC_YOUNG_EVERY_S,
    SWITCH_INTERVAL_S,
    TRIM_EVERY_S,
    Tuning,
    collect_garbage,
    heap_trimmer,
    raise_open_files_limit,
    run_event_loop,
    trim_heap,
)


def test_garbage_is_collected_on_a_clock() -> None:
    """Young every half second, the middle generation every GC_MIDDLE_EVERY of those, all
    of it every GC_OLD_EVERY of these (Python's own count is off while the daemon runs)."""
    slept: list[float] = []
    collected: list[int] = []
    rounds = GC_MIDDLE_EVERY * GC_OLD_EVERY

    async def sleep(seconds: float) -> None:
        if len(slept) == rounds:
            raise asyncio.CancelledError
        slept.append(seconds)

    def collect(generation: int) -> int:
        collected.append(generation)
        return 0

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(collect_garbage(sleep, collect))
    assert set(slept) == {GC_YOUNG_EVERY_S} and len(collected) == rounds
    assert [i + 1 for i, g in enumerate(collected) if g == 1] == [
        GC_MIDDLE_EVERY * k for k in range(1, GC_OLD_EVERY)]
    assert [i + 1 for i, g in enumerate(collected) if g == 2] == [rounds]
    assert collected.count(0) == rounds - GC_OLD_EVERY


def test_the_heap_is_trimmed_on_a_clock_off_the_loops_thread() -> None:
    slept: list[float] = []
    trimmed: list[bool] = []

    async def sleep(seconds: float) -> None:
        if len(slept) == 3:
            raise asyncio.CancelledError
        slept.append(seconds)

    def trim() -> int:
        trimmed.append(threading.current_thread() is threading.main_thread())
        return 1

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(trim_heap(trim, sleep))
    assert slept == [TRIM_EVERY_S] * 3 and trimmed == [False] * 3
    asyncio.run(trim_heap(None, sleep))  # no trimmer (not glibc): returns at once
    assert len(slept) == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_glibc_gives_free_heap_pages_back() -> None:
    """The real call: a heap with a run of freed blocks between ones still in use (which
    free() alone keeps resident), trimmed, holds that much less."""
    trim = heap_trimmer()
    assert trim is not None, "glibc has malloc_trim"
    trim()
    blocks = [bytes(2000) for _ in range(20_000)]  # 40 MB of 2 kB blocks: malloc's heap
    del blocks[1000:19_000]  # 36 MB freed, between blocks still in use
    before = resident_kb()
    trim()
    assert before - resident_kb() > 20_000, "the freed run was given back"
    del blocks


ARENAS_SEEN = """
import ctypes, sys, threading
from probe.process import limit_heap_arenas
if sys.argv[1] == "limit":
    assert limit_heap_arenas(1)
def churn():
    kept = [bytes(3000) for _ in range(2000)]
    for _ in range(200):
        kept = [bytes(3000) for _ in range(2000)]
threads = [threading.Thread(target=churn) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_threads_share_the_arenas_allowed(tmp_path: Path) -> None:
    """The real call, in a fresh process: six threads allocating at once get arenas of
    their own, unless the daemon allowed fewer (``malloc_info`` lists each one's heap)."""
    def heaps(how: str) -> int:
        info = tmp_path / f"{how}.xml"
        subprocess.run([sys.executable, "-c", ARENAS_SEEN, how, str(info)], check=True,
                       timeout=120)
        return info.read_text().count("<heap nr=")

    assert heaps("limit") == 1
    assert heaps("default") > 1


def resident_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def test_tuning_is_put_back_as_it_was_found() -> None:
    before = sys.getswitchinterval()
    assert gc.isenabled() and before != SWITCH_INTERVAL_S
    tuning = Tuning()
    try:
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S and gc.isenabled()
        tuning.settle()
        assert not gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        tuning.restore()
    assert sys.getswitchinterval() == before and gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_open_files_limit_in_force_is_at_least_what_was_there() -> None:
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        assert raise_open_files_limit(1) == soft, "enough already: left alone"
        if soft == resource.RLIM_INFINITY:
            pytest.skip("no open-files limit to raise")
        assert raise_open_files_limit(soft + 1) == hard, "raised to the hard limit"
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_limit_below_the_plan_is_logged_with_what_makes_it_up(
        caplog: pytest.LogCaptureFixture) -> None:
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no open-files limit")
    try:
        with caplog.at_level(logging.WARNING, logger="probe.process"):
            assert raise_open_files_limit(hard + 1, "20 kept-alive connections") == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert f"open-files limit {hard} is below the {hard + 1} this plan may hold open " \
        "(20 kept-alive connections): raise LimitNOFILE=" in caplog.text


def test_the_event_loop_runs_the_coroutine_to_its_result() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_event_loop(answer()) == 42
