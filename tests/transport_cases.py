"""The cases on which the daemon's HTTP client must behave as httpx's own transport does,
on real sockets on 127.0.0.1: each a small server and the outcome a check gets from it
through ``probe.attempts.attempt`` (deadline and exception mapping). Used by
``tests/adapters/test_transport_vs_httpx.py`` (the contract: same outcome as httpx, and the
expected one) and by ``bench/transport_check.py`` (the same table printed, timed, for
another transport too)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import trustme

from probe.attempts import attempt
from probe.check import CheckContext
from probe.config.model import Endpoint
from probe.http import get
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome

CAP = 64 * 1024
DEADLINE_S = 1.0
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


def answer(headers: str, body: bytes = b"", status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\n{headers}\r\n".encode() + body


def keep_answering(response: bytes) -> Handler:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            writer.write(response)
            await writer.drain()
        writer.close()
    return serve


ok = keep_answering(answer("Content-Length: 2\r\nContent-Type: application/json\r\n", b"{}"))
# repeated and mixed-case headers, in an order of their own (no cookie: a client holding
# one takes httpx's road for every later GET, see probe.net.ProbeClient)
headers = keep_answering(answer("Content-Length: 2\r\nX-Seen: 1\r\nVary: a\r\n"
                                "vary: b\r\nX-SEEN: 2\r\n", b"{}"))
redirect = keep_answering(answer("Location: /elsewhere\r\nContent-Length: 5\r\n", b"moved",
                                 status="302 Found"))
failure = keep_answering(answer("Content-Length: 4\r\n", b"down", status="503 Unavailable"))


def gzip_answer(body: bytes) -> bytes:
    packed = gzip.compress(body)
    return answer(f"Content-Length: {len(packed)}\r\nContent-Encoding: gzip\r\n", packed)


gzipped = keep_answering(gzip_answer(b'{"data": []}'))
bomb = keep_answering(gzip_answer(b"0" * 10 * CAP))  # small on the wire, over the cap decoded


async def big_declared(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(answer(f"Content-Length: {10 * CAP}\r\n", b"x" * 1000))
    await writer.drain()
    await asyncio.sleep(5)
    writer.close()


async def big_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(answer("Transfer-Encoding: chunked\r\n"))
    chunk = b"x" * 8192
    try:
        for _ in range(40):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    except ConnectionError:
        return
    writer.close()


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(answer("Content-Length: 1000\r\n"))
    try:
        for _ in range(1000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)
    except ConnectionError:
        return


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:  # the servers are closed under it
        writer.close()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def close_quietly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(answer("Content-Length: 1000\r\n", b"x" * 10))
    await writer.drain()
    writer.close()


async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    await writer.drain()
    writer.close()


async def sse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(answer("Transfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n"))
    for i in range(4):
        line = f"data: {i}\n\n".encode()
        writer.write(b"%x\r\n%s\r\n" % (len(line), line))
        await writer.drain()
        await asyncio.sleep(0.3)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    writer.close()


def handlers() -> dict[str, Handler]:
    return {"ok": ok, "headers": headers, "redirect": redirect, "failure": failure,
            "gzipped": gzipped, "bomb": bomb, "big_declared": big_declared,
            "big_chunked": big_chunked, "trickle": trickle, "silent": silent, "reset": reset,
            "close": close_quietly, "cut_short": cut_short, "not_http": not_http, "sse": sse}


@dataclass(frozen=True)
class Case:
    title: str
    server: str  # a name in handlers(), "tls" (an untrusted certificate) or "refused"
    expected: Outcome
    scheme: str = "http"


# In order: "ok after cap" takes the client's pool after the answers over the cap.
CASES = (
    Case("ok", "ok", Outcome.OK),
    Case("repeated headers", "headers", Outcome.OK),
    Case("redirect, not followed", "redirect", Outcome.OK),
    Case("failure status", "failure", Outcome.OK),
    Case("gzip, decoded", "gzipped", Outcome.OK),
    Case("gzip over the cap decoded", "bomb", Outcome.BAD_RESPONSE),
    Case("body over cap, declared", "big_declared", Outcome.BAD_RESPONSE),
    Case("body over cap, chunked", "big_chunked", Outcome.BAD_RESPONSE),
    Case("ok after cap", "ok", Outcome.OK),
    Case("trickling body (deadline 1s)", "trickle", Outcome.TIMEOUT),
    Case("no answer (deadline 1s)", "silent", Outcome.TIMEOUT),
    Case("connection refused", "refused", Outcome.CONNECT_ERROR),
    Case("reset after request", "reset", Outcome.CONNECT_ERROR),
    Case("closed, no answer", "close", Outcome.CONNECT_ERROR),
    Case("body cut short", "cut_short", Outcome.CONNECT_ERROR),
    Case("not HTTP", "not_http", Outcome.CONNECT_ERROR),
    Case("TLS to a silent plain port", "silent", Outcome.TIMEOUT, "https"),
    Case("TLS, untrusted certificate", "tls", Outcome.TLS_ERROR, "https"),
)


class Servers:
    """Every case's server on 127.0.0.1 (and a port nobody listens on)."""

    def __init__(self, servers: dict[str, asyncio.Server], refused_port: int) -> None:
        self._servers = servers
        self._refused_port = refused_port

    def url(self, case: Case | str) -> str:
        name, scheme = (case, "http") if isinstance(case, str) else (case.server, case.scheme)
        if name == "refused":
            return f"http://127.0.0.1:{self._refused_port}/x"
        return f"{scheme}://127.0.0.1:{self._servers[name].sockets[0].getsockname()[1]}/x"


@asynccontextmanager
async def serving() -> AsyncIterator[Servers]:
    authority = trustme.CA()  # trusted by no client
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    servers = {name: await asyncio.start_server(handler, "127.0.0.1", 0)
               for name, handler in handlers().items()}
    servers["tls"] = await asyncio.start_server(ok, "127.0.0.1", 0, ssl=tls)
    with socket.socket() as nobody:
        nobody.bind(("127.0.0.1", 0))
        refused_port = nobody.getsockname()[1]
    try:
        yield Servers(servers, refused_port)
    finally:
        for server in servers.values():
            server.close()


def endpoint(timeout_s: float) -> Endpoint:
    return Endpoint(name="e", kind="openai", openai_base="http://x/v1", root_url="http://x",
                    interval_s=30.0, timeout_s=timeout_s, tries=1, retry_delay_s=0.0,
                    checks=("models",), api_key_env=None, model=None, min_context=None)


@dataclass(frozen=True)
class Seen:
    """What a check saw: its outcome, and of an answer its status, body and headers
    (lower-cased names, in order)."""

    outcome: Outcome
    status: int | None = None
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


async def seen(client: ProbeClient, url: str, timeout_s: float = DEADLINE_S) -> Seen:
    answers: list[Seen] = []

    async def check(_e: Endpoint, c: ProbeClient, ctx: CheckContext) -> Observation:
        status, body, got = await get(c, url, {}, ctx.max_body_bytes)
        answers.append(Seen(Outcome.OK, status, body, tuple(
            (k.lower(), v) for k, v in got.multi_items())))
        return Observation(Outcome.OK, f"{status} {len(body)} bytes", status)

    verdict = await attempt(check, endpoint(timeout_s), client, CheckContext(CAP), timeout_s)
    return answers[0] if verdict.outcome is Outcome.OK and answers else Seen(verdict.outcome)


async def stream_lines(client: ProbeClient, url: str) -> list[tuple[str, float]]:
    """The lines of a streamed answer (``aiter_lines``) and when each arrived."""
    began, arrivals = time.monotonic(), []
    async with client.stream("POST", url, json={"stream": True}) as response:
        async for line in response.aiter_lines():
            if line:
                arrivals.append((line, time.monotonic() - began))
    return arrivals


def reference_client() -> ProbeClient:
    """Our client over httpx's own transport (the road a proxied request takes): what the
    client over aiohttp's pool must behave like."""
    return ProbeClient(None, timeout=httpx.Timeout(300.0))
