"""When a declared window is on: a fixed span, or a weekly one in a time zone.

A weekly window starts at a wall-clock time on each listed weekday in its time zone and
lasts ``duration`` of elapsed time. Across a daylight-saving change it keeps the wall
clock: "02:00 Europe/Berlin" is 01:00 UTC in winter and 00:00 UTC in summer. A start that
falls in the hour the clocks skip begins at the instant that wall time would have been
(02:30 on the spring-forward night is 03:30 summer time); on the night the clocks go back,
the first 02:30 counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from probe.verdict import Window

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Weekly:
    days: tuple[int, ...]  # 0 = Monday
    start: time
    duration: timedelta


@dataclass(frozen=True, slots=True)
class Declared:
    """A window from the config's ``maintenance:`` section."""

    name: str
    targets: tuple[str, ...]  # endpoint names or globs
    reason: str
    zone: ZoneInfo
    start: datetime | None = None  # fixed span (aware)
    end: datetime | None = None
    weekly: Weekly | None = None

    def occurrences(self, since: datetime, until: datetime) -> Iterator[tuple[datetime,
                                                                             datetime]]:
        """(start, end) in UTC of every occurrence that overlaps [since, until)."""
        if self.weekly is None:
            assert self.start is not None and self.end is not None
            if self.start < until and self.end > since:
                yield self.start.astimezone(UTC), self.end.astimezone(UTC)
            return
        weekly = self.weekly
        first = (since - weekly.duration).astimezone(self.zone).date() - timedelta(days=1)
        last = until.astimezone(self.zone).date() + timedelta(days=1)
        day = first
        while day <= last:
            if day.weekday() in weekly.days:
                begin = local_instant(day, weekly.start, self.zone)
                end = begin + weekly.duration
                if begin < until and end > since:
                    yield begin, end
            day += timedelta(days=1)

    def active(self, now: datetime) -> Window | None:
        """The occurrence ``now`` falls in, as the verdict's ``Window``."""
        for begin, end in self.occurrences(now, now + timedelta(microseconds=1)):
            if begin <= now < end:
                return Window(key=f"config:{self.name}@{begin.isoformat()}", name=self.name,
                              reason=self.reason, origin="config", start=begin, end=end,
                              targets=self.targets)
        return None

    def describe(self) -> str:
        if self.weekly is None:
            assert self.start is not None and self.end is not None
            return f"{self.start.isoformat(timespec='minutes')} to " \
                   f"{self.end.isoformat(timespec='minutes')}"
        days = ",".join(DAYS[d] for d in self.weekly.days)
        hours = self.weekly.duration.total_seconds() / 3600
        return f"weekly {days} {self.weekly.start.strftime('%H:%M')} {self.zone.key} " \
               f"for {hours:g}h"


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``zone`` (see the module doc for
    the skipped and repeated hours)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def overlap(a: Declared, b: Declared, since: datetime,
            until: datetime) -> tuple[datetime, datetime] | None:
    """The first moment two windows are on together within [since, until), if any."""
    spans = sorted([*((s, e, 0) for s, e in a.occurrences(since, until)),
                    *((s, e, 1) for s, e in b.occurrences(since, until))])
    latest: dict[int, datetime] = {}
    for begin, end, which in spans:
        other = latest.get(1 - which)
        if other is not None and begin < other:
            return begin, min(end, other)
        latest[which] = max(end, latest.get(which, end))
    return None


def self_overlap(window: Declared) -> bool:
    """A weekly window whose occurrences run into each other (days too close for its
    duration)."""
    if window.weekly is None or not window.weekly.days:
        return False
    days = sorted(window.weekly.days)
    gaps = [(b - a) for a, b in zip(days, days[1:], strict=False)] + [days[0] + 7 - days[-1]]
    return window.weekly.duration > timedelta(days=min(gaps))
