"""The checks' transport (aiohttp under httpx): which connections are reused. Healthy answers
keep their connection; a failure status, or a request that sent a body, never shares it
(a misbehaving server may have left bytes on it). Against a real socket server on
127.0.0.1 that counts the connections it accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from probe import http
from probe.prober import make_client
from probe.transport import IDLE_PARSER


async def counting_server(status: int) -> tuple[asyncio.Server, list[int]]:
    """An HTTP/1.1 server answering every request with ``status`` and a short body; the list
    holds one item per accepted connection."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                close = b"connection: close" in head.lower()
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 2\r\n%s\r\nok"
                             % (status, b"connection: close\r\n" if close else b""))
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, accepted


Send = Callable[..., Awaitable[object]]
CASES = [
    ("healthy-gets-share-one-connection", 200, "GET", 1),
    ("a-failure-status-closes-it", 503, "GET", 5),
    ("a-client-error-closes-it", 400, "GET", 5),
    ("a-request-with-a-body-gets-its-own", 200, "POST", 5),
]


@pytest.mark.parametrize(("status", "method", "connections"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_connection_reuse(status: int, method: str, connections: int) -> None:
    async def go() -> int:
        server, accepted = await counting_server(status)
        port = server.sockets[0].getsockname()[1]
        async with make_client(8) as client:
            for _ in range(5):
                response = await client.request(method, f"http://127.0.0.1:{port}/x",
                                                content=b'{"a": 1}' if method == "POST"
                                                else None)
                assert response.status_code == status and response.content == b"ok"
        server.close()
        await server.wait_closed()
        return len(accepted)

    assert asyncio.run(go()) == connections


@pytest.mark.parametrize("road", ["direct-get", "httpx-request"])
def test_an_idle_pooled_connection_keeps_no_parser_or_body(road: str) -> None:
    """A connection waiting in the pool holds neither the last answer's parser (its header
    lists) nor its body reader: half of what an idle connection costs, 50 MB at 10,000 pods
    kept alive (BENCHMARKS.md). It is still reused, by either road a check takes."""
    async def go() -> tuple[int, list[tuple[object, object]]]:
        server, accepted = await counting_server(200)
        port = server.sockets[0].getsockname()[1]
        async with make_client(8) as client:
            for _ in range(3):
                if road == "direct-get":
                    status, body, _ = await http.get(client, f"http://127.0.0.1:{port}/x", {},
                                                     1024)
                else:
                    response = await client.get(f"http://127.0.0.1:{port}/x")
                    status, body = response.status_code, response.content
                assert (status, body) == (200, b"ok")
            session = client._transport._session  # type: ignore[attr-defined]
            pooled = [(proto._parser, proto._payload)
                      for conns in session.connector._conns.values() for proto, _ in conns]
        server.close()
        await server.wait_closed()
        return len(accepted), pooled

    connections, pooled = asyncio.run(go())
    assert connections == 1
    assert pooled == [(IDLE_PARSER, None)]


def test_bytes_sent_on_an_idle_connection_answer_no_request() -> None:
    """A server that writes a second, unasked-for answer after the first: it is not taken as
    the answer to the next request on that connection (aiohttp's own parser would queue it);
    the connection is closed and the next request gets its own answer on a new one."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                if len(accepted) == 1:  # the first connection then says more, unasked
                    await asyncio.sleep(0.05)  # once the connection waits in the pool
                    writer.write(b"HTTP/1.1 500 X\r\ncontent-length: 5\r\n\r\nstray")
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def go() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        answers = []
        async with make_client(8) as client:
            for _ in range(2):
                status, body, _ = await http.get(client, f"http://127.0.0.1:{port}/x", {}, 1024)
                answers.append((status, body))
                await asyncio.sleep(0.2)  # the stray answer arrives while the connection idles
        server.close()
        await server.wait_closed()
        return answers

    assert asyncio.run(go()) == [(200, b"ok"), (200, b"ok")]
    assert len(accepted) == 2
