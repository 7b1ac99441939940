"""The status page as HTML: one server-rendered Jinja template (autoescaped: every name is
text), inline SVG sparklines drawn here from numbers only, no script, nothing fetched from
elsewhere, states in words (colour only repeats them), dark and light from the reader's
system setting, refreshed every ``REFRESH_S`` seconds."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup

from probe.durations import format_duration
from probe.jinja import environment

REFRESH_S = 30
SPARK_W, SPARK_H = 120, 24
STATE_MARKS = {"up": "●", "down": "✖", "degraded": "▲", "maintenance": "◆", "unknown": "?"}


def sparkline(values: list[float], label: str) -> Markup:
    """A polyline of ``values`` scaled to the box, with its range as the tooltip."""
    if len(values) < 2:
        return Markup('<span class="muted">no data</span>')
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = SPARK_W / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{SPARK_H - 2 - (v - low) / span * (SPARK_H - 4):.1f}"
                      for i, v in enumerate(values))
    title = f"{label}: {low * 1000:.0f}–{high * 1000:.0f} ms over the last {len(values)}"
    return Markup(  # numbers only: nothing here comes from an endpoint's text
        f'<svg class="spark" width="{SPARK_W}" height="{SPARK_H}" viewBox="0 0 {SPARK_W} '
        f'{SPARK_H}" role="img" aria-label="{title}"><title>{title}</title>'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/>'
        f"</svg>")


def percent(ratio: float | None) -> str:
    if ratio is None:
        return "no data"
    return f"{ratio * 100:.2f} %" if ratio < 1 else "100 %"


def spent(by_state: dict[str, float] | None) -> str:
    """The time not up, by state ("down 5m · degraded 40s"): what the ratio is made of."""
    parts = [f"{state} {format_duration(seconds)}" for state, seconds in (by_state or {}).items()
             if state != "up" and seconds >= 1]
    return " · ".join(parts)


def ago(since: str | None, now: str) -> str:
    if not since:
        return ""
    try:
        seconds = (datetime.fromisoformat(now) - datetime.fromisoformat(since)).total_seconds()
    except ValueError:
        return ""
    return format_duration(max(seconds, 0.0)) if seconds >= 1 else "just now"


def local(moment: str | None) -> str:
    if not moment:
        return ""
    try:
        return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return moment


@functools.cache
def _template() -> jinja2.Template:
    return environment(spark=sparkline, percent=percent, local=local,
                       spent=spent).get_template(
        "status.html")


def failing(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks that are not ok, those that say the same thing together (a stopped pod's 404
    is one line, not six)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for check in checks:
        if check["outcome"] == "ok":
            continue
        key = (check["outcome"] or "not run yet", check["message"] or "")
        group = groups.setdefault(key, {"names": [], "outcome": key[0], "message": key[1],
                                        "latency_s": check["latency_s"]})
        group["names"].append(check["name"])
    return list(groups.values())


def render(doc: dict[str, Any]) -> str:
    page = doc["page"]

    def link(**changes: Any) -> str:
        params = {"state": page["state"], "q": page["q"], "page": page["number"], **changes}
        query = urlencode({k: v for k, v in params.items() if v not in (None, "", 1)})
        return "?" + query if query else "./"

    return _template().render(doc=doc, page=page, link=link, marks=STATE_MARKS, failing=failing,
                              refresh_s=REFRESH_S, ago=lambda s: ago(s, doc["generated_at"]))
