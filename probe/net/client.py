"""``ProbeClient``, the one client interface every request goes through, and
``make_client``, the one place it is built.

The API is httpx's (``client.stream``, ``client.post``, ...), plus ``fetch``: the bounded
GET most checks make. Without an HTTP(S) proxy in the environment, every request goes to
``AiohttpTransport`` (aiohttp's pool), but ``fetch``, which takes the lean road
(``probe.net.lean``: a pool of its own, parsed by httptools), without httpx's or aiohttp's
request and response objects. With a proxy, httpx's own transport carries the
requests: it honours the proxy variables as httpx documents them (``ALL_PROXY``, HTTPS
proxies, ``NO_PROXY`` patterns), which aiohttp's ``trust_env`` reads differently (no
``ALL_PROXY``, no HTTPS proxy URL) and re-reads from the environment at every request.
Either way the checks see the same interface and the same exceptions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from http.cookiejar import CookieJar
from typing import Any

import httpx
from aiohttp.abc import AbstractResolver

from probe.net.body import BodyTooLarge, read_capped
from probe.net.dial import GetRequest, origin_of
from probe.net.lean import GetPool
from probe.net.transport import AiohttpTransport

# Idle connections are kept this long unless the caller says otherwise.
KEEPALIVE_DEFAULT_S = 30.0
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "http_proxy", "https_proxy", "all_proxy")


def make_client(max_concurrent: int | None, keepalive: bool = True,
                keepalive_expiry: float = KEEPALIVE_DEFAULT_S,
                resolver: AbstractResolver | None = None) -> ProbeClient:
    """The client for every request: ``keepalive=False`` opens a fresh connection for every
    request; otherwise idle connections are kept per host for ``keepalive_expiry`` seconds.
    ``max_concurrent``: connections in use at once (None: no bound here; the prober's own
    limit, sized from the plan as it grows, bounds its checks in flight).
    ``resolver`` replaces the system's name lookup (tests point every host at a local
    server with it). With an HTTP(S) proxy in the environment, httpx's own transport is
    used (see the module's docstring); a resolver is then not used."""
    # Deadlines are enforced per attempt by the runner; this is only a backstop.
    timeout = httpx.Timeout(300.0)
    if _environment_proxies():
        limits = httpx.Limits(max_connections=max_concurrent,
                              max_keepalive_connections=max_concurrent if keepalive else 0,
                              keepalive_expiry=keepalive_expiry)
        return ProbeClient(None, limits=limits, timeout=timeout, follow_redirects=False,
                           cookies=AnswerCookies())
    transport = AiohttpTransport(max_concurrent, keepalive=keepalive,
                                 keepalive_expiry=keepalive_expiry, resolver=resolver)
    return ProbeClient(transport, timeout=timeout, follow_redirects=False,
                       cookies=AnswerCookies())


class ProbeClient(httpx.AsyncClient):
    """httpx's ``AsyncClient`` with ``fetch``, a bounded GET. Over ``AiohttpTransport``,
    ``fetch`` takes the lean road (``probe.net.lean``, the transport's ``gets`` pool): the
    same request on the wire (the headers httpx would send, its bytes built once per URL
    and set of request headers), the same rules of reuse, the same errors and body cap,
    without httpx's or aiohttp's request and response objects. It is taken only while the
    client has no cookie to send (an answer that sets one is still given to the jar);
    otherwise, and over any other transport, ``fetch`` goes through ``stream``."""

    MAX_HEADER_SETS = 4096
    MAX_URLS = 65536  # parsed URLs kept (about 400 bytes each)
    MAX_REQUESTS = 65536  # GETs kept ready to send (about 500 bytes each)

    def __init__(self, transport: httpx.AsyncBaseTransport | None, **kwargs: Any) -> None:
        """``transport``: ours, another (a benchmark's), or None for httpx's own."""
        super().__init__(transport=transport, **kwargs)
        self._gets = transport.gets if isinstance(transport, AiohttpTransport) else None
        self._sent: dict[tuple[tuple[str, str], ...], list[tuple[str, str]]] = {}
        self._urls: dict[str, httpx.URL] = {}
        self._requests: dict[object, GetRequest] = {}
        self._asked: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}

    async def fetch(self, url: str, headers: Mapping[str, str],
                    limit: int) -> tuple[int, bytes, httpx.Headers]:
        """GET ``url`` and return (status, body, headers), reading at most ``limit`` bytes
        (``BodyTooLarge`` beyond); failures raise httpx's exceptions."""
        gets = self._gets
        if gets is not None and not self.is_closed and not self.cookies:
            key = (url, tuple(headers.items())) if headers else url
            request = self._requests.get(key)
            if request is None:
                request = self._request_for(gets, key, url, headers)
            status, raw, body, cookie = await gets.get(request, limit)
            if cookie:
                self.cookies.extract_cookies(httpx.Response(
                    status, headers=raw, request=request.as_httpx()))
            if body is None:
                raise BodyTooLarge(limit)
            return status, body, httpx.Headers(raw)
        async with self.stream("GET", self._parsed(url), headers=headers) as response:
            body = await read_capped(response, limit)
            return response.status_code, body, response.headers

    def _request_for(self, gets: GetPool, key: object, url: str,
                     headers: Mapping[str, str]) -> GetRequest:
        """The GET of ``url`` with ``headers`` as it goes on the wire, kept (the checks ask
        the same few URLs of an endpoint at every run)."""
        target = httpx.URL(url)
        request = GetRequest(gets.origin(origin_of(target)), target,
                             self._headers_for(target, headers), url)
        if len(self._requests) >= self.MAX_REQUESTS:
            self._requests.clear()
        if headers:  # kept with the header set's one tuple, shared by every URL
            asked = tuple(headers.items())
            key = (url, self._asked.setdefault(asked, asked))
        self._requests[key] = request
        return request

    def _parsed(self, url: str) -> httpx.URL:
        """``httpx.URL(url)``, parsed once: a check asks the same few URLs of its endpoint
        at every run, and parsing one is a good part of httpx's cost per request."""
        parsed_url = self._urls.get(url)
        if parsed_url is None:
            if len(self._urls) >= self.MAX_URLS:
                self._urls.clear()
            parsed_url = self._urls[url] = httpx.URL(url)
        return parsed_url

    def _headers_for(self, url: httpx.URL, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """What httpx sends after Host: the client's headers merged with ``headers``."""
        key = tuple(headers.items())
        rest = self._sent.get(key)
        if rest is None:
            if len(self._sent) >= self.MAX_HEADER_SETS:
                self._sent.clear()
                self._asked.clear()
            built = self.build_request("GET", url, headers=headers).headers.raw
            rest = self._sent[key] = [(k.decode("latin-1"), v.decode("latin-1"))
                                      for k, v in built if k.lower() != b"host"]
        return rest


class AnswerCookies(CookieJar):
    """httpx's cookie jar, reading an answer only when it sets a cookie. httpx hands every
    answer to the jar through urllib views (an ``email.Message`` of all its headers), which
    costs more than the rest of its answer handling; an answer without ``Set-Cookie`` (or
    ``Set-Cookie2``) adds no cookie, so it is skipped. Cookies that are set behave as before."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        headers = getattr(getattr(response, "response", None), "headers", None)
        if (isinstance(headers, httpx.Headers) and "set-cookie" not in headers
                and "set-cookie2" not in headers):
            return
        super().extract_cookies(response, request)


def _environment_proxies() -> bool:
    return any(os.environ.get(name) for name in PROXY_VARIABLES)
