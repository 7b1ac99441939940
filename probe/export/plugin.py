"""The export feature as a value: the ``slo:`` section (objectives the generated rules use),
the ``ha:`` section (the quorum of probes they decide by) and the ``generate`` command
(Grafana dashboards, Prometheus recording and alert rules)."""

from __future__ import annotations

from typing import Any

from probe.config.fields import Problems
from probe.config.model import ConfigExtension, ParseContext
from probe.export import cli
from probe.export.ha import HaSettings, parse_ha
from probe.export.slo import SloSettings, parse_slo
from probe.features import Feature


def parse_section(raw: Any, path: str, problems: Problems, _: ParseContext) -> SloSettings:
    return parse_slo(raw, path, problems)


def parse_ha_section(raw: Any, path: str, problems: Problems, _: ParseContext) -> HaSettings:
    return parse_ha(raw, path, problems)


FEATURE = Feature(name="export", config=ConfigExtension(sections={"slo": parse_section,
                                                                  "ha": parse_ha_section}),
                  commands=(cli.add_parser,))
