"""Where a GET of the lean road (``probe.net.lean``) goes and how it gets there: ``Origin``
(scheme, host, port: a pool's key), ``GetRequest`` (its bytes on the wire, built once), and
``Dialer``, which opens a connection to an origin as aiohttp's connector does: an IP literal
straight through the event loop; a name through the resolver (aiohttp's ``AbstractResolver``:
the system's, or the tests' that sends every host to 127.0.0.1), its answers cached for
``DNS_TTL_S`` as aiohttp caches them, one address through the loop, several through
aiohappyeyeballs (aiohttp's own happy eyeballs); TLS through ``loop.create_connection`` with
the transport's SSL context. A failure to connect is httpx's ``ConnectError``, its cause
(the ``OSError``: refused, out of files, the TLS error) chained."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohappyeyeballs
import aiohttp
import httpx
from aiohttp.abc import AbstractResolver

from probe.net.answer import Connection

DNS_TTL_S = 10.0  # aiohttp's ttl_dns_cache
MAX_NAMES = 65536  # names kept resolved (cleared when full)
HAPPY_EYEBALLS_DELAY_S = 0.25  # aiohttp's
DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin:
    """Scheme, host and port of a URL: one pool of idle connections each."""

    __slots__ = ("key", "tls", "host", "port", "family")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.key = (scheme, host, port)
        self.tls = scheme == "https"
        self.host = host
        self.port = port
        self.family = _literal_family(host)  # an IP literal is connected without a lookup


class GetRequest:
    """A GET as it goes on the wire (``data``: its request line and headers, as httpx would
    send them: Host, then ``headers``), and where (``origin``). ``url`` (its text: a parsed
    URL kept per URL was ~300 bytes, three a pod) and ``headers`` make the httpx request an
    exception or a cookie jar is given."""

    __slots__ = ("origin", "data", "url", "headers")

    def __init__(self, origin: Origin, url: httpx.URL, headers: list[tuple[str, str]],
                 text: str | None = None) -> None:
        """``text``: the URL as asked (else ``url``'s own)."""
        self.origin = origin
        self.url = str(url) if text is None else text
        self.headers = headers  # shared by every URL asked with the same header set
        lines = [b"GET " + url.raw_path + b" HTTP/1.1", b"Host: " + url.netloc]
        for name, value in headers:
            if any(c in name or c in value for c in "\r\n\0"):
                # as aiohttp refuses it: a header cannot smuggle another line
                raise ValueError("Newline or carriage return character detected in HTTP "
                                 "status message or header. This is a potential security issue.")
            lines.append(f"{name}: {value}".encode("latin-1"))
        self.data = b"\r\n".join(lines) + b"\r\n\r\n"

    def as_httpx(self) -> httpx.Request:
        url = httpx.URL(self.url)
        return httpx.Request("GET", url, headers=[
            ("Host", url.netloc.decode("ascii")), *self.headers])


def origin_of(url: httpx.URL) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, or httpx's ``UnsupportedProtocol``."""
    scheme = url.scheme
    port = DEFAULT_PORTS.get(scheme)
    if port is None:
        raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
    if not url.host:
        raise httpx.UnsupportedProtocol(f"Request URL is missing a host: {url}")
    return scheme, url.host, url.port or port


class Dialer:
    """Opens connections (see the module's docstring). ``resolver``: None for aiohttp's
    default (made in the running loop, at the first name to look up)."""

    def __init__(self, ssl_context: ssl.SSLContext,
                 resolver: AbstractResolver | None) -> None:
        self._ssl = ssl_context
        self._resolver = resolver
        self._own_resolver: AbstractResolver | None = None
        self._names: dict[tuple[str, int], tuple[float, list[Any]]] = {}

    async def connect(self, origin: Origin,
                      factory: Callable[[], Connection]) -> Connection:
        loop = asyncio.get_running_loop()
        tls = self._ssl if origin.tls else None
        hostname = origin.host if origin.tls else None
        try:
            if origin.family is not None:
                _, connection = await loop.create_connection(
                    factory, origin.host, origin.port, family=origin.family, ssl=tls,
                    server_hostname=hostname)
                return connection
            addresses = await self._addresses(origin.host, origin.port)
            if len(addresses) == 1 and addresses[0][0] == socket.AF_INET:
                host, port = addresses[0][4]
                _, connection = await loop.create_connection(
                    factory, host, port, family=socket.AF_INET, ssl=tls, server_hostname=hostname)
                return connection
            sock = await aiohappyeyeballs.start_connection(
                addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, loop=loop)
            try:
                _, connection = await loop.create_connection(factory, sock=sock, ssl=tls,
                                                             server_hostname=hostname)
            except BaseException:
                sock.close()
                raise
            return connection
        except OSError as exc:  # refused, unreachable, out of files, TLS (ssl.SSLError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc

    async def _addresses(self, host: str, port: int) -> list[Any]:
        """The resolver's answer as getaddrinfo's tuples (as aiohttp converts them), kept
        for ``DNS_TTL_S``."""
        now = time.monotonic()
        cached = self._names.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        resolver = self._resolver
        if resolver is None:
            resolver = self._own_resolver = self._own_resolver or aiohttp.DefaultResolver()
        found = await resolver.resolve(host, port, family=socket.AF_UNSPEC)
        addresses = _address_infos(found)
        if not addresses:
            raise OSError(f"{host} resolved to no address")
        if len(self._names) >= MAX_NAMES:
            self._names.clear()
        self._names[(host, port)] = (now + DNS_TTL_S, addresses)
        return addresses

    async def close(self) -> None:
        if self._own_resolver is not None:
            await self._own_resolver.close()
            self._own_resolver = None


def _literal_family(host: str) -> int | None:
    """The address family of an IP literal; None for a name. (``inet_pton``: a fifth of
    ``ipaddress.ip_address``'s 6 us, once per origin.)"""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def _address_infos(found: Sequence[Mapping[str, Any]]) -> list[Any]:
    infos: list[Any] = []
    for each in found:
        host, port = each["host"], each["port"]
        if ":" in host:
            infos.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                          (host, port, 0, 0)))
        else:
            infos.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                          (host, port)))
    return infos
