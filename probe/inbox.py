"""The queue in front of a single-owner writer thread (results store, ledger book).

sqlite3 connections belong to the thread that made them, so each database writer owns one
thread and everybody else only puts work in its inbox. ``take`` hands the writer everything
queued so far, and tells it when the stop marker arrived (work queued before it is kept).
"""

from __future__ import annotations

import queue
from typing import Generic, TypeVar

T = TypeVar("T")
_STOP = object()


class Inbox(Generic[T]):
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()

    def put(self, item: T) -> None:
        self._queue.put(item)

    def stop(self) -> None:
        self._queue.put(_STOP)

    def take(self, block: bool, timeout_s: float = 1.0) -> tuple[list[T], bool]:
        """(items queued now, stop seen). With ``block``, wait up to ``timeout_s`` for the
        first item."""
        items: list[T] = []
        try:
            item = self._queue.get(timeout=timeout_s) if block else self._queue.get_nowait()
            while True:
                if item is _STOP:
                    return items, True
                items.append(item)  # type: ignore[arg-type]
                item = self._queue.get_nowait()
        except queue.Empty:
            return items, False
