"""Export the pod load read by the ``vllm_metrics`` check as ``runpod_probe_vllm_*`` gauges.

Values come from each endpoint's latest ``vllm_metrics`` result, so they are as fresh as the
last scrape. A failed scrape has no values, and then the series are absent rather than
stale: a number we did not observe this time would be a lie.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from probe.config.model import Config
from probe.exposition.text import Family
from probe.job import Job
from probe.metrics import P
from probe.outcome import ProbeResult

CHECK = "vllm_metrics"
# (metric name, help, key in the result details)
GAUGES = (
    ("vllm_requests_waiting", "Requests queued in vLLM (vllm:num_requests_waiting, summed over "
     "engines) at the last scrape.", "waiting"),
    ("vllm_requests_running", "Requests in vLLM's running batch (vllm:num_requests_running, "
     "summed over engines) at the last scrape.", "running"),
    ("vllm_kv_cache_usage_ratio", "KV-cache usage 0..1 of the fullest engine "
     "(vllm:kv_cache_usage_perc, or vllm:gpu_cache_usage_perc on old servers).",
     "kv_cache_usage"),
    ("vllm_generation_tokens_per_second", "Generated tokens per second between the last two "
     "scrapes (rate of vllm:generation_tokens_total, summed over engines).",
     "generation_tokens_per_s"),
    ("vllm_stuck_checks", "Consecutive scrapes with requests waiting and no token generated "
     "(engine_stuck at the endpoint's stuck_after).", "stuck_streak"),
)

# Gauges computed from what another series already says (the rate of the engine's counter):
# exported only with ``metrics: {per_check: true}``.
DERIVED = frozenset({"generation_tokens_per_s"})


class EngineMetrics(Collector):
    """Fed by the prober (one result at a time), read by the /metrics thread."""

    def __init__(self, per_check: bool = False) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Any]] = {}  # endpoint -> latest scrape's details
        # the tokens/s gauge only with ``metrics: {per_check: true}``: rate() the counter
        self._gauges = GAUGES if per_check else tuple(g for g in GAUGES if g[2] not in DERIVED)

    def observe(self, result: ProbeResult, row_id: int | None = None) -> None:
        if result.check == CHECK:
            with self._lock:
                self._latest[result.endpoint] = result.details

    def on_plan(self, config: Config, jobs: Sequence[Job]) -> None:
        """Forget endpoints that no longer scrape vLLM."""
        scraping = {job.endpoint.name for job in jobs if CHECK in job.checks}
        with self._lock:
            for name in [n for n in self._latest if n not in scraping]:
                del self._latest[name]

    def collect(self) -> Iterator[Metric]:
        families = {key: Family(P + name, help_text, "gauge", labels=["endpoint"])
                    for name, help_text, key in self._gauges}
        with self._lock:
            latest = sorted(self._latest.items())
        # The engine's own counter, as scraped: rate() it in Prometheus rather than trusting
        # the rate computed between two scrapes (it resets when the server restarts).
        generated = Family(P + "vllm_generation_tokens", "Tokens vLLM generated "
                           "(vllm:generation_tokens_total summed over engines) at the last "
                           "scrape.", "counter", labels=["endpoint"])
        for endpoint, details in latest:
            for key, family in families.items():
                value = details.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric([endpoint], float(value))
            total = details.get("generation_tokens_total")
            if isinstance(total, int | float) and not isinstance(total, bool):
                generated.add_metric([endpoint], float(total))
        yield from families.values()
        yield generated
