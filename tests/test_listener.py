"""The listener's routes on a real socket: /metrics, the pages, and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from probe.listener import serve, with_pages

METRICS = b"# HELP up 1 while up\n# TYPE up gauge\nup 1.0\n"


def metrics_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    rendered.append(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
    return [METRICS]


rendered: list[str] = []


def status(_: Mapping[str, list[str]]) -> tuple[int, str, bytes]:
    return 200, "text/html; charset=utf-8", b"<p>fleet</p>"


@contextmanager
def listening() -> Iterator[str]:
    server = serve(with_pages(metrics_app, {"/": status}), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_and_pages_are_served_and_nothing_else() -> None:
    rendered.clear()
    with listening() as base:
        assert httpx.get(f"{base}/metrics").content == METRICS
        assert httpx.get(f"{base}/").content == b"<p>fleet</p>"
        for wrong in ("/metric", "/status", "/metrics/extra", "/.env"):
            answer = httpx.get(base + wrong)
            assert answer.status_code == 404, wrong
            assert answer.text == "not found; this listener serves /, /metrics\n"
            assert b"up 1.0" not in answer.content
    assert rendered == ["/metrics"], "a wrong path renders no metrics page"


def test_head_answers_without_rendering_the_page() -> None:
    rendered.clear()
    with listening() as base:
        head = httpx.head(f"{base}/metrics")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/plain")
        assert httpx.head(f"{base}/").status_code == 200
        assert httpx.head(f"{base}/nowhere").status_code == 404
    assert rendered == []
