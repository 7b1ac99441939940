"""Microbenchmark: CPU per request of the HTTP clients the daemon could use, against nginx.

Each client runs in its own process pinned to core 0 (nginx on core 1) with k requests in
flight for a few seconds, reading every body the way the checks do (httpx: ``client.stream``
and ``probe.net.read_capped``); the figure is process CPU per completed request.

Clients: ``httpx`` (httpx's own httpcore transport, the limits the daemon had),
``httpx-aiohttp`` (the httpx-aiohttp package's ``AiohttpTransport`` as shipped),
``probe`` (``probe.net.make_client``: whatever the daemon uses now, through ``client.stream``),
``fetch`` (the same client's ``fetch``: the checks' bounded GET), ``aiohttp`` (raw).
Connection modes: ``keep`` (one host per request slot: every request reuses a connection),
``fresh`` (the client closes every connection after its answer) and ``churn`` (10,000 hosts
in turn through a pool of k connections: the daemon's keep-alive pool on a large fleet,
where no connection is ever reused).

    python bench/transport.py                 # the table in BENCHMARKS.md
    python bench/transport.py --clients httpx,probe --inflight 64 --modes churn
    python bench/transport.py --clients probe,fetch --inflight 64 --modes keep,churn --loop uvloop

``--loop uvloop`` runs the clients on the daemon's event loop (``probe.process``); the
default, asyncio's own loop, is what the table in BENCHMARKS.md was measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import (  # noqa: E402 - bench/ is not a package
    MEASURED_CORE,
    OTHER_CORE,
    ROOT,
    Nginx,
    child_env,
    machine,
    pinned,
    pod_root,
    versions,
)

CLIENTS = ("httpx", "httpx-aiohttp", "probe", "fetch", "aiohttp")
LOOPS = ("asyncio", "uvloop")
MODES = ("keep", "fresh", "churn")
INFLIGHT = (8, 64, 256)
CHURN_HOSTS = 10_000
LIMIT = 4 * 1024 * 1024  # the checks' default body cap


def make(client: str, k: int, keepalive: bool) -> Any:
    import httpx

    if client == "httpx":
        limits = httpx.Limits(max_connections=k, max_keepalive_connections=k if keepalive else 0,
                              keepalive_expiry=30)
        return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(300.0))
    if client == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        if not keepalive:  # the package has no switch: give it a session that closes
            import aiohttp

            def session() -> aiohttp.ClientSession:
                return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=k,
                                                                            force_close=True))
            transport = AiohttpTransport(client=session)
        else:
            transport = AiohttpTransport(limits=httpx.Limits(max_connections=k,
                                                             keepalive_expiry=30))
        return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(300.0))
    if client in ("probe", "fetch"):
        from probe.net import make_client

        try:
            return make_client(k, keepalive=keepalive)
        except TypeError:  # a make_client without the switch: keep-alive only
            if not keepalive:
                raise SystemExit("this make_client has no keepalive switch") from None
            return make_client(k)
    raise ValueError(client)


async def one(client_name: str, k: int, mode: str, port: int, seconds: float) -> dict[str, Any]:
    hosts = [pod_root(i, port) + "/v1/models" for i in range(CHURN_HOSTS if mode == "churn" else k)]
    keepalive = mode != "fresh"
    done = 0
    failed = 0
    stop_at = 0.0
    counting = False

    if client_name == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=k, force_close=not keepalive,
                                         keepalive_timeout=30 if keepalive else None)
        session = aiohttp.ClientSession(connector=connector)

        async def request(url: str) -> None:
            async with session.get(url) as response:
                body = await response.read()
                if response.status != 200 or len(body) < 100:
                    raise RuntimeError("bad answer")

        async def close() -> None:
            await session.close()
    elif client_name == "fetch":
        client = make(client_name, k, keepalive)

        async def request(url: str) -> None:
            status, body, _ = await client.fetch(url, {}, LIMIT)
            if status != 200 or len(body) < 100:
                raise RuntimeError("bad answer")

        async def close() -> None:
            await client.aclose()
    else:
        from probe.net import read_capped

        client = make(client_name, k, keepalive)

        async def request(url: str) -> None:
            async with client.stream("GET", url) as response:
                body = await read_capped(response, LIMIT)
                if response.status_code != 200 or len(body) < 100:
                    raise RuntimeError("bad answer")

        async def close() -> None:
            await client.aclose()

    async def worker(slot: int) -> None:
        nonlocal done, failed
        i = slot
        while time.monotonic() < stop_at:
            try:
                await request(hosts[i % len(hosts)])
                if counting:
                    done += 1
            except Exception:  # noqa: BLE001 - counted
                failed += 1
            i += k

    stop_at = time.monotonic() + 1.0 + seconds
    workers = [asyncio.create_task(worker(s)) for s in range(k)]
    await asyncio.sleep(1.0)  # warm-up: pools filled, code paths hot
    counting = True
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    counting = False
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    await asyncio.gather(*workers)
    await close()
    return {"done": done, "failed": failed, "cpu_ms": 1000 * cpu / max(done, 1),
            "rps": done / wall, "core": cpu / wall}


def run_one(client: str, k: int, mode: str, port: int, seconds: float,
            loop: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--one", client, str(k), mode, str(port),
                          str(seconds), loop], cwd=ROOT, env=child_env(), capture_output=True,
                         text=True, preexec_fn=pinned(MEASURED_CORE))
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--inflight", default=",".join(map(str, INFLIGHT)))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        client, k, mode, port, seconds, loop = args.one
        work = one(client, int(k), mode, int(port), float(seconds))
        if loop == "uvloop":
            from probe.process import run_event_loop

            result = run_event_loop(work)
        else:
            result = asyncio.run(work)
        print(json.dumps(result))
        return
    os.sched_setaffinity(0, {OTHER_CORE})
    print(machine())
    print(versions().split(";")[0])
    print(f"client process pinned to core {MEASURED_CORE}, nginx on core {OTHER_CORE}; "
          f"{args.seconds:g}s measured after 1s of warm-up; GET /v1/models (483 bytes); "
          f"{args.loop}'s event loop\n")
    clients = args.clients.split(",")
    print(f"{'mode':>5} {'in flight':>9} " + " ".join(f"{c:>22}" for c in clients))
    print(f"{'':>5} {'':>9} " + " ".join(f"{'CPU ms/req   req/s':>22}" for _ in clients))
    with tempfile.TemporaryDirectory(prefix="runpod-probe-transport-") as tmp:
        nginx = Nginx(Path(tmp), fresh=False)
        try:
            for mode in args.modes.split(","):
                for k in map(int, args.inflight.split(",")):
                    cells = []
                    for client in clients:
                        r = run_one(client, k, mode, nginx.port, args.seconds, args.loop)
                        if "error" in r:
                            cells.append(f"{'error':>22}")
                        else:
                            flag = "!" if r["failed"] else " "
                            cells.append(f"{r['cpu_ms']:>11.3f}{flag} {r['rps']:>9.0f}")
                    print(f"{mode:>5} {k:>9} " + " ".join(cells), flush=True)
        finally:
            nginx.close()
    print("\n!: some requests failed in that cell")


if __name__ == "__main__":
    main()
