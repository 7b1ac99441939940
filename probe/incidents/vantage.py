"""The probe's own vantage: can the probe itself reach the world?

On its own schedule (``vantage.interval``) the daemon asks a few targets through the same
client every check uses: RunPod's API (when a RunPod key is set; any HTTP answer, even a
401, proves the way there works), each ``vantage.reference_urls`` entry, and, with neither,
the providers' own hosts (or RunPod's API without a key); plus DNS for the first host
name among them. When every target fails, the probe is offline: a failing result gathered
then observed nothing (it becomes ``unknown`` before it is stored or judged), so endpoints
go ``unknown``, never ``down`` (fail closed: unknown is not healthy either). An answer from
an endpoint is still taken as it is: it proves the way to that endpoint.

A vantage target that times out while the probe's own event loop was stalled
(``probe.loopwatch``: more checks than one core carries), or that the probe could not ask
for want of its own resources (open files), observed nothing either: an overloaded probe
is not an offline one. Such a round leaves the offline state as it was.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from probe.attempts import OVERLOAD_SHARE, own_exhaustion
from probe.config.model import Config
from probe.incidents.settings import VantageSettings
from probe.loopwatch import LoopWatch
from probe.net import BodyTooLarge, ProbeClient
from probe.outcome import NOT_OBSERVED, Outcome, ProbeResult

log = logging.getLogger(__name__)
ANSWER_LIMIT = 64 * 1024  # a vantage answer is read this far at most
# A failing result asks for a vantage check out of schedule when the last one is older than
# this: the probe's own outage is then known within seconds of the first failure, before
# ``down_after`` failures in a row could make an endpoint down.
EARLY_CHECK_AFTER_S = 2.0


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # the ``target`` label
    kind: str  # "http" or "dns"
    where: str  # a URL, or a host name to resolve


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def targets(config: Config, settings: VantageSettings,
            env: Mapping[str, str] | None) -> tuple[Target, ...]:
    """What the probe checks its own reachability with (see the module's docstring)."""
    out: list[Target] = []
    keyed = bool((env or {}).get(config.runpod.api_key_env))
    if keyed:
        out.append(Target("runpod_api", "http", config.runpod.api_base))
    out.extend(Target(f"reference:{url}", "http", url) for url in settings.reference_urls)
    if not out:
        providers: dict[str, str] = {}
        for endpoint in config.endpoints:
            if endpoint.kind not in ("pod", "serverless"):
                parts = urlsplit(endpoint.openai_base)
                providers.setdefault(parts.netloc, f"{parts.scheme}://{parts.netloc}/")
        out.extend(Target(f"provider:{netloc}", "http", url)
                   for netloc, url in sorted(providers.items()))
    if not out:
        out.append(Target("runpod_api", "http", config.runpod.api_base))
    names = [h for t in out if (h := _host(t.where)) and _is_name(h)]
    if names:
        out.append(Target("dns", "dns", names[0]))
    return tuple(out)


class Vantage:
    def __init__(self, settings: VantageSettings, checked: tuple[Target, ...],
                 client: ProbeClient, watch: LoopWatch | None = None) -> None:
        self.settings = settings
        self.targets = checked
        self.client = client
        self.watch = LoopWatch() if watch is None else watch
        self._watching = False
        self.up: dict[str, bool] = {}
        self.offline = False
        self.checks_total = 0
        self.overloaded_total = 0  # targets not observed: the probe's loop was stalled
        self.not_observed_total = 0  # failing results taken as "not observed"
        self.checked_at = 0.0  # monotonic time of the last round's start
        self._early: asyncio.Task[bool] | None = None

    async def check(self) -> bool:
        """One round over every target; returns whether the probe is offline."""
        self.checked_at = time.monotonic()
        if not self._watching:
            self.watch.start()
            self._watching = True
        results = await asyncio.gather(*(self._reach(t) for t in self.targets))
        self.up = {t.name: self.up.get(t.name, False) if ok is None else ok
                   for t, ok in zip(self.targets, results, strict=True)}
        if any(results):
            offline = False
        elif results and all(ok is False for ok in results):
            offline = True
        else:  # a target not observed (the probe overloaded) and none reached: as it was
            offline = self.offline
        if offline != self.offline:
            if offline:
                log.warning("the probe is offline: every vantage check fails (%s); failing "
                            "results count as not observed, endpoints go unknown",
                            ", ".join(self.up))
            else:
                log.warning("the probe is online again: %s answer",
                            ", ".join(name for name, ok in self.up.items() if ok))
        self.offline = offline
        self.checks_total += 1
        return offline

    async def _reach(self, target: Target) -> bool | None:
        """Whether ``target`` was reached; None when it timed out while the probe's own
        event loop was stalled for ``OVERLOAD_SHARE`` of the deadline or more."""
        timeout = self.settings.timeout_s
        stalled_s = self.watch.stalled_s()
        try:
            if target.kind == "dns":
                loop = asyncio.get_running_loop()
                await asyncio.wait_for(loop.getaddrinfo(target.where, 443,
                                                        type=socket.SOCK_STREAM), timeout)
                return True
            await asyncio.wait_for(self.client.fetch(target.where, {}, ANSWER_LIMIT), timeout)
            return True  # any HTTP answer: the way there works
        except BodyTooLarge:
            return True
        except Exception as exc:  # noqa: BLE001 - every failure is "not reached"
            log.debug("vantage %s: %s: %s", target.name, type(exc).__name__, exc)
            if own_exhaustion(exc) is not None or isinstance(exc, TimeoutError) and \
                    self.watch.stalled_s() - stalled_s >= OVERLOAD_SHARE * timeout:
                self.overloaded_total += 1
                return None
            return False

    def _check_early(self) -> None:
        if self._early is not None and not self._early.done():
            return
        if time.monotonic() - self.checked_at < EARLY_CHECK_AFTER_S or not self.targets:
            return
        try:
            self._early = asyncio.get_running_loop().create_task(self.check())
        except RuntimeError:  # no loop running (a sweep): the schedule's checks only
            self._early = None

    def stop(self) -> None:
        if self._early is not None:
            self._early.cancel()
        if self._watching:
            self.watch.stop()
            self._watching = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - a bug here must not end the schedule
                log.exception("vantage check failed")

    def gate(self, result: ProbeResult) -> ProbeResult:
        """A failure seen while the probe is offline observed nothing (O(1)). While online,
        a failure asks for an early vantage check (at most one at a time, and not within
        ``EARLY_CHECK_AFTER_S`` of the last)."""
        if result.ok or result.outcome in NOT_OBSERVED:
            return result
        if not self.offline:
            self._check_early()
            return result
        self.not_observed_total += 1
        return replace(
            result, outcome=Outcome.UNKNOWN, http_status=None,
            message=f"not observed: the probe itself is offline (every vantage check fails); "
                    f"the check saw {result.outcome}: {result.message}"[:1000],
            details={**result.details, "offline_outcome": str(result.outcome)})
