"""Contract of ``probe.adapters.aiohttp_internals`` with the installed aiohttp: what the pool
takes of aiohttp's private connect and release hooks, an idle connection's parser and a
response's protocol still does what the adapter's header says. Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from probe.adapters import aiohttp_internals
from probe.adapters.aiohttp_internals import IDLE_PARSER, Pool, not_for_reuse
from probe.net import make_client

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answering(status: int, body: bytes) -> tuple[Serve, list[int]]:
    """A keep-alive HTTP/1.1 server answering every request with ``status`` and ``body``; the
    list holds one item per accepted connection."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%s"
                             % (status, len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return serve, accepted


@asynccontextmanager
async def serving(serve: Serve) -> AsyncIterator[str]:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
    finally:
        server.close()
        await server.wait_closed()


def session(**pool: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=Pool(limit=8, limit_per_host=0, **pool),
                                 timeout=aiohttp.ClientTimeout(total=10))


def test_the_adapter_names_the_versions_it_was_read_from() -> None:
    header = aiohttp_internals.__doc__ or ""
    assert "Read from aiohttp 3.10 to" in header
    assert aiohttp.__version__.startswith("3.")


@pytest.mark.parametrize(("local_addr", "happy_eyeballs"), [
    (None, False),  # one IPv4 address: _wrap_existing_connection, through the loop
    (("127.0.0.1", 0), True),  # a local address set (_local_addr_infos): aiohttp's own road
], ids=["ipv4-literal", "local-address-set"])
def test_one_ipv4_address_is_connected_by_the_loop(monkeypatch: pytest.MonkeyPatch,
                                                   local_addr: tuple[str, int] | None,
                                                   happy_eyeballs: bool) -> None:
    """``_wrap_create_connection`` still receives the resolved ``addr_infos``, and
    ``_wrap_existing_connection`` still connects with ``host``/``port``/``family``: an IP
    literal never reaches aiohappyeyeballs (made to fail here), yet is answered."""
    import aiohappyeyeballs

    calls: list[object] = []
    original = aiohappyeyeballs.start_connection

    async def counted(*args: Any, **kwargs: Any) -> socket.socket:
        calls.append(args)
        return await original(*args, **kwargs)

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", counted)
    serve, accepted = answering(200, b"ok")

    async def go() -> tuple[int, bytes]:
        async with serving(serve) as url, session(local_addr=local_addr) as client, \
                client.get(url) as response:
            return response.status, await response.read()

    assert asyncio.run(go()) == (200, b"ok")
    assert len(accepted) == 1
    assert bool(calls) is happy_eyeballs


def test_a_refused_connection_fails_as_on_aiohttps_own_road() -> None:
    """The loop's road raises what aiohttp's does: ``ClientConnectorError`` carrying the
    ``OSError`` (the transport maps it to httpx's ``ConnectError`` with that message)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    async def go() -> BaseException:
        async with session() as client:
            with pytest.raises(aiohttp.ClientConnectorError) as raised:
                await client.get(f"http://127.0.0.1:{port}/x")
            return raised.value

    failure = asyncio.run(go())
    assert isinstance(failure, aiohttp.ClientConnectorError)
    assert failure.os_error.errno == errno.ECONNREFUSED


def test_the_connect_deadline_holds_on_the_loop_road() -> None:
    """A server whose accept queue is full never completes the handshake: the connector's
    ``sock_connect`` deadline still applies (``ConnectionTimeoutError``)."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", port))  # fills the queue of one

        async def go() -> float:
            loop = asyncio.get_running_loop()
            async with session() as client:
                began = loop.time()
                with pytest.raises(aiohttp.ConnectionTimeoutError):
                    await client.get(f"http://127.0.0.1:{port}/x",
                                     timeout=aiohttp.ClientTimeout(sock_connect=0.3))
                return loop.time() - began

        try:
            assert 0.25 < asyncio.run(go()) < 3
        finally:
            filler.close()


def test_a_connection_given_back_keeps_no_parser_or_body_and_is_reused() -> None:
    """``_release`` still gives ``(key, protocol)`` and keeps the connection when its
    transport is left open; ``ResponseHandler._parser``/``_payload`` are still what a
    pooled connection holds (the idle parser and nothing, 5 of its 10 KB)."""
    serve, accepted = answering(200, b"ok")

    async def go() -> list[tuple[object, object]]:
        async with serving(serve) as url, session() as client:
            for _ in range(3):
                async with client.get(url) as response:
                    assert (response.status, await response.read()) == (200, b"ok")
            connector = client.connector
            assert isinstance(connector, Pool)
            return [(protocol._parser, protocol._payload)
                    for conns in connector._conns.values() for protocol, _ in conns]

    assert asyncio.run(go()) == [(IDLE_PARSER, None)]
    assert len(accepted) == 1


def test_the_daemons_client_pools_connections_without_parser_or_body() -> None:
    """The same through the checks' client (``probe.net.make_client``) by httpx's road
    (``fetch`` has a pool of its own, ``probe.net.lean``): half of what an idle connection
    costs, 50 MB at 10,000 pods kept alive (BENCHMARKS.md), and the connection is still
    reused."""
    serve, accepted = answering(200, b"ok")

    async def go() -> list[tuple[object, object]]:
        async with serving(serve) as url, make_client(8) as client:
            for _ in range(3):
                response = await client.get(url)
                assert (response.status_code, response.content) == (200, b"ok")
            session = client._transport._session  # type: ignore[attr-defined]
            return [(protocol._parser, protocol._payload)
                    for conns in session.connector._conns.values() for protocol, _ in conns]

    assert asyncio.run(go()) == [(IDLE_PARSER, None)]
    assert len(accepted) == 1


def test_bytes_on_an_idle_connection_close_it() -> None:
    """The idle parser raising from ``feed_data`` still closes the connection (aiohttp
    turns a parser's exception into a closed transport), and the next request is answered
    on a new one, not with the stray answer."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                if len(accepted) == 1:
                    await asyncio.sleep(0.05)  # once the connection waits in the pool
                    writer.write(b"HTTP/1.1 500 X\r\ncontent-length: 5\r\n\r\nstray")
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def go() -> list[tuple[int, bytes]]:
        answers = []
        async with serving(serve) as url, session() as client:
            for _ in range(2):
                async with client.get(url) as response:
                    answers.append((response.status, await response.read()))
                await asyncio.sleep(0.2)  # the stray answer arrives while the connection idles
        return answers

    assert asyncio.run(go()) == [(200, b"ok"), (200, b"ok")]
    assert len(accepted) == 2


@pytest.mark.parametrize(("body", "already_pooled"), [
    (b"no", True),  # read to its end before the status is seen: closed through _protocol
    (b"x" * 1_000_000, False),  # still reading: marked with force_close()
], ids=["short-answer", "long-answer"])
def test_not_for_reuse_closes_the_connection_of_a_failure(body: bytes,
                                                          already_pooled: bool) -> None:
    serve, accepted = answering(503, body)

    async def go() -> None:
        async with serving(serve) as url, session() as client:
            for _ in range(2):
                async with client.get(url) as response:
                    assert (response.connection is None) is already_pooled
                    not_for_reuse(response)
                    assert await response.read() == body

    asyncio.run(go())
    assert len(accepted) == 2
