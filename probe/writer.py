"""The one loop behind every SQLite writer (the results store, the ledger book).

sqlite3 connections belong to the thread that made them, so each database writer owns one
thread and everybody else only puts work in its inbox. The loop takes what is queued,
writes it in one transaction, and keeps it on failure (locked, disk full): the failure is
logged and counted and the write retried with back-off. A stop request wakes the loop at
once; what the last upkeep queues (an export's or a pattern's drafts) is written before
the loop ends; what cannot be written at shutdown is counted and logged with its number,
never lost silently.
"""

from __future__ import annotations

import logging
import threading
from typing import Generic, TypeVar

from probe.inbox import Inbox

log = logging.getLogger(__name__)
T = TypeVar("T")
C = TypeVar("C")
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.5, 30.0
# After a write the loop waits this long for the next batch. A transaction costs the same
# for one row as for hundreds (about 0.5 ms of CPU in SQLite's locks, pages and sync): with
# 6.7 results a second (100 pods every 15 s) a second's wait makes 1 transaction per writer
# where 0.2 s made 5, 3.5 ms of CPU a second less for the two writers (measured, per-thread
# CPU from /proc). Results and ledger rows are on disk within a second; a stop writes what
# is queued at once.
BATCH_INTERVAL_S = 1.0
# At shutdown, what an upkeep queued is written in another round (then upkeep again): at
# most this many rounds.
FINAL_ROUNDS = 3


class SingleWriter(Generic[T, C]):
    """Subclasses say how to connect, what a batch is, how to write it and what to do after;
    the loop, the retries and the shutdown are here. ``what`` names the work in log lines
    ("results", "ledger entries")."""

    what = "items"

    def __init__(self, thread_name: str, batch_interval_s: float = BATCH_INTERVAL_S,
                 idle_poll_s: float = 1.0) -> None:
        self.batch_interval_s = batch_interval_s
        self.idle_poll_s = idle_poll_s
        self.errors_total = 0
        self.dropped_total = 0
        self._inbox: Inbox[T] = Inbox()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)

    # -- what subclasses provide -------------------------------------------------------
    def connect(self) -> C:
        raise NotImplementedError

    def disconnect(self, conn: C) -> None:
        close = getattr(conn, "close", None)
        if close is not None:
            close()

    def accept(self, items: list[T]) -> None:
        """Add newly queued items to the backlog."""
        raise NotImplementedError

    def backlog_size(self) -> int:
        """How many items wait (0: nothing to write)."""
        raise NotImplementedError

    def losable(self) -> int:
        """How many of the waiting items would be lost if they were given up (what log lines
        and ``dropped_total`` count; by default every item)."""
        return self.backlog_size()

    def write(self, conn: C) -> None:
        """Write the whole backlog in one transaction; raise to keep it for a retry."""
        raise NotImplementedError

    def written(self, conn: C) -> None:
        """The backlog is on disk: clear it, count it, run follow-ups."""
        raise NotImplementedError

    def upkeep(self, conn: C) -> None:
        """Periodic work in the writer thread (retention, exports); errors are logged."""

    def give_up(self, count: int) -> None:
        """Shutdown could not write ``count`` items: they are lost (counted, logged)."""
        self.dropped_total += count

    # -- the loop ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def put(self, item: T) -> None:
        self._inbox.put(item)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (one last attempt), then stop the writer. A writer still
        inside a write when the timeout expires is left to finish it (it may yet succeed):
        the log says how many items may be lost, nothing is counted twice."""
        self._stop.set()
        self._inbox.stop()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("%s writer still busy after %gs at shutdown: %d %s may not be written",
                      self._thread.name, timeout_s, self.losable(), self.what)

    def _loop(self) -> None:
        try:
            conn = self.connect()
        except Exception as exc:  # noqa: BLE001 - reported; nothing can be written
            log.error("%s writer cannot open its database: %s", self._thread.name, exc)
            self._drain_unwritable()
            return
        stopping, delay, final_rounds = False, FIRST_BACKOFF_S, FINAL_ROUNDS
        try:
            while not (stopping and not self.backlog_size()):
                items, seen_stop = self._inbox.take(block=not self.backlog_size(),
                                                    timeout_s=self.idle_poll_s)
                self.accept(items)
                stopping = stopping or seen_stop
                if self.backlog_size():
                    try:
                        self.write(conn)
                    except Exception as exc:  # noqa: BLE001 - locked, disk full, I/O
                        self.errors_total += 1
                        left = self.losable()
                        if stopping:
                            log.error("cannot write %d %s at shutdown: %s; they are lost",
                                      left, self.what, exc)
                            self.give_up(left)
                            break
                        log.error("cannot write %d %s: %s (will retry)", left, self.what, exc)
                        self._stop.wait(delay)  # a stop request cuts the back-off short
                        delay = min(delay * 2, MAX_BACKOFF_S)
                        continue
                    delay = FIRST_BACKOFF_S
                    self.written(conn)
                try:
                    self.upkeep(conn)
                except Exception:  # noqa: BLE001 - upkeep never stops the writer
                    log.exception("%s upkeep failed", self._thread.name)
                if not stopping:
                    self._stop.wait(self.batch_interval_s)  # let a batch accumulate
                else:
                    # what the last upkeep queued (drafts made at shutdown) is written too;
                    # a few rounds at most, should an upkeep queue something every time
                    self.accept(self._inbox.take(block=False)[0])
                    final_rounds -= 1
                    if final_rounds < 0 and self.backlog_size():
                        left = self.losable()
                        log.error("%s writer: %d %s queued by its last upkeeps at shutdown "
                                  "are not written", self._thread.name, left, self.what)
                        self.give_up(left)
                        break
        finally:
            self.disconnect(conn)

    def _drain_unwritable(self) -> None:
        """No connection: everything queued until the stop marker is lost, counted and
        logged with its number."""
        stopping = False
        while not stopping:
            items, stopping = self._inbox.take(block=True, timeout_s=self.idle_poll_s)
            self.accept(items)
        lost = self.losable()
        if lost:
            log.error("%d %s lost: the %s writer never opened its database", lost, self.what,
                      self._thread.name)
            self.give_up(lost)
