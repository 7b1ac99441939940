"""An independent reader of the protobuf page (written for the tests, from the wire-format
specification and prometheus/client_model's metrics.proto, sharing no code with
``probe.exposition.protobuf``): delimited MetricFamily messages back into samples."""

from __future__ import annotations

import struct
from typing import Any

Fields = dict[int, list[Any]]  # field number -> values (ints, doubles' bytes, submessages)
COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM = 0, 1, 2, 3, 4


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> Fields:
    """A message's fields: varints as ints, 64-bit as 8 bytes, length-delimited as bytes."""
    out: Fields = {}
    at = 0
    while at < len(data):
        key, at = read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = read_varint(data, at)
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 2:
            size, at = read_varint(data, at)
            value, at = data[at:at + size], at + size
        else:
            raise ValueError(f"wire type {wire} at {at}")
        out.setdefault(number, []).append(value)
    assert at == len(data), "a field ran past the message's end"
    return out


def double(raw: bytes) -> float:
    return float(struct.unpack("<d", raw)[0])


def signed(n: int) -> int:
    """A zigzag-encoded sint32/sint64."""
    return (n >> 1) ^ -(n & 1)


def families(page: bytes) -> list[dict[str, Any]]:
    """Every delimited MetricFamily: name, help, type and its metrics (labels, and the
    fields of its value message by kind)."""
    out = []
    at = 0
    while at < len(page):
        size, at = read_varint(page, at)
        f = fields(page[at:at + size])
        at += size
        metrics = []
        for raw in f.get(4, []):
            m = fields(raw)
            labels = {}
            for pair in m.get(1, []):
                p = fields(pair)
                labels[p[1][0].decode()] = p.get(2, [b""])[0].decode()
            metrics.append({"labels": labels, "gauge": m.get(2), "counter": m.get(3),
                            "summary": m.get(4), "untyped": m.get(5), "histogram": m.get(7)})
        out.append({"name": f[1][0].decode(), "help": f.get(2, [b""])[0].decode(),
                    "type": f.get(3, [0])[0], "metrics": metrics})
    return out


def native(h: Fields) -> dict[str, Any] | None:
    """A histogram's native buckets: schema, zero threshold and count, and the positive
    buckets' absolute counts by index (spans and deltas undone)."""
    if 5 not in h and 6 not in h:
        return None
    counts: dict[int, int] = {}
    deltas = [signed(d) for d in h.get(13, [])]
    index, count, i = 0, 0, 0
    for n, raw in enumerate(h.get(12, [])):
        span = fields(raw)
        offset, length = signed(span.get(1, [0])[0]), span.get(2, [0])[0]
        index = offset if n == 0 else index + offset
        for _ in range(length):
            count += deltas[i]
            counts[index] = count
            index, i = index + 1, i + 1
    assert i == len(deltas), "as many deltas as the spans' buckets"
    return {"schema": signed(h.get(5, [0])[0]), "zero_threshold": double(h[6][0]),
            "zero_count": h.get(7, [0])[0], "positive": counts}


def samples(page: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """The page's samples as the text format names them: a histogram's buckets (with
    ``+Inf`` from its count), count and sum; a counter's family name already ends in
    ``_total``."""
    out = set()
    for fam in families(page):
        name = fam["name"]
        for m in fam["metrics"]:
            labels = m["labels"]

            def add(sample: str, value: float, extra: dict[str, str] | None = None,
                    labels: dict[str, str] = labels) -> None:
                out.add((sample, tuple(sorted({**labels, **(extra or {})}.items())), value))
            if fam["type"] == HISTOGRAM:
                h = fields(m["histogram"][0])
                count = h.get(1, [0])[0]
                for raw in h.get(3, []):
                    b = fields(raw)
                    add(name + "_bucket", float(b.get(1, [0])[0]),
                        {"le": go_le(double(b[2][0]))})
                add(name + "_bucket", float(count), {"le": "+Inf"})
                add(name + "_count", float(count))
                add(name + "_sum", double(h[2][0]))
            else:
                holder = m["counter"] or m["gauge"] or m["untyped"]
                add(name, double(fields(holder[0])[1][0]))
    return out


def go_le(bound: float) -> str:
    return str(bound)
