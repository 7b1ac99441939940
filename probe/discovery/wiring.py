"""Plug discovery into the spine: the ``discovery:`` section, the daemon hook that lists the
fleet before the first probes and then every ``discovery.interval``, the sweep step for
``runpod-probe once``, the ledger's name for RunPod's API, and the metrics.

Imported by ``probe.config.features.register_features``; registering happens at import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric

from probe import daemon as daemon_module
from probe import metrics, sweep
from probe.config import features
from probe.config.model import Config
from probe.daemon import Daemon
from probe.discovery.fleet import DiscoveredFleet
from probe.discovery.memory import memory_path
from probe.discovery.run import CHECK, Discoverer
from probe.discovery.settings import API_ENDPOINT, DiscoverySettings, parse_section, validate
from probe.ledger.observer import STANDING
from probe.outcome import ProbeResult
from probe.prober import Prober
from probe.state import Snapshot

log = logging.getLogger(__name__)
STATS_KEY = "discovery"
IDLE_POLL_S = 60.0  # discovery removed by a reload: look again this often


@dataclass(slots=True)
class DiscoveryStats:
    """Read by the /metrics thread; the dicts are replaced whole, never mutated."""

    discovered: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def update(self, fleet: DiscoveredFleet | None) -> None:
        if fleet is None:
            return
        skipped: dict[str, int] = {}
        for item in fleet.skipped:
            skipped[item.kind] = skipped.get(item.kind, 0) + 1
        self.discovered, self.skipped = fleet.counts(), skipped


async def start_discovery(daemon: Daemon) -> Callable[[], None] | None:
    """List the fleet once before the first probes, then keep listing in a task."""
    settings = daemon.file_config.sections.get("discovery")
    if not isinstance(settings, DiscoverySettings):
        return None
    assert daemon.prober is not None
    discoverer = Discoverer(daemon.env, daemon.config.scheduler.max_body_bytes,
                            remember=memory_path(daemon.config.storage.path))
    stats = DiscoveryStats()
    daemon.state.extra[STATS_KEY] = stats
    daemon.state.declare_standing(API_ENDPOINT, CHECK)
    daemon.expanders.append(discoverer.expand)
    first = await _discover(daemon, discoverer, stats)
    task = asyncio.create_task(_keep_discovering(daemon, discoverer, stats, first))

    def stop() -> None:
        task.cancel()

    return stop


async def _discover(daemon: Daemon, discoverer: Discoverer,
                    stats: DiscoveryStats) -> ProbeResult | None:
    assert daemon.prober is not None
    try:
        found = await discoverer.run(daemon.file_config, daemon.prober.client)
    except Exception:  # noqa: BLE001 - a bug here must not stop the probing of the rest
        log.exception("discovery failed (a runpod-probe bug); keeping the last known fleet")
        return None
    daemon.apply(daemon.file_config)
    stats.update(discoverer.last)
    log.info("discovery: %s: %s", found.result.outcome, found.result.message)
    return found.result


async def _keep_discovering(daemon: Daemon, discoverer: Discoverer, stats: DiscoveryStats,
                            first: ProbeResult | None) -> None:
    await daemon.ready.wait()  # every observer (the ledger) is attached: publish the first
    assert daemon.prober is not None
    if first is not None:
        daemon.prober.publish(first)
    while True:
        settings = daemon.file_config.sections.get("discovery")
        interval = settings.interval_s if isinstance(settings, DiscoverySettings) else None
        await asyncio.sleep(interval or IDLE_POLL_S)
        if not isinstance(daemon.file_config.sections.get("discovery"), DiscoverySettings):
            continue
        result = await _discover(daemon, discoverer, stats)
        if result is not None:  # applied first, so the ledger sees the new fleet with it
            daemon.prober.publish(result)


async def prepare_sweep(config: Config, prober: Prober) -> tuple[Config, list[ProbeResult]]:
    """``runpod-probe once``: discover first, then sweep what was found."""
    if not isinstance(config.sections.get("discovery"), DiscoverySettings):
        return config, []
    found = await Discoverer(prober.env, prober.max_body_bytes).run(config, prober.client)
    prober.state.configure(found.config)
    prober.publish(found.result)
    return found.config, [found.result]


def provide(snap: Snapshot) -> Iterator[Metric]:
    stats = snap.extra.get(STATS_KEY)
    if not isinstance(stats, DiscoveryStats):
        return
    found = GaugeMetricFamily(metrics.P + "discovered_endpoints", "Endpoints found through "
                              "RunPod's API and probed (configured ones are not counted).",
                              labels=["kind"])
    skipped = GaugeMetricFamily(metrics.P + "discovery_skipped", "Listed by RunPod's API but "
                                "not probed (not running, port not exposed, filtered out).",
                                labels=["kind"])
    for kind in ("pod", "serverless"):
        found.add_metric([kind], stats.discovered.get(kind, 0))
        skipped.add_metric([kind], stats.skipped.get(kind, 0))
    yield from (found, skipped)


def _register() -> None:
    features.SECTIONS["discovery"] = parse_section
    features.ENV_VALIDATORS.append(validate)
    features.ENDPOINT_SOURCES.add("discovery")
    # First of all hooks: the others (the ledger) start on the discovered fleet, so a
    # restart does not record every discovered endpoint as gone and back.
    daemon_module.STARTUP_HOOKS.insert(0, start_discovery)
    sweep.PREPARERS.append(prepare_sweep)
    metrics.PROVIDERS.append(provide)
    STANDING[API_ENDPOINT] = "RunPod API"


_register()
