"""Lines kept to write later (an endpoint's kinds of check): written once for the values
that replaced each other meanwhile, always before they are read, never for a key that is
gone."""

from __future__ import annotations

from probe.exposition.series_cache import KeptLines


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
    assert lines.in_order() == [("a=7\n",), ("b=3\n",)]
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
    assert lines.in_order() == [("b now\n",)]
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
