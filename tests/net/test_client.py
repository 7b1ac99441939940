"""The one client (``probe.net``): every road answers through ``ProbeClient``, with or without
a proxy in the environment, and a check reaching the pool's direct road needs no attribute
probing (``fetch`` is part of the interface). Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from local_server import PinnedResolver, listening

from probe import http
from probe.net import BodyTooLarge, ProbeClient, make_client


def test_with_a_proxy_in_the_environment_every_request_goes_through_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url}")
        return httpx.Response(200, content=b"via proxy")

    async def go() -> tuple[ProbeClient, list[tuple[int, bytes]]]:
        async with listening(proxy) as port:
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
            async with make_client(4) as client:
                status, body, _ = await http.get(client, "http://pod.test/health", {}, 1024)
                posted = await client.post("http://pod.test/v1/chat/completions", json={})
                return client, [(status, body), (posted.status_code, posted.content)]

    client, answers = asyncio.run(go())
    assert isinstance(client, ProbeClient)
    assert answers == [(200, b"via proxy")] * 2
    assert asked == ["GET http://pod.test/health", "POST http://pod.test/v1/chat/completions"]


@pytest.mark.parametrize("cookie", [False, True], ids=["direct-road", "httpx-road"])
def test_fetch_caps_the_body_on_either_road(cookie: bool) -> None:
    def big(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 2048)

    async def go() -> None:
        async with listening(big) as port, \
                make_client(4, resolver=PinnedResolver(port)) as client:
            if cookie:  # a cookie to send takes fetch through client.stream
                client.cookies.set("session", "1")
            assert await client.fetch("http://pod.test/x", {}, 4096) == (
                200, b"x" * 2048, httpx.Headers({"content-length": "2048"}))
            with pytest.raises(BodyTooLarge):
                await client.fetch("http://pod.test/x", {}, 1024)

    asyncio.run(go())
