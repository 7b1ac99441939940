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
lines are kept in name order, family by family (laid out again by the first read after a
new name), so a scrape joins each family's lines from one list, without a lookup per check.
The state knows nothing of the text: this is the exposition's own cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from probe.state import CheckState, EndpointView, KindView

Key = tuple[str, str]  # (endpoint, check)
K = TypeVar("K", bound=Any)
# one item's lines, one text per family ("" where it has none); or, in the cache of the
# protobuf page, its ``metric`` fields per family (b"" where it has none)
Text = tuple[str, ...] | tuple[bytes, ...]
# each family's texts (or fields) of every item, in order (``KeptLines.columns``, ``by_column``)
Read = Callable[[], Sequence[Sequence[Any]]]


class KeptLines(Generic[K]):
    """Lines by name, read in name order, kept as columns: family ``i``'s texts of every item
    in one list (``columns``), so a scrape joins a family's lines straight from its list.
    Changed in the state's thread, read by a scrape in any thread: each access holds a lock
    (a scrape may lay out what a change just added to).

    (Kept as one tuple per item, a scrape read family ``i`` by taking item after item's
    ``i``-th text: at 10,000 default pods, 370,000 tuples touched a scrape, scattered over
    the heap, and py-spy put most of the scrape's CPU in the event loop there.)

    An item new since the columns were laid out waits beside them until the next read lays
    them out again, in name order; an item gone leaves empty texts in its row until then.

    With ``write``, an item's new value may be kept to write later (``put_later``): its
    lines are written when they are read, or once ``WAITING`` items wait, so values that
    replace each other meanwhile are written once (an endpoint's kind of check, changed by
    each of its checks' results, which come together)."""

    WAITING = 512  # items whose lines wait to be written (a few ms of writing at most)

    def __init__(self, write: Callable[[K, Any], Text] | None = None) -> None:
        self._lock = threading.Lock()
        self._row: dict[K, int] = {}  # item -> its row in the columns, in name order
        self._columns: list[list[Any]] = []  # a new list when laid out, never resized
        self._new: dict[K, Text] = {}  # items put since the columns were laid out
        self._gone = 0  # rows of items dropped since then (their texts emptied)
        self._write = write
        self._waiting: dict[K, Any] = {}  # key -> the value its lines are written from

    def put(self, key: K, lines: Text | None) -> None:
        """``key``'s lines now (None: ``key`` is gone)."""
        with self._lock:
            self._waiting.pop(key, None)
            self._keep(key, lines)

    def _keep(self, key: K, lines: Text | None) -> None:
        row = self._row.get(key)
        if row is None:
            if lines is None:
                self._new.pop(key, None)
            else:
                self._new[key] = lines
            return
        columns = self._columns
        if lines is None:
            del self._row[key]
            for column in columns:
                column[row] = column[row][:0]
            self._gone += 1
            return
        if len(lines) != len(columns):
            raise ValueError(f"{len(lines)} texts for {len(columns)} families")
        for column, text in zip(columns, lines):  # noqa: B905 - lengths checked above
            column[row] = text

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

    def _lines(self, key: K) -> Text | None:
        row = self._row.get(key)
        if row is None:
            return self._new.get(key)
        return tuple(column[row] for column in self._columns)

    def get(self, key: K) -> Text | None:
        with self._lock:
            self._write_waiting()
            return self._lines(key)

    def written(self, key: K) -> Text | None:
        """``key``'s lines as last put, read without the lock: only in the thread that puts
        (a lay-out replaces the columns whole, with every put before it)."""
        return self._lines(key)

    def columns(self) -> list[list[Any]]:
        """Each family's texts of every item, in name order (``[]`` with no items). The
        lists are the kept ones, read as they are: a later put changes a text in place, a
        later lay-out makes new lists (so a reader never sees an item twice or a row move)."""
        with self._lock:
            self._lay_out()
            return self._columns

    def items(self) -> list[tuple[K, Text]]:
        """Every item's name and lines, in name order."""
        with self._lock:
            self._lay_out()
            columns = self._columns
            return [(key, tuple(column[row] for column in columns))
                    for key, row in self._row.items()]

    def _lay_out(self) -> None:
        self._write_waiting()
        if not self._new and not self._gone:
            return
        rows, new, columns = self._row, self._new, self._columns
        width = len(columns) if rows else len(next(iter(new.values()), ()))
        if any(len(lines) != width for lines in new.values()):
            raise ValueError("every item needs one text per family")
        order = sorted([*rows, *new])
        at = [rows.get(key) for key in order]  # its row in the columns, or None: a new one
        self._columns = [[column[row] if row is not None else new[key][i]
                          for key, row in zip(order, at)]  # noqa: B905 - one per key
                         for i, column in enumerate(columns if rows else [[]] * width)]
        self._row = {key: row for row, key in enumerate(order)}
        self._new = {}
        self._gone = 0

    def names(self) -> list[K]:
        with self._lock:
            self._lay_out()
            return list(self._row)


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
    """The lines of one scrape's checks or endpoints, family by family (family ``i``'s are
    column ``i``): ``read`` once, when the first of the families is written (in whatever
    order), and held for the others."""

    def __init__(self, read: Read) -> None:
        self.read = read
        self.lines: Sequence[Sequence[Any]] | None = None

    def column(self, i: int) -> Sequence[Any]:
        if self.lines is None:
            self.lines = self.read()
        return self.lines[i] if i < len(self.lines) else ()


def by_column(items: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each item's texts (or fields) turned into each family's column (``[]`` with no
    items), for ``Columns``."""
    return list(zip(*items, strict=True))
