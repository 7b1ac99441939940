"""HTTP/1.1 on raw asyncio streams, served from a background thread with its own loop.

Hand-rolled rather than ``http.server`` because the hostile behaviours need the socket:
stalling after the request, resetting with SO_LINGER 0, dropping a chunked body halfway,
and bodies that never end. Supports keep-alive, Content-Length and chunked request bodies,
and fixed or chunked responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable
from http import HTTPStatus

from probe.simulator.messages import CutConnection, Handler, Request, Reset, Response, Stall

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
_STOP_TIMEOUT_S = 5.0


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequest(400) from exc
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # skip trailers
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise _BadRequest(413)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise _BadRequest(400)


# (method, target) -> True when the server answers without reading the request's body
Early = Callable[[str, str], bool]


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, early: Early | None = None
) -> tuple[Request, bool] | None:
    """One request and whether the client wants keep-alive; None on a clean EOF. When
    ``early`` says so, the body is left unread on the connection (a misbehaving server)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest(400) from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise _BadRequest(431) from exc
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError as exc:
        raise _BadRequest(400) from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400)
            headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if early is not None and early(method.upper(), target):
        return Request(method.upper(), target, headers, b""), keep_alive
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequest(400) from exc
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadRequest(413 if length > 0 else 400)
        body = await reader.readexactly(length) if length else b""
    return Request(method.upper(), target, headers, body), keep_alive


def _head(
    status: int, headers: tuple[tuple[str, str], ...], framing: str, keep_alive: bool
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_phrase(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(framing)
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _write_response(
    writer: asyncio.StreamWriter, response: Response, keep_alive: bool
) -> bool:
    """Send the response; False when the connection must end afterwards."""
    if response.stream is None:
        framing = f"content-length: {len(response.body)}"
        writer.write(_head(response.status, response.headers, framing, keep_alive) + response.body)
        await writer.drain()
        return keep_alive
    stream = response.stream
    writer.write(_head(response.status, response.headers, "transfer-encoding: chunked", keep_alive))
    try:
        async for chunk in stream:
            if writer.is_closing():
                raise ConnectionResetError("client went away")
            if chunk:
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                await writer.drain()
    except CutConnection:
        return False
    finally:
        await stream.aclose()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return keep_alive


async def _stall(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # Linger on with a zero timeout turns close() into an RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class HttpServer:
    """Runs ``handler`` for every request, on a loop in a daemon thread."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0,
                 early: Early | None = None) -> None:
        self._handler = handler
        self._early = early
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    def start(self) -> int:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="probe-simulator", daemon=True)
        self._thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._open(), loop).result(10)
        except BaseException:
            self._halt()
            raise
        return self.port

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._server is not None:
            future = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
            with contextlib.suppress(Exception):
                future.result(_STOP_TIMEOUT_S)
        self._halt()

    def _halt(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_STOP_TIMEOUT_S)
        self._thread = None

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _open(self) -> int:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_HEAD_BYTES, backlog=2048
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        # Python 3.11's Server.close() leaves accepted connections open: end them here.
        for task, writer in list(self._connections.items()):
            writer.transport.abort()
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self._conversation(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client left, or sent half a request; nobody to answer
        except asyncio.CancelledError:
            # Only stop() cancels these; ending quietly keeps asyncio's stream callback from
            # logging the cancellation as an error.
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        keep_alive = True
        while keep_alive:
            try:
                parsed = await _read_request(reader, writer, self._early)
            except _BadRequest as exc:
                await _write_response(writer, Response(exc.status), keep_alive=False)
                return
            if parsed is None:
                return
            request, keep_alive = parsed
            try:
                reply = await self._handler(request)
            except Exception:
                log.exception("simulator handler failed for %s %s", request.method, request.path)
                reply = Response(500, (("content-type", "text/plain"),), b"simulator bug")
                keep_alive = False
            if isinstance(reply, Stall):
                await _stall(reader)
                return
            if isinstance(reply, Reset):
                _reset(writer)
                return
            keep_alive = await _write_response(writer, reply, keep_alive)
