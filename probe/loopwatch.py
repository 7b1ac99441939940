"""How long the event loop was not listening: the probe's own overload, told apart from an
endpoint's slowness.

Every check waits for its answer in the one event loop. When the loop is late (more checks
than one core can carry, a scrape holding the interpreter, a blocked call), an answer that
arrived on time can sit unread past the check's deadline, and the check would charge the
endpoint with a timeout it did not cause. ``LoopWatch`` beats every ``BEAT_S`` seconds and
adds up how late each beat ran beyond ``SLACK_S``: the seconds the loop was stalled. A
check compares the total at its start and at its deadline (``probe.attempts``): when the
loop was stalled for a good part of its budget, its timeout is the probe's, not the
endpoint's (``unknown``, never ``down``). Ten callbacks a second; O(1) per check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

BEAT_S = 0.1
# Lateness up to this is a busy loop's ordinary jitter, not a stall.
SLACK_S = 0.05


class LoopWatch:
    def __init__(self, on_stall: Callable[[float], None] | None = None,
                 beat_s: float = BEAT_S, slack_s: float = SLACK_S) -> None:
        self._on_stall = on_stall
        self._beat_s = beat_s
        self._slack_s = slack_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._stalled_s = 0.0

    def start(self) -> None:
        """Beat in the running loop (until ``stop``)."""
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self._beat_s
        self._handle = self._loop.call_at(self._due, self._beat)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._loop = None

    def _beat(self) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        late = now - self._due
        if late > self._slack_s:
            self._stalled_s += late
            if self._on_stall is not None:
                self._on_stall(late)
        self._due = now + self._beat_s
        self._handle = loop.call_at(self._due, self._beat)

    def stalled_s(self) -> float:
        """Seconds the loop has been stalled since ``start``, counting the stall it is in
        now (a beat overdue): a difference of two readings is the stall between them."""
        loop = self._loop
        if loop is None:
            return self._stalled_s
        overdue = loop.time() - self._due
        return self._stalled_s + (overdue if overdue > self._slack_s else 0.0)
