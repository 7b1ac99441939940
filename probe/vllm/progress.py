"""Is the engine making progress? Token rate between scrapes and the ``engine_stuck`` streak.

The known vLLM hang (EngineCore deadlock) keeps ``/health`` at 200 while requests pile up in
``waiting`` and no token is generated. So: a scrape with requests waiting and the same
``generation_tokens_total`` as the scrape before it extends a streak; ``stuck_after``
such scrapes in a row make the engine stuck. Tokens moving, or nothing waiting, ends it.

State lives in the check's durable memory (one dict per endpoint, kept between runs and
across a restart, so a restart neither forgets a stall nor starts it again); times are
wall-clock for that reason. A failed scrape is no observation: it neither extends nor ends
the streak. Contradicting evidence ends it: an answer the engine completed since the
previous scrape (the daemon's own prompt) means it is not stuck, whatever its counters say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.vllm.load import EngineLoad

DEFAULT_STUCK_AFTER = 3
_KEY = "engine_progress"


@dataclass(frozen=True, slots=True)
class Progress:
    """What one scrape says about progress since the previous one."""

    tokens_per_s: float | None  # None on the first scrape (nothing to compare with)
    counter_reset: bool  # the total went down: the server restarted between scrapes
    streak: int  # consecutive scrapes with requests waiting and no new tokens
    stalled_s: float  # how long the current streak has lasted (0 without a streak)
    answered: bool = False  # an answer completed since the previous scrape

    def stuck(self, stuck_after: int) -> bool:
        return self.streak >= stuck_after

    def judged(self, waiting: float) -> bool:
        """Whether progress can be told from this scrape: with requests waiting, a first
        scrape (nothing to compare with) or a stall shorter than ``stuck_after`` cannot."""
        return waiting <= 0 or (self.tokens_per_s is not None and self.streak < 2)


def observe(load: EngineLoad, now_s: float, memory: dict[str, Any],
            answered_at: float | None = None) -> Progress:
    """Compare ``load`` (scraped at wall-clock ``now_s``) with the previous scrape, then
    remember it for the next one. ``answered_at``: when the engine last completed an answer
    the daemon saw (progress the counters may not show)."""
    before = memory.get(_KEY)
    total = load.generation_tokens_total
    rate: float | None = None
    reset = False
    frozen = False
    answered = False
    if before is not None:
        elapsed = now_s - before["at_s"]
        reset = total < before["total"]
        # After a reset the new total is all there is since the restart (Prometheus' rule).
        delta = total if reset else total - before["total"]
        rate = delta / elapsed if elapsed > 0 else None
        answered = answered_at is not None and answered_at > before["at_s"]
        frozen = not reset and delta == 0 and not answered
    if load.waiting > 0 and frozen and before is not None and before["streak"] > 0:
        streak, since = before["streak"] + 1, before["since_s"]
    elif load.waiting > 0:
        streak, since = 1, now_s  # this scrape is the baseline a stall is measured from
    else:
        streak, since = 0, now_s
    memory[_KEY] = {"at_s": now_s, "total": total, "streak": streak, "since_s": since}
    return Progress(rate, reset, streak, now_s - since if streak > 1 else 0.0, answered)
