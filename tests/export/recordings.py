"""The daemon's recorded /metrics (tests/data/recordings, written by record_daemon.py) as
promtool input series: one recorded step a minute.

A series the daemon stopped writing gets a ``stale`` marker, as Prometheus writes one when
a series leaves a scrape (or the target goes down), then nothing; ``up`` is 1 for a step the
daemon answered and 0 for one while it was stopped. Unix timestamps are moved onto
promtool's clock (0 at the first step) and intervals scaled, so that a round of probes
recorded at 250 ms reads as a round at a minute.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

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
            if metric.endswith("_timestamp_seconds"):
                value = STEP_S * i - (times[i] - value) * scale
            elif metric.endswith("_interval_seconds"):
                value *= scale
            written.append(_number(value))
        out.append({"series": key, "values": " ".join(written)})
    target = ",".join(f'{k}="{v}"' for k, v in sorted(rec["target"].items()))
    up = " ".join("1" if step["daemon"] else "0" for step in rec["steps"])
    out.append({"series": f"up{{{target}}}", "values": up})
    return out


def steps(name: str) -> int:
    return len(load(name)["steps"])


def target() -> dict[str, str]:
    return dict(load("healthy")["target"])
