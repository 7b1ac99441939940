"""The process tuned for a long-running daemon: garbage collected on a clock rather than on
Python's count, the C heap's free pages given back on a clock, a short GIL switch interval,
the open-files limit raised for kept-alive connections, and uvloop's event loop when it is
installed. The daemon keeps its lifecycle; how the process it runs in is tuned lives here,
and is undone when it stops."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# The event loop's thread waits at most this long for the GIL held by another thread (a
# SQLite writer): 5 ms by default, a long stall per loop turn.
SWITCH_INTERVAL_S = 0.001
# While the daemon runs, garbage is collected on a clock (``collect_garbage``). Python counts
# a young collection due when the objects made outnumber those freed by its threshold; but a
# result mostly replaces objects of the one before it (its check's result, lines, view),
# which are old, so at 10,000 endpoints the count hardly grows while the young generation
# fills: 10,000 to 240,000 objects at each collection, a 20-150 ms stall of the event loop
# every few seconds (measured; the largest share of the lag p99). Every half second it holds
# a few thousand (about 10 ms). What survives is the fleet's live state, replaced every
# interval: the middle generation is as large (400,000 objects, a 270 ms collection) however
# often it is collected, so it is collected every 10 minutes, and the oldest every 30 (a
# cycle that outlives half a second is freed within 10 minutes).
GC_YOUNG_EVERY_S = 0.5
GC_MIDDLE_EVERY = 1200  # young collections (10 minutes)
GC_OLD_EVERY = 3  # middle collections (30 minutes)
FD_HEADROOM = 256  # files beside the connections: databases, the listener, logs


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop when it is installed (a dependency on Linux and
    macOS): its event loop, sockets and timers are C (libuv), about a quarter less CPU per
    probe with a fresh connection per request; otherwise on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def raise_open_files_limit(wanted: int, counted: str = "") -> int:
    """With keep-alive every pod holds a connection (a file descriptor): raise the soft
    RLIMIT_NOFILE to the hard limit when it is below ``wanted``. Returns the soft limit in
    force; a hard limit below ``wanted`` is logged with what ``counted`` says makes it up
    (the unit's LimitNOFILE= raises it)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, exc)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("open-files limit %d is below the %d this plan may hold open (%s): raise "
                    "LimitNOFILE=, or lower scheduler.max_concurrent, or set "
                    "scheduler.keepalive: false", soft, wanted,
                    counted or "a kept-alive connection per host")
    return int(soft)


async def collect_garbage(sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                          collect: Callable[[int], int] = gc.collect) -> None:
    """Garbage collections on a clock, in the event loop (see GC_YOUNG_EVERY_S): the young
    generation every half second, the middle one every GC_MIDDLE_EVERY of those, all of it
    every GC_OLD_EVERY of these."""
    young = 0
    while True:
        await sleep(GC_YOUNG_EVERY_S)
        young += 1
        if young % (GC_MIDDLE_EVERY * GC_OLD_EVERY) == 0:
            collect(2)
        elif young % GC_MIDDLE_EVERY == 0:
            collect(1)
        else:
            collect(0)


# glibc's malloc keeps what is freed inside its heap, between blocks still in use, resident
# until ``malloc_trim`` gives the free pages back. The fleet's large texts (an endpoint's
# latency histogram lines, ~1 kB each) are replaced every interval, so the main heap of a
# 10,000-pod daemon held 30-45 MB free but resident (mallinfo2). Trimmed every 5 s, off the
# event loop's thread, a trim took 0.3-1.3 ms and the peak RSS fell from 406 to 401 MB (one
# 300 s row each; the pages freed between two trims are resident until the next).
TRIM_EVERY_S = 5.0


# ... and gives every thread that allocates an arena of its own (up to 8 a core), each with
# its own free memory kept resident: the event loop's thread, the server's, the SQLite
# writers, the resolver. They allocate holding the GIL (but for SQLite's own work), so
# contention is rare; two arenas held 6 MB less at 10,000 pods, with the trim (measured).
HEAP_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_heap_arenas(arenas: int = HEAP_ARENAS) -> bool:
    """At most ``arenas`` malloc arenas from here on (glibc's ``mallopt(M_ARENA_MAX)``;
    called before the daemon starts its threads). False where the C library has no
    mallopt (musl, macOS) or refused it."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def heap_trimmer() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


async def trim_heap(trim: Callable[[], object] | None,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                    every_s: float = TRIM_EVERY_S) -> None:
    """``trim`` on a clock, in a worker thread (ctypes lets go of the GIL; the event loop's
    thread goes on). Without a trimmer, nothing to do."""
    if trim is None:
        return
    while True:
        await sleep(every_s)
        await asyncio.to_thread(trim)


class Tuning:
    """The interpreter's settings while the daemon runs, put back by ``restore``: the
    switch interval from ``__init__``; the collector off (``settle``) once the state that
    lives as long as the daemon is built, which is then out of every collection."""

    def __init__(self) -> None:
        self._switch_interval = sys.getswitchinterval()
        self._collecting = gc.isenabled()
        sys.setswitchinterval(SWITCH_INTERVAL_S)

    def settle(self) -> None:
        """The config, the plan and the state live as long as the daemon: out of every
        garbage collection from here on; and collections come on a clock, not on Python's
        count (GC_YOUNG_EVERY_S: with its count a 10,000-endpoint fleet stalled probing for
        20-150 ms every few seconds)."""
        gc.collect()
        gc.freeze()
        gc.disable()  # collected on a clock from here on (collect_garbage)

    def restore(self) -> None:
        gc.unfreeze()  # collected as usual again once stopped
        if self._collecting:
            gc.enable()
        sys.setswitchinterval(self._switch_interval)
