"""Tokens spent probing one endpoint in the last hour, and whether the next check fits.

The window is wall-clock (``time.time()``): a budget is "per hour" for people. A check
reserves its estimate before it sends anything and settles to the server's ``usage``
after, so a check that dies mid-answer still counts what it may have cost, and the
budget is never overrun by a burst of checks.
"""

from __future__ import annotations

import math
import time
from typing import Any

WINDOW_S = 3600.0
_METER_KEY = "token_meter"
CHARS_PER_TOKEN = 4  # a rough English average; only used for estimates


def estimate_tokens(text_chars: int, max_tokens: int) -> int:
    return math.ceil(text_chars / CHARS_PER_TOKEN) + max_tokens


class Spend:
    """One check's reservation; ``settle`` replaces the estimate with what was reported."""

    __slots__ = ("at", "tokens")

    def __init__(self, at: float, tokens: int) -> None:
        self.at = at
        self.tokens = tokens

    def settle(self, tokens: int) -> None:
        self.tokens = tokens


class TokenMeter:
    """The spends of the last hour, oldest first. In a list, not a deque: every endpoint
    that asks prompts has a meter for the daemon's life, an empty deque is 624 bytes (an
    empty list 56), and an hour holds a few dozen spends (two prompts every 5 minutes:
    24), so dropping the expired ones from the front costs nothing that shows."""

    def __init__(self) -> None:
        self._spends: list[Spend] = []

    def spent(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        spends = self._spends
        expired = 0
        while expired < len(spends) and spends[expired].at <= now - WINDOW_S:
            expired += 1
        del spends[:expired]
        return sum(s.tokens for s in spends)

    def reserve(self, tokens: int, now: float | None = None) -> Spend:
        spend = Spend(time.time() if now is None else now, tokens)
        self._spends.append(spend)
        return spend


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
