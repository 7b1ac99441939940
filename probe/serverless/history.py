"""What one endpoint's queue did between readings: counter deltas (with resets), how long
workers have been initializing, and the failures inside the failure window.

``completed``/``failed``/``retried`` are counters, so only their increase means anything;
a counter that goes down (a reset, or a windowed counter) gives no delta and no verdict.
Wall-clock time (``time.time``) measures the initializing budget and the failure window.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from probe.serverless.health import QueueHealth

DELTA_COUNTERS = ("completed", "failed", "retried")


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading seen against the ones before it."""

    health: QueueHealth
    previous: QueueHealth | None
    deltas: dict[str, int]  # increase since the previous reading ({} on the first)
    resets: tuple[str, ...]  # counters that went down since the previous reading
    initializing_for_s: float | None  # workers have been initializing without a break
    failed_in_window: int
    retried_in_window: int

    @property
    def progressed(self) -> bool:
        """A job left the queue since the previous reading (or we cannot tell that none did)."""
        if self.previous is None:
            return False
        return bool(self.resets) or self.deltas.get("completed", 0) > 0 \
            or self.health.in_queue < self.previous.in_queue

    @property
    def queue_shrank(self) -> bool:
        return self.previous is not None and self.health.in_queue < self.previous.in_queue


@dataclass(slots=True)
class QueueHistory:
    """Per-endpoint memory of the queue check, kept across runs and restarts (as JSON in the
    check's durable memory): a condition's streak, a cold start's beginning and the failure
    window go on where they were."""

    previous: QueueHealth | None = None
    initializing_since: float | None = None
    failures: deque[tuple[float, int, int]] = field(default_factory=deque)
    streaks: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        previous = None
        if self.previous is not None:
            previous = {"jobs": self.previous.jobs, "workers": self.previous.workers,
                        "absent": list(self.previous.absent)}
        return {"previous": previous, "initializing_since": self.initializing_since,
                "failures": [list(f) for f in self.failures], "streaks": dict(self.streaks)}

    @classmethod
    def from_json(cls, data: Any) -> QueueHistory:
        """The history kept before; a fresh one when there is none or it cannot be read."""
        if not isinstance(data, dict):
            return cls()
        try:
            raw = data.get("previous")
            previous = None if raw is None else QueueHealth(
                {k: int(v) for k, v in raw["jobs"].items()},
                {k: int(v) for k, v in raw["workers"].items()}, tuple(raw.get("absent", ())))
            since = data.get("initializing_since")
            return cls(previous, float(since) if since is not None else None,
                       deque((float(t), int(f), int(r)) for t, f, r in data.get("failures", [])),
                       {str(k): int(v) for k, v in data.get("streaks", {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls()

    def observe(self, health: QueueHealth, failure_window_s: float,
                now: float | None = None) -> Observation:
        now = time.time() if now is None else now
        deltas: dict[str, int] = {}
        resets: list[str] = []
        if self.previous is not None:
            for name in DELTA_COUNTERS:
                change = health.jobs[name] - self.previous.jobs[name]
                if change < 0:
                    resets.append(name)
                deltas[name] = max(change, 0)
        if deltas.get("failed") or deltas.get("retried"):
            self.failures.append((now, deltas.get("failed", 0), deltas.get("retried", 0)))
        while self.failures and now - self.failures[0][0] > failure_window_s:
            self.failures.popleft()
        if health.workers["initializing"] == 0:
            self.initializing_since = None
        elif self.initializing_since is None:
            self.initializing_since = now
        observation = Observation(
            health=health, previous=self.previous, deltas=deltas, resets=tuple(resets),
            initializing_for_s=None if self.initializing_since is None
            else now - self.initializing_since,
            failed_in_window=sum(f for _, f, _ in self.failures),
            retried_in_window=sum(r for _, _, r in self.failures),
        )
        self.previous = health
        return observation
