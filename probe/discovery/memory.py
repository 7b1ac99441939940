"""The last successful listing, kept beside the database so a restart whose first listing
fails (RunPod's API down, rate limited) still probes the known fleet instead of recording
every discovered endpoint as gone. Holds ids, names, statuses and ports: nothing secret.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from probe.atomic import write_atomic
from probe.discovery.listing import Listed

log = logging.getLogger(__name__)


def memory_path(database: Path) -> Path:
    return database.with_name(database.name + ".discovery.json")


def load(path: Path) -> dict[str, tuple[Listed, ...]]:
    """The remembered listing, or nothing when absent or unreadable (never fatal)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {kind: tuple(Listed(**{**item, "ports": tuple(item.get("ports", ()))})
                            for item in items) for kind, items in raw.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring the remembered discovery listing %s: %s", path, exc)
        return {}


def save(path: Path, listed: dict[str, tuple[Listed, ...]]) -> None:
    """Write atomically (``write_atomic``); a failure is logged, discovery goes on."""
    data = {kind: [asdict(item) for item in items] for kind, items in listed.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, sort_keys=True).encode("utf-8"))
    except OSError as exc:
        log.error("cannot remember the discovery listing in %s: %s", path, exc)
