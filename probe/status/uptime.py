"""Uptime over 24 hours and 7 days, per endpoint, from the time its verdict spent in each
state: seconds up, degraded, down, in maintenance and unknown, kept per hour in the
database (``state_hourly``, the storage package's).

Each endpoint has one open span (its state and up to when its time was credited). A result
only compares the endpoint's state with its span's (O(1)); when it changed, the span's
time is credited to its state, hour by hour, and a new span begins. Every ``FLUSH_S``
seconds, off the event loop, the open spans are credited up to now and the pending seconds
added to the table. A page reads the table with its primary key (one range per endpoint on
the page) plus what is pending and the open spans' time since their last credit.

Uptime is the share of the time the endpoint's state was known (up, degraded or down) that
it was up: an endpoint down all along shows 0 %, a degraded one shows its degraded time
(not up). Time in maintenance is planned and not counted against it; time unknown (before
the first verdict, while the probe itself was offline, while the control plane could not be
asked) is neither up nor down: it is shown beside the ratio, never as a pass. Time the
daemon was not running is not counted at all.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from probe.storage.database import open_database, transaction
from probe.verdict import State

FLUSH_S = 30.0
HOUR_S = 3600.0
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
STATES = tuple(str(s) for s in State)
KNOWN = (str(State.UP), str(State.DEGRADED), str(State.DOWN))
UPSERT = """
INSERT INTO state_hourly (endpoint, hour, state, seconds) VALUES (?, ?, ?, ?)
ON CONFLICT (endpoint, hour, state) DO UPDATE SET seconds = seconds + excluded.seconds
"""
Seconds = dict[str, dict[str, dict[str, float]]]  # endpoint -> window -> state -> seconds


def hour_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def _hour_of_ts(ts: float) -> str:
    return hour_of(datetime.fromtimestamp(ts, UTC))


def ratio(seconds: dict[str, float]) -> float | None:
    """Up as a share of the time the state was known; None when it never was."""
    known = sum(seconds.get(s, 0.0) for s in KNOWN)
    return seconds.get(str(State.UP), 0.0) / known if known > 0 else None


@dataclass(slots=True)
class Span:
    state: str
    credited: float  # epoch seconds: the span's time before this is credited


class UptimeBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._spans: dict[str, Span] = {}
        self._pending: dict[tuple[str, str, str], float] = {}

    # -- the result path ------------------------------------------------------------------
    def observe(self, endpoint: str, state: str, at: datetime) -> None:
        """``endpoint``'s verdict is ``state`` as of ``at`` (O(1) when it did not change)."""
        ts = at.timestamp()
        with self._lock:
            span = self._spans.get(endpoint)
            if span is None:
                self._spans[endpoint] = Span(state, ts)
            elif span.state != state:
                self._credit(endpoint, span, ts)
                span.state = state

    def _credit(self, endpoint: str, span: Span, until: float) -> None:
        start = span.credited
        while start < until:
            end = min(until, (math.floor(start / HOUR_S) + 1) * HOUR_S)
            key = (endpoint, _hour_of_ts(start), span.state)
            self._pending[key] = self._pending.get(key, 0.0) + (end - start)
            start = end
        span.credited = max(span.credited, until)

    def forget(self, keep: Iterable[str], now: datetime) -> None:
        """Endpoints no longer planned: their time so far is credited, then no more."""
        kept = set(keep)
        with self._lock:
            for name in [n for n in self._spans if n not in kept]:
                self._credit(name, self._spans.pop(name), now.timestamp())

    # -- the clock: every FLUSH_S, in a worker thread ----------------------------------------
    def _connect(self) -> sqlite3.Connection:
        return open_database(self.path, busy_timeout_s=10.0)

    def flush(self, now: datetime | None = None) -> int:
        """Credit every open span up to ``now`` and add the pending seconds to the table;
        returns how many rows were written. On a failure they stay pending."""
        until = (now or datetime.now(UTC)).timestamp()
        with self._lock:
            for name, span in self._spans.items():
                self._credit(name, span, until)
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            conn = self._connect()
            try:
                with transaction(conn):
                    conn.executemany(UPSERT, [(e, h, s, v) for (e, h, s), v in
                                              pending.items()])
            finally:
                conn.close()
        except sqlite3.Error:
            with self._lock:
                for key, value in pending.items():
                    self._pending[key] = self._pending.get(key, 0.0) + value
            raise
        return len(pending)

    # -- the page -------------------------------------------------------------------------
    def seconds(self, endpoints: Sequence[str], now: datetime) -> Seconds:
        """Endpoint -> window -> state -> seconds (stored, pending, and the open span)."""
        totals: Seconds = {name: {w: dict.fromkeys(STATES, 0.0) for w in WINDOWS}
                           for name in endpoints}
        cutoffs = {w: hour_of(now - span) for w, span in WINDOWS.items()}
        for name, hour, state, value in self._stored(endpoints, min(cutoffs.values())):
            self._add(totals, cutoffs, name, hour, state, value)
        with self._lock:
            pending = [(e, h, s, v) for (e, h, s), v in self._pending.items() if e in totals]
            live = [(name, self._spans[name].state, self._spans[name].credited)
                    for name in endpoints if name in self._spans]
        for name, hour, state, value in pending:
            self._add(totals, cutoffs, name, hour, state, value)
        current = now.timestamp()
        for name, state, credited in live:  # the open span's time since its last credit
            if current > credited:
                self._add(totals, cutoffs, name, _hour_of_ts(credited), state,
                          current - credited)
        return totals

    def uptime(self, endpoints: Sequence[str], now: datetime) -> dict[str, dict[str,
                                                                             float | None]]:
        """Endpoint -> {"24h": ratio or None (its state never known), "7d": ...}."""
        return {name: {w: ratio(by_state) for w, by_state in windows.items()}
                for name, windows in self.seconds(endpoints, now).items()}

    @staticmethod
    def _add(totals: Seconds, cutoffs: dict[str, str], name: str, hour: str, state: str,
             value: float) -> None:
        for window, cutoff in cutoffs.items():
            if hour > cutoff and state in totals[name][window]:
                totals[name][window][state] += value

    def _stored(self, endpoints: Sequence[str],
                since_hour: str) -> Iterable[tuple[str, str, str, float]]:
        if not endpoints or not self.path.is_file():
            return []
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'state_hourly'"
                                ).fetchone():
                return []
            rows: list[tuple[str, str, str, float]] = []
            for name in endpoints:  # one primary-key range each
                rows.extend(conn.execute(
                    "SELECT endpoint, hour, state, seconds FROM state_hourly "
                    "WHERE endpoint = ? AND hour > ?", (name, since_hour)))
            return rows
        finally:
            conn.close()
