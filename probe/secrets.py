"""Secrets are read from the environment at request time and scrubbed from every text we emit.

Only the names of environment variables are kept in config; values are looked up here,
and ``Redactor`` removes any of them from log records and messages, so a key that leaks
into an exception text (a URL, a server's echo) never reaches a log, a row or a metric.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

from probe.outcome import ProbeResult

log = logging.getLogger(__name__)
MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words
# A run of this many characters of a secret is masked wherever it appears: a text cut
# through a key (a body's 120-byte preview) keeps at most FRAGMENT_CHARS - 1 of them.
FRAGMENT_CHARS = 8
_ANCHOR_CHARS, _ANCHOR_STEP = 4, 5  # step + anchor - 1 <= FRAGMENT_CHARS


def bearer_headers(env_name: str | None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    if not env_name:
        return {}
    value = (os.environ if env is None else env).get(env_name, "")
    return {"Authorization": f"Bearer {value}"} if value else {}


class Redactor:
    """Masks every configured secret in a text, and every piece of one that is
    ``FRAGMENT_CHARS`` or longer: a text cut before it reaches the redactor (a body's
    preview, an answer's first characters) can hold a key's first or last characters only,
    and a window can hold its middle. Shorter secrets are masked whole only.

    The pieces are found through anchors: the secret's ``_ANCHOR_CHARS``-character runs at
    every ``_ANCHOR_STEP`` th offset. Any run of ``FRAGMENT_CHARS`` characters of the secret
    holds one of them whole (step + anchor - 1 <= FRAGMENT_CHARS), so a text in which no
    anchor occurs holds no piece; an anchor found is grown both ways along the secret."""

    CLEAN_KEPT = 16384  # texts known to hold nothing to mask (a result's texts mostly repeat)
    CLEAN_MAX_CHARS = 256  # longer texts are not remembered

    def __init__(self, env_names: Iterable[str], env: Mapping[str, str] | None = None) -> None:
        source = os.environ if env is None else env
        values = {source.get(name, "") for name in env_names}
        self._values = sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len,
                              reverse=True)
        self._short = tuple(v for v in self._values if len(v) < FRAGMENT_CHARS)
        anchors: dict[str, list[tuple[str, int]]] = {}
        for value in self._values:
            if len(value) >= FRAGMENT_CHARS:
                for at in range(0, len(value) - _ANCHOR_CHARS + 1, _ANCHOR_STEP):
                    anchors.setdefault(value[at:at + _ANCHOR_CHARS], []).append((value, at))
        self._anchors = tuple((anchor, tuple(places)) for anchor, places in anchors.items())
        self._clean: dict[str, None] = {}

    def __call__(self, text: str) -> str:
        if not self._values or text in self._clean:
            return text
        scrubbed = text
        if len(text) >= FRAGMENT_CHARS:
            spans = self._pieces(text)
            if spans:
                scrubbed = _masked(text, spans)
        for value in self._short:
            if value in scrubbed:
                scrubbed = scrubbed.replace(value, MASK)
        if scrubbed is text and len(text) <= self.CLEAN_MAX_CHARS:
            if len(self._clean) >= self.CLEAN_KEPT:
                self._clean.clear()
            self._clean[text] = None
        return scrubbed

    def _pieces(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every run of ``FRAGMENT_CHARS`` or more characters of a secret."""
        spans: list[tuple[int, int]] = []
        for anchor, places in self._anchors:
            if anchor not in text:  # the common case, and cheaper than a call to find
                continue
            found = text.find(anchor)
            while found >= 0:
                # an anchor inside a piece already found is part of it (a whole key holds
                # every anchor of its own)
                if not any(start <= found and found + _ANCHOR_CHARS <= end
                           for start, end in spans):
                    for value, offset in places:
                        start, end = _grown(text, found, value, offset)
                        if end - start >= FRAGMENT_CHARS:
                            spans.append((start, end))
                found = text.find(anchor, found + 1)
        return spans

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
            out: dict[Any, Any] | None = None
            clean = self._clean
            for index, (key, item) in enumerate(value.items()):
                # a number, a flag, None or a text known clean (the keys, mostly) is taken
                # as it is without a call: most of a result's details (with lists seen
                # clean: 6.5 -> 2.2 us CPU a result, a models and a vllm_metrics one)
                new_key = key if type(key) is str and key in clean else self.deep(key)
                kind = type(item)
                new_item = item if kind in _NO_TEXT or kind is str and item in clean \
                    else self.deep(item)
                if out is None and (new_key is not key or new_item is not item):
                    out = dict(islice(value.items(), index))
                if out is not None:
                    out[new_key] = new_item
            return value if out is None else out
        if isinstance(value, list | tuple):
            clean = self._clean
            for item in value:  # (most lists: a served model's names, seen before)
                kind = type(item)
                if kind not in _NO_TEXT and (kind is not str or item not in clean):
                    break
            else:
                return value
            scrubbed = [self.deep(item) for item in value]
            if all(a is b for a, b in zip(scrubbed, value, strict=True)):
                return value
            return type(value)(scrubbed)
        return value


_NO_TEXT = frozenset({int, float, bool, type(None)})


def _grown(text: str, found: int, value: str, offset: int) -> tuple[int, int]:
    """The run of ``text`` around ``text[found:]`` that matches ``value`` around ``offset``
    (where the anchor found sits in the secret), as (start, end)."""
    start, at = found, offset
    while start > 0 and at > 0 and text[start - 1] == value[at - 1]:
        start, at = start - 1, at - 1
    end, at = found + _ANCHOR_CHARS, offset + _ANCHOR_CHARS
    while end < len(text) and at < len(value) and text[end] == value[at]:
        end, at = end + 1, at + 1
    return start, end


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each of ``spans`` (overlapping ones merged) replaced by ``MASK``."""
    parts, kept = [], 0
    for start, end in sorted(spans):
        if start > kept:
            parts += [text[kept:start], MASK]
        elif not parts:
            parts.append(MASK)
        kept = max(kept, end)
    parts.append(text[kept:])
    return "".join(parts)


def plain_line(text: str) -> str:
    """``text`` as one line of plain text: every control or format character (ESC, CR, LF,
    tab, DEL, bidi overrides: Unicode category C) becomes a space, and runs of spaces one. A
    terminal shown it prints it; it moves no cursor and sets no colour."""
    if text.isprintable():
        return " ".join(text.split())
    return " ".join("".join(" " if unicodedata.category(c)[0] == "C" else c
                            for c in text).split())


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def import_credentials(environ: MutableMapping[str, str],
                       fallback: Path | None = None) -> list[str]:
    """systemd's credentials (``LoadCredential=NAME:PATH``) as environment variables: each
    file in ``$CREDENTIALS_DIRECTORY`` whose name is a variable name becomes that variable,
    unless it is already set. Without the variable, the files of ``fallback`` (the install
    recipe's credentials directory) when it can be read (as root): a command typed on the
    VM finds the keys the service is given, without exporting them. Returns the names
    imported (values are never logged)."""
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        if fallback is None or not os.access(fallback, os.R_OK | os.X_OK):
            return []
        directory = str(fallback)
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
