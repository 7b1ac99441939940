"""The maintenance: section: every bad input a clear problem with its field path, and nothing
else refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import parse_config

from probe.config import ConfigError
from probe.config.fields import Problems
from probe.maintenance.settings import MaintenanceSettings, validate

ENV = {"RUNPOD_API_KEY": "test-key-0000"}
ENDPOINTS = ("endpoints:\n  - {name: qwen-a, kind: pod, pod_id: a}\n"
             "  - {name: qwen-b, kind: pod, pod_id: b}\n  - {name: q, kind: serverless, "
             "endpoint_id: e}\n")


def load(windows: str, extra: str = "") -> MaintenanceSettings:
    config = parse_config(ENDPOINTS + extra + "maintenance:\n" + windows, env=ENV)
    return MaintenanceSettings.of(config)


def problems(windows: str, extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(windows, extra)
    return caught.value.problems


def test_windows_are_read() -> None:
    settings = load("  max_duration: 2d\n  windows:\n"
                    "    - {name: swap, endpoints: [q], start: '2026-12-01 10:00', "
                    "end: '2026-12-01T14:00+01:00', timezone: Europe/Berlin, reason: gpu}\n"
                    "    - {name: nightly, endpoints: ['qwen-*'], reason: redeploy, "
                    "weekly: {days: [sun, Sat], start: '02:00', duration: 2h}}\n")
    swap, nightly = settings.windows
    assert settings.max_duration_s == 2 * 86400
    assert (swap.start, swap.end) == (datetime(2026, 12, 1, 9, tzinfo=UTC),
                                      datetime(2026, 12, 1, 13, tzinfo=UTC))
    assert nightly.targets == ("qwen-*",) and nightly.weekly is not None
    assert nightly.weekly.days == (5, 6) and nightly.describe() == \
        "weekly sat,sun 02:00 UTC for 2h"


def test_yaml_timestamps_are_read_as_times() -> None:
    settings = load("  windows:\n    - {name: swap, endpoints: [q], reason: gpu, "
                    "start: 2026-12-01 10:00:00, end: 2026-12-01 12:00:00}\n")
    assert settings.windows[0].start == datetime(2026, 12, 1, 10, tzinfo=UTC)


W = "  windows:\n    - "
FIXED = "{name: a, endpoints: [q], reason: r, start: '2026-12-01 10:00', end: '2026-12-01 12:00'"


@pytest.mark.parametrize(("windows", "expected"), [
    (W + "{name: a, endpoints: [q], reason: r, start: '2026-12-01 10:00', "
         "end: '2026-12-01 09:00'}\n",
     ["maintenance.windows[0].end: must be after start (2026-12-01T10:00:00+00:00), got "
      "2026-12-01T09:00:00+00:00"]),
    (W + FIXED + ", timezone: Mars/Olympus}\n",
     ['maintenance.windows[0].timezone: unknown time zone "Mars/Olympus" (an IANA name like '
      '"Europe/Berlin")']),
    (W + "{name: a, endpoints: [nope], reason: r, start: '2026-12-01 10:00', "
         "end: '2026-12-01 12:00'}\n",
     ['maintenance.windows.endpoints: "nope" is not an endpoint'.replace(
         "windows.", "windows[0].")]),
    (W + "{name: a, endpoints: ['gpu-*'], reason: r, start: '2026-12-01 10:00', "
         "end: '2026-12-01 12:00'}\n",
     ['maintenance.windows[0].endpoints: "gpu-*" matches no endpoint']),
    (W + "{name: a, endpoints: [q], reason: r, start: '2026-12-01 10:00', "
         "end: '2026-12-09 10:00'}\n",
     ["maintenance.windows[0].end: the window lasts 8d, longer than max_duration (7d)"]),
    (W + "{name: a, endpoints: [q], reason: r, weekly: {days: [mon], start: '02:00', "
         "duration: 8d}}\n",
     ["maintenance.windows[0].weekly.duration: 8d is longer than max_duration (7d)"]),
    (W + "{name: a, endpoints: [q], reason: r, weekly: {days: [mon, tue], start: '02:00', "
         "duration: 25h}}\n",
     ["maintenance.windows[0].weekly: its occurrences overlap: 1d1h is longer than the gap "
      "between two of its days"]),
    (W + "{name: a, endpoints: [q], reason: r, weekly: {days: [someday], start: '25:00', "
         "duration: 1h}}\n",
     ['maintenance.windows[0].weekly.days: unknown weekday "someday" (expected some of: '
      "mon, tue, wed, thu, fri, sat, sun)"]),
    (W + "{name: a, endpoints: [q], reason: r, weekly: {days: [mon], start: '25:00', "
         "duration: 1h}}\n",
     ['maintenance.windows[0].weekly.start: expected a time of day like "02:00", got '
      '"25:00"']),
    (W + FIXED + ", weekly: {days: [mon], start: '02:00', duration: 1h}}\n",
     ["maintenance.windows[0].weekly: a window is either weekly or from start to end, not "
      "both"]),
    (W + "{name: a, endpoints: [q], reason: r}\n",
     ["maintenance.windows[0]: needs start and end, or weekly"]),
    (W + "{name: a, endpoints: [], start: soon, end: '2026-12-01 12:00'}\n",
     ["maintenance.windows[0].reason: required field is missing",
      "maintenance.windows[0].endpoints: expected a non-empty list of endpoint names or globs",
      'maintenance.windows[0].start: expected a time like "2026-12-01 10:00" (or with an '
      'offset, "2026-12-01T10:00+01:00"), got "soon"']),
    (W + FIXED + "}\n    - " + FIXED + "}\n",
     ['maintenance.windows[1].name: "a" is used twice']),
    (W + FIXED.replace("[q]", "['qwen-*']") + "}\n    - {name: b, endpoints: [qwen-b], reason: r, "
         "start: '2026-12-01 11:00', end: '2026-12-01 13:00'}\n",
     ['maintenance.windows[1]: overlaps window "a" on qwen-b at 2026-12-01T11:00+00:00']),
    ("  windowz: []\n", ['maintenance.windowz: unknown key (did you mean "windows"?)']),
], ids=["end-before-start", "unknown-zone", "unknown-endpoint", "glob-matches-nothing",
        "longer-than-max", "weekly-longer-than-max", "weekly-overlaps-itself", "bad-weekday",
        "bad-clock", "fixed-and-weekly", "neither", "missing-and-malformed", "name-twice",
        "overlapping-windows", "unknown-key"])
def test_bad_windows_are_refused_with_their_path(windows: str, expected: list[str]) -> None:
    assert problems(windows) == expected


def test_windows_that_do_not_share_an_endpoint_may_overlap() -> None:
    settings = load(W + FIXED + "}\n    - {name: b, endpoints: [qwen-a], reason: r, "
                    "start: '2026-12-01 11:00', end: '2026-12-01 13:00'}\n")
    assert [w.name for w in settings.windows] == ["a", "b"]


def test_with_discovery_a_name_not_yet_known_is_accepted() -> None:
    settings = load(W + "{name: a, endpoints: ['gpu-*', later], reason: r, weekly: "
                    "{days: [mon], start: '02:00', duration: 1h}}\n", extra="discovery: {}\n")
    assert settings.windows[0].targets == ("gpu-*", "later")


def test_a_weekly_window_and_a_fixed_one_overlap_on_a_later_week() -> None:
    """The overlap search runs a year ahead from now."""
    config = parse_config(ENDPOINTS + "maintenance:\n  windows:\n"
                          "    - {name: a, endpoints: [q], reason: r, weekly: {days: [fri], "
                          "start: '22:00', duration: 4h}}\n", env=ENV)
    found = Problems()
    later = MaintenanceSettings.of(parse_config(
        ENDPOINTS + "maintenance:\n  windows:\n    - {name: b, endpoints: [q], reason: r, "
        "start: '2027-06-05 01:00', end: '2027-06-05 03:00'}\n", env=ENV)).windows
    both = type(config)(**{**{f: getattr(config, f) for f in config.__dataclass_fields__},
                           "sections": {**config.sections, "maintenance": MaintenanceSettings(
                               windows=(*MaintenanceSettings.of(config).windows, *later))}})
    validate(both, found, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert found.lines == ['maintenance.windows[1]: overlaps window "a" on q at '
                           "2027-06-05T01:00+00:00"]


def test_the_windows_source_under_a_moving_clock(tmp_path: Path) -> None:
    """The daemon's source of windows (config plus command line), read as the clock moves:
    a weekly Sunday-night window in Berlin across the week's end and the October change."""
    from freezegun import freeze_time

    from probe.maintenance.plugin import windows

    config = parse_config(
        ENDPOINTS + f'storage: {{path: "{tmp_path / "probe.db"}"}}\n'
        "maintenance:\n  windows:\n    - {name: night, endpoints: ['qwen-*'], reason: r, "
        "timezone: Europe/Berlin, weekly: {days: [sun], start: '23:30', duration: 1h}}\n",
        env=ENV)
    seen = {}
    for moment in ("2026-10-18 21:29", "2026-10-18 21:30", "2026-10-18 22:29",  # CEST
                   "2026-10-25 22:29", "2026-10-25 22:30", "2026-10-25 23:29",  # CET
                   "2026-10-25 23:30"):
        with freeze_time(moment):
            found = windows(config, datetime.now(UTC))
        seen[moment] = [(w.name, w.targets, w.start.isoformat()) for w in found]
    assert seen == {
        "2026-10-18 21:29": [],
        "2026-10-18 21:30": [("night", ("qwen-*",), "2026-10-18T21:30:00+00:00")],
        "2026-10-18 22:29": [("night", ("qwen-*",), "2026-10-18T21:30:00+00:00")],
        "2026-10-25 22:29": [],
        "2026-10-25 22:30": [("night", ("qwen-*",), "2026-10-25T22:30:00+00:00")],
        "2026-10-25 23:29": [("night", ("qwen-*",), "2026-10-25T22:30:00+00:00")],
        "2026-10-25 23:30": [],
    }
