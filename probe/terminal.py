"""What a command prints for a person at a terminal: colour and width when stdout is one, a
progress line on stderr while it waits (a spinner, what is done, the time taken). Piped,
nothing of this: no escape codes, no progress, a fixed width."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

PIPED_WIDTH = 160
FRAMES = "|/-\\"
TICK_S = 0.2


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never with ``$NO_COLOR`` set (no-color.org)."""
    return is_terminal(stream or sys.stdout) and not os.environ.get("NO_COLOR")


def width(stream: TextIO | None = None) -> int:
    if is_terminal(stream or sys.stdout):
        return max(40, shutil.get_terminal_size((PIPED_WIDTH, 24)).columns)
    return PIPED_WIDTH


class Progress:
    """``with Progress("probing") as p: ... p.note("12 results")``: a spinner line on stderr,
    redrawn every ``TICK_S`` from a thread of its own (the event loop is busy probing), and
    erased at the end. Not a terminal: nothing is written."""

    def __init__(self, what: str, stream: TextIO | None = None) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.enabled = is_terminal(self.stream)
        self.text = ""
        self.count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = time.monotonic()

    def note(self, text: str) -> None:
        self.text = text

    def tick(self) -> None:
        """One more thing done (a result)."""
        self.count += 1

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._draw, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._write("\r\x1b[K")

    def line(self, frame: int) -> str:
        elapsed = time.monotonic() - self._began
        done = f", {self.count} results" if self.count else ""
        note = f", {self.text}" if self.text else ""
        return f"{FRAMES[frame % len(FRAMES)]} {self.what}{note}{done} ({elapsed:.0f}s)"

    def _draw(self) -> None:
        frame = 0
        while not self._stop.wait(TICK_S):
            self._write("\r\x1b[K" + self.line(frame)[: width(self.stream) - 1])
            frame += 1

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self._stop.set()
