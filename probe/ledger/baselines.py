"""Regressions against an endpoint's own baseline: serverless cold starts (RunPod's
``delayTime`` from the round trip), time to first token and the decode rate of governed
prompts, and the latency of every other check that passed (per endpoint and check: models,
health, ...).

Per result the work is O(1): a sample goes into its series' current hour (at most
``SAMPLES_PER_HOUR`` kept, deterministically), per endpoint, check and metric; only that
hour is in memory. A finished hour is handed to the ledger's writer to keep
(``probe.storage.baselines``), with the series' judgement due: in the writer's thread, a
few per batch (spread over the hour, never per result), the window's hours of that series
are read from SQLite (by its primary key) and the last 24 h are held against the days
before them: robust statistics, the median and the MAD, each with a minimum number of
samples. A regression is said once when it starts to hold and once when it ends (a ledger
entry each); the series already said are read back from the ledger at start. Every
unfinished hour is kept at shutdown and loaded at start, so a restart goes on with it.
"""

from __future__ import annotations

import sqlite3
import statistics
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from probe.durations import format_duration
from probe.ledger.chain import Evidence, LedgerDraft
from probe.ledger.settings import PatternSettings
from probe.outcome import CheckRole, Outcome, ProbeResult
from probe.storage.baselines import SavedHour, series_hours

SAMPLES_PER_HOUR = 16
LATENCY_PER_HOUR = 8  # probe latency: one series per check of every endpoint, so fewer
RECENT = timedelta(hours=24)
HOUR_S = 3600
MAD_SCALE = 1.4826  # a normal distribution's standard deviation per MAD
REGRESSION, ENDED = "regression", "regression_ended"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    key: str  # in the result's details
    words: str
    worse_when_higher: bool = True
    share: bool = False  # a 0/1 sample: judged by its mean (a share), not its median

    def applies(self, r: ProbeResult) -> bool:
        """Round-trip metrics: results of a serverless job (RunPod's job id in their
        details); latency: any other check that passed (a failure's time is the incident's
        story, an answer's is its TTFT and decode rate); the others: governed answers."""
        if self.name == LATENCY:
            return r.ok and r.role is not CheckRole.ANSWERS and JOB not in r.details
        return JOB in r.details if self.name in ROUND_TRIP else r.role is CheckRole.ANSWERS

    def value(self, r: ProbeResult) -> float | None:
        """The sample a result gives (None: none)."""
        if self.name == LATENCY:
            return float(r.latency_s) if r.latency_s >= 0 else None
        details = r.details
        raw = details.get(self.key)
        if self.share:
            return {"cold": 1.0, "warm": 0.0}.get(raw) if isinstance(raw, str) else None
        if self.name == "cold_start_s" and details.get("start") == "warm":
            return None  # a warm worker's delay is queueing, not a cold start
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        return float(raw)


ROUND_TRIP = frozenset({"cold_start_s", "cold_start_share"})
JOB = "job_id"
LATENCY = "latency_s"
SHARE_RISE = 0.2  # a share must also rise by at least this much (20 points)
LATENCY_RISE_S = 0.1  # a latency must also rise by this much: 40 ms to 70 ms is no lesson
METRICS = (Metric("cold_start_s", "delay_s", "cold starts (RunPod delayTime)"),
           Metric("cold_start_share", "start", "share of round trips that started cold",
                  share=True),
           Metric("ttft_s", "ttft_s", "time to first token"),
           Metric("tokens_per_s", "tokens_per_s", "decode rate (tokens/s)", False),
           Metric(LATENCY, LATENCY, "probe latency"))
Key = tuple[str, str, str]  # endpoint, check, metric


@dataclass(frozen=True, slots=True)
class _Hour:
    """One hour of a series, as read from it."""

    start: datetime
    samples: tuple[float, ...]
    seen: int
    first_row: int | None
    last_row: int | None


NO_ROW = -1


class _Series:
    """The hours of one series in flat arrays (about 100 bytes an hour instead of an object,
    a datetime and a list per hour): the hours' starts (epoch seconds), ``keep`` sample
    slots per hour, how many are filled, how many samples were seen, the first and last
    result rows (``NO_ROW``: none). Read from SQLite to judge a series (``Baselines.judge``);
    the hour being filled is kept as a ``Current``."""

    __slots__ = ("keep", "starts", "samples", "filled", "seen", "first", "last")

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.starts, self.samples = array("q"), array("d")
        self.filled, self.seen = array("H"), array("q")
        self.first, self.last = array("q"), array("q")

    def __len__(self) -> int:
        return len(self.starts)

    def open(self, start: int, samples: tuple[float, ...] = (), seen: int = 0,
             first: int | None = None, last: int | None = None) -> None:
        kept = samples[:self.keep]
        self.starts.append(start)
        self.samples.extend([*kept, *[0.0] * (self.keep - len(kept))])
        self.filled.append(len(kept))
        self.seen.append(seen)
        self.first.append(NO_ROW if first is None else first)
        self.last.append(NO_ROW if last is None else last)

    def values(self, i: int) -> tuple[float, ...]:
        at = i * self.keep
        return tuple(self.samples[at:at + self.filled[i]])

    def hour(self, i: int) -> _Hour:
        first, last = self.first[i], self.last[i]
        return _Hour(datetime.fromtimestamp(self.starts[i], UTC), self.values(i), self.seen[i],
                     None if first == NO_ROW else first, None if last == NO_ROW else last)


# The hour a series is filling, the only one it keeps in memory: one array of doubles, its
# fields then its ``keep`` sample slots: the hour's start (epoch seconds), the samples seen,
# the first and last result rows (``NO_ROW``: none), all exact as doubles (< 2**53). A series
# of 16 samples holds 232 bytes; six arrays (one per field) and their object held ~700.
Current: TypeAlias = "array[float]"
_START, _SEEN, _FIRST, _LAST, _SAMPLES = range(5)


def _current(start: int, keep: int, samples: tuple[float, ...] = (), seen: int = 0,
             first: int | None = None, last: int | None = None) -> Current:
    kept = samples[:keep]
    return array("d", [start, seen, NO_ROW if first is None else first,
                       NO_ROW if last is None else last, *kept, *[0.0] * (keep - len(kept))])


def _put(current: Current, value: float, row: int | None) -> None:
    """A sample into the hour: the first ``keep``, then spread over the hour, the same way
    on every replay."""
    n = int(current[_SEEN])
    current[_SAMPLES + n % (len(current) - _SAMPLES)] = value
    current[_SEEN] = n + 1
    if row is not None:
        if current[_FIRST] == NO_ROW:
            current[_FIRST] = row
        current[_LAST] = row


def _hour_of(current: Current) -> _Hour:
    seen, first, last = int(current[_SEEN]), int(current[_FIRST]), int(current[_LAST])
    filled = min(seen, len(current) - _SAMPLES)
    return _Hour(datetime.fromtimestamp(int(current[_START]), UTC),
                 tuple(current[_SAMPLES:_SAMPLES + filled]), seen,
                 None if first == NO_ROW else first, None if last == NO_ROW else last)


@dataclass(frozen=True, slots=True)
class Due:
    """A series' judgement, due once its hour ``at`` began (the hours before it kept)."""

    key: Key
    at: datetime
    who: str
    url: str


JUDGED_PER_BATCH = 64  # judgements per writer batch: 30,000 series spread over minutes


@dataclass(slots=True)
class Baselines:
    settings: PatternSettings
    held: set[Key] = field(default_factory=set)  # the writer's thread only
    hours: dict[Key, Current] = field(default_factory=dict)  # the current hour of each
    finished: list[SavedHour] = field(default_factory=list)  # to keep, not yet handed over
    due: list[Due] = field(default_factory=list)  # judgements, not yet handed over
    forget_before: str | None = None
    waiting: deque[Due] = field(default_factory=deque)  # handed to the writer, not judged

    def restore(self, saved: Iterable[SavedHour]) -> None:
        """The hours kept before a restart (oldest first), within the window of the newest."""
        for h in saved:
            try:
                start = int(datetime.fromisoformat(h.hour).timestamp())
            except ValueError:
                continue
            key = (h.endpoint, h.check, h.metric)
            current = self.hours.get(key)
            if current is not None and current[_START] >= start:
                continue  # the newest hour only: the others stay on disk
            self.hours[key] = _current(start, _keep(h.metric), h.samples, h.seen, h.first_row,
                                       h.last_row)

    def pending(self) -> bool:
        """Whether ``take`` has anything to hand over (an hour of a series ended)."""
        return bool(self.finished or self.due) or self.forget_before is not None

    def take(self) -> tuple[list[SavedHour], str | None, list[Due]]:
        """The finished hours to keep, the hour before which none is needed and the
        judgements due once they are kept; once."""
        taken, self.finished = self.finished, []
        forget, self.forget_before = self.forget_before, None
        due, self.due = self.due, []
        return taken, forget, due

    def judge(self, conn: sqlite3.Connection, budget: int = JUDGED_PER_BATCH
              ) -> list[LedgerDraft]:
        """In the writer's thread: up to ``budget`` of the waiting judgements, each from
        its series' kept hours in the window before it (one indexed read)."""
        out: list[LedgerDraft] = []
        window = timedelta(seconds=self.settings.window_s)
        for _ in range(min(budget, len(self.waiting))):
            due = self.waiting.popleft()
            endpoint, check, name = due.key
            series = _Series(_keep(name))
            for h in series_hours(conn, endpoint, check, name, (due.at - window).isoformat(),
                                  due.at.isoformat()):
                try:
                    start = int(datetime.fromisoformat(h.hour).timestamp())
                except ValueError:
                    continue
                series.open(start, h.samples, h.seen, h.first_row, h.last_row)
            metric = next(m for m in METRICS if m.name == name)
            draft = self._judge(due.key, metric, series, due.at, due.who, due.url)
            if draft is not None:
                out.append(draft)
        return out

    def unfinished(self) -> list[SavedHour]:
        """Every series' current hour (at shutdown: kept so that a restart goes on with
        it); walks every series, once."""
        return [_saved(key, _hour_of(current)) for key, current in self.hours.items()]

    def current(self, key: Key) -> _Hour | None:
        """The hour series ``key`` is filling (None: none yet)."""
        current = self.hours.get(key)
        return None if current is None else _hour_of(current)

    def observe(self, r: ProbeResult, row: int | None, who: str) -> None:
        """Feed one result: its samples into their series' current hours."""
        if r.role is not CheckRole.ANSWERS and JOB not in r.details:
            # the usual result (no answer, no round trip): its latency only, when it
            # passed (``Metric.applies``), without asking each metric (with the hour
            # check below: 4.1 -> 1.5 us CPU a result)
            if r.outcome is Outcome.OK and r.latency_s >= 0:
                self._add(r, LATENCY, float(r.latency_s), row, who)
            return
        for metric in METRICS:
            value = metric.value(r) if metric.applies(r) else None
            if value is not None:
                self._add(r, metric.name, float(value), row, who)

    def _add(self, r: ProbeResult, name: str, value: float, row: int | None,
             who: str) -> None:
        key = (r.endpoint, r.check, name)
        current = self.hours.get(key)
        # within its series' current hour (or before it): no need to find its hour
        if current is not None and r.started_at.timestamp() < current[_START] + HOUR_S:
            _put(current, value, row)
            return
        hour = r.started_at.replace(minute=0, second=0, microsecond=0)
        start = int(hour.timestamp())
        if current is None or current[_START] < start:
            if current is not None:
                self.finished.append(_saved(key, _hour_of(current)))
            self.due.append(Due(key, hour, who, r.url))
            self.hours[key] = current = _current(start, _keep(name))
            window = timedelta(seconds=self.settings.window_s)
            self.forget_before = (hour - window - RECENT).isoformat()
        _put(current, value, row)

    def _judge(self, key: Key, metric: Metric, series: _Series, now: datetime,
               who: str, url: str) -> LedgerDraft | None:
        cut = int((now - RECENT).timestamp())
        recent_hours = [series.hour(i) for i in range(len(series)) if series.starts[i] >= cut]
        recent = [v for h in recent_hours for v in h.samples]
        baseline = [v for i in range(len(series)) if series.starts[i] < cut
                    for v in series.values(i)]
        s = self.settings
        latency = metric.name == LATENCY
        needed = (s.latency_samples, 3 * s.latency_samples) if latency else \
            (s.regression_samples, s.baseline_samples)
        if len(recent) < needed[0] or len(baseline) < needed[1]:
            return None
        if metric.share:
            return self._judge_share(key, metric, recent_hours, recent, baseline, now, who, url)
        base, last = statistics.median(baseline), statistics.median(recent)
        # the ratio and the MAD say when a regression starts; once said, it ends only when
        # the ratio no longer holds (a baseline that absorbs it widens its MAD, not its median)
        if metric.worse_when_higher:
            ratio, spread = last >= base * s.regression_ratio, last - base
        else:
            ratio, spread = last * s.regression_ratio <= base, base - last
        if not ratio and key not in self.held:
            return None  # the usual hour of a steady series: no MAD to compute
        mad = statistics.median(abs(v - base) for v in baseline) * MAD_SCALE
        worse = ratio and (key in self.held or spread >= s.regression_mads * mad) and \
            (not latency or spread >= LATENCY_RISE_S)
        if worse == (key in self.held):
            return None
        (self.held.add if worse else self.held.discard)(key)
        endpoint, check, name = key
        def unit(value: float) -> str:
            return _shown(name, value)

        said = (f"median {unit(last)} over the last 24 h ({len(recent)} samples, p95 "
                f"{unit(_p95(recent))}) against {unit(base)} over the "
                f"{format_duration(s.window_s - RECENT.total_seconds())} before "
                f"({len(baseline)} samples, MAD {unit(mad / MAD_SCALE)}, p95 "
                f"{unit(_p95(baseline))})")
        if worse:
            text = (f"{who} {metric.words} regressed on {check}: {said} — "
                    f"{last / base if base else 0:.1f}× its own baseline")
        else:
            text = f"{who} {metric.words} on {check} back to its baseline: {said}"
        return _draft(key, worse, text, recent_hours, now, url)

    def _judge_share(self, key: Key, metric: Metric, recent_hours: list[_Hour],
                     recent: list[float], baseline: list[float], now: datetime, who: str,
                     url: str) -> LedgerDraft | None:
        base, last = statistics.fmean(baseline), statistics.fmean(recent)
        worse = last >= base * self.settings.regression_ratio and last - base >= SHARE_RISE
        if worse == (key in self.held):
            return None
        (self.held.add if worse else self.held.discard)(key)
        before = format_duration(self.settings.window_s - RECENT.total_seconds())
        said = (f"{last:.0%} over the last 24 h ({len(recent)} round trips) against {base:.0%} "
                f"over the {before} before ({len(baseline)} round trips)")
        text = (f"{who} {metric.words} rose: {said}" if worse else
                f"{who} {metric.words} back to its baseline: {said}")
        return _draft(key, worse, text, recent_hours, now, url)


def _draft(key: Key, worse: bool, text: str, recent_hours: list[_Hour], now: datetime,
           url: str) -> LedgerDraft:
    endpoint, check, name = key
    rows = [h for h in recent_hours if h.first_row is not None]
    evidence = Evidence(check, name, rows[0].first_row if rows else None,
                        rows[-1].last_row if rows else None, url,
                        now.isoformat(timespec="seconds"))
    return LedgerDraft(ts=evidence.observed_at or "", severity="warning" if worse else "info",
                       endpoint=endpoint, event=REGRESSION if worse else ENDED,
                       pattern=text, evidence=evidence)


def _keep(metric: str) -> int:
    return LATENCY_PER_HOUR if metric == LATENCY else SAMPLES_PER_HOUR


def _saved(key: Key, hour: _Hour) -> SavedHour:
    endpoint, check, metric = key
    return SavedHour(endpoint, check, metric, hour.start.isoformat(), tuple(hour.samples),
                     hour.seen, hour.first_row, hour.last_row)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _shown(name: str, value: float) -> str:
    return f"{value:.1f} tokens/s" if name == "tokens_per_s" else format_duration(value)
