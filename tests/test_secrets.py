"""The Redactor: whole secrets and every piece of 8 characters or more of one are masked, so
a text cut through a key before it was scrubbed keeps at most 7 of its characters."""

from __future__ import annotations

from datetime import UTC, datetime

from helpers import role_of

from probe.outcome import Outcome, ProbeResult
from probe.secrets import FRAGMENT_CHARS, MASK, Redactor

KEY = "rpa_FAKE-K7QX2M9VDL4TB8-NW6ZHC3RJF5YPG1-SAE0UO8IKJ3"  # made up, not a key
OTHER = "sk-fake-9b1e6a4c2f8d0e3-b7a5c9f1d2e4b6a8c"  # made up
ENV = {"RUNPOD_API_KEY": KEY, "PROVIDER_KEY": OTHER, "SHORT": "pw42x"}
redact = Redactor(ENV, ENV)


def longest_piece(text: str, key: str) -> int:
    """The longest run of ``key``'s characters that ``text`` still holds."""
    return max((n for n in range(1, len(key) + 1)
                for start in range(len(key) - n + 1) if key[start:start + n] in text),
               default=0)


def test_a_key_cut_at_any_offset_keeps_less_than_a_piece() -> None:
    for key in (KEY, OTHER):
        for cut in range(len(key) + 1):
            head = f"HTTP 400: 'bad request from Bearer {key[:cut]}"
            tail = f"{key[cut:]} was sent"
            for text in (head, tail, head + "'", "x" * cut + key[cut:cut + 12] + "x"):
                scrubbed = redact(text)
                assert longest_piece(scrubbed, key) < FRAGMENT_CHARS, (cut, text, scrubbed)


def test_whole_keys_and_pieces_become_one_mask_each() -> None:
    assert redact(f"a {KEY} b") == f"a {MASK} b"
    assert redact(f"{KEY}{KEY}") == MASK
    assert redact(f"Bearer {KEY[:9]}") == f"Bearer {MASK}"
    assert redact(f"{KEY[-8:]} and {OTHER[5:20]}!") == f"{MASK} and {MASK}!"
    assert redact(f"from {KEY[:7]}") == f"from {KEY[:7]}", "7 characters are no piece"


def test_a_short_secret_is_masked_whole_only() -> None:
    assert redact("password pw42x here") == f"password {MASK} here"
    assert redact("pw42") == "pw42"


def test_ordinary_text_is_untouched_and_the_same_object() -> None:
    for text in ("served Qwen/Qwen2.5-7B-Instruct (max_model_len 32768)",
                 "https://abc123xyz-8000.proxy.runpod.net", "", "ok"):
        assert redact(text) is text
        assert redact(text) is text, "remembered as clean"


def test_a_result_is_copied_only_when_something_is_masked() -> None:
    clean = ProbeResult("p", "pod", "models", Outcome.OK, datetime.now(UTC), 0.1, 1,
                        "https://x-8000.proxy.runpod.net", "served m", 200,
                        {"model": "m", "n": 3, "list": ["a", "b"]}, role=role_of("models"))
    assert redact.result(clean) is clean
    leaky = ProbeResult("p", "pod", "models", Outcome.HTTP_4XX, datetime.now(UTC), 0.1, 1,
                        "https://x-8000.proxy.runpod.net", f"HTTP 400: '{KEY[:20]}", 400,
                        {"n": 3, f"k{KEY[4:16]}": [f"Bearer {KEY}", "b"]}, role=role_of("models"))
    scrubbed = redact.result(leaky)
    assert scrubbed.message == f"HTTP 400: '{MASK}"
    assert scrubbed.details == {"n": 3, f"k{MASK}": [f"Bearer {MASK}", "b"]}


def test_details_of_every_type_are_scrubbed_whatever_was_seen_clean_before() -> None:
    # numbers, flags, None and texts already seen clean are taken as they are (not a call
    # each); a text seen for the first time, a str subclass, a nested one, a key are looked at
    fresh = Redactor(ENV, ENV)
    seen = {"model": "m", "waiting": 0.0, "engines": 1, "reset": False, "rate": None}
    assert fresh.deep(seen) is seen
    assert fresh.deep(seen) is seen, "the same once its texts are known clean"
    leaky = {**seen, "model": f"m {KEY}", Outcome.OK: [f"x{OTHER[3:15]}"], "n": {"k": KEY},
             f"{KEY[:12]}": 1.5, "outcome": Outcome.TIMEOUT}
    assert fresh.deep(leaky) == {**seen, "model": f"m {MASK}", Outcome.OK: [f"x{MASK}"],
                                 "n": {"k": MASK}, MASK: 1.5, "outcome": Outcome.TIMEOUT}


def test_no_secret_no_work() -> None:
    nothing = Redactor(["UNSET"], {})
    assert nothing(f"Bearer {KEY}") == f"Bearer {KEY}"


def test_plain_line_keeps_no_control_or_format_character() -> None:
    from probe.secrets import plain_line

    assert plain_line("moving to an H100") == "moving to an H100"
    assert plain_line("\x1b[31mred\x1b[0m\r\nnext\tline\x07\x9b2J\u202eevil\x00") \
        == "[31mred [0m next line 2J evil"
    assert plain_line("  ünïcödé — ok  ") == "ünïcödé — ok"
