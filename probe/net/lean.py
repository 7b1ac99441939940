"""The lean road of ``ProbeClient.fetch``, the checks' bounded GET: a pool of kept-alive
HTTP/1.1 connections of its own (``probe.net.answer.Connection``, parsed by httptools),
without aiohttp's per-request machinery (its request and response objects, header
multidicts, stream reader, writer, timers). The request's bytes are built once per URL and
header set (``probe.net.dial.GetRequest``, cached by the client). Measured on one core
(bench/transport.py, uvloop, 64 in flight, BENCHMARKS.md): CPU per fetch from 0.17-0.21 to
0.04 ms with kept-alive connections, from 0.35-0.39 to 0.12 ms with a fresh one each.

A connection is reused on the terms ``probe.net.transport`` sets for aiohttp's pool: only
after a healthy answer (status < 400) read to its end and kept alive by the server; after a
failure status, an error, a body over the cap or a deadline (the caller's cancellation) it
is closed; bytes arriving on an idle connection close it; idle ones are closed after
``keepalive_expiry`` seconds; with ``keepalive=False`` every connection is closed after its
answer. At most ``max_connections`` connections are in use at once (others wait, as they
wait for aiohttp's pool). A reused connection the server closed before any byte of the
answer (a keep-alive the server let expire as the request went out) is asked again once, on
a fresh connection, as httpcore and aiohttp do; nothing else is retried."""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict, deque
from collections.abc import Iterator

import httpx
from aiohttp.abc import AbstractResolver

from probe.net.answer import Answer, Connection, Failure, Stale
from probe.net.dial import Dialer, GetRequest, Origin

# an expired idle connection is closed at most this late (one timer for the whole pool)
SWEEP_GRAIN_S = 1.0
# an encoded body is decoded this many bytes at a time, as it would be read from the network:
# a small compressed piece cannot expand into a huge one at once
DECODE_PIECE = 16 * 1024

MAX_ORIGINS = 65536  # origins kept parsed (cleared when full)

# (status, headers as sent, body decoded or None when over the cap, sets a cookie)
Got = tuple[int, list[tuple[bytes, bytes]], bytes | None, bool]


class GetPool:
    """The lean road's connections (see the module's docstring)."""

    def __init__(self, max_connections: int, keepalive: bool, keepalive_expiry: float,
                 ssl_context: ssl.SSLContext, resolver: AbstractResolver | None) -> None:
        self._dialer = Dialer(ssl_context, resolver)
        self._keepalive = keepalive
        self._expiry = keepalive_expiry
        self._max_connections = max_connections
        self._in_use = 0
        self._waiting: deque[asyncio.Future[None]] = deque()  # for a connection, in turn
        self._idle: dict[object, list[Connection]] = {}
        self._order: OrderedDict[Connection, None] = OrderedDict()  # idle, oldest first
        self._origins: dict[tuple[str, str, int], Origin] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    def origin(self, key: tuple[str, str, int]) -> Origin:
        """The ``Origin`` of ``key``, made once (up to ``MAX_ORIGINS``: pods come and go)."""
        origin = self._origins.get(key)
        if origin is None:
            if len(self._origins) >= MAX_ORIGINS:
                self._origins.clear()
            origin = self._origins[key] = Origin(*key)
        return origin

    async def get(self, request: GetRequest, limit: int) -> Got:
        """Send ``request``; its answer, the body read up to ``limit`` bytes (decoded)."""
        if self._in_use >= self._max_connections or self._waiting:
            await self._turn()
        else:
            self._in_use += 1
        try:
            status, headers, body, encoding, cookie = await self._ask(request, limit)
        finally:
            self._done()
        if encoding is not None and body is not None:
            try:
                body = _decoded(status, headers, body, limit)
            except httpx.DecodingError as exc:
                exc.request = request.as_httpx()
                raise
        return status, headers, body, cookie

    async def _turn(self) -> None:
        """Wait until a request in use hands its place over (``_done``). An
        ``asyncio.Semaphore`` does the same, but its ``locked`` walks its waiters at every
        acquire: 2 % of a fetch's CPU with 10,000 hosts."""
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._done()  # handed over as the waiter was cancelled: pass it on
            elif turn in self._waiting:  # (else skipped by _done already)
                self._waiting.remove(turn)
            raise

    def _done(self) -> None:
        """A request's place is free: the next waiting one takes it, or it is given back."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._in_use -= 1

    async def _ask(self, request: GetRequest, limit: int) -> Answer:
        origin = request.origin
        connection = self._take(origin.key)
        answer: Answer | None = None
        try:
            if connection is None:
                connection = await self._open(origin)
            try:
                answer = await connection.ask(request.data, limit)
            except Stale:
                connection = await self._open(origin)
                answer = await connection.ask(request.data, limit)
            return answer
        except Failure as failure:
            raise failure.kind(str(failure), request=request.as_httpx()) from failure.__cause__
        except httpx.ConnectError as exc:
            exc.request = request.as_httpx()
            raise
        finally:
            if connection is not None:
                self._release(connection, answer is not None)

    async def _open(self, origin: Origin) -> Connection:
        return await self._dialer.connect(origin, lambda: Connection(origin.key, self._forget))

    def _take(self, key: object) -> Connection | None:
        """The origin's most recently used idle connection, if any is still good."""
        idle = self._idle.get(key)
        found = None
        while idle:
            connection = idle.pop()
            del self._order[connection]
            if connection.closed:
                continue
            if asyncio.get_running_loop().time() - connection.idle_since > self._expiry:
                connection.close()
                continue
            found = connection
            break
        if idle is not None and not idle:
            del self._idle[key]  # no empty list kept per origin ever seen
        return found

    def _release(self, connection: Connection, answered: bool) -> None:
        if not (answered and self._keepalive and not self._closed and connection.reusable()):
            connection.close()
            return
        now = asyncio.get_running_loop().time()
        connection.idle(now)
        idle = self._idle.get(connection.key)
        if idle is None:
            idle = self._idle[connection.key] = []
        idle.append(connection)
        self._order[connection] = None
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_at(
                now + self._expiry + SWEEP_GRAIN_S, self._expire)

    def _forget(self, connection: Connection) -> None:
        """An idle connection closed (by its server, or by bytes it sent): out of the pool."""
        if connection in self._order:
            del self._order[connection]
            idle = self._idle[connection.key]
            idle.remove(connection)
            if not idle:
                del self._idle[connection.key]

    def _expire(self) -> None:
        """Close the connections idle for longer than the expiry (oldest first: the walk
        stops at the first one still fresh), and come back when the next one expires."""
        self._sweep = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._order:
            connection = next(iter(self._order))
            if now - connection.idle_since <= self._expiry:
                self._sweep = loop.call_at(max(connection.idle_since + self._expiry,
                                               now) + SWEEP_GRAIN_S, self._expire)
                return
            self._order.popitem(last=False)
            idle = self._idle[connection.key]
            idle.remove(connection)
            if not idle:
                del self._idle[connection.key]
            connection.close()

    async def aclose(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in list(self._order):
            connection.close()
        self._order.clear()
        self._idle.clear()
        await self._dialer.close()


class _Pieces(httpx.SyncByteStream):
    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self._body)
        for start in range(0, len(view), DECODE_PIECE):
            yield bytes(view[start:start + DECODE_PIECE])


def _decoded(status: int, headers: list[tuple[bytes, bytes]], body: bytes,
             limit: int) -> bytes | None:
    """The body through httpx's decoders (gzip, deflate, br, ...), as the checks read it;
    None when the decoded body is over ``limit``."""
    response = httpx.Response(status, headers=headers, stream=_Pieces(body))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
