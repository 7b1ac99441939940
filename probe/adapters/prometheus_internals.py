"""prometheus_client's private names, for ``probe.exposition.text``.

Read from prometheus_client 0.20 to 0.26.0 (contract tests:
``tests/adapters/test_prometheus_contract.py``; pinned ``prometheus-client>=0.20,<0.27`` in
pyproject.toml). It relies on ``prometheus_client.exposition._bake_output(registry,
accept_header, accept_encoding_header, params, disable_compression)`` returning
``(status, [(header, value)], body)``: what prometheus_client's own WSGI app serves, its
``name[]`` filter (``params``, as ``parse_qs`` reads the query) included.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import exposition


def bake_output(registry: Any, accept_header: str | None, accept_encoding_header: str | None,
                params: dict[str, list[str]],
                disable_compression: bool = False) -> tuple[str, list[tuple[str, str]], bytes]:
    """prometheus_client's answer to a scrape of ``registry``: (status, headers, body)."""
    status, headers, output = exposition._bake_output(  # type: ignore[no-untyped-call]
        registry, accept_header, accept_encoding_header, params, disable_compression)
    return str(status), list(headers), bytes(output)
