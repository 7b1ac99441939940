"""Lines kept by name, family by family: read in name order as each family's column, laid out
again only when names come or go, never moving under a reader. Lines kept to write later
(an endpoint's kinds of check): written once for the values that replaced each other
meanwhile, always before they are read, never for a key that is gone."""

from __future__ import annotations

import pytest

from probe.exposition.series_cache import Columns, KeptLines, by_column


def texts(lines: KeptLines[str]) -> list[tuple[str, ...]]:
    """Every item's lines, in name order."""
    return [text for _, text in lines.items()]


def kept() -> tuple[KeptLines[str], list[tuple[str, int]]]:
    written: list[tuple[str, int]] = []

    def write(key: str, value: int) -> tuple[str, ...]:
        written.append((key, value))
        return (f"{key}={value}\n",)

    return KeptLines(write), written


def test_values_replaced_before_a_read_are_written_once_and_before_it() -> None:
    lines, written = kept()
    for value in range(4):
        lines.put_later("b", value)
    lines.put_later("a", 7)
    assert written == []
    assert texts(lines) == [("a=7\n",), ("b=3\n",)]
    assert written == [("b", 3), ("a", 7)]
    lines.put_later("a", 8)
    assert lines.get("a") == ("a=8\n",)
    lines.put_later("c", 1)
    assert lines.names() == ["a", "b", "c"]
    assert written == [("b", 3), ("a", 7), ("a", 8), ("c", 1)]


def test_a_key_gone_or_put_now_is_not_written_from_an_older_value() -> None:
    lines, written = kept()
    lines.put_later("a", 1)
    lines.put("a", None)
    lines.put_later("b", 1)
    lines.put("b", ("b now\n",))
    assert texts(lines) == [("b now\n",)]
    assert written == []


def test_lines_are_written_once_enough_wait_without_a_read() -> None:
    lines, written = kept()
    for i in range(KeptLines.WAITING - 1):
        lines.put_later(f"k{i:04d}", i)
    assert written == []
    lines.put_later("last", 0)
    assert len(written) == KeptLines.WAITING
    lines.put_later("k0000", 5)
    assert len(written) == KeptLines.WAITING
    assert lines.get("k0000") == ("k0000=5\n",)


def test_each_familys_lines_are_a_column_in_name_order() -> None:
    lines: KeptLines[str] = KeptLines()
    assert lines.columns() == []
    assert Columns(lines.columns).column(1) == ()  # nothing kept: every family empty
    lines.put("b", ("b up\n", ""))
    lines.put("a", ("a up\n", "a down\n"))
    assert lines.columns() == [["a up\n", "b up\n"], ["a down\n", ""]]
    assert lines.items() == [("a", ("a up\n", "a down\n")), ("b", ("b up\n", ""))]
    assert texts(lines) == [("a up\n", "a down\n"), ("b up\n", "")]
    assert lines.get("b") == ("b up\n", "") and lines.written("a") == ("a up\n", "a down\n")
    assert by_column(texts(lines)) == [("a up\n", "b up\n"), ("a down\n", "")]


def test_a_reader_holding_the_columns_sees_changes_in_place_and_no_row_move() -> None:
    lines: KeptLines[str] = KeptLines()
    for name in ("a", "c"):
        lines.put(name, (f"{name}=1\n",))
    held = lines.columns()
    lines.put("a", ("a=2\n",))  # a change: in place, seen by the reader
    lines.put("b", ("b=1\n",))  # a new name: waits for the next lay-out
    lines.put("c", None)  # gone: its text emptied where the reader reads it
    assert held == [["a=2\n", ""]]
    assert lines.get("b") == ("b=1\n",) and lines.get("c") is None
    assert lines.columns() == [["a=2\n", "b=1\n"]]  # laid out anew, in name order
    assert held == [["a=2\n", ""]]  # the held lists did not move or grow
    lines.put("c", ("c=3\n",))
    lines.put("b", ("b=2\n",))
    assert lines.names() == ["a", "b", "c"]
    assert lines.columns() == [["a=2\n", "b=2\n", "c=3\n"]]


def test_a_name_put_again_after_it_went_is_read_once() -> None:
    lines: KeptLines[str] = KeptLines()
    lines.put("a", ("a=1\n",))
    lines.columns()
    lines.put("a", None)
    lines.put("a", ("a=2\n",))
    assert lines.columns() == [["a=2\n"]]
    assert lines.items() == [("a", ("a=2\n",))]


def test_every_item_has_one_text_per_family() -> None:
    lines: KeptLines[str] = KeptLines()
    lines.put("a", ("x\n", "y\n"))
    lines.columns()
    with pytest.raises(ValueError, match="1 texts for 2 families"):
        lines.put("a", ("x\n",))
    lines.put("b", ("z\n",))
    with pytest.raises(ValueError, match="one text per family"):
        lines.columns()
