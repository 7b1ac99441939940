"""When a declared window is on: fixed spans, weekly windows across the week's end and across
daylight-saving changes (freezegun moves the clock; the schedule reads it as the daemon's
windows source does)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from probe.maintenance.schedule import Declared, Weekly, local_instant, overlap, self_overlap

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONE_UTC = ZoneInfo("UTC")


def weekly(days: tuple[int, ...], at: str, hours: float, zone: ZoneInfo = ZONE_UTC,
           name: str = "w") -> Declared:
    hh, mm = (int(x) for x in at.split(":"))
    return Declared(name, ("p",), "why", zone,
                    weekly=Weekly(days, time(hh, mm), timedelta(hours=hours)))


def on_now(window: Declared) -> bool:
    return window.active(datetime.now(UTC)) is not None


# Sunday 23:00 for 2 h: on from Sunday 23:00 to Monday 01:00 (UTC), across the week's end.
SUNDAY_NIGHT = weekly((6,), "23:00", 2)


@pytest.mark.parametrize(("moment", "on"), [
    ("2026-12-06 22:59:59", False),  # Sunday, just before
    ("2026-12-06 23:00:00", True),
    ("2026-12-07 00:30:00", True),  # Monday: the new week, still the Sunday window
    ("2026-12-07 00:59:59", True),
    ("2026-12-07 01:00:00", False),  # the end is exclusive
    ("2026-12-13 23:30:00", True),  # the next Sunday
    ("2026-12-10 23:30:00", False),  # a Thursday
])
def test_a_weekly_window_across_the_weeks_end(moment: str, on: bool) -> None:
    with freeze_time(moment):
        assert on_now(SUNDAY_NIGHT) is on


def test_each_occurrence_is_its_own_window() -> None:
    with freeze_time("2026-12-06 23:30:00"):
        first = SUNDAY_NIGHT.active(datetime.now(UTC))
    with freeze_time("2026-12-13 23:30:00"):
        second = SUNDAY_NIGHT.active(datetime.now(UTC))
    assert first is not None and second is not None
    assert first.key != second.key and first.name == second.name == "w"
    assert (first.start, first.end) == (datetime(2026, 12, 6, 23, tzinfo=UTC),
                                        datetime(2026, 12, 7, 1, tzinfo=UTC))


# Sunday 02:00 Berlin for 1 h. Europe/Berlin leaves summer time on 2026-10-25 (03:00 CEST ->
# 02:00 CET) and enters it on 2027-03-28 (02:00 CET -> 03:00 CEST).
BERLIN_SUNDAY = weekly((6,), "02:00", 1, BERLIN)


@pytest.mark.parametrize(("moment_utc", "on"), [
    # 2026-10-18, summer time (UTC+2): 02:00 local is 00:00 UTC
    ("2026-10-18 00:00:00", True), ("2026-10-18 01:00:00", False),
    # 2026-10-25, the night the clocks go back: the first 02:00 (CEST) is 00:00 UTC
    ("2026-10-25 00:00:00", True), ("2026-10-25 00:59:59", True),
    ("2026-10-25 01:00:00", False),
    # 2026-11-01, winter time (UTC+1): 02:00 local is 01:00 UTC
    ("2026-11-01 00:30:00", False), ("2026-11-01 01:00:00", True),
    ("2026-11-01 01:59:59", True), ("2026-11-01 02:00:00", False),
])
def test_a_weekly_window_keeps_the_wall_clock_across_daylight_saving(moment_utc: str,
                                                                      on: bool) -> None:
    with freeze_time(moment_utc):
        assert on_now(BERLIN_SUNDAY) is on


def test_a_start_in_the_skipped_hour_begins_when_that_wall_time_would_have_been() -> None:
    """2027-03-28 02:30 Berlin does not exist: the window starts at 01:30 UTC (03:30 CEST)
    and lasts its hour of elapsed time."""
    assert local_instant(datetime(2027, 3, 28).date(), time(2, 30), BERLIN) == \
        datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    window = weekly((6,), "02:30", 1, BERLIN)
    for moment, on in (("2027-03-28 01:29:59", False), ("2027-03-28 01:30:00", True),
                       ("2027-03-28 02:29:59", True), ("2027-03-28 02:30:00", False)):
        with freeze_time(moment):
            assert on_now(window) is on, moment


def test_a_window_in_new_york_across_its_change() -> None:
    """Mon 09:00 New York: 14:00 UTC before 2026-11-01 (EDT -> EST), 15:00 UTC after."""
    window = weekly((0,), "09:00", 0.5, NEW_YORK)
    with freeze_time("2026-10-26 13:15:00"):
        assert on_now(window)
    with freeze_time("2026-11-02 13:15:00"):
        assert not on_now(window)
    with freeze_time("2026-11-02 14:15:00"):
        assert on_now(window)


def test_a_fixed_window() -> None:
    window = Declared("swap", ("p",), "gpu", ZONE_UTC, start=datetime(2026, 12, 1, 10, tzinfo=UTC),
                      end=datetime(2026, 12, 1, 14, tzinfo=UTC))
    for moment, on in (("2026-12-01 09:59", False), ("2026-12-01 10:00", True),
                       ("2026-12-01 13:59", True), ("2026-12-01 14:00", False)):
        with freeze_time(moment):
            assert on_now(window) is on, moment


def test_overlaps_are_found_within_the_horizon() -> None:
    since, until = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 12, 1, tzinfo=UTC)
    fixed = Declared("swap", ("p",), "gpu", ZONE_UTC, start=datetime(2026, 12, 6, 23, 30, tzinfo=UTC),
                     end=datetime(2026, 12, 7, 2, tzinfo=UTC))
    assert overlap(SUNDAY_NIGHT, fixed, since, until) == (
        datetime(2026, 12, 6, 23, 30, tzinfo=UTC), datetime(2026, 12, 7, 1, tzinfo=UTC))
    later = weekly((0,), "01:00", 1)  # Monday 01:00: right after the Sunday window, abutting
    assert overlap(SUNDAY_NIGHT, later, since, until) is None
    assert self_overlap(weekly((0, 1), "00:00", 25))
    assert not self_overlap(weekly((0, 1), "00:00", 24))
    assert self_overlap(weekly((6,), "00:00", 24 * 7 + 1))
