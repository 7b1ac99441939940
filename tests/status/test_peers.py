"""The peer's view on the status page: a peer is asked over a real socket on 127.0.0.1 for
its verdicts; one that answers garbage, too much, an error, nothing, or too slowly is "peer
unreachable" with the reason, never healthy and never a crash; a good answer puts its
verdict beside ours."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import free_port, parse_config, role_of
from ledgerhelpers import result
from local_server import listening

from probe.app import PLUGINS
from probe.config.model import Peers
from probe.net import make_client
from probe.outcome import Outcome
from probe.state import FleetState
from probe.status.html import render
from probe.status.page import Query, document
from probe.status.peers import MAX_BYTES, PeerWatch, verdicts_document
from probe.status.uptime import UptimeBook

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def fleet(names: list[str], down: frozenset[str] = frozenset()) -> FleetState:
    """Our own verdicts: every endpoint up but those in ``down`` (404)."""
    text = "endpoints:\n" + "".join(f"  - {{name: {n}, kind: pod, pod_id: p{i}, checks: "
                                    "[models]}\n" for i, n in enumerate(names))
    config = parse_config(text + "verdict: {down_after: 1, up_after: 1}\n",
                          env={"RUNPOD_API_KEY": "k"})
    state = FleetState(role_of)
    state.configure(config, PLUGINS.plan(config))
    for name in names:
        outcome = Outcome.HTTP_404 if name in down else Outcome.OK
        state.update(replace(result(outcome, endpoint=name), started_at=NOW - timedelta(1)))
    return state


def doc(state: FleetState, tmp_path: Path, watch: PeerWatch | None = None) -> dict[str, Any]:
    return document(state.views(), state.rows, Query(), UptimeBook(tmp_path / "probe.db"),
                    tmp_path / "probe.db", {}, NOW, instance="probe-1", peers=watch)


def answer(body: Any, status: int = 200) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content,
                          headers={"Content-Type": "application/json"})


GOOD = {"schema": 1, "view": "verdicts", "instance": "probe-2", "generated_at": "x",
        "verdicts": {"qwen": {"state": "down", "cause": {"check": "models",
                                                          "outcome": "connect_error"}},
                     "llama": {"state": "up", "cause": None},
                     "odd": {"state": "splendid"}}}


class Endless(httpx.AsyncByteStream):
    """A body that never ends: a byte now and then."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield b" "
            await asyncio.sleep(0.05)


class Huge(httpx.AsyncByteStream):
    """More than the cap, chunked (no Content-Length to refuse it by)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        for _ in range(MAX_BYTES // len(chunk) + 2):
            yield chunk


def stall(_: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("scripted: say nothing")


HANDLERS: dict[str, Any] = {
    "garbage": lambda r: answer(b"<html>\x00\xff not json"),
    "other json": lambda r: answer({"schema": 1, "endpoints": []}),
    "newer schema": lambda r: answer({**GOOD, "schema": 9}),
    "no verdicts": lambda r: answer({"schema": 1, "view": "verdicts", "instance": "p"}),
    "error status": lambda r: answer(b"", 503),
    "huge declared": lambda r: answer(b"{" + b" " * (MAX_BYTES + 10) + b"}"),
    "huge chunked": lambda r: httpx.Response(200, stream=Huge()),
    "stalled": stall,
    "trickling": lambda r: httpx.Response(200, stream=Endless()),
}
REASONS = {
    "garbage": "its answer is not JSON",
    "other json": "its answer is not a verdict document",
    "newer schema": "its verdict document has schema 9, this probe reads 1",
    "no verdicts": "its verdict document has no instance or no verdicts",
    "error status": "it answered HTTP 503",
    "huge declared": "its answer is larger than 8 MiB",
    "huge chunked": "its answer is larger than 8 MiB",
    "stalled": "no whole answer within 0.5s",
    "trickling": "no whole answer within 0.5s",
}


async def asked(handler: Any, instance: str = "probe-1") -> PeerWatch:
    async with listening(handler) as port, make_client(4) as client:
        peers = Peers((f"http://127.0.0.1:{port}",), 1.0, 0.5)
        watch = PeerWatch(peers, instance, client.fetch)
        await watch.ask_all()
    return watch


@pytest.mark.parametrize("case", sorted(HANDLERS))
def test_a_hostile_peer_is_unreachable_with_its_reason(case: str, tmp_path: Path) -> None:
    watch = asyncio.run(asked(HANDLERS[case]))
    [view] = watch.views()
    assert not view.reachable
    assert view.reason is not None and view.reason.startswith(REASONS[case]), view.reason
    # on the page: every endpoint says the peer is unreachable, and why; never a verdict
    page = doc(fleet(["qwen"]), tmp_path, watch)
    [beside] = page["endpoints"][0]["peers"]
    assert beside["state"] is None
    assert beside["reason"] == f"peer unreachable: {view.reason}"
    assert page["peers"][0]["reachable"] is False
    text = render(page)
    assert "peer unreachable" in text and " sees " not in text


def test_a_closed_port_is_unreachable() -> None:
    async def ask() -> PeerWatch:
        async with make_client(4) as client:
            watch = PeerWatch(Peers((f"http://127.0.0.1:{free_port()}",), 1.0, 0.5),
                              "probe-1", client.fetch)
            await watch.ask_all()
            return watch

    [view] = asyncio.run(ask()).views()
    assert not view.reachable and view.reason and "ConnectError" in view.reason, view.reason


def test_a_good_answer_puts_the_peers_verdict_beside_ours(tmp_path: Path) -> None:
    watch = asyncio.run(asked(lambda r: answer(GOOD)))
    page = doc(fleet(["qwen", "llama", "odd", "mine-only"]), tmp_path, watch)
    beside = {e["name"]: e["peers"][0] for e in page["endpoints"]}
    assert beside["qwen"]["state"] == "down" and beside["qwen"]["instance"] == "probe-2"
    assert beside["qwen"]["cause"] == {"check": "models", "outcome": "connect_error"}
    assert beside["llama"]["state"] == "up"
    # a malformed entry and an endpoint the peer does not name: no verdict, never up
    assert beside["odd"] == {**beside["odd"], "state": None,
                             "reason": "the peer has no verdict for it"}
    assert beside["mine-only"]["state"] is None
    assert page["instance"] == "probe-1"
    assert page["peers"][0]["reachable"] and page["peers"][0]["endpoints"] == 2
    text = render(page)
    assert "probe-2 sees" in text and "✖ down" in text


def test_a_peer_that_is_this_probe_is_left_out() -> None:
    watch = asyncio.run(asked(lambda r: answer(GOOD), instance="probe-2"))
    assert watch.views() == []


def test_without_peers_the_page_has_no_peer_column(tmp_path: Path) -> None:
    page = doc(fleet(["qwen"]), tmp_path)
    assert page["peers"] is None and page["endpoints"][0]["peers"] is None


def test_what_a_peer_is_asked_for_is_every_endpoints_verdict() -> None:
    state = fleet(["a", "b"], down=frozenset({"b"}))
    got = verdicts_document(state.views(), "probe-1", NOW)
    assert got["instance"] == "probe-1" and got["view"] == "verdicts"
    assert got["verdicts"]["a"]["state"] == "up" and got["verdicts"]["a"]["cause"] is None
    assert got["verdicts"]["b"] == {**got["verdicts"]["b"], "state": "down",
                                    "cause": {"check": "models", "outcome": "http_404"}}


def test_a_reload_brings_peers_in_and_out() -> None:
    async def run() -> tuple[Any, Any, Any]:
        async with listening(lambda r: answer(GOOD)) as port, make_client(4) as client:
            watch = PeerWatch(None, "probe-1", client.fetch)
            await watch.ask_all()
            before = watch.views()
            watch.follow(Peers((f"http://127.0.0.1:{port}",), 1.0, 0.5), "probe-1")
            pending = watch.views()
            await watch.ask_all()
            return before, pending, watch.views()

    before, pending, after = asyncio.run(run())
    assert before is None, "no peers: no peer column"
    assert pending is not None and [v.reason for v in pending] == ["not asked yet"]
    assert after is not None and [(v.instance, v.reachable) for v in after] == [("probe-2", True)]
