"""The maintenance feature as a value: the ``maintenance:`` section, where windows come from
(the section and the command line's table), and the ``maintenance`` command."""

from __future__ import annotations

from datetime import datetime

from probe.config.model import Config, ConfigExtension
from probe.features import Feature
from probe.maintenance import cli, store
from probe.maintenance.settings import MaintenanceSettings, parse_section, validate
from probe.verdict import Window


def windows(config: Config, now: datetime) -> list[Window]:
    """The windows on at ``now``: the config's, then the command line's."""
    out = [w for d in MaintenanceSettings.of(config).windows if (w := d.active(now))]
    out.extend(row.window() for row in store.active(config.storage.path, now))
    return out


FEATURE = Feature(
    name="maintenance",
    config=ConfigExtension(sections={"maintenance": parse_section}, validators=(validate,)),
    windows=(windows,),
    commands=(cli.add_parser,),
)
