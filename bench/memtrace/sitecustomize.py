"""Traces the daemon's memory for ``bench/memtrace.py``: put this folder on PYTHONPATH and
set ``MEMTRACE_OUT=PREFIX`` (and ``MEMTRACE_AFTER_S``, 75 by default). In a
``python -m probe run`` process only, tracemalloc starts at interpreter start; after
``MEMTRACE_AFTER_S`` seconds a thread writes ``PREFIX.snapshot`` (tracemalloc, one frame)
and ``PREFIX.types`` (``sys.getsizeof`` of every object the collector tracks, by type)."""

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
        gc.collect()
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
