"""The discovery feature as a value: the ``discovery:`` section, the daemon hook that lists the
fleet before the first probes and then every ``discovery.interval``, the sweep step for
``once`` and ``gate``, the ledger's name for RunPod's API, the metrics and the ``discover``
command."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from probe.config.model import Config, ConfigExtension
from probe.discovery import cli, starter
from probe.discovery.discoverer import CHECK, Discoverer
from probe.discovery.memory import memory_path
from probe.discovery.metrics import DiscoveryMetrics
from probe.discovery.settings import API_ENDPOINT, SECTION, DiscoverySettings, parse_section
from probe.discovery.settings import validate as validate_settings
from probe.features import Attachment, Feature, Host, Publisher
from probe.outcome import Outcome, ProbeResult
from probe.verdict import Window

log = logging.getLogger(__name__)
IDLE_POLL_S = 60.0  # discovery removed by a reload: look again this often


async def start_discovery(host: Host) -> Attachment | None:
    """List the fleet once before the first probes, then keep listing in a task. Runs first
    of all hooks: the others (the ledger) start on the discovered fleet, so a restart does
    not record every discovered endpoint as gone and back."""
    if DiscoverySettings.of(host.file_config) is None:
        return None
    discoverer = Discoverer(host.env, host.config.scheduler.max_body_bytes,
                            remember=memory_path(host.config.storage.path))
    metrics = DiscoveryMetrics()
    host.declare_standing(API_ENDPOINT, CHECK)
    host.add_expander(discoverer.expand)
    first = await _discover(host, discoverer, metrics)
    task = asyncio.create_task(_keep_discovering(host, discoverer, metrics, first))

    def stop() -> None:
        task.cancel()

    return Attachment(close=stop, collectors=(metrics,))


async def _discover(host: Host, discoverer: Discoverer,
                    metrics: DiscoveryMetrics) -> ProbeResult | None:
    try:
        found = await discoverer.run(host.file_config, host.client)
    except Exception:  # noqa: BLE001 - a bug here must not stop the probing of the rest
        log.exception("discovery failed (a runpod-probe bug); keeping the last known fleet")
        return None
    host.apply(host.file_config)
    metrics.update(discoverer.last)
    # a failing listing is loud: a refused key (the operator must fix it) is an error, an
    # API that does not answer a warning (the last known fleet is probed meanwhile)
    level = logging.INFO if found.result.ok else logging.ERROR \
        if found.result.outcome is Outcome.UNAUTHORIZED else logging.WARNING
    log.log(level, "discovery: %s: %s", found.result.outcome, found.result.message)
    return found.result


async def _keep_discovering(host: Host, discoverer: Discoverer, metrics: DiscoveryMetrics,
                            first: ProbeResult | None) -> None:
    await host.ready.wait()  # every observer (the ledger) is attached: publish the first
    if first is not None:
        host.publish(first)
    while True:
        settings = DiscoverySettings.of(host.file_config)
        await asyncio.sleep(settings.interval_s if settings is not None else IDLE_POLL_S)
        if DiscoverySettings.of(host.file_config) is None:
            continue
        result = await _discover(host, discoverer, metrics)
        if result is not None:  # applied first, so the ledger sees the new fleet with it
            host.publish(result)


async def prepare_sweep(config: Config, prober: Publisher) -> tuple[Config, list[ProbeResult]]:
    """``once`` and ``gate``: discover first, then probe what was found."""
    if DiscoverySettings.of(config) is None:
        return config, []
    found = await Discoverer(prober.env, prober.max_body_bytes).run(config, prober.client)
    return found.config, [prober.publish(found.result)]


STOPPED = "EXITED"  # RunPod's status of a pod its owner stopped


def stopped_pods(config: Config, now: datetime) -> list[Window]:
    """With ``stopped_pods_are_maintenance``: each pod RunPod lists as stopped is in
    maintenance until RunPod lists it otherwise."""
    settings = DiscoverySettings.of(config)
    if settings is None or not settings.stopped_pods_are_maintenance:
        return []
    return [Window(key=f"discovery:{e.name}:{STOPPED}", name="stopped by its owner",
                   reason=f"pod {STOPPED} per RunPod API", origin="discovery", start=now,
                   end=None, targets=(e.name,))
            for e in config.endpoints if e.kind == "pod" and e.runpod_status == STOPPED]


FEATURE = Feature(
    name="discovery",
    config=ConfigExtension(sections={SECTION: parse_section},
                           env_validators=(validate_settings,),
                           endpoint_sources=frozenset({SECTION})),
    preparers=(prepare_sweep,),
    startup=(start_discovery,),
    standing={API_ENDPOINT: "RunPod API"},
    windows=(stopped_pods,),
    commands=(cli.add_parser, starter.add_parser),
)
