"""Contract of ``probe.adapters.prometheus_internals`` with the installed prometheus_client:
``_bake_output`` still answers a scrape as prometheus_client's own WSGI app does, its
``name[]`` filter, content negotiation and gzip included."""

from __future__ import annotations

import gzip
from importlib.metadata import version
from typing import Any
from urllib.parse import parse_qs

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app

from probe.adapters import prometheus_internals
from probe.adapters.prometheus_internals import bake_output
from probe.exposition.text import make_wsgi_app as probe_wsgi_app

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Gauge("probe_up", "Up.", ["endpoint"], registry=reg).labels("a").set(1)
    Counter("probe_checks", "Checks.", registry=reg).inc(3)
    return reg


def wsgi(app: Any, query: str, accept: str | None, encoding: str | None) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": query}
    if accept:
        environ["HTTP_ACCEPT"] = accept
    if encoding:
        environ["HTTP_ACCEPT_ENCODING"] = encoding
    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


def test_the_adapter_names_the_versions_it_was_read_from() -> None:
    assert "Read from prometheus_client 0.20 to" in (prometheus_internals.__doc__ or "")
    assert version("prometheus-client").startswith("0.")


@pytest.mark.parametrize("accept", [None, OPENMETRICS], ids=["text", "openmetrics"])
def test_a_filtered_scrape_is_what_prometheus_client_serves(accept: str | None) -> None:
    reg = registry()
    status, headers, body = bake_output(reg, accept, None, parse_qs("name[]=probe_up"))
    assert status == "200 OK"
    assert b"probe_up" in body and b"probe_checks" not in body
    theirs = wsgi(make_wsgi_app(reg), "name[]=probe_up", accept, None)
    assert (status, dict(headers), body) == theirs
    assert wsgi(probe_wsgi_app(reg), "name[]=probe_up", accept, None) == theirs


def test_a_filtered_scrape_is_gzipped_when_asked() -> None:
    reg = registry()
    status, headers, body = bake_output(reg, None, "gzip", parse_qs("name[]=probe_checks_total"))
    assert ("Content-Encoding", "gzip") in headers
    text = gzip.decompress(body)
    assert b"probe_checks_total 3.0" in text and b"probe_up" not in text
    _, plain_headers, plain = bake_output(reg, None, "gzip", parse_qs("name[]=probe_checks_total"),
                                          disable_compression=True)
    assert plain == text and ("Content-Encoding", "gzip") not in plain_headers
    _, theirs_headers, theirs = wsgi(make_wsgi_app(reg), "name[]=probe_checks_total", None, "gzip")
    assert gzip.decompress(theirs) == text and theirs_headers == dict(headers)
