"""The checks' transport (aiohttp under httpx, and ``fetch``'s lean road beside it): which
connections are reused. Healthy answers keep their connection; a failure status, or a
request that sent a body, never shares it (a misbehaving server may have left bytes on it).
Against a real socket server on 127.0.0.1 that counts the connections it accepted. (The
lean road's own rules, retries and reads: tests/net/test_lean.py.)"""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
from collections.abc import Awaitable, Callable

import httpx
import pytest
import trustme

from probe import http
from probe.attempts import observation_from_exception
from probe.net import ProbeClient, make_client
from probe.net.transport import AiohttpTransport
from probe.outcome import Outcome
from probe.process import run_event_loop


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
CASES = [  # FETCH: ProbeClient.fetch (the lean road); the others: httpx's API (aiohttp's pool)
    ("healthy-gets-share-one-connection", 200, "GET", 1),
    ("a-failure-status-closes-it", 503, "GET", 5),
    ("a-client-error-closes-it", 400, "GET", 5),
    ("a-request-with-a-body-gets-its-own", 200, "POST", 5),
    ("healthy-fetches-share-one-connection", 200, "FETCH", 1),
    ("a-failure-status-closes-a-fetchs", 503, "FETCH", 5),
    ("a-client-error-closes-a-fetchs", 400, "FETCH", 5),
]


@pytest.mark.parametrize(("status", "method", "connections"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_connection_reuse(status: int, method: str, connections: int) -> None:
    async def go() -> int:
        server, accepted = await counting_server(status)
        port = server.sockets[0].getsockname()[1]
        async with make_client(8) as client:
            for _ in range(5):
                url = f"http://127.0.0.1:{port}/x"
                if method == "FETCH":
                    assert (await client.fetch(url, {}, 1024))[:2] == (status, b"ok")
                    continue
                response = await client.request(method, url, content=b'{"a": 1}'
                                                if method == "POST" else None)
                assert response.status_code == status and response.content == b"ok"
        server.close()
        await server.wait_closed()
        return len(accepted)

    assert asyncio.run(go()) == connections


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


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:{port}/x", (200, b"ok")),  # one IPv4 address: connected by the loop
    ("http://localhost:{port}/x", (200, b"ok")),  # a name, resolved first
    ("http://127.0.0.1:{closed}/x", httpx.ConnectError),  # refused
    ("https://127.0.0.1:{plain}/x", httpx.ConnectError),  # TLS to a plain server
], ids=["ip", "name", "refused", "tls-to-plain"])
def test_a_fresh_connection_answers_or_fails_as_httpx_would(url: str, expected: object) -> None:
    """Every way a check opens a connection gives an answer or the httpx error the runner
    classifies (an IP literal is connected by the event loop itself, a name through aiohttp's
    resolver)."""
    async def plain_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")  # to a hello
        await writer.drain()
        writer.close()

    async def go() -> object:
        server, _ = await counting_server(200)
        plain = await asyncio.start_server(plain_answer, "127.0.0.1", 0)
        ports = {"port": server.sockets[0].getsockname()[1], "closed": _closed_port(),
                 "plain": plain.sockets[0].getsockname()[1]}
        try:
            async with make_client(8, keepalive=False) as client:
                status, body, _ = await http.get(client, url.format(**ports), {}, 1024)
                return status, body
        except httpx.TransportError as exc:
            return type(exc)
        finally:
            for each in (server, plain):
                each.close()
                await each.wait_closed()

    assert asyncio.run(go()) == expected


@pytest.mark.parametrize(("host", "trusted", "expected"), [
    ("127.0.0.1", True, "200 ok"),  # an IP literal: connected (and TLS) by the loop
    ("localhost", True, "200 ok"),  # a name: the resolver and happy eyeballs
    ("127.0.0.1", False, Outcome.TLS_ERROR),  # a certificate no one vouches for
    ("localhost", False, Outcome.TLS_ERROR),
], ids=["ip-trusted", "name-trusted", "ip-untrusted", "name-untrusted"])
def test_tls_is_verified_on_every_road(host: str, trusted: bool, expected: object) -> None:
    """A TLS endpoint (RunPod's proxy is HTTPS) answers when its certificate is trusted and is
    a ``tls_error`` when it is not, whichever road its connection takes."""
    authority = trustme.CA()
    served = authority.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.configure_cert(server_context)
    client_context = ssl.create_default_context()
    if trusted:
        authority.configure_trust(client_context)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def go() -> object:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        transport = AiohttpTransport(8, keepalive=False, verify=client_context)
        try:
            async with ProbeClient(transport, timeout=httpx.Timeout(10.0)) as client:
                status, body, _ = await http.get(client, f"https://{host}:{port}/x", {}, 1024)
                return f"{status} {body.decode()}"
        except httpx.TransportError as exc:
            return observation_from_exception(exc, 10.0).outcome
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(go()) == expected


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_answer_read_and_closed_leaves_no_reference_cycle(method: str) -> None:
    """The daemon collects garbage on a clock (probe.process): a cycle that outlives half a
    second waits up to 10 minutes. A streamed answer, once read and closed, is freed when
    its last reference goes: httpx's response, aiohttp's answer, its connection's protocol,
    transport and socket are none of them left for the collector. On the daemon's event
    loop (uvloop: asyncio's own selector transport holds a cycle of its own)."""
    async def go() -> list[str]:
        server, _ = await counting_server(200)
        port = server.sockets[0].getsockname()[1]
        try:
            async with make_client(8) as client:
                for _ in range(3):  # the second and third on the pool's kept connection
                    async with client.stream(method, f"http://127.0.0.1:{port}/x",
                                             content=b"{}" if method == "POST" else None
                                             ) as response:
                        assert await response.aread() == b"ok"
                    del response
                await asyncio.sleep(0.05)  # a POST's connection: closed, and its close seen
                gc.collect()
                gc.disable()
                try:
                    async with client.stream(method, f"http://127.0.0.1:{port}/x",
                                             content=b"{}" if method == "POST" else None
                                             ) as response:
                        assert await response.aread() == b"ok"
                    del response
                    await asyncio.sleep(0.05)
                    gc.set_debug(gc.DEBUG_SAVEALL)
                    gc.collect()
                    left = sorted({type(thing).__module__.split(".")[0] + "."
                                   + type(thing).__qualname__ for thing in gc.garbage
                                   if type(thing).__module__.split(".")[0]
                                   in ("httpx", "aiohttp", "socket", "asyncio", "uvloop")})
                finally:
                    gc.set_debug(0)
                    gc.garbage.clear()
                    gc.enable()
                return left
        finally:
            server.close()
            await server.wait_closed()

    assert run_event_loop(go()) == []
