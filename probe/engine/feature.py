"""Plug engine liveness and load into the spine: the ``stuck_after`` endpoint key (with its
checks) and the ``runpod_probe_vllm_*`` metrics. Imported once by ``register_features``."""

from __future__ import annotations

from typing import Any

from probe import metrics
from probe.checks import DEFAULT_CHECKS
from probe.config import features
from probe.config.fields import Fields
from probe.engine import prometheus

ENGINE_CHECKS = ("health", "vllm_metrics")


def parse_stuck_after(f: Fields) -> int | None:
    """``stuck_after``: scrapes in a row with requests waiting and no new tokens before the
    engine counts as stuck. Also refuses vLLM engine checks where no vLLM server answers (a
    serverless endpoint's /health is RunPod's queue, not vLLM's)."""
    value: int | None = f.integer("stuck_after", minimum=2)
    kind = f.raw.get("kind")
    checks = f.raw.get("checks")
    listed = isinstance(checks, list)
    effective: Any = checks if listed else DEFAULT_CHECKS.get(str(kind), ())
    if kind == "serverless" and listed:
        wrong = [c for c in ENGINE_CHECKS if c in effective]
        if wrong:
            f.fail("checks", f'check "{wrong[0]}" reads a vLLM server\'s own /{_route(wrong[0])}'
                             ' and does not apply to kind "serverless"')
    if f.has("stuck_after") and "vllm_metrics" not in effective:
        f.fail("stuck_after", 'has no effect: the endpoint does not run the "vllm_metrics" '
                              "check")
    return value


def _route(check: str) -> str:
    return "health" if check == "health" else "metrics"


def _register() -> None:
    features.ENDPOINT_KEYS["stuck_after"] = parse_stuck_after
    metrics.PROVIDERS.append(prometheus.provide)


_register()
