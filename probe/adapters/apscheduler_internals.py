"""APScheduler's private names, for ``probe.scheduler``.

Read from APScheduler 3.10 to 3.11.3 (contract tests:
``tests/adapters/test_apscheduler_contract.py``; pinned ``apscheduler>=3.10,<3.12`` in
pyproject.toml; APScheduler 4 is another API altogether, with no ``AsyncIOScheduler``). It
relies on ``AsyncIOScheduler``'s timer:

- ``_start_timer(wait_seconds)``: called by the scheduler after every pass over its job
  stores (and at start) with the seconds until the next job is due, or None when none is;
- ``_stop_timer()``: cancels ``self._timeout`` if set, and deletes it;
- ``_timeout``: the timer handle (a class attribute, None, until one is set);
- ``_eventloop``: the running loop, set by ``start()``;
- ``_process_jobs()``: one pass, submitting the due jobs; returns the seconds until the
  next wake-up, or None.
"""

from __future__ import annotations

import math
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler


class LoopScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """APScheduler's asyncio scheduler, woken by its timer directly on the event loop.

    The stock scheduler's timer calls ``wakeup``, which goes through
    ``call_soon_threadsafe`` (a byte through the loop's self-pipe and another loop
    iteration) on every wake-up: one per job on a spread fleet. Here the timer runs the
    pass itself, and wake-ups are rounded up to ``tick_s``. ``wakeup`` (for new jobs,
    from any thread) is unchanged."""

    def __init__(self, tick_s: float, **options: Any) -> None:
        self.tick_s = tick_s
        super().__init__(**options)

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            wait = math.ceil(wait_seconds / self.tick_s - 1e-9) * self.tick_s
            self._timeout = self._eventloop.call_later(wait, self._tick)

    def _tick(self) -> None:
        self._timeout = None
        self._start_timer(self._process_jobs())
