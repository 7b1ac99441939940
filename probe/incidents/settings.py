"""The ``incidents:`` and ``vantage:`` config sections, validated with exact messages.

```yaml
incidents:
  min_endpoints: 3       # at least this many endpoints of one group ...
  min_share: 0.5         # ... and at least this share of the group ...
  window_intervals: 2    # ... going down with the same cause within this many intervals
vantage:
  reference_urls: [https://www.example.com/]  # optional: any HTTP answer means reachable
  interval: 15s          # how often the probe checks its own reachability
  timeout: 5s            # per vantage check
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.config.fields import Fields, Problems, url_problem
from probe.config.model import Config, ParseContext

MAX_REFERENCE_URLS = 10


@dataclass(frozen=True, slots=True)
class IncidentSettings:
    min_endpoints: int = 3
    min_share: float = 0.5
    window_intervals: float = 2.0

    @classmethod
    def of(cls, config: Config) -> IncidentSettings:
        settings = config.sections.get("incidents")
        return settings if isinstance(settings, IncidentSettings) else cls()


@dataclass(frozen=True, slots=True)
class VantageSettings:
    reference_urls: tuple[str, ...] = ()
    interval_s: float = 15.0
    timeout_s: float = 5.0

    @classmethod
    def of(cls, config: Config) -> VantageSettings:
        settings = config.sections.get("vantage")
        return settings if isinstance(settings, VantageSettings) else cls()


def _number(f: Fields, key: str, default: float, low: float, high: float | None,
            low_open: bool) -> float:
    if not f.has(key):
        return default
    value = f.raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        f.fail(key, f"expected a number, got {type(value).__name__}")
        return default
    too_low = value <= low if low_open else value < low
    if too_low or (high is not None and value > high):
        bounds = f"{'above' if low_open else 'at least'} {low:g}" + \
            (f" and at most {high:g}" if high is not None else "")
        f.fail(key, f"must be {bounds}, got {value}")
        return default
    return float(value)


def parse_incidents(raw: Any, path: str, problems: Problems,
                    _: ParseContext) -> IncidentSettings:
    f = Fields(raw, path, problems, ("min_endpoints", "min_share", "window_intervals"))
    return IncidentSettings(
        min_endpoints=f.integer("min_endpoints", 3, minimum=2),
        min_share=_number(f, "min_share", 0.5, 0.0, 1.0, low_open=True),
        window_intervals=_number(f, "window_intervals", 2.0, 0.0, None, low_open=True))


def parse_vantage(raw: Any, path: str, problems: Problems,
                  _: ParseContext) -> VantageSettings:
    f = Fields(raw, path, problems, ("reference_urls", "interval", "timeout"))
    urls = f.string_list("reference_urls", ())
    for i, url in enumerate(urls):
        problem = url_problem(url)
        if problem:
            problems.add(f"{path}.reference_urls[{i}]", problem)
    if len(urls) > MAX_REFERENCE_URLS:
        f.fail("reference_urls", f"at most {MAX_REFERENCE_URLS} URLs, got {len(urls)}")
    interval = f.duration("interval", 15.0)
    timeout = f.duration("timeout", 5.0)
    if timeout >= interval:
        f.fail("timeout", f"must be shorter than the interval ({interval:g}s), got {timeout:g}s")
    return VantageSettings(tuple(dict.fromkeys(urls)), interval, min(timeout, interval))
