"""A check's lines written when its result arrives are never behind its state: the page of a
state that writes ahead is byte for byte the page of one that writes at scrape time, after
every result, read from the thread that records results or from another one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from helpers import config_of, endpoint, plan

from probe.check_series import CHECK_FAMILIES, families, lines_of
from probe.exposition import LabelCache, render
from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome, ProbeResult
from probe.state import FleetState, WriteAhead

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


def state_of(write_ahead: WriteAhead | None) -> FleetState:
    state = FleetState(write_ahead=write_ahead)
    state.configure(CONFIG, plan(CONFIG))
    return state


def result(i: int) -> ProbeResult:
    name, check, outcome, attempts, status = RESULTS[i]
    return ProbeResult(name, "pod", check, outcome, T0 + timedelta(seconds=15 * i),
                       0.05 * (i + 1), attempts, "http://p", "m", status)


def page(state: FleetState) -> list[bytes]:
    body, _ = render(make_registry(ProbeCollector(state)), "")
    return [line for line in body.split(b"\n") if b"process_" not in line]


@pytest.mark.parametrize("reader", ["writer-thread", "other-thread"])
def test_lines_written_ahead_are_the_page_after_every_result(reader: str) -> None:
    ahead, at_scrape = state_of(lines_of), state_of(None)
    assert page(ahead) == page(at_scrape)  # nothing probed yet: every check written now
    for i in range(len(RESULTS)):
        if reader == "other-thread":  # the page is read from copies of the checks' states
            worker = threading.Thread(target=ahead.update, args=(result(i),))
            worker.start()
            worker.join()
        else:
            ahead.update(result(i))
        at_scrape.update(result(i))
        assert page(ahead) == page(at_scrape), f"after result {i}"
    text = b"\n".join(page(ahead))
    assert b'runpod_probe_results_total{check="models",endpoint="a",outcome="ok"} 2.0' in text
    assert b'runpod_probe_last_attempts{check="models",endpoint="b\\"\\\\"} 1.0' in text


def test_a_result_replaces_the_lines_written_before_it() -> None:
    state = state_of(lines_of)
    state.update(result(0))
    before = page(state)
    state.update(result(3))  # a second pass of the same check, retried
    after = page(state)
    assert before != after
    assert (b'runpod_probe_retried_successes_total{check="models",endpoint="a"} 1.0'
            in b"\n".join(after))


def test_families_read_out_of_order_write_the_same_lines() -> None:
    state = state_of(lines_of)
    for i in range(len(RESULTS)):
        state.update(result(i))
    checks = sorted(state.snapshot().checks.items())
    in_order = ["".join(f.blocks(LabelCache())) for f in families(checks)]
    backwards = families(checks)[::-1]
    read = ["".join(f.blocks(LabelCache())) for f in backwards][::-1]
    assert read == in_order
    assert len(in_order) == len(CHECK_FAMILIES) and all(in_order)
