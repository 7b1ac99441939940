"""The ``ledger:`` and ``learning:`` config sections, validated with exact messages.

```yaml
ledger:                  # the older place of verdict: (down_after, up_after, persistent_after)
learning:
  path: /var/lib/runpod-probe/LEARNING.md   # default: LEARNING.md beside the database
  targets:               # more files, each with the lessons its filter keeps
    - {path: /srv/magic/LEARNING.md, kinds: [provider, fleet]}
  patterns:              # Meta-Patterns thresholds (the defaults below)
    window: 7d
    recurring_incidents: 3
    time_of_day_days: 3
    quiet_after: 7d
    regression_ratio: 1.5
    regression_mads: 4
    regression_samples: 20
    baseline_samples: 50
    group_within: 10m    # incidents of one GPU type or data centre starting this close ...
    group_endpoints: 2   # ... on at least this many endpoints are a joint start,
    group_starts: 3      # ... and this many joint starts in the window a pattern
    latency_samples: 100 # probe latency: samples in the last 24 h (and 3x in the baseline)
  writer: probe-1        # an HA pair: only the probe of this instance appends (default: true,
                         # this probe; false: none); the other keeps its ledger
# learning: false                           # append nowhere
```
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.config.fields import Fields, Problems
from probe.config.load import HYSTERESIS_KEYS, parse_hysteresis
from probe.config.model import Config, Hysteresis, ParseContext
from probe.ledger.learning import LearningFileError, check_appendable
from probe.ledger.lessons import LEDGER_TABLE, PATTERNS_TABLE, Lesson

DAY_S = 86400.0
LESSON_KINDS = ("pod", "serverless", "provider", "fleet", "other")


@dataclass(frozen=True, slots=True)
class PatternSettings:
    """When a Meta-Pattern may be said. The defaults keep a quiet healthy fleet (and single
    random failures) from writing any pattern in a week."""

    window_s: float = 7 * DAY_S  # what "recently" means for recurrence and time of day
    recurring_incidents: int = 3  # incidents of one endpoint and cause within the window
    time_of_day_days: int = 3  # distinct days with an incident in the same UTC hour
    quiet_after_s: float = 7 * DAY_S  # a pattern ends after this long without an incident
    regression_ratio: float = 1.5  # the last 24 h median against the baseline median
    regression_mads: float = 4.0  # ... and this many (scaled) MADs above it
    regression_samples: int = 20  # samples in the last 24 h before a regression is said
    baseline_samples: int = 50  # samples in the baseline (the 6 days before)
    group_within_s: float = 600.0  # incidents in one group starting this close: together
    group_endpoints: int = 2  # distinct endpoints in a joint start
    group_starts: int = 3  # joint starts of one group within the window
    latency_samples: int = 100  # probe latency: in the last 24 h (3x that in the baseline)


@dataclass(frozen=True, slots=True)
class LessonFilter:
    """Which lessons a target keeps: each given field must match (empty: any)."""

    tables: tuple[str, ...] = ()  # ledger, patterns
    kinds: tuple[str, ...] = ()  # pod, serverless, provider, fleet, other
    events: tuple[str, ...] = ()  # entry kinds: down, recovered, recurring, ...
    endpoints: tuple[str, ...] = ()  # names or globs

    def keeps(self, lesson: Lesson) -> bool:
        return ((not self.tables or lesson.table in self.tables)
                and (not self.kinds or lesson.kind in self.kinds)
                and (not self.events or lesson.event in self.events)
                and (not self.endpoints or any(fnmatch.fnmatchcase(lesson.endpoint, g)
                                               for g in self.endpoints)))


@dataclass(frozen=True, slots=True)
class Target:
    path: Path
    keep: LessonFilter = LessonFilter()
    field: str = "learning.path"  # where the config gives it


@dataclass(frozen=True, slots=True)
class LearningSettings:
    """The ``learning:`` section. Absent: LEARNING.md beside the database (created with its
    table when missing); ``learning: false``: nothing is appended."""

    path: Path | None  # None: beside the database
    enabled: bool = True
    targets: tuple[Target, ...] = ()
    patterns: PatternSettings = field(default_factory=PatternSettings)
    # who appends: True (this probe), False (none) or the instance name of the one probe of
    # an HA pair that does (both share one config; the other keeps its ledger)
    writer: bool | str = True

    @classmethod
    def of(cls, config: Config) -> LearningSettings | None:
        """The settings to append with (path resolved), or None when learning is off or
        another probe of the fleet is the writer."""
        settings = cls.configured(config)
        if not settings.enabled or not settings.writes(config.instance):
            return None
        return cls(settings.path or config.storage.path.with_name("LEARNING.md"), True,
                   settings.targets, settings.patterns, settings.writer)

    def writes(self, instance: str) -> bool:
        """Whether the probe named ``instance`` is the one that appends."""
        return self.writer if isinstance(self.writer, bool) else self.writer == instance

    @classmethod
    def configured(cls, config: Config) -> LearningSettings:
        settings = config.sections.get("learning")
        return settings if isinstance(settings, LearningSettings) else cls(None)

    def all_targets(self) -> tuple[Target, ...]:
        """Every file to append to: the main one (everything), then the filtered ones."""
        main = (Target(self.path),) if self.path is not None else ()
        return (*main, *self.targets)


def parse_ledger(raw: Any, path: str, problems: Problems,
                 _: ParseContext) -> Hysteresis | None:
    """The older place of the verdict's hysteresis (now ``verdict:``), still read; None when
    the section is absent."""
    if raw is None:
        return None
    return parse_hysteresis(Fields(raw, path, problems, HYSTERESIS_KEYS))


def parse_learning(raw: Any, path: str, problems: Problems,
                   _: ParseContext) -> LearningSettings:
    if raw is None or raw is True:
        return LearningSettings(None)
    if raw is False:
        return LearningSettings(None, enabled=False)
    f = Fields(raw, path, problems, ("path", "targets", "patterns", "writer"))
    file = f.text("path")
    writer = f.raw.get("writer", True)
    if not isinstance(writer, bool) and not (isinstance(writer, str) and writer.strip()):
        f.fail("writer", "expected true, false or the instance name of the probe that "
                         f"appends, got {writer!r}")
        writer = True
    targets = f.raw.get("targets")
    parsed: list[Target] = []
    if targets is not None and not isinstance(targets, list):
        f.fail("targets", "expected a list of {path, tables, kinds, events, endpoints}")
    for n, item in enumerate(targets if isinstance(targets, list) else []):
        target = _target(item, f"{path}.targets[{n}]", problems)
        if target is not None:
            parsed.append(target)
    return LearningSettings(Path(file) if file else None, True, tuple(parsed),
                            _patterns(f.raw.get("patterns"), f"{path}.patterns", problems),
                            writer)


def _target(raw: Any, path: str, problems: Problems) -> Target | None:
    f = Fields(raw, path, problems, ("path", "tables", "kinds", "events", "endpoints"))
    file = f.text("path", required=True)
    keep = LessonFilter(*(f.string_list(key, ()) for key in ("tables", "kinds", "events",
                                                             "endpoints")))
    for key, allowed in (("tables", (LEDGER_TABLE, PATTERNS_TABLE)), ("kinds", LESSON_KINDS)):
        wrong = [v for v in getattr(keep, key) if v not in allowed]
        if wrong:
            f.fail(key, f"unknown {', '.join(wrong)} (expected some of {', '.join(allowed)})")
    return Target(Path(file), keep, f"{path}.path") if file else None


def _patterns(raw: Any, path: str, problems: Problems) -> PatternSettings:
    d = PatternSettings()
    f = Fields(raw, path, problems, ("window", "recurring_incidents", "time_of_day_days",
                                     "quiet_after", "regression_ratio", "regression_mads",
                                     "regression_samples", "baseline_samples",
                                     "group_within", "group_endpoints", "group_starts",
                                     "latency_samples"))
    return PatternSettings(
        f.duration("window", d.window_s), f.integer("recurring_incidents",
                                                    d.recurring_incidents, minimum=2),
        f.integer("time_of_day_days", d.time_of_day_days, minimum=2),
        f.duration("quiet_after", d.quiet_after_s),
        _number(f, "regression_ratio", d.regression_ratio, above=1.0),
        _number(f, "regression_mads", d.regression_mads, above=0.0),
        f.integer("regression_samples", d.regression_samples, minimum=3),
        f.integer("baseline_samples", d.baseline_samples, minimum=3),
        f.duration("group_within", d.group_within_s),
        f.integer("group_endpoints", d.group_endpoints, minimum=2),
        f.integer("group_starts", d.group_starts, minimum=2),
        f.integer("latency_samples", d.latency_samples, minimum=3))


def _number(f: Fields, key: str, default: float, above: float) -> float:
    value = f.raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        f.fail(key, f"expected a number, got {value!r}")
        return default
    if value <= above:
        f.fail(key, f"must be greater than {above:g}, got {value}")
        return default
    return float(value)


def validate(config: Config, problems: Problems) -> None:
    """The hysteresis is given in one place; a LEARNING.md we could not append to must stop
    the daemon before it probes."""
    if config.verdict is not None and config.sections.get("ledger") is not None:
        problems.add("ledger", "down_after, up_after and persistent_after belong in verdict: "
                     "now; give them there only (the file has both sections)")
    configured = LearningSettings.configured(config)
    if (isinstance(configured.writer, str) and configured.writer != config.instance
            and config.peers is None):
        problems.add("learning.writer", f"names probe {configured.writer!r}, but this probe is "
                     f"{config.instance!r} and has no peers: no probe would append (set "
                     "instance: or peers:, or leave learning.writer out)")
    learning = LearningSettings.of(config)
    if learning is None:
        return
    seen: set[Path] = set()
    for target in learning.all_targets():
        if target.path in seen:
            problems.add(target.field, f"{target.path} is already a target: one file, one "
                         "list of rows")
        seen.add(target.path)
        try:
            check_appendable(target.path)
        except LearningFileError as exc:
            problems.add(target.field, f"{target.path} {exc}")
