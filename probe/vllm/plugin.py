"""The vLLM engine feature as a value: the ``health`` and ``vllm_metrics`` checks, the
``stuck_after`` endpoint key, and the ``runpod_probe_vllm_*`` gauges."""

from __future__ import annotations

from typing import Any

from probe.check import CheckSpec
from probe.config.fields import Fields
from probe.config.model import DEFAULT_CHECKS, ConfigExtension
from probe.features import Attachment, Feature, Host
from probe.vllm import health, scrape
from probe.vllm.metrics import EngineMetrics

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


def start(host: Host) -> Attachment:
    metrics = EngineMetrics(per_check=host.config.metrics.per_check)
    return Attachment(collectors=(metrics,), observers=(metrics.observe,),
                      on_plan=metrics.on_plan)


FEATURE = Feature(
    name="vllm",
    config=ConfigExtension(endpoint_keys={"stuck_after": parse_stuck_after}),
    checks=(CheckSpec("health", health.check), CheckSpec("vllm_metrics", scrape.check)),
    startup=(start,),
)
