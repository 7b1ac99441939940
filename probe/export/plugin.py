"""The export feature as a value: the ``slo:`` section (objectives the generated rules use)
and the ``generate`` command (Grafana dashboards, Prometheus recording and alert rules)."""

from __future__ import annotations

from typing import Any

from probe.config.fields import Problems
from probe.config.model import ConfigExtension, ParseContext
from probe.export import cli
from probe.export.slo import SloSettings, parse_slo
from probe.features import Feature


def parse_section(raw: Any, path: str, problems: Problems, _: ParseContext) -> SloSettings:
    return parse_slo(raw, path, problems)


FEATURE = Feature(name="export", config=ConfigExtension(sections={"slo": parse_section}),
                  commands=(cli.add_parser,))
