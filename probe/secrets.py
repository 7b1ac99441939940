"""Secrets are read from the environment at request time and scrubbed from every text we emit.

Only the names of environment variables are kept in config; values are looked up here,
and ``Redactor`` removes any of them from log records and messages, so a key that leaks
into an exception text (a URL, a server's echo) never reaches a log, a row or a metric.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from probe.outcome import ProbeResult

log = logging.getLogger(__name__)
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

    def result(self, result: ProbeResult) -> ProbeResult:
        """``result`` with every secret scrubbed from its message, URL and details (the same
        object when there was nothing to scrub)."""
        if not self._values:
            return result
        details = self.deep(result.details)
        message, url = self(result.message), self(result.url)
        if details is result.details and message == result.message and url == result.url:
            return result
        return replace(result, message=message, url=url, details=details)

    def deep(self, value: Any) -> Any:
        """``value`` with secrets scrubbed from every string in it, keys included; unchanged
        parts keep their identity (nothing is copied when nothing changes)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            items = [(self.deep(k), self.deep(v)) for k, v in value.items()]
            if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(),
                                                                    strict=True)):
                return value
            return dict(items)
        if isinstance(value, list | tuple):
            scrubbed = [self.deep(item) for item in value]
            if all(a is b for a, b in zip(scrubbed, value, strict=True)):
                return value
            return type(value)(scrubbed)
        return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def import_credentials(environ: MutableMapping[str, str]) -> list[str]:
    """systemd's credentials (``LoadCredential=NAME:PATH``) as environment variables: each
    file in ``$CREDENTIALS_DIRECTORY`` whose name is a variable name becomes that variable,
    unless it is already set. Returns the names imported (values are never logged)."""
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return []
    imported = []
    try:
        entries = sorted(Path(directory).iterdir())
    except OSError as exc:
        log.warning("cannot read the credentials directory %s: %s", directory, exc)
        return []
    for path in entries:
        if not _ENV_NAME.match(path.name) or path.name in environ or not path.is_file():
            continue
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read credential %s: %s", path.name, exc)
            continue
        if value:
            environ[path.name] = value
            imported.append(path.name)
    return imported


def install_log_redaction(redactor: Redactor) -> None:
    """Scrub secrets from every log record at creation, whatever handler writes it later.

    A record factory (rather than a handler filter) also covers handlers added afterwards
    and formats tracebacks early so they are scrubbed too.
    """
    global _base_factory
    if _base_factory is None:
        _base_factory = logging.getLogRecordFactory()
    base = _base_factory

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = redactor(message), None
        if record.exc_info:
            record.exc_text = redactor(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)


_base_factory: Callable[..., logging.LogRecord] | None = None
