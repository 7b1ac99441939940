"""A check's lines written when its result arrives are never behind its state: the page of a
collector whose series cache watches the state is byte for byte the page of one that writes
at scrape time, after every result and plan change, read from the thread that records
results or from another one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from helpers import config_of, endpoint, plan, role_of

from probe.exposition.check_series import CHECK_FAMILIES, PER_CHECK, CheckSeries
from probe.exposition.text import LabelCache, render
from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome, ProbeResult
from probe.state import FleetState

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CONFIG = config_of(endpoint(name="a", checks=("models", "health")),
                   endpoint(name='b"\\', checks=("models",)))

# (endpoint, check, outcome, attempts, http status): passes, failures, a retried pass, a
# result that observed nothing, a status-less timeout
RESULTS = [
    ("a", "models", Outcome.OK, 1, 200),
    ("a", "health", Outcome.HTTP_502, 1, 502),
    ('b"\\', "models", Outcome.TIMEOUT, 2, None),
    ("a", "models", Outcome.OK, 2, 200),
    ("a", "models", Outcome.SKIPPED_BUDGET, 1, None),
    ('b"\\', "models", Outcome.OK, 1, 200),
    ("a", "health", Outcome.OK, 1, 200),
]


def state_of(write_ahead: bool, per_check: bool = True) -> tuple[FleetState, ProbeCollector]:
    """A planned state and its collector (``write_ahead``: lines written as it changes;
    ``per_check``: each check's own series too)."""
    state = FleetState(role_of, clock=T0.timestamp)
    collector = ProbeCollector(state, write_ahead=write_ahead, per_check=per_check)
    state.configure(CONFIG, plan(CONFIG))
    return state, collector


def result(i: int) -> ProbeResult:
    name, check, outcome, attempts, status = RESULTS[i]
    return ProbeResult(name, "pod", check, outcome, T0 + timedelta(seconds=15 * i),
                       0.05 * (i + 1), attempts, "http://p", "m", status, role=role_of(check))


def page(collector: ProbeCollector) -> list[bytes]:
    body, _ = render(make_registry(collector), "")
    return [line for line in body.split(b"\n") if b"process_" not in line]


@pytest.mark.parametrize("per_check", [True, False], ids=["per-check", "default"])
@pytest.mark.parametrize("reader", ["writer-thread", "other-thread"])
def test_lines_written_ahead_are_the_page_after_every_result(reader: str,
                                                             per_check: bool) -> None:
    (ahead, ahead_page), (at_scrape, at_scrape_page) = (state_of(True, per_check),
                                                        state_of(False, per_check))
    assert page(ahead_page) == page(at_scrape_page)  # nothing probed yet
    for i in range(len(RESULTS)):
        if reader == "other-thread":  # results recorded in another thread than the page's
            worker = threading.Thread(target=ahead.update, args=(result(i),))
            worker.start()
            worker.join()
        else:
            ahead.update(result(i))
        at_scrape.update(result(i))
        assert page(ahead_page) == page(at_scrape_page), f"after result {i}"
    text = b"\n".join(page(ahead_page))
    # a's api checks: 4 observed (the skipped one is not), 1 failed
    assert b'runpod_probe_observations_total{check_kind="api",endpoint="a"} 4.0' in text
    assert b'runpod_probe_observation_failures_total{check_kind="api",endpoint="a"} 1.0' \
        in text
    assert (b'runpod_probe_results_total{check="models",endpoint="a",outcome="ok"} 2.0'
            in text) is per_check
    assert (b'runpod_probe_last_attempts{check="models",endpoint="b\\"\\\\"} 1.0'
            in text) is per_check


def test_a_result_replaces_the_lines_written_before_it() -> None:
    state, reg = state_of(True)
    state.update(result(0))
    before = page(reg)
    state.update(result(3))  # a second pass of the same check, retried
    after = page(reg)
    assert before != after
    assert (b'runpod_probe_retried_successes_total{check="models",endpoint="a"} 1.0'
            in b"\n".join(after))


def test_a_plan_change_drops_the_lines_of_what_it_removed() -> None:
    """A check planned again after a plan dropped it starts afresh, on the page too; the
    lines of what is no longer planned are not kept."""
    (ahead, ahead_page), (at_scrape, at_scrape_page) = state_of(True), state_of(False)
    only_a = config_of(endpoint(name="a", checks=("models",)))
    for state in (ahead, at_scrape):
        for i in range(len(RESULTS)):
            state.update(result(i))
        state.configure(only_a, plan(only_a))
    assert page(ahead_page) == page(at_scrape_page)
    assert ahead_page.series is not None
    assert ahead_page.series.checks.names() == [("a", "models")]
    assert ahead_page.series.views.names() == ["a"]
    for state in (ahead, at_scrape):
        state.configure(CONFIG, plan(CONFIG))
    assert page(ahead_page) == page(at_scrape_page)
    assert b'runpod_probe_results_total{check="health",endpoint="a",outcome="ok"} 0.0' in (
        b"\n".join(page(ahead_page)))


def test_families_read_out_of_order_write_the_same_lines() -> None:
    state, collector = state_of(True)
    for i in range(len(RESULTS)):
        state.update(result(i))
    checks = sorted(state.snapshot().checks.items())
    assert collector.series is not None
    kept = collector.series.checks.columns
    series = CheckSeries.of(per_check=True)
    in_order = ["".join(f.blocks(LabelCache())) for f in series.families(checks, kept)]
    backwards = series.families(checks, kept)[::-1]
    read = ["".join(f.blocks(LabelCache())) for f in backwards][::-1]
    assert read == in_order
    assert len(in_order) == len(CHECK_FAMILIES) + len(PER_CHECK) and all(in_order)


@pytest.mark.parametrize("per_check", [True, False], ids=["per-check", "default"])
def test_a_pass_after_a_pass_keeps_lines_that_are_still_right(per_check: bool) -> None:
    # By default a check's lines say only whether it passed and how it failed: a pass after
    # a pass is not written again. What follows a failure, a result that observed nothing
    # or the declared (never run) state is, and per check (counters) every result is.
    (ahead, ahead_page), (at_scrape, at_scrape_page) = (state_of(True, per_check),
                                                        state_of(False, per_check))
    assert ahead_page.series is not None
    runs = [Outcome.OK, Outcome.OK, Outcome.TIMEOUT, Outcome.OK, Outcome.OK,
            Outcome.SKIPPED_BUDGET, Outcome.OK, Outcome.OK]
    for i, outcome in enumerate(runs):
        kept = ahead_page.series.checks.get(("a", "health"))
        r = ProbeResult("a", "pod", "health", outcome, T0 + timedelta(seconds=15 * i), 0.1,
                        1, "http://p", "m", role=role_of("health"))
        ahead.update(r)
        at_scrape.update(r)
        assert page(ahead_page) == page(at_scrape_page), f"after result {i}"
        written = ahead_page.series.checks.get(("a", "health"))
        repeated = i > 0 and outcome is Outcome.OK and runs[i - 1] is Outcome.OK
        assert kept is None or written is not None
        # not written again: the kept text is the very one written before (a text written
        # anew is an equal but new string)
        same = kept is not None and written is not None and written[0] is kept[0]
        assert same is (repeated and not per_check), f"result {i}"
