"""A scripted HTTP/1.1 server on 127.0.0.1 for unit tests of checks, reached through the
production client (``probe.net.make_client``) whose resolver sends every host name to it:
a check asks ``http://pod.test/health`` as in production, and the request goes over a real
socket through the same transport, pool and exception map.

The handler gets the request as an ``httpx.Request`` (URL from the Host header, so
``str(request.url)`` is what the check asked for) and returns an ``httpx.Response``, or
awaits one. What it returns or raises is put on the wire:

- a response with a body: sent with its Content-Length;
- a response with a stream (an ``httpx.AsyncByteStream``): sent chunked, part by part; an
  exception the stream raises closes the connection mid-body (a cut);
- ``httpx.TimeoutException`` raised: the server says nothing until the client gives up;
- any other ``httpx.TransportError`` raised: the connection is closed without an answer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from probe.net import ProbeClient, make_client

Handler = Callable[[httpx.Request], "httpx.Response | Awaitable[httpx.Response]"]
STALL_S = 3600.0


class PinnedResolver(AbstractResolver):
    """Every host name resolves to 127.0.0.1 and ``port``."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host="127.0.0.1", port=self.port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


@asynccontextmanager
async def answering(handler: Any, max_concurrent: int = 8) -> AsyncIterator[ProbeClient]:
    """The production client, every host of it answered by ``handler`` on 127.0.0.1."""
    async with listening(handler) as port, \
            make_client(max_concurrent, resolver=PinnedResolver(port)) as client:
        yield client


@asynccontextmanager
async def listening(handler: Any) -> AsyncIterator[int]:
    """The server alone, answering from ``handler``: its port on 127.0.0.1."""
    server = await asyncio.start_server(lambda r, w: _connection(handler, r, w), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)


@asynccontextmanager
async def refusing(max_concurrent: int = 8) -> AsyncIterator[ProbeClient]:
    """The production client, every host of it a port on 127.0.0.1 nobody listens on."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    async with make_client(max_concurrent, resolver=PinnedResolver(port)) as client:
        yield client


async def _connection(handler: Any, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request = await _read_request(reader)
            if request is None:
                return
            keep = await _answer(handler, request, writer)
            if not keep:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _read_request(reader: asyncio.StreamReader) -> httpx.Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [tuple(line.split(":", 1)) for line in lines[1:] if line]
    pairs = [(name.strip(), value.strip()) for name, value in headers]
    length = next((int(v) for k, v in pairs if k.lower() == "content-length"), 0)
    body = await reader.readexactly(length) if length else b""
    host = next((v for k, v in pairs if k.lower() == "host"), "127.0.0.1")
    # a request to a proxy names the whole URL; one to a server, its path
    url = target if target.startswith("http") else f"http://{host}{target}"
    return httpx.Request(method, url, headers=pairs, content=body)


async def _answer(handler: Any, request: httpx.Request, writer: asyncio.StreamWriter) -> bool:
    """Answer one request; False when the connection is to be closed."""
    try:
        response = handler(request)
        if asyncio.iscoroutine(response):
            response = await response
    except httpx.TimeoutException:
        await asyncio.sleep(STALL_S)
        return False
    except httpx.TransportError:
        return False
    close = request.headers.get("connection", "").lower() == "close"
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    try:
        body: bytes | None = response.content
    except httpx.ResponseNotRead:
        body = None
    framing = [("Content-Length", str(len(body)))] if body is not None else \
        [("Transfer-Encoding", "chunked")]
    if close:
        framing.append(("Connection", "close"))
    head = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in [*headers, *framing]) + "\r\n"
    writer.write(head.encode("latin-1"))
    if body is not None:
        writer.write(body)
        await writer.drain()
        return not close
    try:
        async for part in response.stream:  # type: ignore[union-attr]
            if part:
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                await writer.drain()
    except Exception:  # noqa: BLE001 - the script cuts the body here
        writer.transport.abort()
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return not close
