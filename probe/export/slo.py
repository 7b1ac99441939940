"""Service level objectives per endpoint, and the ``slo:`` config section that sets them.

```yaml
slo:
  availability: 99.5     # % of observations that pass, per endpoint
  latency: 99            # % of checks that finish under latency_threshold
  latency_threshold: 2.5s  # a bucket bound of runpod_probe_latency_seconds (api): 0.25s, 1s,
                           # 2.5s or 10s
  period: 30d            # the error budget's period
  min_events: 20         # observations per check in a long window before a burn can alert
  page_causes: []        # causes that open tickets by default but should page
```

``page_causes`` takes causes of ``probe.export.rules.SERVES_WRONGLY`` (answer_wrong,
context_too_small, model_mismatch): listed, their endpoint alerts page and their failures
burn the availability SLO like any other; by default they open tickets and do not.

The burn-rate windows and factors follow the Google SRE workbook ("Alerting on SLOs",
multiwindow multi-burn-rate): each alert spends a fixed share of the period's budget, so
the factors are derived from ``period`` (14.4, 6, 3 and 1 for 30 days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from probe.config.fields import Fields, Problems
from probe.durations import format_duration
from probe.export.rules import SERVES_WRONGLY
from probe.state import LATENCY_BUCKETS

KEYS = ("availability", "latency", "latency_threshold", "period", "min_events", "page_causes")
OBJECTIVE_RANGE = (90.0, 99.999)
PERIOD_RANGE_S = (7 * 86400.0, 90 * 86400.0)
DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """An alert condition: both windows burn faster than ``budget_share`` of the period."""

    severity: str  # critical pages, warning opens a ticket
    long: str
    short: str
    long_s: float
    budget_share: float  # of the period's error budget spent when the long window fires

    def factor(self, period_s: float) -> float:
        return round(self.budget_share * period_s / self.long_s, 4)


# The workbook's table for a 30-day period: 2 % of the budget in 1 h pages, and so on.
BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("critical", "1h", "5m", 3600.0, 0.02),
    BurnWindow("critical", "6h", "30m", 6 * 3600.0, 0.05),
    BurnWindow("warning", "1d", "2h", DAY_S, 0.10),
    BurnWindow("warning", "3d", "6h", 3 * DAY_S, 0.10),
)
# Every window some alert reads, shortest first.
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True, slots=True)
class SloSettings:
    availability: float = 99.5  # percent
    latency: float = 99.0  # percent
    latency_threshold_s: float = 2.5
    period_s: float = 30 * DAY_S
    min_events: int = 20
    page_causes: tuple[str, ...] = ()  # of SERVES_WRONGLY: page instead of a ticket

    @property
    def period(self) -> str:
        return format_duration(self.period_s)

    def objective(self, slo: str) -> float:
        """The objective of ``availability`` or ``latency`` as a ratio (0.995)."""
        percent = self.availability if slo == "availability" else self.latency
        return round(percent / 100.0, 6)

    def budget(self, slo: str) -> float:
        return round(1.0 - self.objective(slo), 6)

    def guard(self, slo: str, window: BurnWindow) -> int:
        """Observations per check a long window needs before its burn may alert.

        At least ``min_events``, and never so few that one failed round of checks alone
        crosses the threshold (a single failure among N is 1/N of the events).
        """
        threshold = window.factor(self.period_s) * self.budget(slo)
        return max(self.min_events, math.ceil(1.0 / threshold - 1e-9)) if threshold < 1 \
            else self.min_events


def parse_slo(raw: Any, path: str, problems: Problems) -> SloSettings:
    """The ``slo:`` section (absent: the defaults); every problem is one line in ``problems``."""
    default = SloSettings()
    f = Fields(raw, path, problems, KEYS)
    threshold = f.duration("latency_threshold", default.latency_threshold_s)
    if threshold not in LATENCY_BUCKETS:
        bounds = ", ".join(f"{b:g}s" for b in LATENCY_BUCKETS)
        f.fail("latency_threshold", "must be a bucket bound of runpod_probe_latency_seconds"
                                    f'{{check_kind="api"}} ({bounds}), got {threshold:g}s')
        threshold = default.latency_threshold_s
    period = f.duration("period", default.period_s)
    low, high = PERIOD_RANGE_S
    if not low <= period <= high:
        f.fail("period", f"must be between {format_duration(low)} and {format_duration(high)}, "
                         f"got {format_duration(period)}")
        period = default.period_s
    page_causes = f.string_list("page_causes", ())
    for cause in page_causes:
        if cause not in SERVES_WRONGLY:
            f.fail("page_causes", f"{cause!r} is not one of {', '.join(SERVES_WRONGLY)} (the "
                                  "others page already)")
    return SloSettings(
        availability=_percent(f, "availability", default.availability),
        latency=_percent(f, "latency", default.latency),
        latency_threshold_s=threshold, period_s=period,
        min_events=f.integer("min_events", default.min_events, minimum=1),
        page_causes=tuple(c for c in page_causes if c in SERVES_WRONGLY),
    )


def _percent(f: Fields, key: str, default: float) -> float:
    value = f.raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        f.fail(key, f"expected a percentage like 99.5, got {value!r}")
        return default
    low, high = OBJECTIVE_RANGE
    if not low <= value <= high:
        f.fail(key, f"must be between {low:g} and {high:g}, got {value:g}")
        return default
    return float(value)


def bucket_label(bound: float) -> str:
    """The ``le`` label prometheus_client writes for a bucket bound (2.5 -> "2.5", 10 -> "10.0")."""
    return repr(float(bound))
