"""Each check's and each endpoint's lines on /metrics, written when the state changes them.

At 10,000 endpoints a scrape that formats every series takes about a third of a second of
CPU, on the core that probes. ``SeriesCache`` watches ``FleetState`` (``FleetState.watch``):
the state tells it which check, endpoint view or endpoint's kinds of check has just
changed, with the new domain value, and it writes that one's lines then (a check's by
``check_series.CheckSeries.lines_of``, an endpoint's by ``probe.metrics.endpoint_lines``
and ``kind_lines``), so the work per result is one check's and one endpoint's lines,
whatever the fleet's size, and a scrape only joins what is kept. An endpoint's kinds of
check are kept one by one (a result changes one kind's view; the others are the same
objects, so their lines are not written again), and a kind's new view is kept as it is,
its lines written when they are read or once ``KeptLines.WAITING`` wait: an endpoint's
checks answer together and each changes its kind's counters, so the lines are written
once for them (a default pod's four API checks: a quarter of the writing).

The state tells it of every check and view it holds (those it had when watched, those it
declares later, each change, each removal; under its lock, in the thread that changes it),
so what is kept is never behind the state and holds nothing the state has dropped. The
lines are kept in name order (re-sorted by the first scrape after a new name), so a scrape
reads them as one list, without a lookup per check. The state knows nothing of the text:
this is the exposition's own cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Generic, TypeVar

from probe.state import CheckState, EndpointView, KindView

Key = tuple[str, str]  # (endpoint, check)
K = TypeVar("K", bound=Any)
# one item's lines, one text per family ("" where it has none); or, in the cache of the
# protobuf page, its ``metric`` fields per family (b"" where it has none)
Text = tuple[str, ...] | tuple[bytes, ...]
Read = Callable[[], Sequence[tuple[Any, ...]]]  # every item's texts (or fields), in order


class KeptLines(Generic[K]):
    """Lines by name, read in name order. Changed in the state's thread, read by a scrape in
    any thread: each access holds a lock (a scrape may sort what a change just added to).

    With ``write``, an item's new value may be kept to write later (``put_later``): its
    lines are written when they are read, or once ``WAITING`` items wait, so values that
    replace each other meanwhile are written once (an endpoint's kind of check, changed by
    each of its checks' results, which come together)."""

    WAITING = 512  # items whose lines wait to be written (a few ms of writing at most)

    def __init__(self, write: Callable[[K, Any], Text] | None = None) -> None:
        self._lock = threading.Lock()
        self._lines: dict[K, Text] = {}
        self._sorted = True
        self._write = write
        self._waiting: dict[K, Any] = {}  # key -> the value its lines are written from

    def put(self, key: K, lines: Text | None) -> None:
        """``key``'s lines now (None: ``key`` is gone)."""
        with self._lock:
            self._waiting.pop(key, None)
            self._keep(key, lines)

    def _keep(self, key: K, lines: Text | None) -> None:
        if lines is None:
            self._lines.pop(key, None)
            return
        size = len(self._lines)
        self._lines[key] = lines
        if len(self._lines) != size:
            self._sorted = False

    def put_later(self, key: K, value: Any) -> None:
        """``key``'s value now, its lines written from it by ``write`` before they are
        read (a later value replaces it before then)."""
        assert self._write is not None, "lines written later need a writer"
        with self._lock:
            self._waiting[key] = value
            if len(self._waiting) >= self.WAITING:
                self._write_waiting()

    def _write_waiting(self) -> None:
        if self._waiting:
            assert self._write is not None
            waiting, self._waiting = self._waiting, {}
            for key, value in waiting.items():
                self._keep(key, self._write(key, value))

    def get(self, key: K) -> Text | None:
        with self._lock:
            self._write_waiting()
            return self._lines.get(key)

    def written(self, key: K) -> Text | None:
        """``key``'s lines as last put, read without the lock: only in the thread that puts
        (what a scrape's sort copies holds every put before it, so either dict has them)."""
        return self._lines.get(key)

    def in_order(self) -> list[Text]:
        """Every item's lines, in name order."""
        with self._lock:
            self._sort()
            return list(self._lines.values())

    def items(self) -> list[tuple[K, Text]]:
        """Every item's name and lines, in name order."""
        with self._lock:
            self._sort()
            return list(self._lines.items())

    def _sort(self) -> None:
        self._write_waiting()
        if not self._sorted:
            self._lines = dict(sorted(self._lines.items(), key=itemgetter(0)))
            self._sorted = True

    def names(self) -> list[K]:
        with self._lock:
            self._write_waiting()
            return list(self._lines)


class SeriesCache:
    """The lines of every check and endpoint the watched state holds (a ``StateWatcher``).
    ``check_lines`` writes a check's lines, one text per check family; ``view_lines`` an
    endpoint's, one per endpoint family; ``kind_lines`` one of an endpoint's kinds of check
    (its SLI counters and latency, changed by each of its results), one per kind family:
    kept by (endpoint, position of the kind), which reads in the order of one text per
    endpoint with its kinds in order."""

    def __init__(self, check_lines: Callable[[Key, CheckState], Text],
                 view_lines: Callable[[str, EndpointView], Text],
                 kind_lines: Callable[[str, KindView], Text],
                 still: Callable[[Text, CheckState], bool] | None = None) -> None:
        """``still(kept, state)``: whether a check's kept lines are still those
        ``check_lines`` writes from ``state`` (then they are not written again)."""
        self._check_lines = check_lines
        self._still = still
        self._view_lines = view_lines
        self.checks: KeptLines[Key] = KeptLines()
        self.views: KeptLines[str] = KeptLines()
        # an endpoint's kinds are changed by each of its results, which come together:
        # written once for them (``kind_lines``: 6 us CPU each)
        self.kinds: KeptLines[tuple[str, int]] = KeptLines(
            lambda key, view: kind_lines(key[0], view))
        self._kinds_told: dict[str, tuple[KindView, ...]] = {}  # the state's own tuples

    def check_changed(self, key: Key, state: CheckState | None) -> None:
        if state is not None and self._still is not None:
            kept = self.checks.written(key)  # (told in the thread that puts)
            if kept is not None and self._still(kept, state):
                return
        self.checks.put(key, None if state is None else self._check_lines(key, state))

    def view_changed(self, name: str, view: EndpointView | None) -> None:
        self.views.put(name, None if view is None else self._view_lines(name, view))

    def kinds_changed(self, name: str, kinds: tuple[KindView, ...] | None) -> None:
        told = self._kinds_told.pop(name, ())
        if kinds is None:
            for i in range(len(told)):
                self.kinds.put((name, i), None)
            return
        self._kinds_told[name] = kinds
        for i, view in enumerate(kinds):
            if i >= len(told) or told[i] is not view:
                self.kinds.put_later((name, i), view)
        for i in range(len(kinds), len(told)):
            self.kinds.put((name, i), None)


class Columns:
    """The lines of one scrape's checks or endpoints, family by family (column ``i`` of each
    one's lines is family ``i``'s): ``read`` once, when the first of the families is written
    (in whatever order), and held for the others."""

    def __init__(self, read: Read) -> None:
        self.read = read
        self.lines: Sequence[tuple[Any, ...]] | None = None

    def column(self, i: int) -> Iterable[Any]:
        if self.lines is None:
            self.lines = self.read()
        return map(itemgetter(i), self.lines)
