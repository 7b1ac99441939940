"""The checks' transport (aiohttp under httpx): which connections are reused. Healthy answers
keep their connection; a failure status, or a request that sent a body, never shares it
(a misbehaving server may have left bytes on it). Against a real socket server on
127.0.0.1 that counts the connections it accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from probe.prober import make_client


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
