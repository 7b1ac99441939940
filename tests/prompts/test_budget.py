"""The hourly token budget is wall-clock logic: tested under freezegun, no network."""

from __future__ import annotations

from freezegun import freeze_time

from probe.prompts.budget import TokenMeter, estimate_tokens, meter, over_budget


def test_spend_leaves_the_window_after_an_hour() -> None:
    shared: dict[str, object] = {}
    with freeze_time("2026-02-18 10:00:00") as clock:
        meter(shared).reserve(900)
        assert over_budget(shared, 1000, 200) is not None
        clock.tick(3599)
        assert over_budget(shared, 1000, 200) is not None
        clock.tick(1)
        assert over_budget(shared, 1000, 200) is None
        assert meter(shared).spent() == 0


def test_reservation_settles_to_reported_usage() -> None:
    with freeze_time("2026-02-18 10:00:00"):
        tokens = TokenMeter()
        spend = tokens.reserve(500)
        assert tokens.spent() == 500
        spend.settle(120)
        assert tokens.spent() == 120


def test_refusal_names_budget_spent_and_need() -> None:
    shared: dict[str, object] = {}
    with freeze_time("2026-02-18 10:00:00"):
        meter(shared).reserve(950)
        assert over_budget(shared, 1000, 80) == ("token budget 1000/h reached: 950 spent in "
                                                 "the last hour, this check needs about 80")


def test_no_budget_never_refuses() -> None:
    shared: dict[str, object] = {}
    meter(shared).reserve(10**9)
    assert over_budget(shared, None, 10**9) is None


def test_estimate_is_prompt_chars_over_four_plus_max_tokens() -> None:
    assert estimate_tokens(13, 16) == 4 + 16


def test_spends_leave_the_window_oldest_first() -> None:
    tokens = TokenMeter()
    tokens.reserve(100, now=0.0)
    tokens.reserve(200, now=1800.0)
    tokens.reserve(300, now=3000.0)
    assert tokens.spent(now=3599.0) == 600
    assert tokens.spent(now=3600.0) == 500
    assert tokens.spent(now=5400.0) == 300
    tokens.reserve(50, now=5500.0)
    assert tokens.spent(now=6600.0) == 50
    assert tokens.spent(now=9100.0) == 0


def test_a_meter_never_read_holds_only_the_last_hour() -> None:
    # no budget set: nothing asks what was spent, and a prompt every 5 minutes for a week
    # leaves the meter with the last hour's spends, not the week's
    tokens = TokenMeter()
    for i in range(7 * 24 * 12):
        spend = tokens.reserve(100, now=300.0 * i)
        spend.settle(40)
    assert len(tokens) == 12
    assert tokens.spent(now=300.0 * i) == 12 * 40


def test_a_spend_settled_after_it_left_the_hour_changes_nothing() -> None:
    tokens = TokenMeter()
    late = tokens.reserve(500, now=0.0)
    tokens.reserve(70, now=3500.0)
    tokens.reserve(30, now=3700.0)  # the first is out of the hour
    late.settle(10**6)
    assert tokens.spent(now=3700.0) == 100
