"""/metrics at fleet scale: metric families that write their own exposition lines.

prometheus_client formats every sample on its own (a ``Sample`` with a labels dict, each
label name validated and escaped, per scrape): at 10,000 endpoints that is seconds of CPU
for one scrape. ``Family`` keeps its rows as plain tuples and writes the text directly,
building each distinct label set's text once per scrape; prometheus_client's ``Sample``
objects are built only when something asks for ``samples`` (``get_sample_value``, a
``name[]`` filtered scrape). The output is byte for byte what prometheus_client writes, in
the text format and in OpenMetrics, as negotiated from ``Accept`` by prometheus_client's
own ``choose_encoder``: the HELP and TYPE lines come from its encoder, and every other
collector's families are formatted by it unchanged.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs

from isal import isal_zlib
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from probe.adapters.prometheus_internals import bake_output
from probe.exposition import protobuf

T = TypeVar("T")
BLOCK_ROWS = 500  # series written per piece (about a millisecond of work)
INF = float("inf")
EXACT_INT = 2**53  # below this in size an int is exactly a float: its text is "<int>.0"


def go_number(value: Any) -> str:
    """A sample value as prometheus_client writes it (``floatToGoString``), without its
    work for the values a page is made of: a float below a million is its ``repr``, one
    from a million up to 1e16 (a Unix time) its ``repr`` in Go's exponent form, an int
    below a million (and exactly a float) its digits and ``.0``; infinities, NaN and the
    rest are written by ``floatToGoString`` itself."""
    if type(value) is float:
        if -INF < value < 1e6:
            return repr(value)
        if 1e6 <= value < 1e16:  # the digits before the point (7 to 16) move behind the first
            digits = repr(value)
            dot = digits.find(".")
            mantissa = f"{digits[0]}.{digits[1:dot]}{digits[dot + 1:]}".rstrip("0.")
            return f"{mantissa}e+{dot - 1:02d}"
    elif type(value) is int and -EXACT_INT < value < 1_000_000:
        return f"{value}.0"
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def histogram_lines(name: str, les: Sequence[str]) -> Callable[[str, Sequence[int], Any], str]:
    """``(label text, bucket counts, sum) -> lines`` for a histogram whose bounds are ``les``
    (non-negative, ending with ``+Inf``), labelled by a text that sorts before ``le``: its
    buckets, count and sum exactly as ``Family`` writes them from cumulative counts, in one
    ``str.format`` while the count is below a million (counts written as ints then)."""
    if not les or les[-1] != "+Inf" or float(les[0]) < 0:
        raise ValueError("histogram bounds must be non-negative and end with +Inf")
    last = len(les)
    template = "".join(f'{name}_bucket{{{{{{0}},le="{le}"}}}} {{{i}}}.0\n'
                       for i, le in enumerate(les, start=1))
    template += (f"{name}_count{{{{{{0}}}}}} {{{last}}}.0\n"
                 f"{name}_sum{{{{{{0}}}}}} {{{last + 1}}}\n")
    fmt = template.format

    def lines(text: str, counts: Sequence[int], total: Any) -> str:
        if len(counts) != last:
            raise ValueError(f"{len(counts)} bucket counts for {last} bounds")
        if sum(counts) < 1_000_000:  # (no list of the counts: nothing kept for the GC)
            return fmt(text, *accumulate(counts), go_number(total))
        cumulative = list(accumulate(counts))
        out = [f'{name}_bucket{{{text},le="{le}"}} {go_number(float(count))}\n'
               for le, count in zip(les, cumulative, strict=True)]
        out.append(f"{name}_count{{{text}}} {go_number(float(cumulative[-1]))}\n")
        out.append(f"{name}_sum{{{text}}} {go_number(total)}\n")
        return "".join(out)
    return lines


def escape_value(value: str) -> str:
    """A label value as both formats write it (backslash, newline and double quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class Kept(Generic[T]):
    """Rows read again and again (the plan's ``check_interval_seconds`` lines, read by every
    scrape), made once: the first reading makes them as it goes (a block at a time, between
    the loop's other work, not all before the first line) and keeps them for the next."""

    def __init__(self, make: Iterable[T]) -> None:
        self._make: Iterator[T] | None = iter(make)
        self._kept: list[T] = []

    def __iter__(self) -> Iterator[T]:
        return iter(self._kept) if self._make is None else self._reading()

    def _reading(self) -> Iterator[T]:
        yield from self._kept  # what an earlier reading, left unfinished, made
        assert self._make is not None
        for item in self._make:
            self._kept.append(item)
            yield item
        self._make = None


@dataclass(frozen=True, slots=True)
class Lines:
    """How a family reads series whose lines are written ahead, one text per item (all its
    lines, or ""): ``rows()`` are the same series as ``add_metric`` takes them, for samples
    (and the protobuf page); ``proto()``, when given, the same series' ``metric`` fields
    written ahead too, one per item (``probe.exposition.protobuf.metric_of``)."""

    rows: Callable[[], Iterable[Any]]
    proto: Callable[[], Iterable[bytes]] | None = None


class Family(Metric):
    """A gauge, counter or histogram family with ``add_metric`` like prometheus_client's
    ``GaugeMetricFamily``, ``CounterMetricFamily`` and ``HistogramMetricFamily`` (labels
    only; no timestamps, exemplars or created samples), that renders its own lines."""

    def __init__(self, name: str, documentation: str, typ: str,
                 labels: Sequence[str] = ()) -> None:
        if typ == "counter" and name.endswith("_total"):
            name = name[:-len("_total")]
        super().__init__(name, documentation, typ)
        self.labelnames = tuple(labels)
        added: list[Any] = []
        self._added = added
        # (rows, whether each row ends with its label text), or (lines written, Lines)
        self._sources: list[tuple[Callable[[], Iterable[Any]], bool | Lines]] = [
            (lambda: added, False)]  # not self: a family is freed when read, not by the GC

    # prometheus_client's Metric assigns ``samples`` in __init__; here it is built on demand
    @property
    def samples(self) -> list[Sample]:
        return self._extra + list(self._samples())

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._extra = list(value)

    def add_metric(self, labels: Sequence[str], value: Any, sum_value: Any = None,
                   native: Any = None) -> None:
        """``(labels, value)`` for a gauge or counter, ``(labels, buckets, sum)`` for a
        histogram (buckets: cumulative ``(le, count)`` pairs ending with ``+Inf``; ``native``:
        its exponential buckets, ``probe.state.Exponential``, written to protobuf only)."""
        if self.type == "histogram":
            self._added.append((tuple(labels), value, sum_value) if native is None else
                               (tuple(labels), value, sum_value, native))
        else:
            self._added.append((tuple(labels), value))

    def add_rows(self, rows: Callable[[], Iterable[Any]], texts: bool = False) -> None:
        """Series made when the family is written (or its samples read), not before: rows
        as ``add_metric`` takes them, label values as a tuple. Read once per scrape, so a
        large family is never held whole: ``rows`` must read a snapshot that stays put.
        ``texts``: each row ends with its labels as written (``label_text``; for a histogram
        without ``le``, whose name must sort after every label name), so a label set shared
        by several families is written once per scrape."""
        if texts and self.type == "histogram" and any(n > "le" for n in self.labelnames):
            raise ValueError("label texts of a histogram need every label name before le")
        self._sources.append((rows, texts))

    def add_lines(self, lines: Callable[[], Iterable[str]], written: Lines) -> None:
        """Series written ahead: ``lines()`` read when the family is written, each its text
        (``written.rows()`` read for samples instead)."""
        self._sources.append((lines, written))

    def _rows(self) -> Iterator[Any]:
        size = 3 if self.type == "histogram" else 2
        for source, texts in self._sources:
            if isinstance(texts, Lines):
                yield from texts.rows()
            else:
                yield from (row[:size] for row in source()) if texts else source()

    def header(self) -> Metric:
        """The family without samples: prometheus_client writes its HELP and TYPE lines."""
        return Metric(self.name, self.documentation, self.type)

    def samples_name(self) -> str:
        """The name its gauge or counter samples are written with."""
        return self.name + "_total" if self.type == "counter" else self.name

    def _samples(self) -> Iterator[Sample]:
        names = self.labelnames
        if self.type != "histogram":
            sample = self.samples_name()
            for values, value in self._rows():
                yield Sample(sample, dict(zip(names, values, strict=True)), value)
            return
        for row in self._rows():  # (labels, buckets, sum[, native buckets])
            values, buckets, total = row[:3]
            labels = dict(zip(names, values, strict=True))
            for le, count in buckets:
                yield Sample(self.name + "_bucket", {**labels, "le": le}, count)
            if float(buckets[0][0]) >= 0:
                yield Sample(self.name + "_count", dict(labels), buckets[-1][1])
                yield Sample(self.name + "_sum", dict(labels), total)

    def protobuf(self) -> bytes:
        """The family as one delimited ``MetricFamily`` (b"" without series): series
        written ahead joined, the others written now from their rows."""
        spec = protobuf.Spec(self.type, self.labelnames)
        size = 3 if self.type == "histogram" else 2
        parts: list[bytes] = []
        for source, texts in self._sources:
            if isinstance(texts, Lines):
                parts.append(b"".join(texts.proto()) if texts.proto is not None
                             else protobuf.metrics_of(spec, texts.rows()))
            elif texts:
                parts.append(protobuf.metrics_of(spec, (row[:size] for row in source())))
            else:
                parts.append(protobuf.metrics_of(spec, source()))
        name = self.samples_name() if self.type != "histogram" else self.name
        return protobuf.family(name, self.documentation, self.type, b"".join(parts))

    def blocks(self, cache: LabelCache, rows: int = BLOCK_ROWS) -> Iterator[str]:
        """The sample lines, exactly as prometheus_client writes them (the same in the text
        format and in OpenMetrics for these names), ``rows`` series at a time."""
        for factory, texts in self._sources:
            for block in _blocks(factory(), rows):
                if isinstance(texts, Lines):
                    yield "".join(block)
                else:
                    yield "".join(self._texted(cache, block) if texts else
                                  self._lines(cache, block))

    def _texted(self, cache: LabelCache, block: list[Any]) -> list[str]:
        """Lines of rows that carry their label text."""
        number = go_number
        if self.type != "histogram":
            name = self.samples_name()
            return [f"{name}{{{text}}} {number(value)}\n"
                    for _, value, text in block]
        out: list[str] = []
        bucket, count, total_name = self.name + "_bucket", self.name + "_count", self.name + "_sum"
        for _, buckets, total, text in block:
            head = f"{text}," if text else ""
            out.extend([f'{bucket}{{{head}le="{le}"}} {number(value)}\n'
                        for le, value in buckets])
            if float(buckets[0][0]) >= 0:
                labels = f"{{{text}}}" if text else ""
                out.append(f"{count}{labels} {number(buckets[-1][1])}\n")
                out.append(f"{total_name}{labels} {number(total)}\n")
        return out

    def _lines(self, cache: LabelCache, block: list[Any]) -> list[str]:
        number = cache.number
        if self.type != "histogram":
            name = self.samples_name()
            if not self.labelnames:
                return [f"{name} {number(value)}\n" for _, value in block]
            text = cache.labels(self.labelnames)
            return [f"{name}{{{text(values)}}} {number(value)}\n" for values, value in block]
        out: list[str] = []
        before, after = cache.around_le(self.labelnames)
        plain = cache.labels(self.labelnames)
        bucket, count, total_name = self.name + "_bucket", self.name + "_count", self.name + "_sum"
        for row in block:  # (labels, buckets, sum[, native buckets])
            values, buckets, total = row[0], row[1], row[2]
            head, tail = before(values), after(values)
            out.extend([f'{bucket}{{{head}le="{le}"{tail}}} {number(value)}\n'
                        for le, value in buckets])
            if float(buckets[0][0]) >= 0:
                inner = plain(values)
                labels = f"{{{inner}}}" if inner else ""
                out.append(f"{count}{labels} {number(buckets[-1][1])}\n")
                out.append(f"{total_name}{labels} {number(total)}\n")
        return out


def _blocks(items: Iterable[T], rows: int) -> Iterator[list[T]]:
    """``items`` ``rows`` at a time: a list (a kept column) in slices, else as it comes."""
    if isinstance(items, list):
        for at in range(0, len(items), rows):
            yield items[at:at + rows]
        return
    source = iter(items)
    while block := list(islice(source, rows)):
        yield block


def label_text(names: Sequence[str], values: Sequence[str]) -> str:
    """Labels as both formats write them: ``a="x",b="y"``, names sorted, values escaped."""
    return ",".join(f'{name}="{escape_value(value)}"'
                    for name, value in sorted(zip(names, values, strict=True)))


class LabelCache:
    """Label texts built once per scrape and shared by the families that
    follow each other with the same label names (a check's ``endpoint, check`` in every
    check family); texts of label names no recent family used are dropped, so a scrape
    never holds every series' labels at once."""

    KEPT = 3  # label-name sets whose texts are kept (a histogram uses two)

    def __init__(self) -> None:
        # label names -> their maker (holding its texts), most recently used last
        self._makers: dict[tuple[str, ...], Callable[[tuple[str, ...]], str]] = {}

    number = staticmethod(go_number)

    def labels(self, names: tuple[str, ...]) -> Callable[[tuple[str, ...]], str]:
        """values -> ``a="x",b="y"`` with the names in sorted order, as both formats write
        them."""
        maker = self._makers.pop(names, None)
        if maker is None:
            maker = self._maker(names, tuple(sorted(names)))
        self._makers[names] = maker  # now the most recent
        while len(self._makers) > self.KEPT:
            del self._makers[next(iter(self._makers))]
        return maker

    @staticmethod
    def _maker(names: tuple[str, ...],
               ordered: tuple[str, ...]) -> Callable[[tuple[str, ...]], str]:
        order = [names.index(n) for n in ordered]
        texts: dict[tuple[str, ...], str] = {}

        def make(values: tuple[str, ...]) -> str:
            text = texts.get(values)
            if text is None:
                text = texts[values] = ",".join(
                    f'{name}="{escape_value(values[i])}"' for name, i in zip(ordered, order,
                                                                          strict=True))
            return text
        return make

    def around_le(self, names: tuple[str, ...]) -> tuple[Callable[[tuple[str, ...]], str],
                                                         Callable[[tuple[str, ...]], str]]:
        """For a histogram's buckets: the label text before ``le`` (ending with a comma)
        and after it (starting with one), names in sorted order with ``le`` among them."""
        ordered = sorted(names)
        cut = sum(1 for n in ordered if n < "le")
        first, rest = tuple(ordered[:cut]), tuple(ordered[cut:])
        head = self.labels(first) if first else None
        tail = self.labels(rest) if rest else None
        pick_first = [names.index(n) for n in first]
        pick_rest = [names.index(n) for n in rest]

        def before(values: tuple[str, ...]) -> str:
            if head is None:
                return ""
            return head(tuple(values[i] for i in pick_first)) + ","

        def after(values: tuple[str, ...]) -> str:
            if tail is None:
                return ""
            return "," + tail(tuple(values[i] for i in pick_rest))
        return before, after


class _Metrics:
    """A registry-shaped view of some families, for prometheus_client's encoders."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


EOF = b"# EOF\n"
GZIP_LEVEL = 1


def render(registry: Any, accept_header: str | None,
           offer_protobuf: bool = False) -> tuple[bytes, str]:
    """The registry's exposition in the format ``accept_header`` asks for, as
    prometheus_client's own encoder would write it; returns (body, content type)."""
    chunks, content_type = render_chunks(registry, accept_header, offer_protobuf)
    return b"".join(chunks), content_type


def render_chunks(registry: Any, accept_header: str | None,
                  offer_protobuf: bool = False) -> tuple[Iterator[bytes], str]:
    """``render`` in pieces, written as they are made (a large fleet's page is never held
    as lines and text and bytes at once); returns (pieces, content type). With
    ``offer_protobuf`` (``metrics: {native_histograms: true}``), a scraper that asks for
    delimited protobuf first (``protobuf.wanted``) gets it, a family a piece; else the
    text formats are all there is, as in prometheus_client (Prometheus falls back to them)."""
    if offer_protobuf and protobuf.wanted(accept_header):
        return _protobuf_pieces(registry), protobuf.CONTENT_TYPE
    encoder, content_type = choose_encoder(accept_header or "")
    openmetrics = content_type.startswith("application/openmetrics-text")

    def encode(metrics: list[Metric]) -> bytes:
        text = encoder(_Metrics(metrics))
        if openmetrics and text.endswith(EOF):
            text = text[:-len(EOF)]
        return bytes(text)

    def pieces() -> Iterator[bytes]:
        plain: list[Metric] = []
        cache = LabelCache()
        for metric in registry.collect():
            if not isinstance(metric, Family):
                plain.append(metric)
                continue
            plain.append(metric.header())
            yield encode(plain)
            plain = []
            for block in metric.blocks(cache):
                yield block.encode("utf-8")
        yield encode(plain)
        if openmetrics:
            yield EOF

    return pieces(), content_type


def _protobuf_pieces(registry: Any) -> Iterator[bytes]:
    for metric in registry.collect():
        if isinstance(metric, Family):
            yield metric.protobuf()
        else:
            yield from protobuf.from_samples(metric)


_DONE = object()
SLICE_S = 0.004  # collecting in the loop's thread: this long between its turns (or SLICE_MAX_S)
# After each slice the scrape lets the loop's other work run for up to this many times the
# CPU the slice took: while probes wait, it takes at most a quarter of the loop, so probing at
# three quarters of a core is never starved by a scrape (taking whatever the loop had left,
# one turn a slice, a scrape of a busy fleet made probes queue behind it; a third of the
# loop gave 0.8-1.5 s scrapes but a lag p99 over 200 ms at 73 % of a core).
PAUSE_SLICES = 3
# ... but a turn of the loop that ran others for less than this found nothing waiting: the
# scrape goes on at once instead of sleeping out its pause (10,000 default pods keep the loop
# busy about two thirds of the time; the slept pauses made their scrapes 0.6-1.1 s, 3 of 19
# over a second).
IDLE_TURN_S = 0.0002
# Slices handed over and not yet taken by the server's thread (compressing and sending them):
# beyond this many, or this many bytes, the scrape waits for it, so a page is never held
# whole between the two. A slice is handed over in parts of SLICE_BYTES: a 4 ms slice of
# kept lines is about 2 MB of text, and four of them waiting, with the one being joined,
# were a 10-13 MB swing of the heap every scrape at 10,000 pods (mallinfo2: the arena grew
# by it, and the holes it left stayed resident). Behind, a slice waits for the server's
# thread, for the rest of its time (``_Handover.caught_up``): ending the slice there, with
# its pause, ended 20-30 slices a scrape (one a megabyte), each paused for at least one turn
# of a busy loop: 1.1-1.9 s scrapes at 10,000 pods while the loop had a backlog.
HANDED_MAX = 4
HANDED_BYTES = 1 << 20
SLICE_BYTES = 256 << 10


# A turn of a loop with a backlog runs everything ready at its start: 20-120 ms at 10,000
# default pods while probes catch up (measured per scrape). Paying a 4 ms slice's pause with
# one such turn gave the scrape a tenth of the loop, not a quarter, and made it 1.2-2.4 s
# (30-40 such turns in each). So the next slice is a third of what the pause gave others
# (the same share), from SLICE_S up to this.
SLICE_MAX_S = 0.012


class Pace:
    """How long a scrape in the loop's thread yields after each slice (``sliced``): turn after
    turn of the loop (``yielded``, with the time each turn ran others) until they have had
    PAUSE_SLICES times the slice's CPU, or a turn finds nothing waiting. A scrape never
    takes more than a quarter of a loop that has work, and never waits on an idle one; and
    the next slice (``slice_s``) is a third of what the pause gave others, so a loop whose
    turns are long does not starve the scrape either."""

    def __init__(self, share: float = PAUSE_SLICES, idle_turn_s: float = IDLE_TURN_S,
                 slice_s: float = SLICE_S, slice_max_s: float = SLICE_MAX_S) -> None:
        self.share = share
        self.idle_turn_s = idle_turn_s
        self.owed = 0.0
        self.shortest, self.longest = slice_s, slice_max_s
        self.slice_s = slice_s  # how long the next slice may run
        self._given = 0.0  # the loop's time others had in this pause

    def sliced(self, spent: float) -> None:
        """A slice took ``spent`` seconds of CPU: others are owed ``share`` times it."""
        self.owed = spent * self.share
        self._given = 0.0

    def yielded(self, ran: float) -> bool:
        """A turn of the loop was others' for ``ran`` seconds: whether to yield another."""
        if ran < self.idle_turn_s:
            self.owed = 0.0
            self.slice_s = self.shortest
            return False
        self.owed -= ran
        self._given += ran
        if self.owed > 0:
            return True
        self.slice_s = min(self.longest, max(self.shortest, self._given / self.share))
        return False


def _in_loop(pieces: Iterator[bytes],
             loop: asyncio.AbstractEventLoop) -> Generator[bytes, None, None]:
    """``pieces`` made by a task on ``loop`` (yielding to it between pieces), handed to this
    thread as they come. Collecting in the event loop's own thread keeps the scrape from
    contending with it for the GIL: with another thread holding it, every callback of the
    loop waits for it (uvloop takes the GIL per callback), and a scrape of a large fleet
    would stall probing for seconds. The loop runs probes between the scrape's pieces."""
    handed = _Handover()
    gone = threading.Event()  # the server's thread stopped taking them (the scraper left)

    async def produce() -> None:
        # A slice's pieces are handed over together at its end (or in parts of SLICE_BYTES):
        # each hand-over wakes the server's thread, which then takes the GIL from the loop;
        # it sends them while the loop runs probes.
        batch: list[bytes] = []
        size = 0
        pace = Pace()
        try:
            turn, used, waited = time.perf_counter(), time.thread_time(), 0.0
            for piece in pieces:
                batch.append(piece)
                size += len(piece)
                ended = time.perf_counter() - turn >= pace.slice_s
                if not ended and size < SLICE_BYTES:
                    continue
                handed.put(b"".join(batch))
                batch.clear()
                size = 0
                if gone.is_set():
                    return
                if not ended:  # a part handed over; the slice goes on, for its time
                    left = pace.slice_s - (time.perf_counter() - turn)
                    if left > 0 and handed.behind():
                        waited += handed.caught_up(left)
                    if time.perf_counter() - turn < pace.slice_s:
                        continue
                # probes run between slices; paused for its CPU and the server's thread's
                # work it waited for, not its wall time: a slice that waited while the
                # SQLite writers committed on the same core is not paused for them
                pace.sliced(time.thread_time() - used + waited)
                while True:  # the loop's time given to others (or to threads they wait
                    began = time.perf_counter()  # for: the writers, the server's)
                    await asyncio.sleep(0)
                    if not pace.yielded(time.perf_counter() - began):
                        break
                while handed.behind():  # the server's thread is behind
                    if gone.is_set():
                        return
                    await asyncio.sleep(SLICE_S)
                turn, used, waited = time.perf_counter(), time.thread_time(), 0.0
            if batch:
                handed.put(b"".join(batch))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the server's thread
            handed.put(exc)
        finally:
            handed.put(_DONE)

    asyncio.run_coroutine_threadsafe(produce(), loop)
    try:
        while (item := handed.take()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()


class _Handover:
    """Slices from the loop's thread to the server's, with the bytes handed over and not
    yet taken."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._taken = threading.Condition()
        self.bytes = 0

    def put(self, item: Any) -> None:
        if isinstance(item, bytes):
            with self._taken:
                self.bytes += len(item)
        self._queue.put(item)

    def take(self) -> Any:
        item = self._queue.get()
        if isinstance(item, bytes):
            with self._taken:
                self.bytes -= len(item)
                self._taken.notify()
        return item

    def caught_up(self, timeout: float) -> float:
        """Wait, at most ``timeout`` seconds, until the server's thread is no longer behind;
        returns the seconds waited. (Blocking the loop's thread, as a slice's own work
        would: the server's thread compresses and sends the page on the same core.)"""
        began = time.perf_counter()
        with self._taken:
            self._taken.wait_for(lambda: not self.behind(), timeout)
        return time.perf_counter() - began

    def behind(self) -> bool:
        """More is waiting than the server's thread should have to catch up on."""
        return self._queue.qsize() > HANDED_MAX or self.bytes > HANDED_BYTES


def _loop_running(loop: asyncio.AbstractEventLoop | None) -> bool:
    return loop is not None and loop.is_running() and not loop.is_closed()


def make_wsgi_app(registry: Any, loop: asyncio.AbstractEventLoop | None = None,
                  offer_protobuf: bool = False) -> Callable[..., Iterable[bytes]]:
    """prometheus_client's ``make_wsgi_app`` (same methods, paths, negotiation and gzip),
    rendering with ``render`` (in ``loop``'s thread while it runs, see ``_in_loop``;
    protobuf when offered and asked for); a ``name[]`` filtered scrape goes through
    prometheus_client (text)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        params = parse_qs(environ.get("QUERY_STRING", ""))
        headers: list[tuple[str, str]]
        if method == "OPTIONS":
            status, headers, output = "200 OK", [("Allow", "OPTIONS,GET")], b""
        elif method != "GET":
            status = "405 Method Not Allowed"
            headers = [("Allow", "OPTIONS,GET")]
            output = f"# HTTP {status}: {method}; use OPTIONS or GET\n".encode()
        elif environ["PATH_INFO"] == "/favicon.ico":
            status, headers, output = "200 OK", [], b""
        elif "name[]" in params:
            status, headers, output = bake_output(
                registry, environ.get("HTTP_ACCEPT"), environ.get("HTTP_ACCEPT_ENCODING"),
                params)
        else:
            chunks, content_type = render_chunks(registry, environ.get("HTTP_ACCEPT"),
                                                 offer_protobuf)
            if loop is not None and _loop_running(loop):
                chunks = _in_loop(chunks, loop)
            headers = [("Content-Type", content_type)]
            if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING") or ""):
                headers.append(("Content-Encoding", "gzip"))
                chunks = _gzipped(chunks)
            start_response("200 OK", headers)
            return chunks  # written piece by piece as the page is rendered
        start_response(status, headers)
        return [output]

    return app


def _gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A gzip stream of ``chunks``, compressed as they come, by ISA-L (``isal``): at its level
    1 a 10,000-endpoint page (26 MB) compresses as well as zlib's level 1 (~23x, better than
    prometheus_client's level 9 makes of it in ten times the time) in a fifth of its time, on
    the core that probes."""
    compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()
