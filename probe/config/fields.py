"""Typed reads from a raw YAML mapping that collect every problem with its field path.

Validation never stops at the first error: a person fixing a config wants the whole
list at once, one line each, like ``endpoints[2].interval: expected a duration ...``.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from probe.durations import parse_duration

MISSING: Any = object()


class Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path}: {message}")

    def __bool__(self) -> bool:
        return bool(self.lines)


def quoted(text: str, limit: int = 80) -> str:
    """``text`` in double quotes for a problem line: what is not printable escaped (a line
    break stays ``\\n``, U+2028 ``\\u2028``), cut at ``limit`` characters."""
    inner = "".join(c if c.isprintable() else c.encode("unicode_escape").decode()
                    for c in text[:limit])
    return f'"{inner}…"' if len(text) > limit else f'"{inner}"'


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


class Fields:
    """One mapping of the config, read key by key; unknown keys are reported."""

    def __init__(self, raw: Any, path: str, problems: Problems, allowed: Iterable[str]) -> None:
        self.path = path
        self.problems = problems
        self.allowed = tuple(allowed)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            problems.add(path, f"expected a mapping, got {_type_name(raw)}")
            raw = {}
        self.raw: dict[str, Any] = raw
        for key in raw:
            if key not in self.allowed:
                close = difflib.get_close_matches(str(key), self.allowed, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                problems.add(self._at(str(key)), f"unknown key{hint}")

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def fail(self, key: str, message: str) -> None:
        self.problems.add(self._at(key), message)

    def _get(self, key: str, default: Any, required: bool) -> Any:
        if key in self.raw and self.raw[key] is not None:
            return self.raw[key]
        if required:
            self.fail(key, "required field is missing")
        return default

    def text(self, key: str, default: Any = None, required: bool = False) -> Any:
        value = self._get(key, MISSING, required)
        if value is MISSING:
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {_type_name(value)}")
            return default
        return value

    def integer(self, key: str, default: Any = None, minimum: int | None = None,
                required: bool = False) -> Any:
        value = self._get(key, MISSING, required)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected a whole number, got {_type_name(value)}")
            return default
        if minimum is not None and value < minimum:
            self.fail(key, f"must be at least {minimum}, got {value}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, MISSING, False)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_type_name(value)}")
            return default
        return value

    def duration(self, key: str, default: Any = None, positive: bool = True,
                 required: bool = False) -> Any:
        value = self._get(key, MISSING, required)
        if value is MISSING:
            return default
        if not isinstance(value, str):
            self.fail(key, f'expected a duration like "30s", got {value!r}')
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(key, str(exc))
            return default
        if positive and seconds <= 0:
            self.fail(key, f'must be greater than zero, got "{value}"')
            return default
        return seconds

    def url(self, key: str, default: Any = None, required: bool = False,
            placeholders: frozenset[str] = frozenset()) -> Any:
        value = self.text(key, MISSING, required)
        if value is MISSING:
            return default
        problem = url_problem(value, placeholders)
        if problem:
            self.fail(key, problem)
            return default
        return value

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key, MISSING, False)
        if value is MISSING:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a list of strings, got {_type_name(value)}")
            return default
        return tuple(value)


def env_int(env: Mapping[str, str], var: str, minimum: int, problems: Problems) -> int | None:
    """A whole number from environment variable ``var``; None when unset or invalid (the
    problem is recorded under ``env.VAR``)."""
    raw = env.get(var, "")
    if raw == "":
        return None
    try:
        number = int(raw)
    except ValueError:
        problems.add(f"env.{var}", f'expected a whole number, got "{raw}"')
        return None
    if number < minimum:
        problems.add(f"env.{var}", f"must be at least {minimum}, got {number}")
        return None
    return number


def url_problem(value: str, placeholders: frozenset[str] = frozenset()) -> str | None:
    """Why ``value`` is not a usable http(s) URL (template), or None."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError:
        return f'malformed URL template "{value}"'
    unknown = names - placeholders
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in sorted(placeholders)) or "none"
        return f'unknown placeholder {{{sorted(unknown)[0]}}} in "{value}" (allowed: {allowed})'
    missing = placeholders - names
    if missing:
        return f'URL template "{value}" must contain {{{sorted(missing)[0]}}}'
    # a port placeholder stands for a number (``http://{pod_id}:{port}`` is a valid template)
    sample = value.format(**{p: "8000" if p == "port" else "x" for p in placeholders})
    parts = urlsplit(sample)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f'expected an http(s) URL, got "{value}"'
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return f'malformed port in URL "{value}"'
    return None
