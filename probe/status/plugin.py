"""The status page as a feature: ``/`` (HTML) and ``/status.json`` on the metrics listener,
the time in each state they read (uptime by time), and the peers' view (``peers:``): their
verdicts, asked on a clock of their own, beside this probe's."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from probe.config.model import Config
from probe.features import Attachment, Feature, Host
from probe.job import Job
from probe.outcome import ProbeResult
from probe.status import cli, html
from probe.status.page import Query, document
from probe.status.peers import PeerWatch, verdicts_document
from probe.status.uptime import FLUSH_S, UptimeBook
from probe.verdict import EndpointVerdict, Transition

log = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


async def start_status(host: Host) -> Attachment:
    path = host.config.storage.path
    book = UptimeBook(path)

    def observe(result: ProbeResult, _row: int | None) -> None:
        """O(1): the endpoint's state now, compared with its open span's."""
        verdict = host.verdict(result.endpoint)
        if verdict is not None:
            book.observe(result.endpoint, str(verdict.state), result.started_at)

    def changed(endpoint: str, transitions: list[Transition],
                verdict: EndpointVerdict | None) -> None:
        """A maintenance window began or ended."""
        if verdict is not None and transitions:
            book.observe(endpoint, str(verdict.state), transitions[-1].at)

    def on_plan(config: Config, _jobs: Sequence[Job]) -> None:
        book.forget((e.name for e in config.endpoints), datetime.now(UTC))
        watch.follow(config.peers, config.instance)

    watch = PeerWatch(host.config.peers, host.config.instance,
                      lambda url, headers, limit: host.client.fetch(url, headers, limit))

    def doc(params: Mapping[str, list[str]]) -> dict[str, object]:
        return document(host.endpoint_views(), host.endpoint_rows, Query.of(params), book, path,
                        host.status_parts(), shard=host.config.shard,
                        instance=host.config.instance, peers=watch)

    def page(params: Mapping[str, list[str]]) -> tuple[int, str, bytes]:
        return 200, HTML, host.redact(html.render(doc(params))).encode()

    def status_json(params: Mapping[str, list[str]]) -> tuple[int, str, bytes]:
        if params.get("view") == ["verdicts"]:  # what a peer asks for
            text = json.dumps(verdicts_document(host.endpoint_views(), host.config.instance),
                              separators=(",", ":"), ensure_ascii=False, default=str)
        else:
            text = json.dumps(doc(params), indent=1, ensure_ascii=False, default=str)
        return 200, JSON, host.redact(text).encode()

    async def flushing() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await flush()

    async def flush() -> None:
        try:
            await asyncio.to_thread(book.flush)
        except Exception:  # noqa: BLE001 - kept pending, tried again at the next flush
            log.exception("uptime: cannot write the time in each state")

    task = asyncio.create_task(flushing())
    asking = asyncio.create_task(watch.run())

    def close() -> None:
        task.cancel()
        asking.cancel()
        try:
            book.flush()
        except Exception:  # noqa: BLE001
            log.exception("uptime: cannot write the time in each state at shutdown")

    return Attachment(close=close, observers=(observe,), changed=(changed,), on_plan=on_plan,
                      routes={"/": page, "/status.json": status_json})


FEATURE = Feature(name="status", startup=(start_status,), commands=(cli.add_parser,))
