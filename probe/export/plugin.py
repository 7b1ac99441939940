"""The export feature as a value: the ``generate`` command (Grafana dashboard, alert rules)."""

from __future__ import annotations

from probe.export import cli
from probe.features import Feature

FEATURE = Feature(name="export", commands=(cli.add_parser,))
