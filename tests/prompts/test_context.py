"""Passive context fit against canned /v1/models answers (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from helpers import endpoint
from local_server import answering

from probe.check import CheckContext
from probe.outcome import Observation, Outcome
from probe.prompts import context
from probe.prompts.model import COMPLETION_KEY


def models(max_len: int | None, status: int = 200) -> Any:
    card: dict[str, Any] = {"id": "Q", "object": "model"}
    if max_len is not None:
        card["max_model_len"] = max_len
    return lambda request: httpx.Response(status, json={"data": [card]})


def run(handler: Any, extra: dict[str, Any]) -> Observation:
    async def go() -> Observation:
        async with answering(handler) as client:
            params = {k: v for k, v in extra.items() if k == COMPLETION_KEY}
            own = {k: v for k, v in extra.items() if k != COMPLETION_KEY}
            return await context.check(endpoint(extra=own), client,
                                       CheckContext(params=params))

    return asyncio.run(go())


CASES = [
    ("fits", models(32768), Outcome.OK, "max_model_len 32768 fits required_context 11000"),
    ("too-small", models(8192), Outcome.CONTEXT_TOO_SMALL,
     "max_model_len 8192 is below required_context 11000 + max_tokens 64 = 11064"),
    ("just-short-of-completion-room", models(11063), Outcome.CONTEXT_TOO_SMALL, "= 11064"),
    ("exactly-enough", models(11064), Outcome.OK, "fits"),
    ("not-reported", models(None), Outcome.CONTEXT_TOO_SMALL, "cannot be verified"),
    ("server-down", models(None, 502), Outcome.HTTP_502, "HTTP 502"),
]


@pytest.mark.parametrize(("handler", "outcome", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_passive_context_fit(handler: Any, outcome: Outcome, words: str) -> None:
    verdict = run(handler, {"required_context": 11000, COMPLETION_KEY: 64})
    assert verdict.outcome is outcome and words in verdict.message, verdict.message


def test_filler_is_about_the_required_size() -> None:
    text = context.filler(11000)
    assert len(text) == 44000 and text.startswith("Ignore the filler")
