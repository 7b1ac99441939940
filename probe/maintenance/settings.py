"""The ``maintenance:`` config section, validated with exact messages.

```yaml
maintenance:
  max_duration: 7d                 # the longest window accepted (config and command line)
  windows:
    - name: weekly-redeploy
      endpoints: ["qwen-*", vllm-serverless]   # names or globs
      weekly: {days: [sun], start: "02:00", duration: 2h}
      timezone: Europe/Berlin      # default UTC
      reason: "weekly worker redeploy"
    - name: gpu-swap
      endpoints: [qwen-pod]
      start: "2026-12-01 10:00"    # in `timezone`, or with an offset
      end: "2026-12-01 14:00"
      reason: "moving to an H100"
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from probe.config.fields import Fields, Problems
from probe.config.model import Config, ParseContext
from probe.durations import format_duration
from probe.maintenance.schedule import DAYS, Declared, Weekly, overlap, self_overlap
from probe.secrets import plain_line
from probe.windows import Matcher, is_glob

SECTION = "maintenance"
MAX_DURATION_S = 7 * 86400.0
WINDOW_KEYS = ("name", "endpoints", "reason", "timezone", "start", "end", "weekly")
# Overlaps are looked for over this span from now (a weekly window repeats within it).
HORIZON = timedelta(days=371)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class MaintenanceSettings:
    max_duration_s: float = MAX_DURATION_S
    windows: tuple[Declared, ...] = ()

    @classmethod
    def of(cls, config: Config) -> MaintenanceSettings:
        settings = config.sections.get(SECTION)
        return settings if isinstance(settings, MaintenanceSettings) else cls()


def parse_section(raw: Any, path: str, problems: Problems,
                  _: ParseContext) -> MaintenanceSettings:
    if raw is None:
        return MaintenanceSettings()
    f = Fields(raw, path, problems, ("max_duration", "windows"))
    max_s = f.duration("max_duration", MAX_DURATION_S)
    items = f.raw.get("windows") or []
    if not isinstance(items, list):
        f.fail("windows", "expected a list of windows")
        items = []
    windows: list[Declared] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        window = _window(Fields(item, f"{path}.windows[{i}]", problems, WINDOW_KEYS), max_s)
        if window is None:
            continue
        if window.name in names:
            problems.add(f"{path}.windows[{i}].name", f'"{window.name}" is used twice')
            continue
        names.add(window.name)
        windows.append(window)
    return MaintenanceSettings(max_s, tuple(windows))


def _window(f: Fields, max_s: float) -> Declared | None:
    name = f.text("name", required=True)
    reason = f.text("reason", required=True)
    if reason is not None:
        reason = plain_line(reason)  # no terminal escape codes, no line breaks
    targets = _targets(f)
    zone = _zone(f)
    fixed = f.has("start") or f.has("end")
    if fixed and f.has("weekly"):
        f.fail("weekly", "a window is either weekly or from start to end, not both")
        return None
    if not fixed and not f.has("weekly"):
        f.problems.add(f.path, "needs start and end, or weekly")
        return None
    if f.has("weekly"):
        weekly = _weekly(Fields(f.raw["weekly"], f"{f.path}.weekly", f.problems,
                                ("days", "start", "duration")), max_s)
        if weekly is None or zone is None or name is None or reason is None or not targets:
            return None
        window = Declared(name, targets, reason, zone, weekly=weekly)
        if self_overlap(window):
            lasts = format_duration(weekly.duration.total_seconds())
            f.fail("weekly", f"its occurrences overlap: {lasts} is longer than the gap "
                             "between two of its days")
            return None
        return window
    start = _moment(f, "start", zone or ZoneInfo("UTC"))
    end = _moment(f, "end", zone or ZoneInfo("UTC"))
    if start is None or end is None:
        return None
    if end <= start:
        f.fail("end", f"must be after start ({start.isoformat()}), got {end.isoformat()}")
        return None
    if (end - start).total_seconds() > max_s:
        f.fail("end", f"the window lasts {format_duration((end - start).total_seconds())}, "
                      f"longer than max_duration ({format_duration(max_s)})")
        return None
    if zone is None or name is None or reason is None or not targets:
        return None
    return Declared(name, targets, reason, zone, start=start, end=end)


def _targets(f: Fields) -> tuple[str, ...]:
    value = f.raw.get("endpoints")
    if value is None:
        f.fail("endpoints", "required field is missing")
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, str) and v.strip() for v in value):
        f.fail("endpoints", "expected a non-empty list of endpoint names or globs")
        return ()
    return tuple(v.strip() for v in value)


def _zone(f: Fields) -> ZoneInfo | None:
    name = f.text("timezone", "UTC")
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        f.fail("timezone", f'unknown time zone "{name}" (an IANA name like "Europe/Berlin")')
        return None


def _moment(f: Fields, key: str, zone: ZoneInfo) -> datetime | None:
    """A time from YAML: a string, or the datetime/date YAML already parsed."""
    value = f.raw.get(key)
    if value is None:
        f.fail(key, "required field is missing")
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            f.fail(key, f'expected a time like "2026-12-01 10:00" (or with an offset, '
                        f'"2026-12-01T10:00+01:00"), got "{value}"')
            return None
    else:
        f.fail(key, f"expected a time, got {type(value).__name__}")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _weekly(f: Fields, max_s: float) -> Weekly | None:
    days = f.raw.get("days")
    if isinstance(days, str):
        days = [days]
    picked: list[int] = []
    if not isinstance(days, list) or not days:
        f.fail("days", f"expected a list of weekdays ({', '.join(DAYS)})")
    else:
        for day in days:
            key = str(day).strip().lower()[:3]
            if key not in DAYS:
                f.fail("days", f'unknown weekday "{day}" (expected some of: {", ".join(DAYS)})')
                return None
            if DAYS.index(key) not in picked:
                picked.append(DAYS.index(key))
    clock = f.text("start", required=True)
    match = _CLOCK.match(clock.strip()) if clock else None
    if clock and match is None:
        f.fail("start", f'expected a time of day like "02:00", got "{clock}"')
    duration_s = f.duration("duration", required=True)
    if duration_s is not None and duration_s > max_s:
        f.fail("duration", f"{format_duration(duration_s)} is longer than max_duration "
                           f"({format_duration(max_s)})")
        return None
    if not picked or match is None or duration_s is None:
        return None
    return Weekly(tuple(sorted(picked)), time(int(match.group(1)), int(match.group(2))),
                  timedelta(seconds=duration_s))


def validate(config: Config, problems: Problems, now: datetime | None = None) -> None:
    """Windows name endpoints that exist (unless discovery adds more at run time), and no
    two windows covering one endpoint are on at the same time."""
    settings = MaintenanceSettings.of(config)
    if not settings.windows:
        return
    match = Matcher(e.name for e in config.endpoints)
    covered: list[set[str]] = []
    for i, window in enumerate(settings.windows):
        names: set[str] = set()
        for target in window.targets:
            found = match(target)
            if not found and not config.adds_endpoints_at_run_time:
                what = "matches no endpoint" if is_glob(target) else "is not an endpoint"
                problems.add(f"{SECTION}.windows[{i}].endpoints", f'"{target}" {what}')
            names.update(found or [target])
        covered.append(names)
    since = now or datetime.now(UTC)
    for i, a in enumerate(settings.windows):
        for j in range(i + 1, len(settings.windows)):
            b = settings.windows[j]
            shared = covered[i] & covered[j]
            if not shared:
                continue
            clash = overlap(a, b, since - timedelta(days=8), since + HORIZON)
            if clash is not None:
                problems.add(f"{SECTION}.windows[{j}]",
                             f'overlaps window "{a.name}" on {sorted(shared)[0]} at '
                             f"{clash[0].isoformat(timespec='minutes')}")
