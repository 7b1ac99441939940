"""The daemon's recorded /metrics (tests/data/recordings, written by record_daemon.py) as
promtool input series: one recorded step a minute.

A series the daemon stopped writing gets a ``stale`` marker, as Prometheus writes one when
a series leaves a scrape (or the target goes down), then nothing; ``up`` is 1 for a step the
daemon answered, 0 for one while it was stopped, and absent while Prometheus had no target
for it. Unix timestamps are moved onto promtool's clock (0 at the first step) and
intervals scaled, so that a round of probes recorded at 250 ms reads as a round at a
minute; the staleness grace (``STALE_GRACE_S``) added to the time a check goes stale is
wall-clock time, kept as it is.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from probe.metrics import STALE_FAMILY as STALE_AT
from probe.state import STALE_GRACE_S

RECORDINGS = Path(__file__).parents[1] / "data" / "recordings"
STEP_S = 60.0  # promtool's interval for a recorded step


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _number(value: float) -> str:
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"


def input_series(name: str) -> list[dict[str, str]]:
    rec = load(name)
    scale = STEP_S / rec["interval_s"]
    times = [step["t"] for step in rec["steps"]]
    out = []
    for key, values in rec["series"].items():
        metric = key.split("{", 1)[0]
        written, seen = [], False
        for i, value in enumerate(values):
            if value is None:
                written.append("stale" if seen else "_")
                seen = False
                continue
            seen = True
            if metric == STALE_AT:  # the grace is wall-clock time: not scaled
                value = STEP_S * i - (times[i] - value + STALE_GRACE_S) * scale + STALE_GRACE_S
            elif metric.endswith("_timestamp_seconds"):
                value = STEP_S * i - (times[i] - value) * scale
            elif metric.endswith("_interval_seconds"):
                value *= scale
            written.append(_number(value))
        out.append({"series": key, "values": " ".join(written)})
    target = ",".join(f'{k}="{v}"' for k, v in sorted(rec["target"].items()))
    up = _up([step["daemon"] and step.get("scraped", True) for step in rec["steps"]],
             [step.get("scraped", True) for step in rec["steps"]])
    out.append({"series": f"up{{{target}}}", "values": up})
    return out


def _up(answered: list[bool], scraped: list[bool]) -> str:
    """``up``: 1 or 0 while the target is scraped; none (stale once) while it is no target."""
    out: list[str] = []
    for ok, there in zip(answered, scraped, strict=True):
        if there:
            out.append("1" if ok else "0")
        else:
            out.append("stale" if out and out[-1] in ("0", "1") else "_")
    return " ".join(out)


def steps(name: str) -> int:
    return len(load(name)["steps"])


def target() -> dict[str, str]:
    return dict(load("healthy")["target"])
