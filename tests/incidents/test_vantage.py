"""The probe's own vantage: a target that times out while the probe's event loop was
stalled observed nothing (an overloaded probe is not an offline one); a plain timeout on an
attentive loop still counts as not reached."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from probe.incidents.settings import VantageSettings
from probe.incidents.vantage import Target, Vantage

TARGETS = (Target("reference:a", "http", "http://127.0.0.1:9/a"),
           Target("reference:b", "http", "http://127.0.0.1:9/b"))


class Silent:
    """No answer within the deadline. With ``block_s``, the first thing it does is hold
    the event loop (as an overloaded probe's other work would) before waiting."""

    def __init__(self, block_s: float = 0.0) -> None:
        self.block_s = block_s

    async def fetch(self, url: str, headers: dict[str, str], limit: int) -> Any:
        if self.block_s:
            time.sleep(self.block_s)  # the loop is stalled: nothing else runs
        await asyncio.sleep(30)


def vantage(client: Any) -> Vantage:
    settings = VantageSettings(interval_s=60.0, timeout_s=0.3, reference_urls=())
    return Vantage(settings, TARGETS, client)


def run(v: Vantage, rounds: int = 1) -> list[bool]:
    async def go() -> list[bool]:
        out = []
        for _ in range(rounds):
            await asyncio.sleep(0.15)  # the loop watch's first beats
            out.append(await v.check())
        v.stop()
        return out
    return asyncio.run(go())


def test_every_target_timing_out_on_an_attentive_loop_is_offline() -> None:
    v = vantage(Silent())
    assert run(v) == [True]
    assert v.up == {"reference:a": False, "reference:b": False}
    assert v.overloaded_total == 0


def test_timeouts_while_the_loop_was_stalled_are_not_offline() -> None:
    v = vantage(Silent(block_s=0.4))
    assert run(v, rounds=2) == [False, False]
    assert v.offline is False
    assert v.overloaded_total == 4


def test_an_overloaded_round_keeps_the_offline_state_it_found() -> None:
    v = vantage(Silent())
    assert run(v) == [True]
    v.client = Silent(block_s=0.4)
    assert run(v) == [True], "not observed is not a way back online either"
    assert v.up == {"reference:a": False, "reference:b": False}
