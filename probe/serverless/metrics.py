"""Serverless series for /metrics: jobs and workers by state from the latest queue reading,
and round-trip times split by cold and warm start so cold starts do not pollute warm latency.

Counts come from the details of the latest ``queue`` result; when that result is not an
observation (unknown, an error) no count is exported rather than a stale one. Round-trip
histograms accumulate from the round trips' results.
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
from probe.outcome import ProbeResult
from probe.state import Histogram

P = "runpod_probe_serverless_"
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# (metric suffix, detail key, help)
TIMINGS = (
    ("delay_seconds", "delay_s", "Time a round-trip job waited in the queue, cold start "
     "included (RunPod's delayTime)."),
    ("execution_seconds", "execution_s", "Time a round-trip job ran on a worker (RunPod's "
     "executionTime)."),
    ("roundtrip_seconds", "roundtrip_s", "Submit to final answer of a round trip, as the "
     "probe measured it."),
)
STARTS = ("cold", "warm")


class ServerlessMetrics(Collector):
    """Fed by the prober (one result at a time), read by the /metrics thread: the latest
    queue reading per endpoint and round-trip histograms per (timing, endpoint, start)."""

    def __init__(self, native: bool = False) -> None:
        self.native = native  # ``metrics: {native_histograms: true}``
        self._lock = threading.Lock()
        self._queues: dict[str, dict[str, Any]] = {}  # endpoint -> latest queue details
        self._histograms: dict[tuple[str, str, str], Histogram] = {}

    def observe(self, result: ProbeResult, row_id: int | None = None) -> None:
        if result.check == "queue":
            with self._lock:
                self._queues[result.endpoint] = result.details
            return
        start = result.details.get("start")
        if result.check != "roundtrip" or start not in STARTS:
            return
        with self._lock:
            for _, key, _ in TIMINGS:
                value = result.details.get(key)
                if isinstance(value, int | float):
                    histogram = self._histograms.setdefault(
                        (key, result.endpoint, start),
                        Histogram.of(SECONDS_BUCKETS, self.native))
                    histogram.observe(float(value))

    def on_plan(self, config: Config, jobs: Sequence[Job]) -> None:
        """Forget the queues and round trips of endpoints no longer planned."""
        planned = {job.endpoint.name for job in jobs}
        with self._lock:
            for name in [n for n in self._queues if n not in planned]:
                del self._queues[name]
            for key in [k for k in self._histograms if k[1] not in planned]:
                del self._histograms[key]

    def histograms(self) -> dict[tuple[str, str, str], Histogram]:
        with self._lock:
            return {key: h.copy() for key, h in self._histograms.items()}

    def collect(self) -> Iterator[Metric]:
        jobs = Family(P + "jobs", "Jobs of a serverless endpoint by state, from its "
                      "latest /health reading.", "gauge", labels=["endpoint", "state"])
        workers = Family(P + "workers", "Workers of a serverless endpoint by state, "
                         "from its latest /health reading.",
                         "gauge", labels=["endpoint", "state"])
        with self._lock:
            queues = sorted(self._queues.items())
        for endpoint, details in queues:
            for family, section in ((jobs, "jobs"), (workers, "workers")):
                for name, value in _present(details, section):
                    family.add_metric([endpoint, name], value)
        yield jobs
        yield workers
        histograms = self.histograms()
        for suffix, key, help_text in TIMINGS:
            timing_family = Family(P + suffix, help_text, "histogram",
                                   labels=["endpoint", "start"])
            for (timing, endpoint, start), histogram in sorted(histograms.items()):
                if timing == key:
                    timing_family.add_metric([endpoint, start], histogram.buckets(),
                                             histogram.total, histogram.native)
            yield timing_family


def _present(details: dict[str, Any], section: str) -> Iterator[tuple[str, int]]:
    """Counters the API sent (absent ones were read as 0 but are not exported)."""
    counters = details.get(section)
    if not isinstance(counters, dict):
        return
    absent = set(details.get("absent") or ())
    for name, value in counters.items():
        if f"{section}.{name}" not in absent:
            yield name, value
    for key, value in (details.get("unknown") or {}).items():
        prefix, _, name = key.partition(".")
        if prefix == section and isinstance(value, int) and not isinstance(value, bool):
            yield name, value
