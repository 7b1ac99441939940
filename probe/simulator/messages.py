"""The values that pass between the HTTP plumbing and the simulated services.

A handler receives a ``Request`` and returns a ``Reply``: either a ``Response`` (a fixed
body, or a streamed chunked body) or one of the hostile actions ``Stall`` / ``Reset``
that only the connection layer can carry out.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # raw request-target, path plus query
    headers: Mapping[str, str]  # names lower-cased
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        _, _, raw = self.target.partition("?")
        return {k: v[-1] for k, v in parse_qs(raw).items()}

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def authorised(self, api_key: str | None) -> bool:
        """True when no key is required, or the bearer token is that key."""
        if api_key is None:
            return True
        token = self.bearer_token()
        return token is not None and hmac.compare_digest(token.encode(), api_key.encode())


class CutConnection(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a body stream to drop the connection without finishing the body."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    # When set, the body is sent with chunked transfer-encoding, one chunk per item.
    stream: AsyncGenerator[bytes, None] | None = None


@dataclass(frozen=True, slots=True)
class Stall:
    """Read the request, never answer; hold the connection until the client leaves."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Read the request, then abort the connection with a TCP RST."""


Reply = Response | Stall | Reset
Handler = Callable[[Request], Awaitable[Reply]]


class SeenRequest(NamedTuple):
    """One request as recorded for tests; the Authorization header is never kept, only
    the SHA-256 of its value (so a test can tell which key was sent, not read it)."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    authorization_sha256: str | None = None


JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as pydantic (vLLM) and Go (RunPod) emit it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    status: int, value: Any, extra_headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return raw_json_response(status, dumps(value), extra_headers)


def raw_json_response(
    status: int, body: bytes, extra_headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status, (("content-type", JSON_TYPE), *extra_headers), body)


def html_response(status: int, body: bytes) -> Response:
    return Response(status, (("content-type", HTML_TYPE),), body)


def empty_response(status: int) -> Response:
    return Response(status)
