"""systemd's notify protocol (``Type=notify``): readiness, status lines, reloads, stopping, and
the watchdog ping.

Datagrams to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` is Linux's
abstract namespace). Without the variable (not under systemd), every call does nothing. The
watchdog is enabled when ``$WATCHDOG_USEC`` is set (and ``$WATCHDOG_PID``, if set, is this
process): the daemon must then send ``WATCHDOG=1`` at least every half of it, and does so
from its event loop, so a hung loop is restarted even though /metrics, served by a thread,
still answers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

log = logging.getLogger(__name__)

# While start-up work of unknown length runs (a schema upgrade of a large database), systemd
# is asked every EXTEND_EVERY_S to wait EXTEND_BY_S more than its start timeout
# (``EXTEND_TIMEOUT_USEC``): the start is then bounded by the work's progress, not by
# ``TimeoutStartSec=``, and a start that hangs outright still fails EXTEND_BY_S later.
EXTEND_EVERY_S = 10.0
EXTEND_BY_S = 30.0


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        source = os.environ if env is None else env
        address = source.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval_s: float | None = None
        usec = source.get("WATCHDOG_USEC", "")
        pid = source.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 2_000_000  # ping at half the timeout

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *fields: str) -> None:
        """One datagram of ``KEY=value`` lines; a failure is logged, never raised."""
        if not self._address:
            return
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message)
        except OSError as exc:
            log.warning("cannot notify systemd (%s): %s", self._address.lstrip("\0"), exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def reloading(self) -> None:
        self.send("RELOADING=1", "STATUS=reloading the config")

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    @contextmanager
    def extending(self, status: str, every_s: float = EXTEND_EVERY_S,
                  by_s: float = EXTEND_BY_S) -> Iterator[None]:
        """While the block runs (blocking work, in this thread), ask systemd every
        ``every_s`` for ``by_s`` more time to start, from a thread of its own, with the
        status line ``status``. Without ``$NOTIFY_SOCKET`` it does nothing."""
        if not self._address:
            yield
            return
        done = threading.Event()

        def extend() -> None:
            while True:
                self.send(f"EXTEND_TIMEOUT_USEC={int(by_s * 1_000_000)}", f"STATUS={status}")
                if done.wait(every_s):
                    return

        thread = threading.Thread(target=extend, name="start-timeout", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
