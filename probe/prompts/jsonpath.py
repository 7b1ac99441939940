"""A small JSON path for expectations: ``$.choices[0].text``, ``status``, ``items[-1].id``.

Dotted keys and integer indices are all a governed prompt needs; a full JSONPath engine
(filters, wildcards) would be a dependency for no check we run.
"""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


def parse_path(text: str) -> tuple[str | int, ...]:
    """Steps of ``text``; raises ValueError on anything else."""
    rest = text.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    steps: list[str | int] = []
    position = 0
    while position < len(rest):
        match = _STEP.match(rest, position)
        if match is None or match.end() == position:
            raise ValueError(f'malformed JSON path "{text}" at position {position + 1}')
        key, index, dq, sq = match.groups()
        steps.append(int(index) if index is not None else (key or dq or sq or ""))
        position = match.end()
    return tuple(steps)


def resolve(document: Any, steps: tuple[str | int, ...]) -> tuple[bool, Any]:
    """(found, value) of ``steps`` in ``document``."""
    value = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return False, None
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return False, None
            value = value[step]
    return True, value
