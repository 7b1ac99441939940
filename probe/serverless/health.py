"""Parse a serverless endpoint's ``GET /health`` into counters the rules can trust.

Every counter is optional (RunPod's API versions differ: ``unhealthy`` is new, older
answers lack ``initializing``/``ready``/``throttled``): an absent one reads as 0 and is
listed in ``absent``. Keys we do not know are kept, so a new counter shows up in the stored
evidence before anyone teaches the rules about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probe.http import BadBody

JOB_COUNTERS = ("completed", "failed", "inProgress", "inQueue", "retried")
WORKER_COUNTERS = ("idle", "initializing", "ready", "running", "throttled", "unhealthy")
SECTIONS = {"jobs": JOB_COUNTERS, "workers": WORKER_COUNTERS}


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """One ``/health`` reading. ``jobs``/``workers`` hold every known counter (absent: 0)."""

    jobs: dict[str, int]
    workers: dict[str, int]
    absent: tuple[str, ...] = ()  # "workers.unhealthy": not in the answer, read as 0
    unknown: dict[str, Any] = field(default_factory=dict)  # "workers.outdated": 2, "x": ...

    @property
    def in_queue(self) -> int:
        return self.jobs["inQueue"]

    @property
    def serving(self) -> bool:
        """Some worker can take a job now (idle/ready) or is taking one (running)."""
        return any(self.workers[name] for name in ("idle", "ready", "running"))

    @property
    def no_workers(self) -> bool:
        """Every worker counter is present and 0 (an absent one might not be 0)."""
        return not any(self.workers[name] for name in WORKER_COUNTERS) \
            and not any(name.startswith("workers.") for name in self.absent)

    def as_details(self) -> dict[str, Any]:
        return {"jobs": dict(self.jobs), "workers": dict(self.workers),
                "absent": list(self.absent), "unknown": dict(self.unknown)}


def parse_health(document: dict[str, Any]) -> QueueHealth:
    """Read the counters; raise ``BadBody`` when the answer is not a /health answer."""
    counters: dict[str, dict[str, int]] = {}
    absent: list[str] = []
    unknown: dict[str, Any] = {k: v for k, v in document.items() if k not in SECTIONS}
    for section, names in SECTIONS.items():
        raw = document.get(section)
        if not isinstance(raw, dict):
            got = "nothing" if raw is None else type(raw).__name__
            raise BadBody(f'expected "{section}" to be an object of counters, got {got}')
        values: dict[str, int] = {}
        for name in names:
            if name not in raw or raw[name] is None:
                absent.append(f"{section}.{name}")
                values[name] = 0
                continue
            values[name] = _counter(raw[name], f"{section}.{name}")
        unknown.update({f"{section}.{k}": v for k, v in raw.items() if k not in names})
        counters[section] = values
    return QueueHealth(counters["jobs"], counters["workers"], tuple(absent), unknown)


def _counter(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadBody(f"{where} is not a non-negative whole number: {value!r}"[:160])
    return value
