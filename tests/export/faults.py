"""What a recorded scenario's step does to the running daemon (``record_daemon.Step.fault``):
things that happen to a real daemon (a leak, a full disk, an edited ledger, a bug), done for
real to the one being recorded, in its process or its state directory."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BALLAST_BYTES = 440 * 2**20  # over RunpodProbeMemoryHigh's 80 % of 512 MiB with any base
DISK_BYTES = 64 * 2**20  # the tmpfs a disk_full scenario keeps its state in


class Faults:
    """The faults, a method each, done by name; ``state``: the daemon's state directory."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.ballast: list[bytearray] = []
        self.unpatch: Callable[[], None] | None = None
        self.hung: set[str] = set()  # endpoints whose job never ends (probe_hangs)
        self.blocking: asyncio.TimerHandle | None = None  # loop_blocked's next block

    def __call__(self, name: str) -> None:
        getattr(self, name)()

    def memory_leak(self) -> None:
        """The process's resident memory grows: pages written, not only reserved."""
        self.ballast.append(bytearray(b"\x01") * BALLAST_BYTES)

    def memory_freed(self) -> None:
        self.ballast.clear()

    def ledger_truncated(self) -> None:
        """Someone drops the ledger's append-only triggers and deletes its last entry."""
        conn = sqlite3.connect(self.state / "probe.db", timeout=10, isolation_level=None)
        try:
            for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE "
                                           "type = 'trigger' AND tbl_name = 'ledger'").fetchall():
                conn.execute(f"DROP TRIGGER {trigger}")
            deleted = conn.execute("DELETE FROM ledger WHERE id = (SELECT max(id) FROM ledger)")
            assert deleted.rowcount == 1, "the ledger has no entry to delete yet"
        finally:
            conn.close()

    def learning_replaced_by_directory(self) -> None:
        """LEARNING.md (beside the database) becomes a directory: appends fail."""
        learning = self.state / "LEARNING.md"
        learning.unlink(missing_ok=True)
        learning.mkdir()

    def probe_bug(self) -> None:
        """A bug in runpod-probe: every request to pod-b raises an unexpected exception."""
        from probe.net.client import ProbeClient

        fetch = ProbeClient.fetch

        async def buggy(client: ProbeClient, url: str, *args: Any, **kwargs: Any) -> Any:
            if "/pod-b-" in url:
                raise RuntimeError("a bug injected by the recorder")
            return await fetch(client, url, *args, **kwargs)

        ProbeClient.fetch = buggy  # type: ignore[method-assign]
        self.unpatch = lambda: setattr(ProbeClient, "fetch", fetch)

    def probe_bug_fixed(self) -> None:
        assert self.unpatch is not None
        self.unpatch()
        self.unpatch = None

    def probe_hangs(self) -> None:
        """A bug in runpod-probe: a request to pod-b swallows its cancellation and waits
        (its deadline cannot end it), so the scheduler never runs pod-b's job again."""
        from probe.net.client import ProbeClient

        fetch = ProbeClient.fetch
        self.hung.add("pod-b")

        async def hanging(client: ProbeClient, url: str, *args: Any, **kwargs: Any) -> Any:
            if "/pod-b-" not in url:
                return await fetch(client, url, *args, **kwargs)
            while "pod-b" in self.hung:
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:  # the bug
                    continue
            raise RuntimeError("a hang injected by the recorder, released")

        ProbeClient.fetch = hanging  # type: ignore[method-assign]
        self.unpatch = lambda: setattr(ProbeClient, "fetch", fetch)

    def probe_hang_released(self) -> None:
        self.hung.clear()
        self.probe_bug_fixed()

    def loop_blocked(self) -> None:
        """The daemon is overloaded: its event loop is blocked 0.4 s of every 0.45 s (as by
        more checks than its core carries), longer than a check's deadline (200 ms) and a
        job's interval (250 ms)."""
        loop = asyncio.get_running_loop()

        def block() -> None:
            time.sleep(0.4)
            self.blocking = loop.call_later(0.05, block)

        self.blocking = loop.call_later(0.05, block)

    def loop_released(self) -> None:
        if self.blocking is not None:
            self.blocking.cancel()
            self.blocking = None

    def disk_full(self) -> None:
        """The filesystem of the state directory (a tmpfs of DISK_BYTES) fills up."""
        with (self.state / "ballast").open("wb", buffering=0) as ballast:
            chunk = b"\x01" * 2**20
            try:
                while True:
                    ballast.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc

    def disk_freed(self) -> None:
        (self.state / "ballast").unlink()

    def close(self) -> None:
        self.loop_released()
        self.memory_freed()
        self.hung.clear()
        if self.unpatch is not None:
            self.probe_bug_fixed()
