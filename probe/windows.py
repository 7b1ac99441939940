"""Maintenance windows on the clock: which endpoints are in a window now.

Features declare where windows come from (``Feature.windows``: the config's ``maintenance:``
section and the command line's table, a pod its owner stopped); each source returns the
windows active at a moment. ``WindowClock`` asks them every ``TICK_S`` seconds (off the
event loop: a source may read the database), matches each window's targets (names or
globs) to the planned endpoints, and moves only the endpoints whose window changed into or
out of maintenance, so a tick costs the windows, not the fleet. ``once`` and ``gate`` show
the same windows through ``windows_now`` (and ``once`` judges with ``overlay``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from probe.config.model import Config
from probe.state import FleetState
from probe.verdict import State, SweepVerdict, Transition, Window

log = logging.getLogger(__name__)

TICK_S = 2.0  # how soon a window's start or end (or a `maintenance start`) takes effect
# (config, now) -> the windows active at ``now`` (``probe.features.WindowSource``)
WindowSource = Callable[[Config, datetime], Sequence[Window]]
Changed = Callable[[str, list[Transition]], None]
_GLOB = frozenset("*?[")


def is_glob(target: str) -> bool:
    return not _GLOB.isdisjoint(target)


class Matcher:
    """Targets to endpoint names, for one set of names (a plan); globs are cached."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        self._known = set(self.names)
        self._globs: dict[str, list[str]] = {}

    def __call__(self, target: str) -> list[str]:
        if not is_glob(target):
            return [target] if target in self._known else []
        found = self._globs.get(target)
        if found is None:
            found = self._globs[target] = fnmatch.filter(self.names, target)
        return found


def covering(windows: Sequence[Window], match: Matcher) -> dict[str, Window]:
    """Endpoint -> the window it is in (the earliest-starting one when several cover it)."""
    out: dict[str, Window] = {}
    for window in sorted(windows, key=lambda w: (w.start, w.key)):
        for target in window.targets:
            for name in match(target):
                out.setdefault(name, window)
    return out


def active(sources: Sequence[WindowSource], config: Config, now: datetime) -> list[Window]:
    return [window for source in sources for window in source(config, now)]


def windows_now(sources: Sequence[WindowSource], config: Config, names: Iterable[str],
                now: datetime | None = None) -> dict[str, Window]:
    """Which of ``names`` are in a maintenance window at ``now`` (default: the wall clock),
    and in which: what ``once`` and ``gate`` show, matched as the daemon's clock matches."""
    at = datetime.now(UTC) if now is None else now
    return covering(active(sources, config, at), Matcher(names))


def overlay(judged: Mapping[str, SweepVerdict],
            windows: Mapping[str, Window]) -> dict[str, SweepVerdict]:
    """One sweep's judgements as the daemon states them: an endpoint in a window is in
    maintenance, its cause kept and what its checks say shown in the message."""
    out = dict(judged)
    for name, window in windows.items():
        shown = judged.get(name)
        if shown is not None:
            out[name] = SweepVerdict(State.MAINTENANCE, shown.cause, f"{window.name}: "
                                     f"{window.reason} (the checks say {shown.state})")
    return out


class WindowClock:
    def __init__(self, sources: Sequence[WindowSource], state: FleetState,
                 changed: Changed, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.sources = tuple(sources)
        self.state = state
        self.changed = changed
        self.now = now
        self.config: Config | None = None
        self._match = Matcher(())
        self._current: dict[str, str] = {}  # endpoint -> window key

    def plan(self, config: Config) -> None:
        """A new plan: endpoints may have come or gone (and restored verdicts may be in a
        window already)."""
        self.config = config
        self._match = Matcher(e.name for e in config.endpoints)
        self._current = self.state.in_maintenance()

    async def tick(self) -> None:
        config = self.config
        if config is None or not self.sources:
            return
        at = self.now()
        try:
            windows = await asyncio.to_thread(active, self.sources, config, at)
        except Exception:  # noqa: BLE001 - a failing source must not end windows by mistake
            log.exception("maintenance windows could not be read; keeping the current ones")
            return
        self.apply(covering(windows, self._match), at)

    def apply(self, wanted: dict[str, Window], at: datetime) -> None:
        """Move the endpoints whose window changed."""
        for name in [n for n in self._current if n not in wanted]:
            del self._current[name]
            self._emit(name, self.state.set_maintenance(name, None, at))
        for name, window in wanted.items():
            if self._current.get(name) != window.key:
                self._current[name] = window.key
                self._emit(name, self.state.set_maintenance(name, window, at))

    def _emit(self, name: str, transitions: list[Transition]) -> None:
        if transitions:
            self.changed(name, transitions)

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(TICK_S)
