"""The spine's own checks. Features add theirs through their ``Feature`` record; the merged
set (``Plugins.checks``) is what the runner resolves names against."""

from __future__ import annotations

from probe.check import CheckSpec
from probe.checks import models

CORE_CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("models", models.check),
)
