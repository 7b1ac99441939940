"""Token rate and the engine_stuck streak, scrape by scrape (explicit monotonic times)."""

from __future__ import annotations

from typing import Any

import pytest

from probe.vllm.load import EngineLoad
from probe.vllm.progress import observe


def load(waiting: float, tokens: float) -> EngineLoad:
    return EngineLoad(waiting=waiting, running=0.0, generation_tokens_total=tokens)


# Each scrape: (at_s, waiting, generation_tokens_total) -> (streak, tokens_per_s, reset).
SEQUENCES: list[tuple[str, list[tuple[float, float, float]], list[tuple[int, Any, bool]]]] = [
    ("first-scrape-has-no-rate", [(0, 0, 10)], [(0, None, False)]),
    ("rate-between-scrapes", [(0, 0, 10), (10, 0, 60)], [(0, None, False), (0, 5.0, False)]),
    ("frozen-with-queue-grows-streak", [(0, 3, 10), (10, 3, 10), (20, 4, 10)],
     [(1, None, False), (2, 0.0, False), (3, 0.0, False)]),
    ("tokens-move-restart-streak", [(0, 3, 10), (10, 3, 10), (20, 3, 11), (30, 3, 11)],
     [(1, None, False), (2, 0.0, False), (1, 0.1, False), (2, 0.0, False)]),
    ("empty-queue-ends-streak", [(0, 3, 10), (10, 3, 10), (20, 0, 10), (30, 2, 10)],
     [(1, None, False), (2, 0.0, False), (0, 0.0, False), (1, 0.0, False)]),
    ("idle-server-is-never-stuck", [(0, 0, 10), (10, 0, 10), (20, 0, 10)],
     [(0, None, False), (0, 0.0, False), (0, 0.0, False)]),
    ("counter-reset-is-a-restart-not-a-stall", [(0, 3, 500), (10, 3, 500), (20, 3, 40)],
     [(1, None, False), (2, 0.0, False), (1, 4.0, True)]),
    ("restart-to-zero-then-frozen", [(0, 3, 500), (10, 3, 0), (20, 3, 0)],
     [(1, None, False), (1, 0.0, True), (2, 0.0, False)]),
]


@pytest.mark.parametrize(("scrapes", "expected"), [s[1:] for s in SEQUENCES],
                         ids=[s[0] for s in SEQUENCES])
def test_progress_sequences(scrapes: list[tuple[float, float, float]],
                            expected: list[tuple[int, Any, bool]]) -> None:
    memory: dict[str, Any] = {}
    seen = []
    for at_s, waiting, tokens in scrapes:
        p = observe(load(waiting, tokens), at_s, memory)
        seen.append((p.streak, p.tokens_per_s, p.counter_reset))
    assert seen == expected


def test_stuck_at_the_threshold_and_stall_duration_from_the_first_frozen_scrape() -> None:
    memory: dict[str, Any] = {}
    progress = [observe(load(5, 100), at_s, memory) for at_s in (0.0, 30.0, 60.0)]
    assert [p.stuck(3) for p in progress] == [False, False, True]
    assert [p.stuck(2) for p in progress] == [False, True, True]
    assert progress[-1].stalled_s == 60.0


def test_same_instant_gives_no_rate_instead_of_dividing_by_zero() -> None:
    memory: dict[str, Any] = {}
    observe(load(0, 1), 5.0, memory)
    assert observe(load(0, 2), 5.0, memory).tokens_per_s is None
