"""The daemon's HTTP client (aiohttp under httpx, ``probe.net`` and its aiohttp adapter)
against httpx's own transport, case by case on the same servers on 127.0.0.1
(``tests/transport_cases.py``, printed by ``bench/transport_check.py``): the same outcome,
and of an answer the same status, body and headers; redirects not followed; bodies over the
cap refused; every failure mapped to the same outcome; a stream's lines as they come. Both
roads a check takes: ``ProbeClient.fetch``'s direct road to the transport, and httpx's
``client.stream`` over it."""

from __future__ import annotations

import asyncio

import httpx
from transport_cases import (
    CASES,
    Seen,
    reference_client,
    seen,
    serving,
    stream_lines,
)

from probe.net import ProbeClient, make_client
from probe.net.transport import AiohttpTransport

ROADS = ("httpx", "direct road", "httpx over ours")


def clients() -> dict[str, ProbeClient]:
    # "httpx over ours" holds a cookie: a client with one to send takes httpx's road
    # (``client.stream``) over our transport for every GET
    return {"httpx": reference_client(),
            "direct road": make_client(8),  # fetch goes to the transport
            "httpx over ours": ProbeClient(AiohttpTransport(8), timeout=httpx.Timeout(300.0),
                                           cookies={"road": "httpx"})}


def test_every_case_gets_what_httpx_gets() -> None:
    async def go() -> list[tuple[str, str, tuple[Seen, ...]]]:
        table = []
        each = clients()
        async with serving() as servers:
            for case in CASES:  # in order: a case may take the pool the last one left
                url = servers.url(case)
                got = await asyncio.gather(*(seen(each[road], url) for road in ROADS))
                table.append((case.title, case.expected, tuple(got)))
        assert not each["direct road"].cookies  # so every GET took the direct road
        for client in each.values():
            await client.aclose()
        return table

    table = asyncio.run(go())
    wrong = [f"{title}: expected {expected}, " + ", ".join(
        f"{road}: {s}" for road, s in zip(ROADS, got, strict=True))
        for title, expected, got in table
        if got[0].outcome != expected or any(s != got[0] for s in got[1:])]
    assert wrong == [], "\n".join(wrong)


def test_answers_are_read_as_httpx_reads_them() -> None:
    """What the table's answers were, so a case that passes is one that was answered."""
    async def go() -> dict[str, Seen]:
        async with serving() as servers, make_client(8) as client:
            return {name: await seen(client, servers.url(name))
                    for name in ("headers", "redirect", "failure", "gzipped")}

    got = asyncio.run(go())
    assert [v for k, v in got["headers"].headers if k in ("x-seen", "vary")] == [
        "1", "a", "b", "2"]
    assert (got["redirect"].status, got["redirect"].body) == (302, b"moved")  # not followed
    assert (got["failure"].status, got["failure"].body) == (503, b"down")
    assert got["gzipped"].body == b'{"data": []}'


def test_a_stream_is_read_line_by_line_as_it_comes() -> None:
    async def go() -> list[list[tuple[str, float]]]:
        each = clients()
        async with serving() as servers:
            url = servers.url("sse")
            lines = list(await asyncio.gather(*(stream_lines(each[road], url)
                                                for road in ("httpx", "httpx over ours"))))
        for client in each.values():
            await client.aclose()
        return lines

    theirs, ours = asyncio.run(go())
    assert [line for line, _ in ours] == [line for line, _ in theirs] == [
        f"data: {i}" for i in range(4)]
    # each line as it was sent (every 0.3 s), not all at the end
    assert ours[-1][1] - ours[0][1] > 0.6 and ours[0][1] < 0.5
