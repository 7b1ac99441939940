"""What a person reads: the verdict summary (worst first, colour only when asked, cut at a
word) and the table's messages cut at a word, not mid-word."""

from __future__ import annotations

import pytest

from probe.report import Verdict, cut, judged_summary, summary, table
from probe.verdict import Cause, State, SweepVerdict


@pytest.mark.parametrize(("text", "width", "shown"), [
    ("short", 10, "short"),
    ("the pod is stopped or destroyed", 20, "the pod is stopped…"),
    ("HTTP 404 (not found: pod stopped)", 22, "HTTP 404 (not found…"),
    ("averyveryverylongwordwithoutspaces", 10, "averyvery…"),
], ids=["fits", "at-a-word", "drops-trailing-punctuation", "one-long-word"])
def test_cut_at_a_word(text: str, width: int, shown: str) -> None:
    assert cut(text, width) == shown
    assert len(cut(text, width)) <= width


def test_the_summary_puts_the_worst_first_and_counts_by_state() -> None:
    text = summary([Verdict("b-up", State.UP), Verdict("a-down", State.DOWN, "models: http_404"),
                    Verdict("c-maint", State.MAINTENANCE, "swap: new GPU"),
                    Verdict("d-unknown", State.UNKNOWN, "not judged yet")])
    assert text.splitlines() == [
        "4 endpoints: 1 down, 1 unknown, 1 maintenance, 1 up",
        "  DOWN         a-down     models: http_404",
        "  UNKNOWN      d-unknown  not judged yet",
        "  MAINTENANCE  c-maint    swap: new GPU",
        "  UP           b-up"]
    assert "\x1b" not in text, "no colour unless asked (a pipe)"


def test_colour_repeats_the_state_word_never_replaces_it() -> None:
    line = summary([Verdict("a", State.DOWN, "x")], colour=True).splitlines()[1]
    assert line == "  \x1b[31mDOWN       \x1b[0m  a  x"


def test_a_long_message_is_cut_at_a_word_and_hostile_text_made_plain() -> None:
    judged = {"p": SweepVerdict(State.DOWN, Cause("models", "http_404"),
                             "HTTP 404 (not found: pod stopped or destroyed, or port not exposed)"
                             "\x1b[2J")}
    line = judged_summary(judged, width=60).splitlines()[1]
    assert line == "  DOWN         p  models: http_404 — HTTP 404 (not found…"
    assert len(line) <= 60


def test_the_table_cuts_its_last_column_at_a_word() -> None:
    text = table([["a", "the message goes on and on past the edge"]], ("NAME", "MESSAGE"),
                 width=30)
    assert text.splitlines()[1] == "a     the message goes on and…"
