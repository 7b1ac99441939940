"""The one exception map: every aiohttp failure becomes the httpx exception httpx's own
transport raises for the same event, so ``probe.attempts`` classifies one vocabulary whatever
road a request took."""

from __future__ import annotations

import ssl

import aiohttp
import httpx

# most specific first (observation_from_exception reads TLS from the cause chain, then the type)
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


def as_httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx exception for ``exc``, or None when it is no transport failure (a bug, a
    cancellation: those are raised as they are)."""
    for source, target in _AIOHTTP_ERRORS:
        if isinstance(exc, source):
            return target(_message(exc), request=request)
    return None


def _message(exc: BaseException) -> str:
    """The underlying reason ("[Errno 111] Connect call failed", "[SSL:
    CERTIFICATE_VERIFY_FAILED] ..."), not aiohttp's "Cannot connect to host" wrapper."""
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
    return str(cause or exc) or type(exc).__name__
