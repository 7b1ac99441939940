"""The spine's own checks. Features add theirs through their ``Feature`` record; the merged
set (``Plugins.checks``) is what the runner resolves names against."""

from __future__ import annotations

from probe.check import CheckSpec, worker_route
from probe.core_checks import models
from probe.outcome import CheckRole

CORE_CHECKS: tuple[CheckSpec, ...] = (
    # /v1/models: on a serverless endpoint, its OpenAI route (a job on a worker)
    CheckSpec("models", models.check, cost=worker_route, role=CheckRole.SERVED_MODEL),
)
