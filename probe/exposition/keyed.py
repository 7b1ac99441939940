"""A feature's gauges and counters by key (an endpoint, an endpoint's prompt), written when
their values change and joined by a scrape.

The vLLM engine's load and the prompts' pass and spent tokens were formatted by every
scrape: at 10,000 default pods about 90,000 series, two thirds of the CPU a scrape takes in
the event loop (py-spy), where it is time-shared with probing (``probe.exposition.text``,
``_in_loop``) and so stretched fourfold. Here a key's lines are written when its values are
put (a few microseconds, on the result path, O(1) in fleet size), and a scrape reads them in
key order, as the families' ``add_metric`` rows were sorted: the page is byte for byte the
same.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, cast

from probe.exposition.series_cache import Columns, KeptLines
from probe.exposition.text import Family, Lines, go_number, label_text

Key = tuple[str, ...]  # the series' label values, in the families' label order


class KeyedLines:
    """Series of ``families`` (gauges or counters with the same labels), one per key in each
    family that has a value for it (None: no series in that family).

    Only the lines are kept: a value is read back from its line (its text is Go's form of
    the float, which reads back exactly), for samples, the protobuf page and ``get``. A
    vLLM engine's nine values as a tuple of floats held ~440 bytes a pod beside the lines."""

    def __init__(self, families: Sequence[Family]) -> None:
        names = {family.labelnames for family in families}
        if len(names) != 1 or any(f.type == "histogram" for f in families):
            raise ValueError("keyed lines are gauges or counters with the same labels")
        self._labels = families[0].labelnames
        self._samples = tuple(family.samples_name() for family in families)
        self._lines: KeptLines[Key] = KeptLines()

    def put(self, key: Key, values: Sequence[Any]) -> None:
        """``key``'s values now, one per family (None: none in that family)."""
        text = label_text(self._labels, key)
        self._lines.put(key, tuple("" if value is None else
                                   f"{sample}{{{text}}} {go_number(value)}\n"
                                   for sample, value in zip(self._samples, values, strict=True)))

    def drop(self, key: Key) -> None:
        self._lines.put(key, None)

    def get(self, key: Key) -> tuple[float | None, ...] | None:
        """``key``'s values as last put, as floats (None: never put, or dropped)."""
        lines = cast("tuple[str, ...] | None", self._lines.get(key))
        return None if lines is None else tuple(map(_value, lines))

    def keys(self) -> list[Key]:
        return self._lines.names()

    def fill(self, families: Sequence[Family]) -> None:
        """Hand each family (this scrape's, in the order given at start) its lines: one
        read of every key's lines, in key order, shared by the families; its rows (for
        samples and protobuf) are read from the lines when asked for."""
        columns = Columns(self._lines.columns)
        for i, family in enumerate(families):
            family.add_lines(partial(columns.column, i), Lines(partial(self._rows, i)))

    def _rows(self, i: int) -> list[tuple[Key, float | None]]:
        return [(key, _value(cast(str, lines[i]))) for key, lines in self._lines.items()
                if lines[i]]


def _value(line: str) -> float | None:
    """The value a line holds (None: "", no series)."""
    return float(line[line.rindex(" ") + 1:-1]) if line else None
