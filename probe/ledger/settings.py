"""The ``ledger:`` and ``learning:`` config sections, validated with exact messages.

```yaml
ledger:
  down_after: 3          # consecutive failing results before an endpoint is down
  up_after: 2            # consecutive passes (of every check) before it is up again
  persistent_after: 30m  # still down this long: one "persistently down" entry
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
from probe.config.model import Config, ParseContext
from probe.ledger.learning import LearningFileError, check_appendable
from probe.verdict import Hysteresis


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


def parse_ledger(raw: Any, path: str, problems: Problems, _: ParseContext) -> Hysteresis:
    """The hysteresis every endpoint's verdict is judged with."""
    f = Fields(raw, path, problems, ("down_after", "up_after", "persistent_after"))
    default = Hysteresis()
    return Hysteresis(
        down_after=f.integer("down_after", default.down_after, minimum=1),
        up_after=f.integer("up_after", default.up_after, minimum=1),
        persistent_after_s=f.duration("persistent_after", default.persistent_after_s),
    )


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
    """A LEARNING.md we could not append to must stop the daemon before it probes."""
    learning = LearningSettings.of(config)
    if learning is not None and learning.path is not None:
        try:
            check_appendable(learning.path)
        except LearningFileError as exc:
            problems.add("learning.path", f"{learning.path} {exc}")
