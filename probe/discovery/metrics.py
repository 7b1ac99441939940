"""Discovery's series on /metrics: endpoints found and probed, and those skipped, by kind."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from probe.discovery.fleet import DiscoveredFleet
from probe.metrics import P

KINDS = ("pod", "serverless")


class DiscoveryMetrics(Collector):
    """Read by the /metrics thread; the dicts are replaced whole, never mutated."""

    def __init__(self) -> None:
        self.discovered: dict[str, int] = {}
        self.skipped: dict[str, int] = {}

    def update(self, fleet: DiscoveredFleet | None) -> None:
        if fleet is None:
            return
        skipped: dict[str, int] = {}
        for item in fleet.skipped:
            skipped[item.kind] = skipped.get(item.kind, 0) + 1
        self.discovered, self.skipped = fleet.counts(), skipped

    def collect(self) -> Iterator[Metric]:
        found = GaugeMetricFamily(P + "discovered_endpoints", "Endpoints found through "
                                  "RunPod's API and probed (configured ones are not counted).",
                                  labels=["kind"])
        skipped = GaugeMetricFamily(P + "discovery_skipped", "Listed by RunPod's API but "
                                    "not probed (not running, port not exposed, filtered out).",
                                    labels=["kind"])
        discovered, left_out = self.discovered, self.skipped
        for kind in KINDS:
            found.add_metric([kind], discovered.get(kind, 0))
            skipped.add_metric([kind], left_out.get(kind, 0))
        yield from (found, skipped)
