"""Traces the daemon's memory for ``bench/memtrace.py``: put this folder on PYTHONPATH and
set ``MEMTRACE_OUT=PREFIX`` (and ``MEMTRACE_AFTER_S``, 75 by default). In a
``python -m probe run`` process only, tracemalloc starts at interpreter start; after
``MEMTRACE_AFTER_S`` seconds a thread writes ``PREFIX.snapshot`` (tracemalloc, one frame),
``PREFIX.garbage`` (what of it was cyclic garbage, waiting for the daemon's collection on a
clock: bytes, and objects by type) and ``PREFIX.types`` (``sys.getsizeof`` of every object
the collector tracks, by type, after a collection)."""

import os
import sys

if os.environ.get("MEMTRACE_OUT") and sys.orig_argv[1:3] == ["-m", "probe"] \
        and "run" in sys.orig_argv:
    import gc
    import json
    import threading
    import tracemalloc
    from collections import Counter

    tracemalloc.start(1)
    _prefix = os.environ["MEMTRACE_OUT"]

    def _dump() -> None:
        snapshot = tracemalloc.take_snapshot()
        snapshot.dump(_prefix + ".snapshot")
        del snapshot  # its traces are tuples: not the daemon's
        held = tracemalloc.get_traced_memory()[0]
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kinds = Counter(type(thing).__module__ + "." + type(thing).__qualname__
                        for thing in gc.garbage)
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()
        with open(_prefix + ".garbage", "w") as out:
            json.dump({"bytes": held - tracemalloc.get_traced_memory()[0],
                       "objects": dict(kinds.most_common(40))}, out)
        sizes: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        for thing in gc.get_objects():
            name = type(thing).__module__ + "." + type(thing).__qualname__
            sizes[name] += sys.getsizeof(thing)
            counts[name] += 1
        with open(_prefix + ".types", "w") as out:
            json.dump({name: [sizes[name], counts[name]] for name in sizes}, out)

    _timer = threading.Timer(float(os.environ.get("MEMTRACE_AFTER_S", "75")), _dump)
    _timer.daemon = True
    _timer.start()
