"""aiohttp's private names, for ``probe.net.transport``.

Read from aiohttp 3.10 to 3.14.5 (contract tests: ``tests/adapters/test_aiohttp_contract.py``;
pinned ``aiohttp>=3.10,<3.15`` in pyproject.toml). It relies on:

- ``TCPConnector._wrap_create_connection(*args, addr_infos, req, timeout, client_error,
  **kwargs)``: called with the resolved addresses of one host; ``self._local_addr_infos``
  (empty unless ``local_addr`` is set);
- ``TCPConnector._wrap_existing_connection(*args, req, timeout, client_error, **kwargs)``:
  ``loop.create_connection`` under the connector's connect deadline and error mapping, as
  aiohttp connects through a proxy (``host``/``port``/``family`` passed on to the loop);
- ``BaseConnector._release(key, protocol, *, should_close=False)``: a connection given back,
  kept for reuse when ``protocol.transport`` is still set;
- ``ResponseHandler._parser`` and ``._payload`` (set per request by
  ``set_response_params``; while they are the idle values, ``data_received`` calls
  ``_parser.feed_data(data) -> (messages, upgraded, tail)`` and turns an exception into a
  closed connection; ``connection_lost`` calls ``_parser.feed_eof()``);
- ``ClientResponse._protocol``: the connection's protocol, kept by the response after its
  connection went back to the pool; ``ResponseHandler.force_close()``.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError


class _IdleParser:
    """The parser of a connection waiting in the pool. A request that takes the connection
    gives it a parser of its own (aiohttp makes one per request), so the last answer's parser
    (its header lists) and body reader need not be kept while it waits: 5 of the 10 KB an
    idle connection holds, 50 MB at 10,000 pods kept alive. Bytes a server sends on an idle
    connection answer no request: the connection is closed, and the next request opens
    another (aiohttp's own parser would have queued a well-formed answer for it)."""

    __slots__ = ()

    def feed_data(self, data: bytes) -> tuple[tuple[()], bool, bytes]:
        if data:
            raise HttpProcessingError(message="bytes on an idle connection")
        return (), False, b""  # reading resumed: nothing was left to parse

    def feed_eof(self) -> None:
        return None


IDLE_PARSER = _IdleParser()


class Pool(aiohttp.TCPConnector):
    """aiohttp's connector, keeping less of a connection while it waits in the pool, and
    connecting to a host with one IPv4 address straight through the loop."""

    async def _wrap_create_connection(self, *args: Any, addr_infos: list[Any],
                                      **kwargs: Any) -> Any:
        """A host with one IPv4 address (an IP literal, a name that resolves to one) is
        connected by the event loop itself, as aiohttp connects through a proxy: the same
        deadline and the same errors, without aiohappyeyeballs' socket and ``sock_connect``
        round (0.1 ms of CPU per fresh connection, 15 % of a request's). Several addresses
        (or IPv6) keep aiohttp's happy eyeballs."""
        if len(addr_infos) == 1 and not self._local_addr_infos:
            family, _, _, _, address = addr_infos[0]
            if family == socket.AF_INET:
                return await self._wrap_existing_connection(
                    *args, host=address[0], port=address[1], family=family, **kwargs)
        return await super()._wrap_create_connection(*args, addr_infos=addr_infos, **kwargs)

    def _release(self, key: Any, protocol: Any, *args: Any, **kwargs: Any) -> None:
        super()._release(key, protocol, *args, **kwargs)
        if protocol.transport is not None and not self.closed:  # kept for reuse
            protocol._parser = IDLE_PARSER
            protocol._payload = None


def not_for_reuse(response: aiohttp.ClientResponse) -> None:
    """After a failure status the connection must not serve another request. A short answer
    is read to its end (and its connection given back to the pool) before the caller sees
    the status: then the pooled connection is closed; otherwise it is marked to be closed
    when the body has been read."""
    if response.connection is not None:
        response.connection.protocol.force_close()  # type: ignore[union-attr]
        return
    protocol = getattr(response, "_protocol", None)  # already pooled
    if protocol is not None:
        protocol.close()
