"""/metrics as delimited ``io.prometheus.client.MetricFamily`` protobuf messages: what a
Prometheus with ``--enable-feature=native-histograms`` asks for first, and the only format
that carries a native (exponential-bucket) histogram.

A small writer of the wire format of prometheus/client_model's ``metrics.proto`` (proto2:
varints, zigzag ``sint``, little-endian doubles, length-delimited messages), not the
``protobuf`` package and generated code: the messages written are six (``MetricFamily``,
``Metric``, ``LabelPair``, ``Gauge``/``Counter``/``Untyped``, ``Histogram`` with its
``Bucket`` and ``BucketSpan``, ``Summary``), nothing is ever read, and a series is written
from the same rows as its text. Each page is a run of families, each prefixed by its length
as a varint. Families without series are left out (the text writes their HELP and TYPE).

``metric_of(spec, row)`` writes one series as the ``metric`` field of its family, so a
series written ahead (when its check's result arrives, ``series_cache``) is joined by a
scrape like its text; ``family(...)`` wraps the joined series.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.metrics_core import Metric

from probe.state import Exponential, Histogram

CONTENT_TYPE = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                "encoding=delimited")
MEDIA_TYPE = "application/vnd.google.protobuf"
PROTO = "io.prometheus.client.MetricFamily"

# MetricType
COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM = range(6)
TYPES = {"counter": COUNTER, "gauge": GAUGE, "summary": SUMMARY, "untyped": UNTYPED,
         "unknown": UNTYPED, "histogram": HISTOGRAM, "gaugehistogram": GAUGE_HISTOGRAM,
         "info": GAUGE, "stateset": GAUGE}

_double = struct.Struct("<d").pack
_ONE_BYTE = tuple(bytes((i,)) for i in range(0x80))


def varint(n: int) -> bytes:
    """An unsigned varint (a negative int as its two's complement in 64 bits, as int64 is)."""
    if 0 <= n < 0x80:
        return _ONE_BYTE[n]
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n: int) -> int:
    """A ``sint32``/``sint64`` as its varint's value."""
    return n * 2 if n >= 0 else -n * 2 - 1


@functools.cache
def tag(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def length_delimited(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def double_field(field: int, value: float) -> bytes:
    return tag(field, 1) + _double(value)


def varint_field(field: int, value: int) -> bytes:
    return tag(field, 0) + varint(value)


def string_field(field: int, text: str) -> bytes:
    return length_delimited(field, text.encode("utf-8"))


def label_pairs(names: Sequence[str], values: Sequence[str]) -> bytes:
    """``Metric.label`` entries, names in sorted order (as the text writes them)."""
    return b"".join(length_delimited(1, string_field(1, name) + string_field(2, value))
                    for name, value in sorted(zip(names, values, strict=True)))


def spans(positive: dict[int, int]) -> tuple[list[tuple[int, int]], list[int]]:
    """Exponential buckets (index -> count, those with a count) as ``metrics.proto`` has
    them: spans of consecutive indices (each ``(offset from the end of the one before, or
    from 0 for the first; length)``) and each bucket's count as the difference from the one
    before it (the first's from 0)."""
    out: list[tuple[int, int]] = []
    deltas: list[int] = []
    previous_index: int | None = None
    previous_count = 0
    for index in sorted(positive):
        count = positive[index]
        if previous_index is not None and index == previous_index + 1:
            offset, length = out[-1]
            out[-1] = (offset, length + 1)
        else:
            out.append((index if previous_index is None else index - previous_index - 1, 1))
        deltas.append(count - previous_count)
        previous_index, previous_count = index, count
    return out, deltas


@functools.cache
def _upper_bound(le: str) -> bytes:
    """``Bucket.upper_bound`` of a bucket's ``le``."""
    return b"\x11" + _double(float(le))


def histogram_message(buckets: Sequence[tuple[str, float]], total: float,
                      native: Exponential | None = None) -> bytes:
    """A ``Histogram``: ``buckets`` cumulative ``(le, count)`` ending with ``+Inf`` (its
    count is ``sample_count``; the ``+Inf`` bucket itself is left out, as Prometheus's own
    clients do), and the native buckets when kept."""
    count = int(buckets[-1][1]) if buckets else 0
    out = [b"\x08", varint(count), b"\x11", _double(float(total))]  # sample_count, _sum
    for le, cumulative in buckets:
        if le != "+Inf":  # bucket {cumulative_count, upper_bound}
            c = varint(int(cumulative))
            out += (b"\x1a", _ONE_BYTE[10 + len(c)], b"\x08", c, _upper_bound(le))
    if native is not None:
        out.append(_native(native))
    return b"".join(out)


@functools.cache
def _upper_bounds(bounds: tuple[float, ...]) -> tuple[bytes, ...]:
    return tuple(_upper_bound(str(bound)) for bound in bounds)


def histogram_of(h: Histogram) -> bytes:
    """``histogram_message`` of a state's ``Histogram``, read from its counts (no rows)."""
    out: list[bytes] = []
    cumulative = 0
    for upper, n in zip(_upper_bounds(h.bounds), h.counts, strict=False):  # not +Inf's
        cumulative += n
        c = varint(cumulative)
        out += (b"\x1a", _ONE_BYTE[10 + len(c)], b"\x08", c, upper)
    head = b"\x08" + varint(cumulative + h.counts[-1]) + b"\x11" + _double(float(h.total))
    if h.native is None:
        return head + b"".join(out)
    return head + b"".join(out) + _native(h.native)


def _native(native: Exponential) -> bytes:
    out = [b"\x28", varint(zigzag(native.schema)),  # schema
           b"\x31", _double(native.zero_threshold), b"\x38", varint(native.zero_count)]
    positive, deltas = spans(native.positive)
    for offset, length in positive:  # positive_span {offset, length}
        span = b"\x08" + varint(zigzag(offset)) + b"\x10" + varint(length)
        out += (b"\x62", _ONE_BYTE[len(span)], span)
    for delta in deltas:  # positive_delta
        out += (b"\x68", varint(zigzag(delta)))
    return b"".join(out)


# the ``Metric`` field holding a series' value (a message of one double), by type
_VALUE_FIELD = {COUNTER: b"\x1a\x09\x09", UNTYPED: b"\x2a\x09\x09"}


def value_message(typ: str, value: float) -> bytes:
    """The ``Metric`` field holding a gauge's, counter's or untyped series' value."""
    return _VALUE_FIELD.get(TYPES[typ], b"\x12\x09\x09") + _double(float(value))


class Spec:
    """What writing a family's series needs: its type and label names (each label's
    ``LabelPair`` up to its value written once, in the sorted order of the names)."""

    __slots__ = ("typ", "labelnames", "_heads", "_value")

    def __init__(self, typ: str, labelnames: Sequence[str]) -> None:
        self.typ = typ
        self.labelnames = tuple(labelnames)
        self._heads = tuple((i, b"\x0a" + varint(len(name.encode())) + name.encode() +
                             b"\x12") for name, i in sorted(
                                 (name, i) for i, name in enumerate(self.labelnames)))
        self._value = _VALUE_FIELD.get(TYPES[typ], b"\x12\x09\x09")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spec) and (self.typ, self.labelnames) == (other.typ,
                                                                            other.labelnames)

    def __hash__(self) -> int:
        return hash((self.typ, self.labelnames))

    def labels(self, values: Sequence[str]) -> bytes:
        """The ``label`` fields of a series labelled ``values`` (in ``labelnames`` order)."""
        out: list[bytes] = []
        for i, head in self._heads:  # label {name, value}
            value = values[i].encode("utf-8")
            pair = head + varint(len(value)) + value
            out += (b"\x0a", varint(len(pair)), pair)
        return b"".join(out)

    def metric(self, row: Sequence[Any]) -> bytes:
        """One series (``metric_of``)."""
        if self.typ == "histogram":
            h = histogram_message(row[1], row[2], row[3] if len(row) > 3 else None)
            return self.histogram(self.labels(row[0]), h)
        return self.value(self.labels(row[0]), row[1])

    def value(self, labels: bytes, value: float) -> bytes:
        """A gauge's, counter's or untyped series' ``metric`` field, of its ``labels()``."""
        body = labels + self._value + _double(float(value))
        return b"\x22" + varint(len(body)) + body

    @staticmethod
    def histogram(labels: bytes, message: bytes) -> bytes:
        """A histogram series' ``metric`` field, of its ``labels()`` and ``Histogram``."""
        body = labels + b"\x3a" + varint(len(message)) + message
        return b"\x22" + varint(len(body)) + body


def metric_of(spec: Spec, row: Sequence[Any]) -> bytes:
    """One series, as ``Family.add_metric`` takes it (``(labels, value)``, or ``(labels,
    buckets, sum[, native])`` for a histogram), as its family's ``metric`` field."""
    return spec.metric(row)


def metrics_of(spec: Spec, rows: Iterable[Sequence[Any]]) -> bytes:
    metric = spec.metric
    return b"".join([metric(row) for row in rows])


def family(name: str, documentation: str, typ: str, metrics: bytes) -> bytes:
    """A delimited ``MetricFamily`` of the joined ``metric`` fields (b"" when none)."""
    if not metrics:
        return b""
    body = b"".join((string_field(1, name), string_field(2, documentation),
                     varint_field(3, TYPES[typ]), metrics))
    return varint(len(body)) + body


def wanted(accept_header: str | None) -> bool:
    """Whether ``Accept`` asks for delimited MetricFamily messages before any text format
    (Prometheus's own header, with native histograms on, names them first)."""
    best_proto, best_other = 0.0, 0.0
    for part in (accept_header or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(values.get("q", "1"))
        except ValueError:
            q = 0.0
        if (media.lower() == MEDIA_TYPE and values.get("proto") == PROTO
                and values.get("encoding") == "delimited"):
            best_proto = max(best_proto, q)
        else:
            best_other = max(best_other, q)
    return best_proto > 0 and best_proto >= best_other


def _created(seconds: float) -> bytes:
    """A ``google.protobuf.Timestamp``."""
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    return varint_field(1, whole) + (varint_field(2, nanos) if nanos else b"")


def from_samples(metric: Metric) -> Iterator[bytes]:
    """The families of any other collector's ``Metric`` (prometheus_client's), from its
    samples: counters named with ``_total`` (their ``_created`` as ``created_timestamp``),
    histograms and summaries by label set, info and state sets as gauges as the text
    format writes them, unknown as untyped."""
    typ = metric.type
    if typ in ("histogram", "gaugehistogram", "summary"):
        yield family(metric.name, metric.documentation, typ, _grouped(metric))
        return
    names: dict[str, list[bytes]] = {}
    created: dict[tuple[tuple[str, str], ...], float] = {}
    if typ == "counter":
        for s in metric.samples:
            if s.name == metric.name + "_created":
                created[tuple(sorted(s.labels.items()))] = s.value
    for s in metric.samples:
        if typ == "counter" and s.name == metric.name + "_created":
            continue
        labels = label_pairs(list(s.labels), list(s.labels.values()))
        if typ == "counter":
            when = created.get(tuple(sorted(s.labels.items())))
            inner = double_field(1, float(s.value))
            if when is not None:
                inner += length_delimited(3, _created(when))
            body = length_delimited(3, inner)
        else:
            body = value_message("untyped" if typ == "unknown" else "gauge", s.value)
        if s.timestamp is not None:
            body += varint_field(6, int(float(s.timestamp) * 1000))
        names.setdefault(s.name, []).append(length_delimited(4, labels + body))
    for name, metrics in names.items():
        yield family(name, metric.documentation, "untyped" if typ == "unknown" else
                     "counter" if typ == "counter" else "gauge", b"".join(metrics))


def _grouped(metric: Metric) -> bytes:
    """A histogram's or summary's series, one ``Metric`` per label set (without ``le`` or
    ``quantile``), in the order they first appear."""
    groups: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for s in metric.samples:
        inner = {k: v for k, v in s.labels.items() if k not in ("le", "quantile")}
        group = groups.setdefault(tuple(sorted(inner.items())),
                                  {"buckets": [], "quantiles": [], "count": 0.0, "sum": 0.0})
        suffix = s.name[len(metric.name):]
        if suffix == "_bucket":
            group["buckets"].append((s.labels["le"], s.value))
        elif suffix in ("_count", "_gcount"):
            group["count"] = s.value
        elif suffix in ("_sum", "_gsum"):
            group["sum"] = s.value
        elif suffix == "" and "quantile" in s.labels:
            group["quantiles"].append((float(s.labels["quantile"]), s.value))
    out = []
    for key, group in groups.items():
        labels = label_pairs([k for k, _ in key], [v for _, v in key])
        if metric.type == "summary":
            body = b"".join([varint_field(1, int(group["count"])),
                             double_field(2, float(group["sum"]))] +
                            [length_delimited(3, double_field(1, q) + double_field(2, float(v)))
                             for q, v in group["quantiles"]])
        else:
            buckets = group["buckets"] or [("+Inf", group["count"])]
            body = histogram_message(buckets, group["sum"])
        out.append(length_delimited(4, labels + length_delimited(
            4 if metric.type == "summary" else 7, body)))
    return b"".join(out)
