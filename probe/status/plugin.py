"""The status page as a feature: ``/`` (HTML) and ``/status.json`` on the metrics listener,
and the hourly uptime counts they read."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from probe.features import Attachment, Feature, Host
from probe.outcome import ProbeResult
from probe.status import html
from probe.status.page import Query, document
from probe.status.uptime import FLUSH_S, UptimeBook, counts

log = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


async def start_status(host: Host) -> Attachment:
    path = host.config.storage.path
    book = UptimeBook(path)
    try:
        if await asyncio.to_thread(book.prepare, datetime.now(UTC)):
            log.info("uptime: hourly counts filled from the stored results")
    except Exception:  # noqa: BLE001 - the page shows "no data"; probing goes on
        log.exception("uptime: cannot prepare the hourly counts in %s", path)

    def observe(result: ProbeResult, _row: int | None) -> None:
        if not counts(result):
            return
        verdict = host.verdict(result.endpoint)
        if verdict is not None and verdict.maintenance is not None:
            return  # planned downtime is not downtime
        book.add(result)

    def doc(params: Mapping[str, list[str]]) -> dict[str, object]:
        return document(host.endpoint_views(), host.latest, Query.of(params), book, path,
                        host.status_parts())

    def page(params: Mapping[str, list[str]]) -> tuple[int, str, bytes]:
        return 200, HTML, host.redact(html.render(doc(params))).encode()

    def status_json(params: Mapping[str, list[str]]) -> tuple[int, str, bytes]:
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
            log.exception("uptime: cannot write the hourly counts")

    task = asyncio.create_task(flushing())

    def close() -> None:
        task.cancel()
        try:
            book.flush()
        except Exception:  # noqa: BLE001
            log.exception("uptime: cannot write the hourly counts at shutdown")

    return Attachment(close=close, observers=(observe,),
                      routes={"/": page, "/status.json": status_json})


FEATURE = Feature(name="status", startup=(start_status,))
