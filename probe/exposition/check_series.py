"""Each check's series on /metrics, written when its result arrives.

By default a check has two families (``up``, and ``outcome`` while it is not ok: one line
when healthy); its latency and the SLI's counters are kept per endpoint and kind of check
(``probe.metrics``). With ``metrics: {per_check: true}`` it also has its own results by
outcome, latency histogram, last status and timestamps (``PER_CHECK``): about 25 lines.
A check's lines are written once per result (``CheckSeries.lines_of``, by
``series_cache``, which the state tells of each check it changes) and a scrape only
joins them, family by family, in the fleet's order (``CheckSeries.families``); a collector
keeping none writes them all at each scrape (``CheckSeries.written_now``).

The lines are byte for byte what ``Family`` (and so prometheus_client) writes from the same
rows, in the text format and in OpenMetrics (``tests/exposition/test_text.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from probe.exposition import protobuf
from probe.exposition.series_cache import Columns, Read, Text
from probe.exposition.text import Family, Lines, escape_value, go_number, histogram_lines
from probe.outcome import Outcome
from probe.state import CHECK_LATENCY_BUCKETS, CheckState, les_of

P = "runpod_probe_"
CHECK_LABELS = ("endpoint", "check")
Key = tuple[str, str]  # (endpoint, check)


@dataclass(frozen=True, slots=True)
class CheckFamily:
    """One family of per-check series: how a check's lines are written and, for the
    registry's samples, its rows (as ``Family.add_metric`` takes them)."""

    name: str
    documentation: str
    typ: str
    lines: Callable[[str, CheckState], str]  # (label text, state) -> its lines
    rows: Callable[[Key, CheckState], Iterable[Any]]
    outcome: bool = False  # labelled ``outcome`` after the check's labels

    def family(self) -> Family:
        labels = [*CHECK_LABELS, "outcome"] if self.outcome else list(CHECK_LABELS)
        return Family(self.name, self.documentation, self.typ, labels=labels)

    @property
    def spec(self) -> protobuf.Spec:
        return _spec_of(self.typ, self.outcome)


@functools.cache
def _spec_of(typ: str, outcome: bool) -> protobuf.Spec:
    return protobuf.Spec(typ, (*CHECK_LABELS, "outcome") if outcome else CHECK_LABELS)


def _sample(name: str, typ: str) -> str:
    return name if typ != "counter" else name + "_total"


def _single(name: str, typ: str, doc: str,
            value: Callable[[CheckState], float | None]) -> CheckFamily:
    """A gauge or counter with one series per check, valued ``value(state)`` (None: none)."""
    sample = _sample(name, typ)

    def lines(text: str, s: CheckState) -> str:
        v = value(s)
        return "" if v is None else f"{sample}{{{text}}} {go_number(v)}\n"

    def rows(key: Key, s: CheckState) -> Iterable[Any]:
        v = value(s)
        return () if v is None else ((key, v),)
    return CheckFamily(name, doc, typ, lines, rows)


def _per_outcome(name: str, typ: str, doc: str,
                 values: Callable[[CheckState], dict[str, int]]) -> CheckFamily:
    """A series per check and outcome: ``values(state)`` is outcome -> value, in order."""
    sample = _sample(name, typ)

    def lines(text: str, s: CheckState) -> str:
        return "".join([f'{sample}{{{text},outcome="{escape_value(outcome)}"}} '
                        f"{go_number(v)}\n" for outcome, v in values(s).items()])

    def rows(key: Key, s: CheckState) -> Iterable[Any]:
        return [((*key, outcome), v) for outcome, v in values(s).items()]
    return CheckFamily(name, doc, typ, lines, rows, outcome=True)


def _latency(name: str, doc: str) -> CheckFamily:
    write = histogram_lines(name, les_of(CHECK_LATENCY_BUCKETS))

    def lines(text: str, s: CheckState) -> str:
        return "" if s.latest is None else write(text, s.latency.counts, s.latency.total)

    def rows(key: Key, s: CheckState) -> Iterable[Any]:
        latency = s.latency
        return () if s.latest is None else ((key, latency.buckets(), latency.total,
                                             latency.native),)
    return CheckFamily(name, doc, "histogram", lines, rows)


def _current_outcome(s: CheckState) -> dict[str, int]:
    """The current outcome while it is not ok ("unknown" before the first result): a
    healthy check's ``up`` says the rest."""
    if s.latest is None:
        return {str(Outcome.UNKNOWN): 1}
    return {} if s.latest.ok else {str(s.latest.outcome): 1}


def _results(s: CheckState) -> dict[str, int]:
    """Results by outcome, sorted; "ok" declared at 0 so the first pass (and every rate) is
    visible from the start."""
    counts = s.outcomes
    if len(counts) == 1 and "ok" in counts:
        return counts
    return {name: counts.get(name, 0) for name in sorted(counts.keys() | {"ok"})}


def _up(s: CheckState) -> int:
    return 1 if s.latest is not None and s.latest.ok else 0


def _attempts(s: CheckState) -> int | None:
    return None if s.latest is None else s.latest.attempts


def _http_status(s: CheckState) -> int | None:
    return None if s.latest is None else s.latest.http_status


def _probed_at(s: CheckState) -> float | None:
    return None if s.latest is None else s.latest.started_at.timestamp()


# The families every check has, in the order /metrics writes them.
CHECK_FAMILIES: tuple[CheckFamily, ...] = (
    _single(P + "up", "gauge", "1 only when the check's last result was ok; never-probed "
            "and unknown are 0.", _up),
    _per_outcome(P + "outcome", "gauge", "The check's current outcome (value 1) while it is "
                 'not ok; "unknown" before the first result.', _current_outcome),
)
# What ``metrics: {per_check: true}`` adds for each check.
PER_CHECK: tuple[CheckFamily, ...] = (
    _per_outcome(P + "results", "counter", "Probe results by outcome.", _results),
    _single(P + "retried_successes", "counter", "Passes that needed a retry.",
            lambda s: s.retried_ok_total),
    _latency(P + "check_latency_seconds", "Duration of the last attempt of each check."),
    _single(P + "last_http_status", "gauge", "HTTP status of the last response.",
            _http_status),
    _single(P + "last_attempts", "gauge", "Attempts the last result needed.", _attempts),
    _single(P + "last_success_timestamp_seconds", "gauge", "Unix time of the last ok result.",
            lambda s: s.last_success_ts),
    _single(P + "last_probe_timestamp_seconds", "gauge", "Unix time of the last result.",
            _probed_at),
)


def label_text(key: Key) -> str:
    """``check="…",endpoint="…"``: the check's labels as written (names sorted)."""
    return f'check="{escape_value(key[1])}",endpoint="{escape_value(key[0])}"'


@dataclass(frozen=True, slots=True)
class CheckSeries:
    """The families each check has on /metrics (``CHECK_FAMILIES``, plus ``PER_CHECK`` with
    ``metrics: {per_check: true}``), and how their lines are written."""

    specs: tuple[CheckFamily, ...] = CHECK_FAMILIES

    @classmethod
    def of(cls, per_check: bool) -> CheckSeries:
        return cls((*CHECK_FAMILIES, *PER_CHECK) if per_check else CHECK_FAMILIES)

    def lines_of(self, key: Key, s: CheckState) -> tuple[str, ...]:
        """The check's lines in each family, from its state now."""
        text = label_text(key)
        return tuple([f.lines(text, s) for f in self.specs])

    def still(self, kept: Text, s: CheckState) -> bool:
        """Whether ``kept`` (a check's lines or protobuf fields, as written before) are
        still what ``lines_of`` (``proto_of``) writes from state ``s``, without writing
        them: by default (``up``, ``outcome``) a check's lines say only whether its latest
        result passed and how it failed, so a pass after a pass (the outcome column empty:
        only a pass writes none) leaves them as they were (writing them: 2.3 us CPU)."""
        return (self.specs is CHECK_FAMILIES and s.latest is not None
                and s.latest.outcome is Outcome.OK and not kept[1])

    def proto_of(self, key: Key, s: CheckState) -> tuple[bytes, ...]:
        """The check's series in each family as protobuf ``metric`` fields, from its state
        now (the protobuf page's cache, like ``lines_of``)."""
        labels = _spec_of("gauge", False).labels(key)  # the check's, once for its families
        out = []
        for f in self.specs:
            spec = f.spec
            if f.outcome:
                out.append(protobuf.metrics_of(spec, f.rows(key, s)))
            elif f.typ == "histogram":
                out.append(b"" if s.latest is None else
                           spec.histogram(labels, protobuf.histogram_of(s.latency)))
            else:
                out.append(b"".join([spec.value(labels, row[1]) for row in f.rows(key, s)]))
        return tuple(out)

    def written_now(self, checks: Collection[tuple[Key, CheckState]]) -> list[tuple[str, ...]]:
        """The lines of ``checks`` (in order), written from their states now."""
        return [self.lines_of(key, s) for key, s in checks]

    def families(self, checks: Collection[tuple[Key, CheckState]],
                 lines: Read,
                 proto: Read | None = None) -> list[Family]:
        """The check families of one scrape: the text of each is a column of ``lines()``
        (every check's lines, in order: ``SeriesCache.checks.columns`` or
        ``written_now``), read when the page is written; its protobuf a column of
        ``proto()`` (``proto_of``'s, kept alike), else written from ``checks`` (in order),
        which are read for samples too."""
        columns = Columns(lines)
        protos = None if proto is None else Columns(proto)
        out = []
        for column, spec in enumerate(self.specs):
            family = spec.family()
            family.add_lines(partial(columns.column, column),
                             Lines(partial(_rows, spec, checks),
                                   None if protos is None else partial(protos.column, column)))
            out.append(family)
        return out


def _rows(spec: CheckFamily, checks: Collection[tuple[Key, CheckState]]) -> Iterator[Any]:
    for key, s in checks:
        yield from spec.rows(key, s)
