"""The inbox in front of a single-owner writer: everything queued so far in one take, the
stop marker seen with the work queued before it, a bounded wait when empty."""

from __future__ import annotations

import threading
import time

import pytest

from probe.inbox import Inbox

STOP = "stop"


@pytest.mark.parametrize(
    ("queued", "takes"),
    [((), [([], False)]),
     ((0, 1, 2), [([0, 1, 2], False), ([], False)]),
     ((STOP,), [([], True)]),
     ((0, 1, 2, STOP), [([0, 1, 2], True)]),
     ((0, STOP, 1), [([0], True), ([1], False)]),
     ((0, STOP, STOP), [([0], True), ([], True)])],
    ids=["empty", "items", "stop-only", "items-then-stop", "stop-between-items",
         "stop-twice"],
)
def test_take_hands_over_what_was_queued_before_the_stop(
        queued: tuple[object, ...], takes: list[tuple[list[int], bool]]) -> None:
    inbox: Inbox[int] = Inbox()
    for item in queued:
        if item == STOP:
            inbox.stop()
        else:
            inbox.put(item)  # type: ignore[arg-type]
    assert [inbox.take(block=False) for _ in takes] == takes


@pytest.mark.parametrize("block", [True, False], ids=["blocking", "non-blocking"])
def test_one_take_hands_over_everything_queued(block: bool) -> None:
    inbox: Inbox[int] = Inbox()
    for i in range(1000):
        inbox.put(i)
    assert inbox.take(block=block) == (list(range(1000)), False)


def test_a_blocking_take_on_an_empty_inbox_returns_empty_after_its_timeout() -> None:
    inbox: Inbox[int] = Inbox()
    began = time.monotonic()
    assert inbox.take(block=True, timeout_s=0.1) == ([], False)
    assert 0.09 <= time.monotonic() - began < 1.0


@pytest.mark.parametrize(("put", "expected"), [(lambda inbox: inbox.put(7), ([7], False)),
                                              (lambda inbox: inbox.stop(), ([], True))],
                         ids=["item", "stop"])
def test_a_blocking_take_wakes_when_work_arrives_from_another_thread(
        put: object, expected: tuple[list[int], bool]) -> None:
    inbox: Inbox[int] = Inbox()
    timer = threading.Timer(0.05, put, args=(inbox,))  # type: ignore[arg-type]
    timer.start()
    began = time.monotonic()
    assert inbox.take(block=True, timeout_s=10.0) == expected
    assert time.monotonic() - began < 5.0, "woken by the item, not by the timeout"
    timer.join()
