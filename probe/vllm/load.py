"""Read the engine's load from the Prometheus text of vLLM's ``/metrics``.

Only the few series a probe needs are parsed (the page is 50 KB on a tiny model and a few
hundred KB on a GPU server, mostly histograms we do not use). Values are summed over the
``engine`` label (one per data-parallel rank; absent on old V0 servers), except the
KV-cache usage, a 0..1 fraction per engine, where the fullest engine is what matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = "vllm:kv_cache_usage_perc"
KV_CACHE_OLD = "vllm:gpu_cache_usage_perc"  # before vLLM 0.11; gone in 0.12
GENERATION_TOKENS = "vllm:generation_tokens_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
WANTED = (WAITING, RUNNING, KV_CACHE, KV_CACHE_OLD, GENERATION_TOKENS, PROMPT_TOKENS)
REQUIRED = (WAITING, RUNNING, GENERATION_TOKENS)


class NotEngineMetrics(ValueError):
    """The page cannot be read, or lacks the series needed to judge the engine."""


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One scrape of one vLLM server."""

    waiting: float
    running: float
    generation_tokens_total: float
    kv_cache_usage: float | None = None
    prompt_tokens_total: float | None = None
    engines: int = 1
    models: tuple[str, ...] = ()


def parse_engine_load(text: str) -> EngineLoad:
    """The engine load in a /metrics page (text format 0.0.4 or 1.0.0)."""
    values: dict[str, list[float]] = {name: [] for name in WANTED}
    engines: set[str] = set()
    models: set[str] = set()
    try:
        families = list(text_string_to_metric_families(_wanted_lines(text)))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise NotEngineMetrics(f"/metrics is not Prometheus text: {exc}") from None
    for family in families:
        for sample in family.samples:
            if sample.name in values and math.isfinite(sample.value):
                values[sample.name].append(sample.value)
                engines.add(sample.labels.get("engine", ""))
                if "model_name" in sample.labels:
                    models.add(sample.labels["model_name"])
    missing = [name for name in REQUIRED if not values[name]]
    if missing:
        raise NotEngineMetrics(f"/metrics has no {', '.join(missing)} (not a vLLM server?)")
    kv = values[KV_CACHE] or values[KV_CACHE_OLD]
    prompt = values[PROMPT_TOKENS]
    return EngineLoad(
        waiting=sum(values[WAITING]), running=sum(values[RUNNING]),
        generation_tokens_total=sum(values[GENERATION_TOKENS]),
        kv_cache_usage=max(kv) if kv else None, prompt_tokens_total=sum(prompt) if prompt else None,
        engines=max(len(engines), 1), models=tuple(sorted(models)),
    )


def _wanted_lines(text: str) -> str:
    """Only the sample lines of the series we read: parsing the whole page would cost
    milliseconds per pod per check, and a malformed series we never read must not fail us."""
    keep = [line for line in text.splitlines()
            if line.startswith(WANTED) and line.partition("{")[0].partition(" ")[0] in WANTED]
    return "\n".join(keep) + "\n" if keep else ""
