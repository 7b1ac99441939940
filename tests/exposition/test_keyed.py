"""Series written when their values change (``KeyedLines``) make the page the same families
filled row by row at the scrape would: byte for byte, in key order whatever order the
values came in, without the keys dropped or the values a family has none of."""

from __future__ import annotations

import pytest

from probe.exposition.keyed import KeyedLines
from probe.exposition.text import Family, _Metrics, render

ACCEPT = ["text/plain; version=0.0.4", "application/openmetrics-text"]


def families() -> list[Family]:
    return [Family("x_load", "Load.", "gauge", labels=["endpoint", "prompt"]),
            Family("x_spent", "Spent.", "counter", labels=["endpoint", "prompt"])]


VALUES = {("b", "one"): (0.5, 3), ("a", 'we"ird\\na\nme'): (None, 12), ("c", "two"): (2e6, None),
          ("a", "one"): (1, 1_500_000)}


@pytest.mark.parametrize("accept", ACCEPT)
def test_the_page_is_what_rows_added_at_the_scrape_make(accept: str) -> None:
    keyed = KeyedLines(families())
    for key in [("c", "two"), ("gone", "x"), ("a", "one"), ("b", "one"),
                ('a', 'we"ird\\na\nme')]:
        keyed.put(key, VALUES.get(key, (7, 7)))
    keyed.put(("b", "one"), (9.25, 4))  # a later value replaces the first
    keyed.drop(("gone", "x"))
    assert keyed.get(("gone", "x")) is None and keyed.get(("b", "one")) == (9.25, 4)
    written = families()
    keyed.fill(written)

    expected = families()
    values = {**VALUES, ("b", "one"): (9.25, 4)}
    for key, row in sorted(values.items()):
        for family, value in zip(expected, row, strict=True):
            if value is not None:
                family.add_metric(list(key), value)

    page = render(_Metrics(written), accept)[0]
    assert page == render(_Metrics(expected), accept)[0]
    assert b'x_load{endpoint="b",prompt="one"} 9.25' in page
    assert b"gone" not in page
    # samples (and so the protobuf page) are read from the values, in the same order
    assert [list(f.samples) for f in written] == [list(f.samples) for f in expected]


def test_families_with_different_labels_or_histograms_are_refused() -> None:
    with pytest.raises(ValueError, match="same labels"):
        KeyedLines([Family("a", "A.", "gauge", labels=["endpoint"]),
                    Family("b", "B.", "gauge", labels=["endpoint", "prompt"])])
    with pytest.raises(ValueError, match="same labels"):
        KeyedLines([Family("h", "H.", "histogram", labels=["endpoint"])])


@pytest.mark.parametrize("value", [0, 1, 0.1, -2.5, 1e-9, 999_999.5, 1_500_000, 1234567.875,
                                   2**53, 1.7976931348623157e308, float("inf"), float("-inf"),
                                   5e-324])
def test_a_value_reads_back_exactly_from_its_line(value: float) -> None:
    """Only the lines are kept: ``get`` and the rows (samples, protobuf) read a value back
    from its text, which must be the value itself."""
    keyed = KeyedLines(families())
    keyed.put(("a", "one"), (value, None))
    assert keyed.get(("a", "one")) == (float(value), None)
    assert [list(f.samples) for f in filled(keyed)][0][0].value == float(value)


def test_nan_reads_back_as_nan() -> None:
    keyed = KeyedLines(families())
    keyed.put(("a", "one"), (float("nan"), 1))
    got = keyed.get(("a", "one"))
    assert got is not None and got[0] != got[0] and got[1] == 1.0


def filled(keyed: KeyedLines) -> list[Family]:
    out = families()
    keyed.fill(out)
    return out
