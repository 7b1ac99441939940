"""Serverless test builders: /health answers and a serverless endpoint."""

from __future__ import annotations

from typing import Any

from helpers import endpoint

from probe.config.model import Endpoint
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


ROOT = "http://api.test/v2/ep1"


def serverless(**overrides: Any) -> Endpoint:
    values: dict[str, Any] = dict(name="ep1", kind="serverless", root_url=ROOT,
                                  openai_base=f"{ROOT}/openai/v1", checks=("queue",),
                                  pod_id=None, port=None, endpoint_id="ep1",
                                  api_key_env="RUNPOD_API_KEY")
    values.update(overrides)
    return endpoint(**values)
