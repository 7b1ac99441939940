"""Run the real daemon in-process for one scenario, and wait for what it should observe."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from helpers import load_config

from probe.app import PLUGINS
from probe.config import Config
from probe.daemon import Daemon

T = TypeVar("T")


async def until(condition: Callable[[], bool], timeout_s: float = 15.0,
                what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout_s:g}s")
        await asyncio.sleep(0.05)


async def scrape(daemon: Daemon) -> str:
    return (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text


def run_daemon(config: Config | Path, env: Mapping[str, str] | None,
               scenario: Callable[[Daemon], Awaitable[T]]) -> T:
    """Start the daemon (no signal handlers), run ``scenario`` against it, stop it cleanly."""

    async def main() -> T:
        loaded = load_config(config, env) if isinstance(config, Path) else config
        daemon = Daemon(loaded, PLUGINS, env)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop, install_signals=False))
        await daemon.ready.wait()
        try:
            return await scenario(daemon)
        finally:
            stop.set()
            await task

    return asyncio.run(main())


def ledger_rows(db: Path, columns: str = "endpoint, event") -> list[tuple[Any, ...]]:
    """The ledger's rows as another process sees them (empty before the table exists)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=5)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger'").fetchone():
            return []
        return list(conn.execute(f"SELECT {columns} FROM ledger ORDER BY id"))
    finally:
        conn.close()
