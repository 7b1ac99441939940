"""Human durations ("30s", "500ms", "2m", "1h") to seconds, and back."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> float:
    """Return seconds for a duration like ``"30s"``; raise ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration like \"30s\", got \"{text}\"")
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """Shortest readable form: 0.5 -> "500ms", 90 -> "1m30s", 7200 -> "2h"."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
