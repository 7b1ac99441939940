"""The HTTP listener beside the daemon: ``/metrics`` and the pages features add (the status
page at ``/`` and ``/status.json``), served from a thread of its own so a scrape or a page
never waits for a probe.

Pages are read-only (GET and HEAD), never cached, and sent with a Content-Security-Policy
that allows no script and nothing from elsewhere: whatever an endpoint's name holds, it is
shown as text.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# (query parameters) -> (status, content type, body)
Page = Callable[[Mapping[str, list[str]]], tuple[int, str, bytes]]
HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                "img-src data:; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
]
MAX_QUERY_CHARS = 2048


METRICS_PATHS = ("/metrics", "/favicon.ico")  # what prometheus_client's app answers


def with_pages(metrics: WSGIApp, pages: Mapping[str, Page]) -> WSGIApp:
    """``/metrics`` and ``pages`` by path (read at each request: features add theirs after
    the listener starts). Any other path is 404, naming what is served: a mistyped URL must
    not look like a page. ``HEAD /metrics`` answers the headers without rendering the page."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        page = pages.get(path)
        if page is None and path in METRICS_PATHS:
            if method == "HEAD":
                return _answer(start_response, 200, "text/plain; version=0.0.4; charset=utf-8",
                               b"", [])
            return metrics(environ, start_response)
        if page is None:
            served = ", ".join(sorted({"/metrics", *pages}))
            return _answer(start_response, 404, "text/plain; charset=utf-8",
                           f"not found; this listener serves {served}\n".encode(), [])
        if method not in ("GET", "HEAD"):
            return _answer(start_response, 405, "text/plain; charset=utf-8",
                           b"method not allowed\n", [("Allow", "GET, HEAD")])
        query = parse_qs((environ.get("QUERY_STRING") or "")[:MAX_QUERY_CHARS])
        try:
            status, content_type, body = page(query)
        except Exception:  # noqa: BLE001 - a page's bug is a 500, never a dead listener
            log.exception("page %s failed", environ.get("PATH_INFO"))
            status, content_type, body = 500, "text/plain; charset=utf-8", b"internal error\n"
        return _answer(start_response, status, content_type,
                       b"" if method == "HEAD" else body, [], len(body))

    return app


def _answer(start_response: Callable[..., Any], status: int, content_type: str, body: bytes,
            extra: list[tuple[str, str]], length: int | None = None) -> list[bytes]:
    phrase = HTTPStatus(status).phrase
    start_response(f"{status} {phrase}", [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body) if length is None else length)),
        *HEADERS, *extra])
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def serve(app: WSGIApp, host: str, port: int) -> WSGIServer:
    """Serve ``app`` in a daemon thread; returns the server (``.shutdown()``,
    ``.server_close()``, ``.server_port``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]

    class Server(_Server):
        address_family = family

    server = make_server(str(address[0]), port, app, Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="listener", daemon=True).start()
    return server
