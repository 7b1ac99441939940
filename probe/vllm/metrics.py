"""Export the pod load read by the ``vllm_metrics`` check as ``runpod_probe_vllm_*`` gauges.

Values come from each endpoint's latest ``vllm_metrics`` result, so they are as fresh as the
last scrape. A failed scrape has no values, and then the series are absent rather than
stale: a number we did not observe this time would be a lie.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from probe.config.model import Config
from probe.exposition.keyed import KeyedLines
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
    """Fed by the prober (one result at a time): each endpoint's series written then
    (``KeyedLines``), joined by a scrape."""

    def __init__(self, per_check: bool = False) -> None:
        # the tokens/s gauge only with ``metrics: {per_check: true}``: rate() the counter
        self._gauges = GAUGES if per_check else tuple(g for g in GAUGES if g[2] not in DERIVED)
        self._keys = tuple(key for _, _, key in self._gauges) + ("generation_tokens_total",)
        self._series = KeyedLines(self._families())

    def _families(self) -> list[Family]:
        families = [Family(P + name, help_text, "gauge", labels=["endpoint"])
                    for name, help_text, _ in self._gauges]
        # The engine's own counter, as scraped: rate() it in Prometheus rather than trusting
        # the rate computed between two scrapes (it resets when the server restarts).
        families.append(Family(P + "vllm_generation_tokens", "Tokens vLLM generated "
                               "(vllm:generation_tokens_total summed over engines) at the "
                               "last scrape.", "counter", labels=["endpoint"]))
        return families

    def observe(self, result: ProbeResult, row_id: int | None = None) -> None:
        if result.check == CHECK:
            details = result.details
            self._series.put((result.endpoint,), [_number(details.get(key))
                                                  for key in self._keys])

    def on_plan(self, config: Config, jobs: Sequence[Job]) -> None:
        """Forget endpoints that no longer scrape vLLM."""
        scraping = {job.endpoint.name for job in jobs if CHECK in job.checks}
        for key in self._series.keys():
            if key[0] not in scraping:
                self._series.drop(key)

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        self._series.fill(families)
        yield from families


def _number(value: Any) -> float | None:
    """A value the result observed, as a float; None (no series) for anything else: a number
    we did not observe this time would be a lie."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
