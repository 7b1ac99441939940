"""Tokens spent probing one endpoint in the last hour, and whether the next check fits.

The window is wall-clock (``time.time()``): a budget is "per hour" for people. A check
reserves its estimate before it sends anything and settles to the server's ``usage``
after, so a check that dies mid-answer still counts what it may have cost, and the
budget is never overrun by a burst of checks.
"""

from __future__ import annotations

import math
import time
from array import array
from typing import Any

WINDOW_S = 3600.0
_METER_KEY = "token_meter"
CHARS_PER_TOKEN = 4  # a rough English average; only used for estimates


def estimate_tokens(text_chars: int, max_tokens: int) -> int:
    return math.ceil(text_chars / CHARS_PER_TOKEN) + max_tokens


class Spend:
    """One check's reservation; ``settle`` replaces the estimate with what was reported (a
    handle the check holds while it runs: the meter keeps the numbers)."""

    __slots__ = ("_meter", "_number")

    def __init__(self, meter: TokenMeter, number: int) -> None:
        self._meter = meter
        self._number = number  # the meter's spends before it, ever

    def settle(self, tokens: int) -> None:
        self._meter._settle(self._number, tokens)


class TokenMeter:
    """The spends of the last hour, oldest first: when each was made and its tokens, in two
    arrays (16 bytes a spend; an object each held ~100). Every endpoint that asks prompts
    has a meter for the daemon's life, and an hour holds a few dozen spends (two prompts
    every 5 minutes: 24); those older than the hour are dropped when one is reserved, so a
    meter never read (no budget set) does not grow without end (it did: ~57 kB a day a
    default pod)."""

    __slots__ = ("_at", "_tokens", "_dropped")

    def __init__(self) -> None:
        self._at = array("d")
        self._tokens = array("q")
        self._dropped = 0  # spends dropped from the front, ever

    def __len__(self) -> int:
        """Spends held: those of the hour before the last reservation or reading."""
        return len(self._at)

    def _expire(self, now: float) -> None:
        at = self._at
        expired = 0
        while expired < len(at) and at[expired] <= now - WINDOW_S:
            expired += 1
        if expired:
            del at[:expired]
            del self._tokens[:expired]
            self._dropped += expired

    def spent(self, now: float | None = None) -> int:
        self._expire(time.time() if now is None else now)
        return sum(self._tokens)

    def reserve(self, tokens: int, now: float | None = None) -> Spend:
        now = time.time() if now is None else now
        self._expire(now)
        self._at.append(now)
        self._tokens.append(tokens)
        return Spend(self, self._dropped + len(self._at) - 1)

    def _settle(self, number: int, tokens: int) -> None:
        at = number - self._dropped
        if 0 <= at < len(self._tokens):  # (a spend already out of the hour counts no more)
            self._tokens[at] = tokens


def meter(shared: dict[str, Any]) -> TokenMeter:
    """The endpoint's meter (one per endpoint, shared by all its checks)."""
    found = shared.get(_METER_KEY)
    if not isinstance(found, TokenMeter):
        found = shared[_METER_KEY] = TokenMeter()
    return found


def over_budget(shared: dict[str, Any], budget: int | None, needed: int) -> str | None:
    """Why the next check may not run (None: it may)."""
    if budget is None:
        return None
    spent = meter(shared).spent()
    if spent + needed <= budget:
        return None
    return (f"token budget {budget}/h reached: {spent} spent in the last hour, this check "
            f"needs about {needed}")
