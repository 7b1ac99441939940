"""Every check by name. Adding a kind of check is one module plus one line here."""

from __future__ import annotations

from probe.checks import health, models, vllm_metrics
from probe.checks.base import CheckFn

CHECKS: dict[str, CheckFn] = {
    "models": models.check,
    "health": health.check,
    "vllm_metrics": vllm_metrics.check,
}
