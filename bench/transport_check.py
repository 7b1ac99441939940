"""Behaviour check of the daemon's HTTP client against httpx's own transport, on real
sockets: each case of ``tests/transport_cases.py`` runs through ``probe.attempts.attempt``
(deadline + exception mapping) with both clients, and any difference in outcome is a
failure. The same cases are the contract test ``tests/adapters/test_transport_vs_httpx.py``
(which also compares status, body and headers, on both of the daemon client's roads); this
prints them as a table, with times, and can check another transport.

Cases: answers (repeated headers, a redirect not followed, a failure status, gzip), body over
the cap (declared, chunked, decoded, and the pool is fine after), a trickling body and a
server that never answers (the whole-attempt deadline), connection refused / reset / closed
without an answer / body cut short / not HTTP, TLS to a plain port and to an untrusted
certificate, and a streamed answer read with ``aiter_lines``. Needs the ``test`` extra.

    python bench/transport_check.py
    python bench/transport_check.py --package   # httpx-aiohttp's AiohttpTransport instead
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from transport_cases import CASES, reference_client, seen, serving, stream_lines  # noqa: E402

from probe.net import ProbeClient, make_client  # noqa: E402


def other_client() -> ProbeClient:
    if "--package" in sys.argv:
        from httpx_aiohttp import AiohttpTransport

        return ProbeClient(AiohttpTransport(), timeout=httpx.Timeout(300.0))
    return make_client(8)


async def main() -> int:
    reference, ours = reference_client(), other_client()
    transport = type(ours._transport)  # noqa: SLF001
    print(f"daemon client transport: {transport.__module__}.{transport.__name__}\n")
    print(f"{'case':<30} {'httpx transport':<50} {'other':<50}")
    failures = 0
    async with serving() as servers:
        for case in CASES:
            cells = []
            for client in (reference, ours):
                began = time.monotonic()
                got = await seen(client, servers.url(case))
                cells.append((got.outcome, f"{got.outcome} {time.monotonic() - began:.1f}s: "
                              f"{got.status or ''}"))
            same = cells[0][0] == cells[1][0]
            failures += not same
            print(f"{case.title:<30} {cells[0][1]:<50} {cells[1][1]:<50} "
                  f"{'' if same else 'DIFFERENT'}")
        lines = [[(line, round(at, 1)) for line, at in await stream_lines(c, servers.url("sse"))]
                 for c in (reference, ours)]
    cells = [f"{len(each)} lines at {[at for _, at in each]}" for each in lines]
    print(f"{'streamed lines (aiter_lines)':<30} {cells[0]:<50} {cells[1]:<50}")
    failures += [line for line, _ in lines[0]] != [line for line, _ in lines[1]]
    await reference.aclose()
    await ours.aclose()
    print("\nsame behaviour" if not failures else f"\n{failures} difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
