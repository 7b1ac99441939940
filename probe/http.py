"""Bounded HTTP reads: a body is never read past a size cap, and status codes map to outcomes.

Also the transport under the daemon's ``httpx.AsyncClient``: aiohttp's connection pool and
parser instead of httpcore's (the pool walks every pooled connection on every request, and
its per-request cost dominates a large fleet; see BENCHMARKS.md). Checks keep the httpx
API, and every aiohttp failure surfaces as the httpx exception the runner classifies.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx

from probe.outcome import Outcome, Verdict
from probe.vllm_errors import is_context_error_body, parse_error

USER_AGENT = "runpod-probe/0.1"


class BodyTooLarge(Exception):
    """The server sent more than we are willing to read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")
        self.limit = limit


class BadBody(Exception):
    """The body is not what the protocol says it should be."""


# aiohttp failure -> the httpx exception httpx's own transport raises for the same event,
# most specific first (verdict_from_exception reads TLS from the cause chain, then the type).
_AIOHTTP_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # body cut short or malformed
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # unparsable status/headers
    (aiohttp.ClientOSError, httpx.ReadError),  # reset while sending or reading
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.TransportError),
    (ssl.SSLError, httpx.ConnectError),
    (ConnectionError, httpx.ReadError),
)


def _httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError | None:
    for source, target in _AIOHTTP_ERRORS:
        if isinstance(exc, source):
            return target(_message(exc), request=request)
    return None


def _message(exc: BaseException) -> str:
    """The underlying reason ("[Errno 111] Connect call failed", "[SSL:
    CERTIFICATE_VERIFY_FAILED] ..."), not aiohttp's "Cannot connect to host" wrapper."""
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
    return str(cause or exc) or type(exc).__name__


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            mapped = _httpx_error(exc, self._request)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        # A body read to the end gives the connection back for reuse; one abandoned early
        # (over the size cap, a deadline) closes it: the rest must never be read as the
        # next answer.
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
    file descriptors)."""

    def __init__(self, max_connections: int, keepalive: bool = True,
                 keepalive_expiry: float = 30.0, verify: ssl.SSLContext | bool = True) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._limit = max_connections
        self._keepalive = keepalive
        self._expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, Any], aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # inside the running loop, at the first request
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=0, ssl=self._ssl,
                force_close=not self._keepalive,
                keepalive_timeout=self._expiry if self._keepalive else None,
                enable_cleanup_closed=False)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout", {})
        key = (spec.get("connect"), spec.get("read"))
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
        try:
            response = await session.request(
                request.method, str(request.url), headers=headers, data=body,
                allow_redirects=False, timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"))
        except Exception as exc:
            mapped = _httpx_error(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        version = response.version
        return httpx.Response(
            status_code=response.status, headers=response.raw_headers,
            stream=_AiohttpStream(response, request), request=request,
            extensions={"http_version": f"HTTP/{version.major}.{version.minor}".encode()
                        if version else b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode()})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def get(client: httpx.AsyncClient, url: str, headers: dict[str, str],
              limit: int) -> tuple[int, bytes, httpx.Headers]:
    """GET ``url`` and return (status, body, headers), reading at most ``limit`` bytes."""
    async with client.stream("GET", url, headers=headers) as response:
        body = await read_capped(response, limit)
        return response.status_code, body, response.headers


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(f"body is not JSON ({_preview(body)})") from exc
    if not isinstance(value, dict):
        raise BadBody(f"expected a JSON object, got {type(value).__name__}")
    return value


def status_outcome(status: int) -> Outcome | None:
    """The outcome an HTTP status alone implies, or None for a success."""
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return Outcome.UNAUTHORIZED
    if status == 404:
        return Outcome.HTTP_404
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 502:
        return Outcome.HTTP_502
    if status >= 500:
        return Outcome.HTTP_5XX
    return Outcome.HTTP_4XX


STATUS_MEANING = {
    404: "not found: pod stopped or destroyed, or port not exposed as HTTP",
    502: "bad gateway: the proxy is up but nothing answers on the pod's port",
    401: "unauthorized: the API key is missing or wrong",
    403: "forbidden: the API key lacks permission",
    429: "rate limited",
    524: "proxy timeout: the server took longer than the proxy allows (100 s)",
}


def error_message(body: bytes) -> str:
    """The human message from any OpenAI/vLLM error shape (nested, flat, or a bare string)."""
    error = parse_error(body)
    return error.message if error is not None else _preview(body)


def failure_verdict(status: int, body: bytes) -> Verdict:
    """The verdict for a non-2xx answer to a request that carried a prompt: a 400 that means
    "the prompt does not fit the window" is ``context_exceeded`` (the endpoint works; the
    prompt is too long for it), anything else is classified by its status."""
    if is_context_error_body(status, body):
        return Verdict(Outcome.CONTEXT_EXCEEDED, f"HTTP {status}: {error_message(body)}", status)
    return Verdict(status_outcome(status) or Outcome.HTTP_4XX, describe_status(status, body),
                   status)


def _preview(body: bytes, limit: int = 120) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return repr(text) if text else "empty body"


def describe_status(status: int, body: bytes) -> str:
    meaning = STATUS_MEANING.get(status)
    detail = error_message(body) if body else "empty body"
    if "<html" in body[:512].lower().decode("latin-1"):
        detail = "HTML page"
    return f"HTTP {status}" + (f" ({meaning})" if meaning else "") + f": {detail}"
