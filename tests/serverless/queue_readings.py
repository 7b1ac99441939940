"""Build /health answers for the serverless tests."""

from __future__ import annotations

from typing import Any

from probe.serverless.health import QueueHealth, parse_health


def health_json(in_queue: int = 0, in_progress: int = 0, completed: int = 0, failed: int = 0,
                retried: int = 0, **workers: int) -> dict[str, Any]:
    counts = {"idle": 0, "initializing": 0, "ready": 0, "running": 0, "throttled": 0,
              "unhealthy": 0}
    counts.update(workers)
    return {"jobs": {"completed": completed, "failed": failed, "inProgress": in_progress,
                     "inQueue": in_queue, "retried": retried},
            "workers": counts}


def reading(**kwargs: int) -> QueueHealth:
    return parse_health(health_json(**kwargs))
