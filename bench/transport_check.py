"""Behaviour check of the daemon's HTTP client against httpx's own transport, on real
sockets: each case runs through ``probe.runner.attempt`` (deadline + exception mapping)
with both clients, and any difference in outcome is a failure.

Cases: body over the cap (declared and chunked, and the connection is not reused after),
a trickling body and a server that never answers (the whole-attempt deadline), connection
refused / reset / closed without an answer / body cut short / not HTTP, TLS to a plain port
and to a self-signed certificate, and a streamed answer read with ``aiter_lines``.

    python bench/transport_check.py
    python bench/transport_check.py --package   # httpx-aiohttp's AiohttpTransport instead
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probe.check import CheckContext  # noqa: E402
from probe.config.model import Endpoint  # noqa: E402
from probe.http import get  # noqa: E402
from probe.outcome import Outcome, Verdict  # noqa: E402
from probe.prober import make_client  # noqa: E402
from probe.runner import attempt  # noqa: E402

CAP = 64 * 1024
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


def answer(headers: str, body: bytes = b"") -> bytes:
    return f"HTTP/1.1 200 OK\r\n{headers}\r\n".encode() + body


async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        writer.write(answer("Content-Length: 2\r\nContent-Type: application/json\r\n", b"{}"))
        await writer.drain()


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
    await asyncio.sleep(10)


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


def self_signed(tmp: Path) -> ssl.SSLContext:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(tmp / "key.pem"),
                    "-out", str(tmp / "cert.pem")], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


def endpoint(timeout_s: float) -> Endpoint:
    return Endpoint(name="e", kind="openai", openai_base="http://x/v1", root_url="http://x",
                    interval_s=30.0, timeout_s=timeout_s, tries=1, retry_delay_s=0.0,
                    checks=("models",), api_key_env=None, model=None, min_context=None)


async def fetch(client: httpx.AsyncClient, url: str, timeout_s: float = 1.0) -> Verdict:
    async def check(_e: Endpoint, c: httpx.AsyncClient, ctx: CheckContext) -> Verdict:
        status, body, _ = await get(c, url, {}, ctx.max_body_bytes)
        return Verdict(Outcome.OK, f"{status} {len(body)} bytes", status)

    return await attempt(check, endpoint(timeout_s), client, CheckContext(CAP), timeout_s)


async def stream_lines(client: httpx.AsyncClient, url: str) -> str:
    began, arrivals = time.monotonic(), []
    async with client.stream("POST", url, json={"stream": True}) as response:
        async for line in response.aiter_lines():
            if line:
                arrivals.append(round(time.monotonic() - began, 1))
    return f"{len(arrivals)} lines at {arrivals}"


async def main() -> int:
    servers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="transport-check-") as tmp:
        tls = self_signed(Path(tmp))
    for name, handler in (("ok", ok), ("big_declared", big_declared),
                          ("big_chunked", big_chunked), ("trickle", trickle),
                          ("silent", silent), ("reset", reset), ("close", close_quietly),
                          ("cut_short", cut_short), ("not_http", not_http), ("sse", sse)):
        servers[name] = await asyncio.start_server(handler, "127.0.0.1", 0)
    servers["tls"] = await asyncio.start_server(ok, "127.0.0.1", 0, ssl=tls)

    def url(name: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{servers[name].sockets[0].getsockname()[1]}/x"

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/x"
    cases = [("ok", url("ok")), ("body over cap, declared", url("big_declared")),
             ("body over cap, chunked", url("big_chunked")), ("ok after cap", url("ok")),
             ("trickling body (deadline 1s)", url("trickle")),
             ("no answer (deadline 1s)", url("silent")), ("connection refused", refused),
             ("reset after request", url("reset")), ("closed, no answer", url("close")),
             ("body cut short", url("cut_short")), ("not HTTP", url("not_http")),
             ("TLS to a silent plain port", url("ok", "https")),
             ("TLS, self-signed", url("tls", "https"))]
    reference = httpx.AsyncClient(timeout=httpx.Timeout(300.0))
    if "--package" in sys.argv:
        from httpx_aiohttp import AiohttpTransport

        ours = httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(300.0))
    else:
        ours = make_client(8)
    print(f"daemon client transport: {type(ours._transport).__module__}."  # noqa: SLF001
          f"{type(ours._transport).__name__}\n")  # noqa: SLF001
    print(f"{'case':<30} {'httpx transport':<50} {'other':<50}")
    failures = 0
    for name, target in cases:
        cells = []
        for client in (reference, ours):
            began = time.monotonic()
            verdict = await fetch(client, target)
            cells.append((verdict.outcome, f"{verdict.outcome} {time.monotonic() - began:.1f}s: "
                          f"{verdict.message[:28]}"))
        same = cells[0][0] == cells[1][0]
        failures += not same
        print(f"{name:<30} {cells[0][1]:<50} {cells[1][1]:<50} {'' if same else 'DIFFERENT'}")
    lines = [await stream_lines(c, url("sse")) for c in (reference, ours)]
    print(f"{'streamed lines (aiter_lines)':<30} {lines[0]:<50} {lines[1]:<50}")
    failures += lines[0] != lines[1]
    await reference.aclose()
    await ours.aclose()
    for server in servers.values():
        server.close()
    print("\nsame behaviour" if not failures else f"\n{failures} difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
