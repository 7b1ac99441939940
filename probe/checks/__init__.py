"""Checks: one module per kind of check, each ``async def check(endpoint, client, ctx)``.

The registry lives in ``probe.checks.registry`` (imported lazily here so that the config
loader can name checks without importing every implementation).
"""

from __future__ import annotations

# The checks an endpoint runs when its config does not list them. A pod runs vLLM, whose
# /v1/models answers 200 even with a dead engine: /health (liveness) and /metrics (queue,
# engine_stuck) complete the picture, and the endpoint is up only when all three pass.
DEFAULT_CHECKS: dict[str, tuple[str, ...]] = {
    "pod": ("models", "health", "vllm_metrics"),
    # The queue check reads RunPod's free /health; the models route would wake (and bill) a worker.
    "serverless": ("queue",),
    "openai": ("models",),
}


def known_checks() -> tuple[str, ...]:
    from probe.checks.registry import CHECKS

    return tuple(CHECKS)
