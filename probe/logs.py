"""Where log lines go and how they look: plain text on a terminal, syslog priorities for the
journal, JSON for a log shipper.

Under systemd, stderr is the journal (``$JOURNAL_STREAM`` names it: the device and inode of
the stream, compared with stderr's own so a child whose stderr was redirected is not fooled).
There each line starts with its priority (``<3>`` for an error, sd-daemon(3)), which
``journalctl -p warning`` filters on, and carries no timestamp: the journal adds its own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
FORMAT_ENV = "RUNPOD_PROBE_LOG_FORMAT"
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# syslog priorities (sd-daemon(3)): what journald stores as PRIORITY=
PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
            logging.DEBUG: 7}


def priority(levelno: int) -> int:
    """The syslog priority of a level (a custom level between two takes the lower one's)."""
    for level in sorted(PRIORITY, reverse=True):
        if levelno >= level:
            return PRIORITY[level]
    return PRIORITY[logging.DEBUG]


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``; a traceback's lines are continued with the same
    priority, so the whole of it is filtered together."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        text = f"{record.name}: {record.getMessage()}"
        extra = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        if extra:
            text += "\n" + extra
        return "\n".join(prefix + line for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``
    (and ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        extra = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        if extra:
            out["exception"] = extra
        return json.dumps(out, ensure_ascii=False)


def to_journal(env: Mapping[str, str], stream: TextIO) -> bool:
    """Whether ``stream`` is the journal stream systemd connected (``$JOURNAL_STREAM`` is
    ``device:inode`` of it)."""
    device, sep, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


def setup_logging(level: str, log_format: str = "text",
                  env: Mapping[str, str] | None = None) -> None:
    """The root logger at ``level`` on stderr, in ``log_format`` (``json``, or ``text``:
    priorities and no timestamp when stderr is the journal)."""
    source = os.environ if env is None else env
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif to_journal(source, sys.stderr):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT))
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "runpod_probe", False)]
    for old in ours:
        root.removeHandler(old)  # set up again (a test calls main() more than once)
    if not root.handlers:  # as logging.basicConfig: a host's own handlers (pytest's) stay
        handler.runpod_probe = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Skipped overlapping runs are counted in runpod_probe_skipped_runs_total instead.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
