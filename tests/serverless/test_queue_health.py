"""Parsing /health: every counter optional, unknown keys kept, bad answers refused."""

from __future__ import annotations

from typing import Any

import pytest

from probe.http import BadBody
from probe.serverless.health import parse_health


def test_current_docs_example_reads_missing_worker_counters_as_absent_zero() -> None:
    health = parse_health({"jobs": {"completed": 1, "failed": 5, "inProgress": 0, "inQueue": 2,
                                    "retried": 0}, "workers": {"idle": 0, "running": 0}})
    assert health.in_queue == 2 and health.jobs["failed"] == 5
    assert health.workers["unhealthy"] == 0 and health.workers["initializing"] == 0
    assert health.absent == ("workers.initializing", "workers.ready", "workers.throttled",
                             "workers.unhealthy")


def test_unknown_keys_are_kept_with_their_section() -> None:
    health = parse_health({"jobs": {"inQueue": 1, "purged": 3},
                           "workers": {"idle": 1, "outdated": 2}, "region": "EU"})
    assert health.unknown == {"region": "EU", "jobs.purged": 3, "workers.outdated": 2}
    assert "jobs.completed" in health.absent and "workers.idle" not in health.absent
    assert health.as_details()["unknown"]["workers.outdated"] == 2


def test_null_counter_reads_as_absent() -> None:
    health = parse_health({"jobs": {"inQueue": None}, "workers": {}})
    assert health.in_queue == 0 and "jobs.inQueue" in health.absent


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, 'expected "jobs" to be an object of counters, got nothing'),
        ({"jobs": {}, "workers": [1]}, 'expected "workers" to be an object of counters, got list'),
        ({"jobs": {"inQueue": "7"}, "workers": {}}, "jobs.inQueue is not a non-negative whole number: '7'"),
        ({"jobs": {"inQueue": -1}, "workers": {}}, "jobs.inQueue is not a non-negative whole number: -1"),
        ({"jobs": {}, "workers": {"idle": True}}, "workers.idle is not a non-negative whole number: True"),
        ({"jobs": {}, "workers": {"idle": 1.5}}, "workers.idle is not a non-negative whole number: 1.5"),
    ],
    ids=["empty", "workers-list", "string-counter", "negative", "boolean", "fraction"],
)
def test_bad_answers_are_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(BadBody) as caught:
        parse_health(document)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("workers", "serving", "none"),
    [({"idle": 1}, True, False), ({"ready": 1}, True, False), ({"running": 1}, True, False),
     ({"initializing": 1}, False, False), ({"throttled": 2}, False, False),
     ({n: 0 for n in ("idle", "initializing", "ready", "running", "throttled", "unhealthy")},
      False, True), ({"idle": 0, "running": 0}, False, False)],
    ids=["idle", "ready", "running", "initializing", "throttled", "none",
         "none-known-but-some-counters-absent"],
)
def test_serving_and_no_workers(workers: dict[str, int], serving: bool, none: bool) -> None:
    health = parse_health({"jobs": {}, "workers": workers})
    assert (health.serving, health.no_workers) == (serving, none)
