"""One connection of the GET road (``probe.net.lean``): an ``asyncio.Protocol`` that writes a
request's bytes and reads its answer with httptools (llhttp, the C parser uvicorn uses),
straight from the event loop's ``data_received`` into one list of body chunks: no stream
reader, no per-chunk task switch, no parser object per request.

It holds one answer at a time and says how it ended, for ``probe.net.lean`` to decide the
connection's fate: read to its end (``reusable`` when the server keeps it alive and the
status is a success), over the size cap (the rest is never read: closed), or failed with the
httpx exception httpx's own transport raises for the same event (``Failure``). Bytes that
arrive while no request is waiting close it: they answer nothing (a server speaking out of
turn, or an answer longer than it said), and the next request on that connection would read
them as its own. A head (status line and headers) longer than ``MAX_HEAD_BYTES`` is refused,
as httpx refuses one, so a garbage or endless header block costs bounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools
import httpx

# what httpx's own transport accepts (httpcore's h11 bound on an incomplete event)
MAX_HEAD_BYTES = 100 * 1024

# (status, headers as sent, body or None when over the cap, the body's content-encoding or
# None, whether the answer sets a cookie)
Answer = tuple[int, list[tuple[bytes, bytes]], bytes | None, bytes | None, bool]

# where a connection is: waiting in the pool (or not yet asked), reading an answer's head,
# its body, done with it, or closed
IDLE, HEAD, BODY, DONE, CLOSED = range(5)


class Failure(Exception):
    """An answer that failed: ``kind`` is the httpx exception to raise (with the request,
    which the connection does not know), the cause (an ``OSError``, the parser's error) is
    chained."""

    def __init__(self, kind: type[httpx.TransportError], message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Stale(Exception):
    """A reused connection the server had closed: it ended before any byte of the answer
    (the server's keep-alive expired as the request was sent). The request may be sent
    again, once, on a fresh connection."""


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: ``ask`` writes a request and returns the future of its
    ``Answer``. ``forget`` is called when the connection closes or is closed while idle
    (the pool drops it)."""

    __slots__ = ("transport", "idle_since", "answered", "key", "_forget", "_loop", "_parser",
                 "_state", "_waiter", "_status", "_headers", "_chunks", "_size", "_limit",
                 "_head_bytes", "_over", "_declared", "_framed", "_encoding", "_cookie", "_keep",
                 "_extra", "_got_bytes")

    def __init__(self, key: object, forget: Callable[[Connection], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.answered = 0  # answers read to their end on this connection
        self.key = key
        self._forget = forget
        self._loop = asyncio.get_running_loop()
        # one per answer, none while idle: 850 bytes per connection kept alive (25 MB at
        # 10,000 default pods) for 0.9 us per request
        self._parser: httptools.HttpResponseParser | None = None
        self._state = IDLE
        self._waiter: asyncio.Future[Answer] | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = 0
        self._head_bytes = 0
        self._over = False
        self._declared = -1  # the Content-Length, when there is one
        self._framed = False  # a Content-Length or Transfer-Encoding: not read to the close
        self._encoding: bytes | None = None
        self._cookie = False
        self._keep = False
        self._extra = False  # bytes past the answer: the connection is not reused
        self._got_bytes = False

    # -- the pool's side -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._state == CLOSED

    def reusable(self) -> bool:
        """Read to its end, a success, kept alive by the server, nothing past it."""
        return (self._state == DONE and self._keep and not self._extra
                and self._status < 400)

    def ask(self, request: bytes, limit: int) -> asyncio.Future[Answer]:
        """Send ``request`` and read its answer, its body capped at ``limit`` bytes."""
        self._waiter = waiter = self._loop.create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._state = HEAD
        self._status = 0
        self._headers = []
        self._chunks = []
        self._size = 0
        self._limit = limit
        self._head_bytes = 0
        self._over = self._framed = self._cookie = self._keep = self._extra = False
        self._got_bytes = False
        self._declared = -1
        self._encoding = None
        assert self.transport is not None
        self.transport.write(request)
        return waiter

    def idle(self, now: float) -> None:
        """Back in the pool: the next bytes that arrive answer nothing."""
        self._state = IDLE
        self.idle_since = now
        self._waiter = None  # it holds the answer: body and headers are the caller's now
        self._parser = None
        self._headers = []
        self._chunks = []

    def close(self) -> None:
        if self._state != CLOSED:
            self._state = CLOSED
            self._parser = None  # the parser refers back to this protocol
            if self.transport is not None:
                self.transport.close()

    # -- the event loop's side -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state != HEAD and state != BODY:
            if state == IDLE:  # an answer to nothing: never read as the next request's
                self.close()
                self._forget(self)
            elif state == DONE:  # past the answer, before the pool took it back
                self._extra = True
                self.close()
            return
        self._got_bytes = True
        parser = self._parser
        assert parser is not None
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._extra = True  # the rest is another protocol's
            if self._state == HEAD:
                self._failed(Failure(httpx.RemoteProtocolError, "upgraded before an answer"))
                return
            self._state = DONE
        except httptools.HttpParserError as exc:
            if self._state != DONE:
                self._failed(Failure(httpx.RemoteProtocolError,
                                     f"invalid HTTP answer: {exc}"), exc)
                return
            self._extra = True  # garbage past a complete answer
        if self._state == HEAD:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._failed(Failure(httpx.RemoteProtocolError,
                                     f"header block over {MAX_HEAD_BYTES} bytes"))
        elif self._over:
            self._answered(None)
            self.close()  # the rest of the body is never read
        elif self._state == DONE:
            self._answered(self._chunks[0] if len(self._chunks) == 1
                           else b"".join(self._chunks))

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost says what that meant

    def connection_lost(self, exc: Exception | None) -> None:
        state = self._state
        self._state = CLOSED
        self._parser = None
        if state == IDLE:
            self._forget(self)
        elif state == HEAD:
            if not self._got_bytes and self.answered and (exc is None or
                                                          isinstance(exc, ConnectionError)):
                self._failed(Stale())
            elif exc is None:
                self._failed(Failure(httpx.RemoteProtocolError, "Server disconnected"))
            else:
                self._failed(Failure(httpx.ReadError, str(exc) or type(exc).__name__), exc)
        elif state == BODY:
            if not self._framed and exc is None:  # a body delimited by the close: complete
                self._keep = False
                self._answered(b"".join(self._chunks))
            else:
                of = f" of {self._declared}" if self._declared >= 0 else ""
                cause = f"{exc}" if exc is not None else (
                    f"received {self._size}{of} bytes of the body")
                self._failed(Failure(httpx.RemoteProtocolError,
                                     f"Response payload is not completed: {cause}"), exc)

    # -- httptools' callbacks --------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if self._state != HEAD:
            return  # a chunked body's trailers: not the answer's headers
        self._headers.append((name, value))
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self._framed = True
            if value.isdigit():
                self._declared = int(value)
                if self._declared > self._limit:
                    self._over = True  # declared over the cap: not read
        elif size == 17 and name.lower() == b"transfer-encoding":
            self._framed = True
        elif size == 16 and name.lower() == b"content-encoding":
            self._encoding = value
        elif (size == 10 or size == 11) and name.lower() in (b"set-cookie", b"set-cookie2"):
            self._cookie = True

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        self._state = BODY

    def on_body(self, body: bytes) -> None:
        if self._over:
            return
        self._size += len(body)
        if self._size > self._limit:
            self._over = True
            self._chunks = []
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._state == DONE:
            return
        if 100 <= self._status < 200 and self._status != 101:  # informational: not the answer
            self._state = HEAD
            self._headers = []
            self._framed = self._over = self._cookie = False
            self._declared = -1
            self._encoding = None
            return
        assert self._parser is not None
        self._keep = self._parser.should_keep_alive()
        self._state = DONE

    def on_message_begin(self) -> None:
        if self._state == DONE:
            self._extra = True  # a second answer to one request

    # -- ending ----------------------------------------------------------------------------
    def _answered(self, body: bytes | None) -> None:
        if body is not None:
            self.answered += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, self._headers, body, self._encoding,
                               self._cookie))

    def _failed(self, failure: Exception, cause: BaseException | None = None) -> None:
        failure.__cause__ = cause
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)
        self.close()
