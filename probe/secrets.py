"""Secrets are read from the environment at request time and scrubbed from every text we emit.

Only the names of environment variables are kept in config; values are looked up here,
and ``Redactor`` removes any of them from log records and messages, so a key that leaks
into an exception text (a URL, a server's echo) never reaches a log, a row or a metric.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words


def bearer_headers(env_name: str | None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    if not env_name:
        return {}
    value = (os.environ if env is None else env).get(env_name, "")
    return {"Authorization": f"Bearer {value}"} if value else {}


class Redactor:
    def __init__(self, env_names: Iterable[str], env: Mapping[str, str] | None = None) -> None:
        source = os.environ if env is None else env
        values = {source.get(name, "") for name in env_names}
        self._values = sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len,
                              reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text


class RedactingFilter(logging.Filter):
    """Attach to handlers so every formatted record is scrubbed."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redactor(message)
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Scrub secrets from everything the root logger's handlers write."""
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(RedactingFilter(redactor))
