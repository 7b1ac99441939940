"""A feature is a value: one immutable record of everything it adds to the spine.

Each feature package exports one ``Feature`` (in its ``plugin.py``); the composition root
(``probe.app``) lists them in order and merges them with ``Plugins.of``; the CLI hands the
merged ``Plugins`` to the daemon, ``once``, ``gate`` and the demo. Nothing registers itself
at import time, and this module imports no feature.

A feature may add:
- ``config``: config sections, endpoint keys, validators and check names (``ConfigExtension``);
- ``checks``: check functions by name, with the policy ``attempts`` applies to their last
  observation;
- ``planners``: config -> jobs it schedules (prompts, round trips);
- ``preparers``: steps a one-off sweep runs first (discovery lists RunPod's fleet);
- ``startup``: daemon start-up hooks (run in order, after the prober is ready); a hook gets
  the running daemon as a ``Host`` and may return an ``Attachment``: the collectors,
  observers, verdict listeners, pages and status parts it adds (the daemon wires them), a
  closer for shutdown and a listener for every new plan;
- ``standing``: pseudo-endpoints that report results without being configured (discovery's
  ``runpod-api``), with how ledger entries name them;
- ``windows``: where maintenance windows come from, (config, now) -> the windows active then
  (the ``maintenance:`` section and the command line's table; a pod its owner stopped);
- ``commands``: CLI sub-commands.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from probe.check import CheckSpec
from probe.config.model import Config, ConfigExtension
from probe.job import Job, fold_readers
from probe.net import ProbeClient
from probe.outcome import CheckRole, ProbeResult
from probe.verdict import EndpointVerdict, Transition, Window

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

# A result observer: (result, its row id in the results table, or None when not stored).
Observer = Callable[[ProbeResult, "int | None"], None]
# Told each result with what its endpoint's verdict went through (the ledger).
Judged = Callable[[ProbeResult, "int | None", list[Transition], "EndpointVerdict | None"],
                  object]
# Told what an endpoint's verdict went through without a result (a maintenance window
# began or ended): (endpoint, transitions, its verdict).
Changed = Callable[[str, list[Transition], "EndpointVerdict | None"], object]
# (config, now) -> the maintenance windows active at ``now``
WindowSource = Callable[[Config, datetime], Sequence[Window]]
# Told every result before it is stored and judged; returns it, or what it is to be taken as
# (the probe's own vantage: a failure seen while the probe is cut off observed nothing).
Gate = Callable[[ProbeResult], ProbeResult]
# An HTTP page on the metrics listener: (query parameters) -> (status, content type, body).
# Called in the listener's thread: it must read shared state through locks (the snapshot).
Route = Callable[[Mapping[str, list[str]]], tuple[int, str, bytes]]
# A part of the status page a feature supplies (the ledger's entries and chain), JSON-able;
# called in the listener's thread.
StatusPart = Callable[[], dict[str, Any]]
Planner = Callable[[Config], list[Job]]
# Features that add endpoints to the file's config at run time (discovery).
Expander = Callable[[Config], Config]


class Publisher(Protocol):
    """What a sweep preparer may use: the HTTP client, settings, and a way to publish the
    results it produced (discovery's own)."""

    @property
    def client(self) -> ProbeClient: ...
    @property
    def env(self) -> Mapping[str, str] | None: ...
    @property
    def max_body_bytes(self) -> int: ...
    def publish(self, result: ProbeResult) -> ProbeResult: ...


# (config, publisher) -> (the config to sweep, results the step produced)
Preparer = Callable[[Config, Publisher], Awaitable[tuple[Config, list[ProbeResult]]]]


class Host(Protocol):
    """The running daemon, as a start-up hook sees it: what it reads and the few things it
    asks of the daemon. What a feature adds (collectors, observers, pages, status parts) it
    declares in the ``Attachment`` it returns, and the daemon wires it."""

    @property
    def config(self) -> Config: ...  # what runs: the file's config plus expansions
    @property
    def file_config(self) -> Config: ...  # as last loaded from the file
    @property
    def jobs(self) -> Sequence[Job]: ...  # the current plan
    @property
    def env(self) -> Mapping[str, str] | None: ...
    @property
    def client(self) -> ProbeClient: ...
    @property
    def ready(self) -> asyncio.Event: ...  # set once every hook ran and probing started
    @property
    def standing(self) -> Mapping[str, str]: ...  # every feature's standing subjects
    def redact(self, text: str) -> str: ...
    def verdict(self, endpoint: str) -> EndpointVerdict | None: ...
    # every endpoint's view as /metrics shows it, from any thread (``probe.state.EndpointView``
    # by name: the engine sits above this module)
    def endpoint_views(self) -> Mapping[str, Any]: ...
    # the named endpoints' views with their checks' latest results, read together
    # (``probe.state.Row`` by name), from any thread
    def endpoint_rows(self, names: Iterable[str]) -> Mapping[str, Any]: ...
    def status_parts(self) -> Mapping[str, StatusPart]: ...
    def restore(self, saved: dict[str, EndpointVerdict]) -> None: ...  # kept from before
    def publish(self, result: ProbeResult) -> ProbeResult: ...
    def declare_standing(self, endpoint: str, check: str) -> None: ...
    def add_expander(self, expander: Expander) -> None: ...
    # transitions that belong to no endpoint (a fleet incident opened or closed), told to
    # every verdict listener (the ledger) like a maintenance window's
    def announce(self, subject: str, transitions: list[Transition]) -> None: ...
    def apply(self, config: Config) -> bool: ...  # run ``config`` (plus expansions)


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a started feature hands back to the daemon: what it adds, which the daemon
    wires when the hook returns, and what the daemon calls later."""

    close: Callable[[], None] | None = None  # at shutdown, after in-flight checks finished
    on_plan: Callable[[Config, Sequence[Job]], None] | None = None  # after every new plan
    collectors: tuple[Collector, ...] = ()  # on the daemon's registry (/metrics)
    observers: tuple[Observer, ...] = ()  # told every published result
    judged: tuple[Judged, ...] = ()  # told every result, with its transitions
    changed: tuple[Changed, ...] = ()  # told transitions without a result
    gates: tuple[Gate, ...] = ()  # see every result before it is stored and judged
    routes: Mapping[str, Route] = field(default_factory=dict)  # pages beside /metrics
    status_parts: Mapping[str, StatusPart] = field(default_factory=dict)  # by name

    def __post_init__(self) -> None:
        object.__setattr__(self, "routes", MappingProxyType(dict(self.routes)))
        object.__setattr__(self, "status_parts", MappingProxyType(dict(self.status_parts)))


StartupHook = Callable[[Host], "Attachment | None | Awaitable[Attachment | None]"]
# A command's handler gets its parsed arguments and the merged plugins; returns the exit code.
Handler = Callable[[argparse.Namespace, "Plugins"], int]
# ``command(name, handler, help) -> parser``: a sub-command with the shared --config option.
CommandFactory = Callable[[str, Handler, str], argparse.ArgumentParser]
# ``add(subparsers, command)``: adds a feature's sub-commands.
AddCommands = Callable[[Any, CommandFactory], None]


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    config: ConfigExtension = field(default_factory=ConfigExtension)
    checks: tuple[CheckSpec, ...] = ()
    planners: tuple[Planner, ...] = ()
    preparers: tuple[Preparer, ...] = ()
    startup: tuple[StartupHook, ...] = ()
    standing: Mapping[str, str] = field(default_factory=dict)
    windows: tuple[WindowSource, ...] = ()
    commands: tuple[AddCommands, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "standing", MappingProxyType(dict(self.standing)))


@dataclass(frozen=True, slots=True)
class Plugins:
    """Every feature merged, in order: the one set the daemon, sweeps and gates run with."""

    features: tuple[Feature, ...]
    config: ConfigExtension
    checks: tuple[CheckSpec, ...]
    planners: tuple[Planner, ...]
    preparers: tuple[Preparer, ...]
    startup: tuple[StartupHook, ...]
    standing: Mapping[str, str]
    windows: tuple[WindowSource, ...]
    commands: tuple[AddCommands, ...]
    # name -> the spec that answers it, as first resolved (every run resolves its check)
    resolved: dict[str, CheckSpec] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, *features: Feature) -> Plugins:
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError(f"a feature is listed twice: {names}")
        checks: dict[str, CheckSpec] = {}
        for spec in (s for f in features for s in f.checks):
            if spec.name in checks:
                raise ValueError(f'check "{spec.name}" is claimed by two features')
            checks[spec.name] = spec
        own = ConfigExtension(checks=tuple(s.name for s in checks.values() if not s.family))
        standing: dict[str, str] = {}
        for feature in features:
            standing.update(feature.standing)
        return cls(
            features=tuple(features),
            config=ConfigExtension.merge(*(f.config for f in features), own),
            checks=tuple(checks.values()),
            planners=tuple(p for f in features for p in f.planners),
            preparers=tuple(p for f in features for p in f.preparers),
            startup=tuple(h for f in features for h in f.startup),
            standing=MappingProxyType(standing),
            windows=tuple(w for f in features for w in f.windows),
            commands=tuple(c for f in features for c in f.commands),
        )

    def role_of(self, check: str) -> CheckRole:
        """What ``check``'s results say, as its spec names it (a standing pseudo-endpoint's
        check, which no feature answers, reports availability)."""
        try:
            return self.resolve(check).role
        except KeyError:
            return CheckRole.AVAILABILITY

    def resolve(self, check: str) -> CheckSpec:
        """The check behind a name; KeyError for a name no feature answers. Each name is
        looked up in the list once (the first spec that answers it), then by a dict."""
        spec = self.resolved.get(check)
        if spec is not None:
            return spec
        for spec in self.checks:
            if spec.answers(check):
                self.resolved[check] = spec
                return spec
        raise KeyError(check)

    def plan(self, config: Config) -> list[Job]:
        """Every job the planners schedule for ``config``, in planner order; a check that
        reads another's answer folded into the job that runs it (``fold_readers``)."""
        return fold_readers([job for planner in self.planners for job in planner(config)],
                            self.reads)

    def reads(self, check: str) -> str | None:
        """The check whose answer ``check`` is judged from when both run in one job."""
        try:
            return self.resolve(check).reads
        except KeyError:
            return None
