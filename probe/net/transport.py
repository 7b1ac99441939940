"""The transport under ``probe.net.ProbeClient``: aiohttp's connection pool and
parser instead of httpcore's. httpcore's pool walks every pooled connection on every
request, so its cost per request grows with the fleet; aiohttp keeps idle connections in a
dict by host (see BENCHMARKS.md). Checks keep the httpx API, and every aiohttp failure
surfaces as the httpx exception the runner classifies, exactly as httpx's own transport
raises it (the map is ``probe.net.errors``).

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
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver
from yarl import URL

from probe.adapters.aiohttp_internals import Pool, not_for_reuse
from probe.net.errors import as_httpx_error


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            mapped = as_httpx_error(exc, self._request)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        # A body read to its end gives the connection back for reuse (unless it answered a
        # failure: see handle_async_request); one abandoned early (over the size cap, a
        # deadline) is closed, or the rest would be read as the next answer.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx transport over one aiohttp ``ClientSession``.

    ``keepalive=False`` closes every connection after its answer (a fresh connection per
    request). Pool: at most ``max_connections`` connections in use at once; idle ones are
    kept per host for ``keepalive_expiry`` seconds, without a count limit (aiohttp keeps
    them in a dict by host, so a pool as large as the fleet costs nothing per request, only
    file descriptors). ``resolver`` replaces the system's name lookup (aiohttp's
    ``AbstractResolver``: the address, and port, a host name is connected to)."""

    def __init__(self, max_connections: int, keepalive: bool = True,
                 keepalive_expiry: float = 30.0, verify: ssl.SSLContext | bool = True,
                 resolver: AbstractResolver | None = None) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._resolver = resolver
        self._limit = max_connections
        self._keepalive = keepalive
        self._expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
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
        return httpx.Response(
            status_code=response.status, headers=response.raw_headers,
            stream=_AiohttpStream(response, request), request=request,
            extensions={"http_version": f"HTTP/{version.major}.{version.minor}".encode()
                        if version else b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode()})

    async def get(self, url: httpx.URL, headers: list[tuple[str, str]],
                  limit: int) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes | None]:
        """A GET exactly as ``handle_async_request`` sends it (``headers``: what httpx would
        send, Host included), read as ``probe.net.body.read_capped`` reads it, without httpx's
        request and response objects: (status, raw headers, body), the body None when it
        is larger than ``limit`` (declared or read). The connection is reused on the same
        terms; failures raise the same httpx exceptions. An answer with a content encoding
        is decoded by httpx, as before. Its deadline is the caller's (every ``fetch`` runs
        under one: a check's attempt, the vantage's and the peers' ``wait_for``), so aiohttp
        keeps no timers of its own: its read timeout, re-armed at every read, was two timers
        per request for a backstop of 300 s that no deadline ever left to it."""
        session = self._client()
        try:
            response = await session.request(
                "GET", URL(str(url), encoded=True), headers=headers, allow_redirects=False)
        except Exception as exc:
            mapped = as_httpx_error(exc, httpx.Request("GET", url, headers=headers))
            if mapped is None:
                raise
            raise mapped from exc
        if response.status >= 400:
            not_for_reuse(response)
        raw = tuple(response.raw_headers)
        done = False
        try:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                return response.status, raw, None
            if response.headers.get("content-encoding"):
                body = await self._decoded(response, url, headers, limit)
            else:
                body = await self._read(response, url, headers, limit)
            done = body is not None
            return response.status, raw, body
        finally:
            # read to its end: the connection goes back (unless the status said otherwise);
            # abandoned (over the cap, an error, a deadline): it is closed
            if done and response.content.at_eof():
                response.release()
            else:
                response.close()

    async def _read(self, response: aiohttp.ClientResponse, url: httpx.URL,
                    headers: list[tuple[str, str]], limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
        except Exception as exc:
            mapped = as_httpx_error(exc, httpx.Request("GET", url, headers=headers))
            if mapped is None:
                raise
            raise mapped from exc
        return b"".join(chunks)

    async def _decoded(self, response: aiohttp.ClientResponse, url: httpx.URL,
                       headers: list[tuple[str, str]], limit: int) -> bytes | None:
        """The body through httpx's decoders (gzip, deflate, ...), as the checks read it."""
        request = httpx.Request("GET", url, headers=headers)
        wrapped = httpx.Response(status_code=response.status, headers=response.raw_headers,
                                 stream=_AiohttpStream(response, request), request=request)
        chunks: list[bytes] = []
        size = 0
        async for chunk in wrapped.aiter_bytes():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
