"""The lean road of ``ProbeClient.fetch`` (``probe.net.lean``): which connections it reuses,
retries and closes, how it reads bodies and heads, on real sockets on 127.0.0.1. Each server
here is a script per accepted connection that records what it was asked."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import trustme
from aiohttp.abc import AbstractResolver, ResolveResult
from transport_cases import reference_client

from probe.attempts import observation_from_exception
from probe.net import ProbeClient, make_client
from probe.net import lean as lean_module
from probe.net.transport import AiohttpTransport
from probe.outcome import Outcome

GUARD_S = 10.0  # only against a hang: no assertion is about time


@dataclass
class Seen:
    """What a server saw: one entry per accepted connection, the requests' heads per
    connection, and the connections the client closed."""

    connections: int = 0
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    closed_by_client: list[int] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


Script = Callable[[int, asyncio.StreamReader, asyncio.StreamWriter, Seen], Awaitable[None]]


async def request_of(n: int, reader: asyncio.StreamReader, seen: Seen) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    seen.requests.append((n, head))
    return head


async def until_closed(n: int, reader: asyncio.StreamReader, seen: Seen) -> None:
    """Wait for the client to close connection ``n`` (and record it)."""
    if await reader.read() == b"":
        seen.closed_by_client.append(n)
        seen.closed.set()


def answer(body: bytes = b"ok", status: int = 200, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode()
            + body)


def answering_every_request(response: bytes) -> Script:
    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        while True:
            await request_of(n, reader, seen)
            writer.write(response)
            await writer.drain()
    return script


@asynccontextmanager
async def scripted(script: Script, tls: ssl.SSLContext | None = None
                   ) -> AsyncIterator[tuple[str, Seen]]:
    """A server running ``script`` for each connection (numbered from 0): its URL and what
    it saw."""
    seen = Seen()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = seen.connections
        seen.connections += 1
        try:
            await script(n, reader, writer, seen)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:  # the server closed under a waiting script
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}/x", seen
    finally:
        server.close()


def run(go: Callable[[], Awaitable[object]]) -> object:
    async def guarded() -> object:
        async with asyncio.timeout(GUARD_S):
            return await go()
    return asyncio.run(guarded())


# -- retries: a stale kept-alive connection once, nothing else ------------------------------

async def stale_then(fresh: Script) -> Script:
    """Connection 0 answers its first request and closes on the second without a byte
    (its keep-alive expired as the request went out); later connections run ``fresh``."""
    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        if n > 0:
            await fresh(n, reader, writer, seen)
            return
        await request_of(n, reader, seen)
        writer.write(answer())
        await writer.drain()
        await request_of(n, reader, seen)
    return script


async def close_at_once(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        seen: Seen) -> None:
    await request_of(n, reader, seen)


def test_a_stale_kept_alive_connection_is_asked_again_on_a_fresh_one() -> None:
    async def go() -> tuple[list[tuple[int, bytes]], Seen]:
        async with scripted(await stale_then(answering_every_request(answer()))) as (url, seen), \
                make_client(8) as client:
            got = [(await client.fetch(url, {}, 1024))[:2] for _ in range(2)]
        return got, seen

    got, seen = run(go)  # type: ignore[misc]
    assert got == [(200, b"ok"), (200, b"ok")]
    assert [n for n, _ in seen.requests] == [0, 0, 1]  # asked again once, on a new one


def test_a_stale_connection_is_asked_again_only_once() -> None:
    async def go() -> tuple[type[BaseException], Seen]:
        async with scripted(await stale_then(close_at_once)) as (url, seen), \
                make_client(8) as client:
            await client.fetch(url, {}, 1024)
            with pytest.raises(httpx.TransportError) as raised:
                await client.fetch(url, {}, 1024)
        return type(raised.value), seen

    kind, seen = run(go)  # type: ignore[misc]
    assert kind is httpx.RemoteProtocolError
    assert [n for n, _ in seen.requests] == [0, 0, 1]


def test_a_fresh_connection_closed_before_an_answer_is_not_asked_again() -> None:
    async def go() -> tuple[type[BaseException], Seen]:
        async with scripted(close_at_once) as (url, seen), make_client(8) as client:
            with pytest.raises(httpx.TransportError) as raised:
                await client.fetch(url, {}, 1024)
        return type(raised.value), seen

    kind, seen = run(go)  # type: ignore[misc]
    assert kind is httpx.RemoteProtocolError
    assert [n for n, _ in seen.requests] == [0]


def test_a_reused_connection_cut_mid_answer_is_not_asked_again() -> None:
    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await request_of(n, reader, seen)
        writer.write(answer())
        await request_of(n, reader, seen)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok")
        await writer.drain()

    async def go() -> tuple[str, Seen]:
        async with scripted(script) as (url, seen), make_client(8) as client:
            await client.fetch(url, {}, 1024)
            with pytest.raises(httpx.RemoteProtocolError) as raised:
                await client.fetch(url, {}, 1024)
        return str(raised.value), seen

    message, seen = run(go)  # type: ignore[misc]
    assert message == "Response payload is not completed: received 2 of 10 bytes of the body"
    assert [n for n, _ in seen.requests] == [0, 0]


# -- which connections are kept ----------------------------------------------------------

@pytest.mark.parametrize(("response", "body", "connections"), [
    (answer(), b"ok", 1),
    (answer(status=503), b"ok", 3),  # a failure status: closed
    (answer(status=404), b"ok", 3),
    (answer(extra="Connection: close\r\n"), b"ok", 3),
    (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", b"ok", 3),  # 1.0: not kept alive
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
     b"3\r\nabc\r\n1\r\nd\r\n0\r\nx-trailer: t\r\n\r\n", b"abcd", 1),
    (b"HTTP/1.1 100 Continue\r\n\r\n" + answer(), b"ok", 1),  # informational: skipped
    (answer() + b"SURPLUS", b"ok", 3),  # more than it said: closed
], ids=["ok", "503", "404", "connection-close", "http-1.0", "chunked",
        "informational", "bytes-past-the-answer"])
def test_which_answers_leave_their_connection_for_the_next(response: bytes, body: bytes,
                                                           connections: int) -> None:
    async def go() -> tuple[list[tuple[int, bytes]], Seen]:
        async with scripted(answering_every_request(response)) as (url, seen), \
                make_client(8) as client:
            got = [(await client.fetch(url, {}, 1024))[:2] for _ in range(3)]
        return got, seen

    got, seen = run(go)  # type: ignore[misc]
    status = int(response.rsplit(b"HTTP/1.", 1)[1][2:5])
    assert got == [(status, body)] * 3
    assert seen.connections == connections


def test_a_body_delimited_by_the_close_is_read_to_it() -> None:
    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await request_of(n, reader, seen)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")
        for part in (b"all ", b"until ", b"the close"):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)

    async def go() -> tuple[list[tuple[int, bytes]], Seen]:
        async with scripted(script) as (url, seen), make_client(8) as client:
            got = [(await client.fetch(url, {}, 1024))[:2] for _ in range(2)]
        return got, seen

    got, seen = run(go)  # type: ignore[misc]
    assert got == [(200, b"all until the close")] * 2
    assert seen.connections == 2


def test_bytes_on_an_idle_connection_close_it() -> None:
    """A server that speaks after its answer, while the connection waits in the pool: the
    connection is closed at once (the client closes it), and the next request opens
    another rather than read those bytes as its answer."""
    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await request_of(n, reader, seen)
        writer.write(answer())
        await writer.drain()
        if n == 0:
            await asyncio.sleep(0.05)
            writer.write(answer(b"stray", status=500))
            await until_closed(n, reader, seen)
            return
        while True:
            await request_of(n, reader, seen)
            writer.write(answer())

    async def go() -> tuple[list[tuple[int, bytes]], Seen]:
        async with scripted(script) as (url, seen), make_client(8) as client:
            first = (await client.fetch(url, {}, 1024))[:2]
            await seen.closed.wait()  # closed by the client while idle, unasked
            second = (await client.fetch(url, {}, 1024))[:2]
        return [first, second], seen

    got, seen = run(go)  # type: ignore[misc]
    assert got == [(200, b"ok"), (200, b"ok")]
    assert seen.closed_by_client == [0] and seen.connections == 2


def test_without_keepalive_every_answer_closes_its_connection() -> None:
    async def go() -> Seen:
        async with scripted(answering_every_request(answer())) as (url, seen), \
                make_client(8, keepalive=False) as client:
            for _ in range(3):
                assert (await client.fetch(url, {}, 1024))[:2] == (200, b"ok")
        return seen

    assert run(go).connections == 3  # type: ignore[attr-defined]


def test_an_idle_connection_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``keepalive_expiry`` an idle connection is closed by the pool, with no request
    to notice it (one timer for the pool, ``SWEEP_GRAIN_S`` late at most)."""
    monkeypatch.setattr(lean_module, "SWEEP_GRAIN_S", 0.01)

    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await request_of(n, reader, seen)
        writer.write(answer())
        await until_closed(n, reader, seen)

    async def go() -> Seen:
        async with scripted(script) as (url, seen), \
                make_client(8, keepalive_expiry=0.05) as client:
            assert (await client.fetch(url, {}, 1024))[:2] == (200, b"ok")
            await seen.closed.wait()
            assert (await client.fetch(url, {}, 1024))[:2] == (200, b"ok")
        return seen

    seen = run(go)
    assert seen.closed_by_client == [0] and seen.connections == 2  # type: ignore[attr-defined]


def test_no_more_connections_in_use_than_the_client_allows() -> None:
    open_now: list[int] = []
    most: list[int] = [0]

    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        open_now.append(n)
        most[0] = max(most[0], len(open_now))
        try:
            while True:
                await request_of(n, reader, seen)
                await asyncio.sleep(0.05)  # the others pile up meanwhile
                writer.write(answer())
                await writer.drain()
        finally:
            open_now.remove(n)

    async def go() -> list[tuple[int, bytes]]:
        async with scripted(script) as (url, _seen), make_client(2) as client:
            answers = await asyncio.gather(*(client.fetch(url, {}, 1024) for _ in range(6)))
        return [a[:2] for a in answers]

    assert run(go) == [(200, b"ok")] * 6
    assert most[0] == 2


def test_a_request_that_gives_up_waiting_for_a_connection_takes_none() -> None:
    """With one connection allowed: a second fetch waits, gives up (its deadline), and the
    third still gets the connection when the first is done (no place lost or leaked)."""
    release = asyncio.Event()

    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        while True:
            await request_of(n, reader, seen)
            await release.wait()
            writer.write(answer())
            await writer.drain()

    async def go() -> tuple[list[tuple[int, bytes]], Seen]:
        async with scripted(script) as (url, seen), make_client(1) as client:
            first = asyncio.create_task(client.fetch(url, {}, 1024))
            await asyncio.sleep(0.05)  # the first holds the connection
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.fetch(url, {}, 1024)
            third = asyncio.create_task(client.fetch(url, {}, 1024))
            await asyncio.sleep(0.05)
            release.set()
            got = [(await first)[:2], (await third)[:2], (await client.fetch(url, {}, 1024))[:2]]
        return got, seen

    got, seen = run(go)  # type: ignore[misc]
    assert got == [(200, b"ok")] * 3
    assert [n for n, _ in seen.requests] == [0, 0, 0]  # the one connection, in turn


# -- deadlines, heads and bodies ------------------------------------------------------------

def test_a_deadline_mid_body_closes_the_connection() -> None:
    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await request_of(n, reader, seen)
        if n == 0:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf")
            await until_closed(n, reader, seen)
            return
        writer.write(answer())
        await writer.drain()
        await until_closed(n, reader, seen)

    async def go() -> tuple[tuple[int, bytes], Seen]:
        async with scripted(script) as (url, seen), make_client(8) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):  # the check's deadline
                    await client.fetch(url, {}, 1024)
            await seen.closed.wait()
            got = (await client.fetch(url, {}, 1024))[:2]
        return got, seen

    got, seen = run(go)  # type: ignore[misc]
    assert got == (200, b"ok")
    assert seen.closed_by_client[0] == 0 and seen.connections == 2


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nx-endless: " + b"a" * 300_000,  # one header that never ends
    b"HTTP/1.1 200 OK\r\n" + b"x-many: aaaaaaaaaaaaaaaaaaaa\r\n" * 10_000,  # 300 KB of them
], ids=["endless-header", "endless-header-block"])
def test_a_head_over_the_bound_is_a_protocol_error(head: bytes) -> None:
    """No end of the head is ever sent: the client stops at the bound (httpx's), without
    waiting for it or keeping it all."""
    async def script(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await request_of(n, reader, seen)
        writer.write(head)
        await until_closed(n, reader, seen)

    async def go() -> str:
        async with scripted(script) as (url, _seen), make_client(8) as client:
            with pytest.raises(httpx.RemoteProtocolError) as raised:
                await client.fetch(url, {}, 1024)
        return str(raised.value)

    assert run(go) == "header block over 102400 bytes"


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 10,  # a TLS hello
    b"HTTP/1.1 abc\r\n\r\n",  # no status
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",  # two lengths
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",  # no chunk size
], ids=["binary", "no-status", "two-lengths", "bad-chunk"])
def test_garbage_is_a_protocol_error(garbage: bytes) -> None:
    async def go() -> Outcome:
        async with scripted(answering_every_request(garbage)) as (url, _seen), \
                make_client(8) as client:
            with pytest.raises(httpx.RemoteProtocolError) as raised:
                await client.fetch(url, {}, 1024)
        return observation_from_exception(raised.value, 1.0).outcome

    assert run(go) is Outcome.CONNECT_ERROR


# -- TLS ------------------------------------------------------------------------------------

@pytest.mark.parametrize("trusted", [True, False], ids=["verified", "refused"])
def test_tls_is_verified_and_a_verified_connection_kept(trusted: bool) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    if trusted:
        authority.configure_trust(client_context)

    async def go() -> tuple[object, Seen]:
        async with scripted(answering_every_request(answer()), tls=server_context) as (
                url, seen), ProbeClient(AiohttpTransport(8, verify=client_context)) as client:
            try:
                got: object = [(await client.fetch(url, {}, 1024))[:2] for _ in range(3)]
            except httpx.TransportError as exc:
                got = observation_from_exception(exc, 1.0).outcome
        return got, seen

    got, seen = run(go)  # type: ignore[misc]
    if trusted:
        assert got == [(200, b"ok")] * 3 and seen.connections == 1
    else:
        assert got is Outcome.TLS_ERROR and seen.requests == []


# -- the request on the wire ----------------------------------------------------------------

def test_a_get_on_the_wire_is_the_one_httpx_sends() -> None:
    headers = {"Authorization": "Bearer made-up-key", "Accept": "application/json"}

    async def go() -> list[list[bytes]]:
        async with scripted(answering_every_request(answer())) as (url, seen):
            async with make_client(8) as client:
                await client.fetch(url + "?q=a%20b", headers, 1024)
            async with reference_client() as theirs:
                await theirs.get(url + "?q=a%20b", headers=headers)
        return [sorted(line.lower() for line in head.split(b"\r\n") if line)
                for _, head in seen.requests]

    ours, theirs = run(go)  # type: ignore[misc]
    assert ours == theirs
    assert b"get /x?q=a%20b http/1.1" in ours


def test_the_requests_kept_ready_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each URL and header set is built once and kept, up to ``MAX_REQUESTS`` (then the
    whole cache starts again); each request still goes out as asked."""
    monkeypatch.setattr(ProbeClient, "MAX_REQUESTS", 4)

    async def go() -> tuple[list[int], list[bytes]]:
        async with scripted(answering_every_request(answer())) as (url, seen), \
                make_client(8) as client:
            kept = []
            for i in range(10):
                await client.fetch(f"{url}/{i}", {"Authorization": f"Bearer made-up-{i % 3}"},
                                   1024)
                kept.append(len(client._requests))  # type: ignore[attr-defined]
        return kept, [head for _, head in seen.requests]

    kept, heads = run(go)  # type: ignore[misc]
    assert max(kept) == 4
    assert all(f"GET /x/{i} HTTP/1.1".encode() in head
               and f"Bearer made-up-{i % 3}".encode() in head for i, head in enumerate(heads))


def test_a_cookie_set_on_the_lean_road_is_sent_on_the_next_get() -> None:
    """An answer that sets a cookie gives it to the client's jar; a client with a cookie to
    send takes httpx's road, which sends it."""
    async def go() -> list[bytes]:
        response = answer(extra="Set-Cookie: session=made-up; Path=/\r\n")
        async with scripted(answering_every_request(response)) as (url, seen), \
                make_client(8) as client:
            for _ in range(2):
                assert (await client.fetch(url, {}, 1024))[:2] == (200, b"ok")
            assert client.cookies.get("session") == "made-up"
        return [head for _, head in seen.requests]

    first, second = run(go)  # type: ignore[misc]
    assert b"cookie:" not in first.lower() and b"Cookie: session=made-up" in second


class TwoAddresses(AbstractResolver):
    """Every name has two addresses: a port nobody listens on first, then ``port``."""

    def __init__(self, closed: int, port: int) -> None:
        self.ports = (closed, port)
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        return [ResolveResult(hostname=host, host="127.0.0.1", port=each, family=socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST) for each in self.ports]

    async def close(self) -> None:
        return None


def test_a_name_with_several_addresses_is_connected_to_one_that_answers() -> None:
    """The resolver's addresses are tried in turn (aiohttp's happy eyeballs) and its answer
    kept for a while: the second connection to the same name asks it nothing."""
    with socket.socket() as nobody:
        nobody.bind(("127.0.0.1", 0))
        closed = nobody.getsockname()[1]

    async def go() -> tuple[list[tuple[int, bytes]], list[str]]:
        async with scripted(answering_every_request(answer())) as (url, _seen):
            resolver = TwoAddresses(closed, int(url.rsplit(":", 1)[1].split("/")[0]))
            async with make_client(8, keepalive=False, resolver=resolver) as client:
                got = [(await client.fetch("http://pod.test/x", {}, 1024))[:2]
                       for _ in range(2)]
        return got, resolver.asked

    got, asked = run(go)  # type: ignore[misc]
    assert got == [(200, b"ok")] * 2
    assert asked == ["pod.test"]


def test_a_url_of_another_scheme_is_unsupported() -> None:
    async def go() -> None:
        async with make_client(8) as client:
            with pytest.raises(httpx.UnsupportedProtocol):
                await client.fetch("ftp://pod.test/x", {}, 1024)

    run(go)
