"""Hysteresis: down after N failures, up after M passes, flapping collapsed, unknown apart."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from ledgerhelpers import result

from probe.outcome import NOT_OBSERVED, CheckRole, Outcome
from probe.verdict import EndpointVerdict as EndpointState
from probe.verdict import Event, Window
from probe.verdict import Hysteresis as LedgerSettings

SETTINGS = LedgerSettings(down_after=3, up_after=2, persistent_after_s=1800)
LETTERS = {"P": Outcome.OK, "F": Outcome.HTTP_404, "U": Outcome.UNKNOWN,
           "W": Outcome.EXPECTATION_FAILED, "T": Outcome.TIMEOUT}


def feed(state: EndpointState, sequence: str, step_s: float = 30.0,
         start: float = 0.0, check: str = "models") -> list[Event]:
    events = []
    for i, letter in enumerate(sequence):
        r = result(LETTERS[letter], at=start + i * step_s, check=check)
        events += [t.event for t in state.observe(r, i + 1, SETTINGS)]
    return events


@pytest.mark.parametrize(
    ("sequence", "events", "final"),
    [("P", [], "unknown"),
     ("PPP", [], "up"),
     ("PFFF", ["down"], "down"),
     ("PPFFPFFPFFP", [], "up"),
     ("PFFFP", ["down"], "down"),
     ("PFFFPP", ["down", "recovered"], "up"),
     ("PFFFPFPP", ["down", "recovered"], "up"),
     ("FFF", ["down"], "down"),
     ("PFFUUF", ["down"], "down"),
     ("PPUUU", [], "unknown"),
     ("PPUUUPP", [], "up"),
     ("PPUUUFFF", ["down"], "down"),
     ("PFFFUUUUPP", ["down", "recovered"], "up"),
     ("UUUU", [], "unknown")],
    ids=["one-pass-is-not-up-yet", "steady-up", "down-after-3", "flapping-collapsed", "one-pass-not-enough",
         "up-after-2", "failure-resets-recovery", "never-up-then-down",
         "unobserved-neither-counts-nor-resets", "up-becomes-unknown", "unknown-to-up-silent",
         "unknown-to-down", "down-stays-down-while-unobserved", "never-observed"],
)
def test_hysteresis(sequence: str, events: list[str], final: str) -> None:
    state = EndpointState()
    assert feed(state, sequence) == events
    assert state.state == final


@pytest.mark.parametrize("outcome", sorted(NOT_OBSERVED), ids=str)
def test_not_observed_outcomes_count_toward_neither(outcome: Outcome) -> None:
    state = EndpointState()
    feed(state, "PP")
    for i in range(2):
        state.observe(result(outcome, at=100 + i), None, SETTINGS)
    assert feed(state, "F", start=200) == [] and state.state == "up"


def test_down_entry_cites_the_first_and_last_failing_rows_and_since() -> None:
    state = EndpointState()
    feed(state, "PP")
    transitions = [t for i in range(3) for t in state.observe(
        result(Outcome.HTTP_404, at=60 + 30 * i, message="404 page"), 10 + i, SETTINGS)]
    (down,) = transitions
    assert (down.event, down.outcome, down.first_row, down.last_row) == \
        (Event.DOWN, "http_404", 10, 12)
    assert down.duration_s == 60.0, "down since the first failing observation"


def test_recovery_reports_downtime_until_the_first_pass() -> None:
    state = EndpointState()
    feed(state, "PFFF")  # first failure at 30 s
    events = [t for i, at in enumerate((600, 630))
              for t in state.observe(result(at=at), 20 + i, SETTINGS)]
    (recovered,) = events
    assert recovered.event is Event.RECOVERED and recovered.outcome == "http_404"
    assert recovered.duration_s == 570.0 and (recovered.first_row, recovered.last_row) == (2, 21)


@pytest.mark.parametrize(
    ("failures_at", "persistent_at"),
    [((0, 30, 60, 1799), None),
     ((0, 30, 60, 1800), 1800),
     ((0, 30, 60, 1800, 2400, 3600), 1800)],
    ids=["below-threshold", "at-threshold", "only-once"],
)
def test_persistently_down_once_per_outage(failures_at: tuple[int, ...],
                                           persistent_at: int | None) -> None:
    state = EndpointState()
    seen = [(t.event, int(t.at.timestamp() - result().started_at.timestamp()))
            for i, at in enumerate(failures_at)
            for t in state.observe(result(Outcome.HTTP_404, at=at), i, SETTINGS)]
    expected = [(Event.DOWN, 60)] + ([(Event.PERSISTENT, persistent_at)] if persistent_at else [])
    assert seen == expected


def test_a_new_outage_can_be_persistent_again() -> None:
    state = EndpointState()
    events = feed(state, "FFF") + feed(state, "F", start=1800) + feed(state, "PP", start=1900)
    events += feed(state, "FFF", start=2000) + feed(state, "F", start=4000)
    assert events == ["down", "persistent", "recovered", "down", "persistent"]


def test_interleaved_checks_go_down_on_one_and_recover_on_all() -> None:
    state = EndpointState()
    events: list[Event] = []
    for i in range(3):  # models keeps passing while the engine is dead
        events += feed(state, "P", start=i * 30, check="models")
        events += [t.event for t in state.observe(
            result(Outcome.ENGINE_DEAD, at=i * 30 + 1, check="health"), None, SETTINGS)]
    assert events == [Event.DOWN] and state.state == "down"
    events += feed(state, "PP", start=200, check="health")
    assert state.state == "up", "models has passed 3 times in a row, health twice"
    assert events == [Event.DOWN, Event.RECOVERED]


def test_a_failing_prompt_degrades_a_reachable_endpoint_with_its_own_hysteresis() -> None:
    state = EndpointState()
    feed(state, "PP")
    events = feed(state, "WWW", check="prompt:arithmetic", start=100)
    assert events == ["degraded"] and state.state == "degraded"
    assert state.cause is not None
    assert (state.cause.check, state.cause.outcome) == ("prompt:arithmetic",
                                                        "expectation_failed")
    assert feed(state, "P", check="prompt:arithmetic", start=300) == []
    assert state.state == "degraded", "one pass is not enough"
    assert feed(state, "P", check="prompt:arithmetic", start=330) == ["restored"]
    assert state.state == "up" and state.cause is None


def test_a_second_failing_prompt_is_its_own_entry_while_degraded() -> None:
    state = EndpointState()
    feed(state, "PP")
    assert feed(state, "WWW", check="prompt:a", start=100) == ["degraded"]
    assert feed(state, "WWW", check="prompt:b", start=200) == ["prompt_failing"]
    assert feed(state, "PP", check="prompt:a", start=300) == ["prompt_passing"]
    assert state.state == "degraded", "prompt b still fails"
    assert feed(state, "PP", check="prompt:b", start=400) == ["restored"]


def test_up_at_last_with_an_answer_already_failing_is_degraded_once() -> None:
    state = EndpointState()
    assert feed(state, "WWW", check="prompt:a") == ["prompt_failing"]
    assert state.state == "unknown", "no evidence for the endpoint itself yet"
    assert feed(state, "PPP", start=100) == ["degraded"]
    assert state.state == "degraded"
    assert feed(state, "FFF", start=200) == ["down"]
    assert feed(state, "PP", start=300) == ["recovered"], "back to degraded: no new entry"
    assert state.state == "degraded"


def test_down_wins_over_degraded_and_recovering_leaves_it_degraded() -> None:
    state = EndpointState()
    feed(state, "PP")
    feed(state, "WWW", check="prompt:a", start=100)
    assert feed(state, "FFF", start=200) == ["down"] and state.state == "down"
    assert feed(state, "PP", start=300) == ["recovered"]
    assert state.state == "degraded", "the answers were never shown to be right again"


@pytest.mark.parametrize(("sequence", "events"), [
    ("FFFFPP", []),  # the pod is unreachable: its own checks report that, once
    ("TTTPP", ["degraded", "restored"]),  # reachable but hung: an answer finding
], ids=["unreachable-is-not-a-prompt-finding", "timeout-is-a-prompt-finding"])
def test_prompt_entries_are_about_answers(sequence: str, events: list[str]) -> None:
    state = EndpointState()
    feed(state, "PP")
    assert feed(state, sequence, check="prompt:arithmetic", start=100) == events


def test_served_model_and_context_changes_are_facts() -> None:
    state = EndpointState()
    first = result(model="Qwen/Q", max_model_len=8192)
    same = result(at=30, model="Qwen/Q", max_model_len=8192)
    grown = result(at=60, model="Qwen/Q", max_model_len=32768)
    swapped = result(at=90, model="deepseek/R1", max_model_len=32768)
    unseen = result(Outcome.HTTP_404, at=120)
    seen = [(t.event, t.old, t.new, t.first_row, t.last_row)
            for i, r in enumerate((first, same, grown, swapped, unseen), start=1)
            for t in state.observe(r, i, SETTINGS)]
    assert seen == [(Event.CONTEXT_CHANGED, 8192, 32768, 2, 3),
                    (Event.MODEL_CHANGED, "Qwen/Q", "deepseek/R1", 3, 4)]


def test_a_served_model_read_before_the_one_known_is_not_a_change() -> None:
    """Results replayed from before a restored verdict's reading (a week replayed over the
    end state it left): the older model is history already judged, not news; a newer
    reading still is."""
    state = EndpointState()
    state.observe(result(at=300, model="meta/L", max_model_len=8192), 1, SETTINGS)
    restored = EndpointState.from_json(json.loads(json.dumps(state.to_json())))
    older = result(at=0, model="Qwen/Q", max_model_len=4096)
    assert restored.observe(older, 2, SETTINGS) == []
    assert restored.model == "meta/L" and restored.max_model_len == 8192
    newer = result(at=600, model="Qwen/Q", max_model_len=8192)
    assert [t.event for t in restored.observe(newer, 3, SETTINGS)] == [Event.MODEL_CHANGED]


def test_state_survives_a_restart_mid_streak() -> None:
    state = EndpointState()
    feed(state, "PPFF")
    restored = EndpointState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    assert feed(restored, "F", start=200) == ["down"]


# -- maintenance windows ----------------------------------------------------------------------
def window(key: str = "cli:1", name: str = "manual #1") -> Window:
    from ledgerhelpers import T0

    return Window(key, name, "moving to an H100", "cli (alice)", T0, T0 + timedelta(hours=2),
                  ("qwen",))


def at(seconds: float) -> datetime:
    from ledgerhelpers import T0

    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(("before", "inside", "events", "summary", "final"), [
    # healthy, stopped inside the window, back before its end: no down or recovered entry
    ("PPP", "FFFFPP", ["maintenance_started", "maintenance_ended"], "came back healthy", "up"),
    # still failing when it ends: the down entry at once, no second hysteresis wait
    ("PPP", "FFFFF", ["maintenance_started", "maintenance_ended", "down"],
     "still failing at the end (models: http_404)", "down"),
    # one failure at the very end is enough: it is failing now
    ("PPP", "PPPF", ["maintenance_started", "maintenance_ended", "down"],
     "still failing at the end (models: http_404)", "down"),
    # down before the window, fixed inside it: the window's end says so, no recovered entry
    ("FFF", "PP", ["down", "maintenance_started", "maintenance_ended"], "came back healthy",
     "up"),
    # passing but not yet up_after times: not yet confirmed
    ("FFF", "P", ["down", "maintenance_started", "maintenance_ended"],
     "not yet confirmed healthy at the end (state down)", "down"),
    ("", "", ["maintenance_started", "maintenance_ended"],
     "nothing was observed during the window", "unknown"),
], ids=["came-back", "still-failing", "failing-at-the-end", "fixed-during-window",
        "not-yet-confirmed", "nothing-observed"])
def test_a_maintenance_window(before: str, inside: str, events: list[str], summary: str,
                              final: str) -> None:
    state = EndpointState()
    seen = feed(state, before)
    seen += [t.event for t in state.enter_maintenance("qwen", window(), at(100))]
    assert state.state == "maintenance"
    seen += feed(state, inside, start=200)
    assert state.state == "maintenance"
    ended = state.leave_maintenance("qwen", at(1000))
    seen += [t.event for t in ended]
    assert seen == events
    assert ended[0].new == summary
    assert ended[0].old.results == len(inside) and ended[0].old.failed == inside.count("F")
    assert state.state == final


def test_the_down_entry_after_a_window_dates_the_failure_from_its_first_failing_result() -> None:
    state = EndpointState()
    feed(state, "PPP")
    state.enter_maintenance("qwen", window(), at(100))
    feed(state, "PPFF", start=200)  # failing since the third result (at 260 s)
    down = state.leave_maintenance("qwen", at(1000))[-1]
    assert (down.event, down.check, down.outcome, down.since, down.old) == (
        "down", "models", "http_404", at(260), "after maintenance")


def test_a_window_survives_a_restart_and_entering_it_again_says_nothing() -> None:
    state = EndpointState()
    feed(state, "PP")
    state.enter_maintenance("qwen", window(), at(100))
    feed(state, "F", start=200)
    restored = EndpointState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored.state == "maintenance" and restored.maintenance == state.maintenance
    assert restored.enter_maintenance("qwen", window(), at(300)) == []
    events = [t.event for t in restored.enter_maintenance("qwen", window("cli:2", "#2"),
                                                          at(400))]
    assert events == ["maintenance_ended", "down", "maintenance_started"]


def test_facts_are_still_recorded_inside_a_window() -> None:
    state = EndpointState()
    state.observe(result(at=0, model="a", max_model_len=8192), 1, SETTINGS)
    state.enter_maintenance("qwen", window(), at(10))
    changed = state.observe(result(at=20, model="b", max_model_len=32768), 2, SETTINGS)
    assert [t.event for t in changed] == ["model_changed", "context_changed"]


def test_the_cause_reads_the_checks_during_a_window() -> None:
    state = EndpointState()
    feed(state, "FFF")
    state.enter_maintenance("qwen", window(), at(100))
    assert state.state == "maintenance" and state.checks_state == "down"
    assert state.cause is not None and state.cause.outcome == "http_404"
    assert state.since == at(100).isoformat()


def rounds(state: EndpointState, count: int, failing: str, checks: tuple[str, ...],
           outcome: Outcome = Outcome.CONTEXT_TOO_SMALL) -> tuple[list[Event], list[str]]:
    """``count`` rounds of the endpoint's jobs, ``failing`` failing each time, the others
    passing; the events, and the state after every result."""
    events, seen = [], []
    for i in range(count):
        for j, check in enumerate(checks):
            r = result(outcome if check == failing else Outcome.OK, at=30 * i + j, check=check)
            events += [t.event for t in state.observe(r, None, SETTINGS)]
            seen.append(str(state.state))
    return events, seen


@pytest.mark.parametrize(
    ("required", "order"),
    [(("models", "health", "vllm_metrics", "context"), ("models", "health", "vllm_metrics",
                                                        "context")),
     (("models", "health", "vllm_metrics", "context"), ("context", "models", "health",
                                                        "vllm_metrics")),
     (("models", "health", "vllm_metrics"), ("models", "health", "vllm_metrics", "context"))],
    ids=["context-job-last", "context-job-first", "context-on-a-longer-schedule"],
)
def test_a_check_that_keeps_failing_holds_the_endpoint_down(
        required: tuple[str, ...], order: tuple[str, ...]) -> None:
    # issue 20: the context job was not read before "recovered": 56 down, 55 recovered
    state = EndpointState()
    state.plan(set(order), required)
    events, seen = rounds(state, 20, "context", order)
    assert events == [Event.DOWN]
    assert state.state == "down" and state.cause is not None
    assert state.cause.check == "context"
    if "context" in required:
        assert "up" not in seen, "the context job is read before the first up"


def test_the_required_checks_are_the_plans_own_tuple_and_survive_a_restart() -> None:
    """The checks "up" waits for are the tuple the plan hands over (shared by the endpoints
    with the same plan, no list each); saved and restored, they still hold "up" back."""
    required = ("models", "health")
    state = EndpointState()
    state.plan({"models", "health"}, required)
    assert state.availability.required is required
    state.observe(result(Outcome.OK, at=0, check="models"), None, SETTINGS)
    restored = EndpointState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored.availability.required == required
    assert restored.encoded().text == state.encoded().text
    _, seen = rounds(restored, 3, "", ("models",))
    assert "up" not in seen, "health has not passed: no evidence for up"
    _, seen = rounds(restored, 3, "", ("models", "health"))
    assert seen[-1] == "up"


def test_the_check_that_took_it_down_must_pass_up_after_times() -> None:
    state = EndpointState()
    checks = ("models", "health", "context")
    state.plan(set(checks), ("models", "health"))  # context on a longer schedule
    events, _ = rounds(state, 4, "context", checks)
    assert events == [Event.DOWN]
    events, seen = rounds(state, 1, "", checks)  # everything passes once
    assert events == [] and seen[-1] == "down", "one pass of context is not up_after"
    events, _ = rounds(state, 1, "", checks)
    assert events == [Event.RECOVERED] and state.state == "up"


def test_the_verdict_judges_a_result_by_its_role_not_its_name() -> None:
    """The role comes from the check's spec and travels on the result: a governed answer
    under any name degrades, an availability check under a prompt-like name takes down."""
    answers = EndpointState()
    feed(answers, "PPP")
    for i in range(3):
        r = replace(result(Outcome.EXPECTATION_FAILED, at=100.0 + i, check="quiz"),
                    role=CheckRole.ANSWERS)
        answers.observe(r, 10 + i, SETTINGS)
    assert answers.state == "degraded"

    available = EndpointState()
    feed(available, "PPP")
    for i in range(3):
        r = replace(result(Outcome.EXPECTATION_FAILED, at=100.0 + i, check="prompt:lookalike"),
                    role=CheckRole.AVAILABILITY)
        available.observe(r, 10 + i, SETTINGS)
    assert available.state == "down"


def test_only_the_served_model_role_reports_model_changes() -> None:
    state = EndpointState()
    for i, model in enumerate(["a", "b"]):
        r = replace(result(Outcome.OK, at=float(i), check="health"),
                    details={"model": model, "max_model_len": 4096})
        assert state.observe(r, i + 1, SETTINGS) == []
    for i, model in enumerate(["a", "b"]):
        r = replace(result(Outcome.OK, at=10.0 + i, check="health"),
                    details={"model": model}, role=CheckRole.SERVED_MODEL)
        events = [t.event for t in state.observe(r, 10 + i, SETTINGS)]
    assert events == [Event.MODEL_CHANGED]
