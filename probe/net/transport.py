"""The transport under ``probe.net.ProbeClient``: aiohttp's connection pool and
parser instead of httpcore's. httpcore's pool walks every pooled connection on every
request, so its cost per request grows with the fleet; aiohttp keeps idle connections in a
dict by host (see BENCHMARKS.md). Checks keep the httpx API, and every aiohttp failure
surfaces as the httpx exception the runner classifies, exactly as httpx's own transport
raises it (the map is ``probe.net.errors``). ``ProbeClient.fetch``, the checks' bounded GET,
does not come here: it takes the lean road (``probe.net.lean``, the pool ``gets`` made
here on the same terms), for a quarter of the CPU aiohttp's machinery costs per request.

A connection is reused only after a healthy answer read to its end: after a failure status,
an error, or a body abandoned early (over the size cap, a deadline), it is closed; and a
request that sends a body never shares its connection. So one endpoint's misbehaving server
(answering before reading a request's body, leaving bytes on the connection) can never
corrupt another endpoint's check on the same host.

What this takes of aiohttp's private parts (the pool's connect and release hooks, an idle
connection's parser) is in ``probe.adapters.aiohttp_internals``.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver
from yarl import URL

from probe.adapters.aiohttp_internals import Pool, not_for_reuse
from probe.net.errors import as_httpx_error
from probe.net.lean import GetPool

_CLOSED = httpx.ByteStream(b"")  # what a closed response's stream is replaced with


class _AiohttpStream(httpx.AsyncByteStream):
    """An aiohttp answer's body as httpx reads it. httpx's response (``owner``) and the
    stream httpx wraps this in refer to each other: a cycle, freed only by a garbage
    collection, which the daemon runs on a clock (``probe.process``): a cycle that outlived
    half a second waits up to 10 minutes, with aiohttp's answer, its connection's protocol,
    transport and socket, httpx's request and response: ~11 kB a prompt (20,000 prompts
    in a start-up minute at 10,000 pods: ~200 MB). Closed, this stream lets go of them and
    takes the owner's stream away (a closed response is never read again), so no cycle
    is left."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response: aiohttp.ClientResponse | None = response
        self._request: httpx.Request | None = request
        self.owner: httpx.Response | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        response, request = self._response, self._request
        if response is None or request is None:
            raise httpx.StreamClosed()
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        except Exception as exc:
            mapped = as_httpx_error(exc, request)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        # A body read to its end gives the connection back for reuse (unless it answered a
        # failure: see handle_async_request); one abandoned early (over the size cap, a
        # deadline) is closed, or the rest would be read as the next answer.
        response, self._response, self._request = self._response, None, None
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.stream = _CLOSED
        if response is None:
            return
        if response.content.at_eof():
            response.release()
        else:
            response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx transport over one aiohttp ``ClientSession``, and the pool of
    ``ProbeClient.fetch``'s lean road (``gets``, ``probe.net.lean``) on the same terms.

    ``keepalive=False`` closes every connection after its answer (a fresh connection per
    request). Pool: at most ``max_connections`` connections in use at once; idle ones are
    kept per host for ``keepalive_expiry`` seconds, without a count limit (aiohttp keeps
    them in a dict by host, so a pool as large as the fleet costs nothing per request, only
    file descriptors); None, no bound (the prober's limit bounds its checks). ``resolver``
    replaces the system's name lookup (aiohttp's ``AbstractResolver``: the address, and
    port, a host name is connected to)."""

    def __init__(self, max_connections: int | None, keepalive: bool = True,
                 keepalive_expiry: float = 30.0, verify: ssl.SSLContext | bool = True,
                 resolver: AbstractResolver | None = None) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._resolver = resolver
        self._limit = 0 if max_connections is None else max_connections  # aiohttp: 0, none
        self._keepalive = keepalive
        self._expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        # ProbeClient.fetch's road: its own pool, same context, resolver and bounds
        bound = sys.maxsize if max_connections is None else max_connections
        self.gets = GetPool(bound, keepalive, keepalive_expiry, self._ssl, resolver)
        self._timeouts: dict[tuple[Any, Any], aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # inside the running loop, at the first request
            connector = Pool(
                limit=self._limit, limit_per_host=0, ssl=self._ssl,
                force_close=not self._keepalive,
                keepalive_timeout=self._expiry if self._keepalive else None,
                enable_cleanup_closed=False, resolver=self._resolver)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout", {})
        return self._timeout_of(spec.get("connect"), spec.get("read"))

    def _timeout_of(self, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        key = (connect, read)
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, sock_connect=key[0], sock_read=key[1])
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._client()
        try:
            body: bytes | None = request.content or None
        except httpx.RequestNotRead:
            body = await request.aread() or None
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        if body is not None:
            # A request that sends a body gets a connection of its own: a server that answers
            # before reading it leaves the body on the connection, where the next request on
            # it (another endpoint's, on a shared host) would meet it as garbage. Requests
            # with a body are the rare ones (prompts, round trips): it costs a connect each.
            headers.append(("Connection", "close"))
        try:
            response = await session.request(
                # httpx has already normalised and percent-encoded the URL: not again
                request.method, URL(str(request.url), encoded=True), headers=headers, data=body,
                allow_redirects=False, timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"))
        except Exception as exc:
            mapped = as_httpx_error(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        if response.status >= 400:
            not_for_reuse(response)
        version = response.version
        stream = _AiohttpStream(response, request)
        stream.owner = httpx.Response(
            status_code=response.status, headers=response.raw_headers, stream=stream,
            request=request,
            extensions={"http_version": f"HTTP/{version.major}.{version.minor}".encode()
                        if version else b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode()})
        return stream.owner

    async def aclose(self) -> None:
        await self.gets.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None
