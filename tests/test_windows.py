"""The windows clock: only the endpoints whose window changed move, globs match the plan,
and a source that fails ends nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from helpers import parse_config, role_of

from probe.app import PLUGINS
from probe.state import FleetState
from probe.verdict import Cause, State, SweepVerdict, Transition, Window
from probe.windows import Matcher, WindowClock, covering, overlay, windows_now

ENV = {"RUNPOD_API_KEY": "k"}
T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
CONFIG = parse_config("endpoints:\n" + "".join(
    f"  - {{name: {n}, kind: pod, pod_id: {n}}}\n" for n in ("qwen-a", "qwen-b", "other")),
    env=ENV)


def win(key: str, *targets: str, start: datetime = T0) -> Window:
    return Window(key, key, "why", "config", start, start + timedelta(hours=1), targets)


def test_targets_match_names_and_globs_of_the_plan() -> None:
    match = Matcher(["qwen-a", "qwen-b", "other"])
    assert match("qwen-*") == ["qwen-a", "qwen-b"] and match("other") == ["other"]
    assert match("gone") == [] and match("x*") == []
    found = covering([win("late", "qwen-*", start=T0 + timedelta(minutes=5)),
                      win("early", "qwen-a")], match)
    assert {n: w.key for n, w in found.items()} == {"qwen-a": "early", "qwen-b": "late"}


def clock(windows: list[Window] | Exception) -> tuple[WindowClock, list[tuple[str, str]]]:
    state = FleetState(role_of)
    state.configure(CONFIG, PLUGINS.plan(CONFIG))
    seen: list[tuple[str, str]] = []

    def source(config: object, now: datetime) -> list[Window]:
        if isinstance(windows, Exception):
            raise windows
        return list(windows)

    def changed(name: str, transitions: list[Transition]) -> None:
        seen.extend((name, str(t.event)) for t in transitions)

    c = WindowClock([source], state, changed, now=lambda: T0)
    c.plan(CONFIG)
    return c, seen


def test_only_the_endpoints_whose_window_changed_move() -> None:
    windows = [win("w1", "qwen-*")]
    c, seen = clock(windows)
    asyncio.run(c.tick())
    assert seen == [("qwen-a", "maintenance_started"), ("qwen-b", "maintenance_started")]
    asyncio.run(c.tick())
    assert len(seen) == 2, "the same window again: nothing to say"
    windows[:] = [win("w2", "qwen-b")]
    asyncio.run(c.tick())
    assert seen[2:] == [("qwen-a", "maintenance_ended"), ("qwen-b", "maintenance_ended"),
                        ("qwen-b", "maintenance_started")]
    assert c.state.verdict("qwen-b").state == "maintenance"  # type: ignore[union-attr]
    assert c.state.verdict("qwen-a").state == "unknown"  # type: ignore[union-attr]


def test_a_new_plan_picks_up_windows_restored_from_before_a_restart() -> None:
    c, seen = clock([win("w1", "other")])
    c.state.verdict("other").enter_maintenance(  # type: ignore[union-attr]
        "other", win("w1", "other"), T0)
    c.plan(CONFIG)
    asyncio.run(c.tick())
    assert seen == [], "already in that window"


def test_a_failing_source_ends_no_window() -> None:
    c, seen = clock([win("w1", "other")])
    asyncio.run(c.tick())
    failing, _ = clock(RuntimeError("database is locked"))
    failing.state, failing._current = c.state, dict(c._current)
    asyncio.run(failing.tick())
    assert c.state.verdict("other").state == "maintenance"  # type: ignore[union-attr]


def test_windows_now_asks_every_source_at_that_moment_and_matches_globs() -> None:
    asked: list[datetime] = []

    def source(config: object, now: datetime) -> list[Window]:
        asked.append(now)
        return [win("w1", "qwen-*")]

    found = windows_now([source, lambda config, now: [win("w2", "other")]], CONFIG,
                        ["qwen-a", "other", "unseen"], T0)
    assert asked == [T0]
    assert {n: w.key for n, w in found.items()} == {"qwen-a": "w1", "other": "w2"}


def test_overlay_puts_a_windowed_endpoint_in_maintenance_and_keeps_what_checks_say() -> None:
    cause = Cause("models", "timeout")
    judged = {"qwen-a": SweepVerdict(State.DOWN, cause, "timeout"),
              "other": SweepVerdict(State.UP)}
    shown = overlay(judged, {"qwen-a": win("w1", "qwen-*"), "gone": win("w2", "gone")})
    assert shown == {"qwen-a": SweepVerdict(State.MAINTENANCE, cause, "w1: why (the checks say down)"),
                     "other": SweepVerdict(State.UP)}
    assert judged["qwen-a"].state is State.DOWN, "the sweep's own judgements are kept"
