"""The ``ledger:`` and ``learning:`` config sections, validated with exact messages.

```yaml
ledger:                  # the older place of verdict: (down_after, up_after, persistent_after)
learning:
  path: /var/lib/runpod-probe/LEARNING.md   # default: LEARNING.md beside the database
# learning: false                           # append nowhere
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.config.fields import Fields, Problems
from probe.config.load import HYSTERESIS_KEYS, parse_hysteresis
from probe.config.model import Config, Hysteresis, ParseContext
from probe.ledger.learning import LearningFileError, check_appendable


@dataclass(frozen=True, slots=True)
class LearningSettings:
    """The ``learning:`` section. Absent: LEARNING.md beside the database (created with its
    table when missing); ``learning: false``: nothing is appended."""

    path: Path | None  # None: beside the database
    enabled: bool = True

    @classmethod
    def of(cls, config: Config) -> LearningSettings | None:
        """The settings to append with (path resolved), or None when learning is off."""
        settings = config.sections.get("learning")
        if not isinstance(settings, LearningSettings):
            settings = cls(None)
        if not settings.enabled:
            return None
        return cls(settings.path or config.storage.path.with_name("LEARNING.md"))


def parse_ledger(raw: Any, path: str, problems: Problems,
                 _: ParseContext) -> Hysteresis | None:
    """The older place of the verdict's hysteresis (now ``verdict:``), still read; None when
    the section is absent."""
    if raw is None:
        return None
    return parse_hysteresis(Fields(raw, path, problems, HYSTERESIS_KEYS))


def parse_learning(raw: Any, path: str, problems: Problems,
                   _: ParseContext) -> LearningSettings:
    if raw is None or raw is True:
        return LearningSettings(None)
    if raw is False:
        return LearningSettings(None, enabled=False)
    f = Fields(raw, path, problems, ("path",))
    file = f.text("path")
    return LearningSettings(Path(file) if file else None)


def validate(config: Config, problems: Problems) -> None:
    """The hysteresis is given in one place; a LEARNING.md we could not append to must stop
    the daemon before it probes."""
    if config.verdict is not None and config.sections.get("ledger") is not None:
        problems.add("ledger", "down_after, up_after and persistent_after belong in verdict: "
                     "now; give them there only (the file has both sections)")
    learning = LearningSettings.of(config)
    if learning is not None and learning.path is not None:
        try:
            check_appendable(learning.path)
        except LearningFileError as exc:
            problems.add("learning.path", f"{learning.path} {exc}")
