"""Small builders over Grafana's typed SDK (grafana-foundation-sdk, Grafana 11 schema).

Every panel gets a description, a unit and the ``$datasource`` variable; stat and state
panels get thresholds and value mappings so that down is red and up is green (Grafana's
defaults paint 0 and 1 both green).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prom_model

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
# One probe's view: an HA pair's two probes export the same endpoints, told apart by
# ``instance``; a panel shows the chosen probe's series, never the sum of both.
PROBE = 'job=~"$job",instance=~"$instance"'
SEL = f'{PROBE},endpoint=~"$endpoint"'
# The recorded SLO series are per endpoint already (the quorum of the probes).
SLO_SEL = 'endpoint=~"$endpoint"'
Query = tuple[str, str]  # (PromQL, legend)
PanelT = TypeVar("PanelT")

# The endpoint's verdict as one number, so a state timeline can colour it.
STATE_CODES: tuple[tuple[str, int, str], ...] = (
    ("down", 0, "red"), ("up", 1, "green"), ("degraded", 2, "orange"),
    ("maintenance", 3, "blue"), ("unknown", 4, "text"),
)
PASS_FAIL = ((0, "FAIL", "red"), (1, "PASS", "green"))


def state_code(selector: str = SEL) -> str:
    arms = " or ".join(f'(runpod_probe_endpoint_state{{{selector},state="{name}"}} == 1) * {code}'
                       for name, code, _ in STATE_CODES)
    return f"max by (endpoint) ({arms})"


def histogram_quantile(q: float, metric: str, by: str, selector: str) -> str:
    """The ``q`` quantile of the histogram ``metric`` per ``by`` (labels, may be empty), from
    its classic buckets or, where a Prometheus keeps only its native histogram
    (``--enable-feature=native-histograms``), from that: both arms end with the labels
    ``by``, so a Prometheus keeping both forms draws one series, the classic one's."""
    rate = "[$__rate_interval]"
    classic = (f"histogram_quantile({q}, sum by ({', '.join(('le', by)) if by else 'le'}) "
               f"(rate({metric}_bucket{{{selector}}}{rate})))")
    native = (f"histogram_quantile({q}, sum{f' by ({by})' if by else ''} "
              f"(rate({metric}{{{selector}}}{rate})))")
    return f"{classic}\nor\n{native}"


def mapping(codes: Sequence[tuple[int, str, str]]) -> list[model.ValueMapping]:
    options = {str(value): model.ValueMappingResult(text=text, color=color, index=i)
               for i, (value, text, color) in enumerate(codes)}
    return [model.ValueMap(options)]


def steps(base: str, *above: tuple[float, str]) -> dash.ThresholdsConfig:
    """Thresholds: ``base`` colour, then each (value, colour) from that value up."""
    return dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(
        [model.Threshold(None, base), *(model.Threshold(v, c) for v, c in above)])


def state_mapping() -> list[model.ValueMapping]:
    return mapping([(code, name.upper(), color) for name, code, color in STATE_CODES])


def state_steps() -> dash.ThresholdsConfig:
    return steps("red", *((code, color) for _, code, color in STATE_CODES if code))


def pass_mapping() -> list[model.ValueMapping]:
    return mapping(PASS_FAIL)


def pass_steps() -> dash.ThresholdsConfig:
    return steps("red", (1, "green"))


def targets(queries: Sequence[Query], *, instant: bool = False,
            table_format: bool = False) -> list[Builder[Any]]:
    out: list[Builder[Any]] = []
    for index, (expr, legend) in enumerate(queries):
        q = prom.Dataquery().expr(expr).legend_format(legend or "__auto") \
            .ref_id(chr(ord("A") + index)).datasource(DATASOURCE)
        if instant:
            q = q.instant()
        if table_format:
            q = q.format(prom_model.PromQueryFormat.TABLE)
        out.append(q)
    return out


def _common(panel: PanelT, pid: int, title: str, description: str, unit: str, width: int,
            height: int) -> PanelT:
    """What every panel has; the SDK's panel builders share these methods but no base."""
    built: Any = panel
    return cast(PanelT, built.id(pid).title(title).description(description)
                .datasource(DATASOURCE).unit(unit).span(width).height(height))


def _last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def stat_panel(pid: int, title: str, description: str, queries: Sequence[Query], *,
               unit: str, thresholds: dash.ThresholdsConfig,
               mappings: list[model.ValueMapping], width: int = 12, height: int = 5,
               links: Sequence[dash.DashboardLink] = (),
               per_series: dict[str, dash.ThresholdsConfig] | None = None) -> stat.Panel:
    """A stat; ``per_series``: thresholds for the series of that legend, over the panel's."""
    panel = _common(stat.Panel(), pid, title, description, unit, width, height)
    panel = panel.with_target(targets(queries)[0]) if len(queries) == 1 \
        else panel.targets(targets(queries))
    panel = panel.thresholds(thresholds).mappings(mappings) \
        .color_mode(common.BigValueColorMode.BACKGROUND) \
        .graph_mode(common.BigValueGraphMode.NONE).reduce_options(_last()) \
        .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
    for name, config in (per_series or {}).items():
        panel = panel.override_by_name(
            name, [model.DynamicConfigValue(id_val="thresholds", value=config.build())])
    return panel.data_links(list(links)) if links else panel


def state_panel(pid: int, title: str, description: str, queries: Sequence[Query], *,
                thresholds: dash.ThresholdsConfig, mappings: list[model.ValueMapping],
                unit: str = "none", width: int = 24, height: int = 8) -> statetimeline.Panel:
    return _common(statetimeline.Panel(), pid, title, description, unit, width, height) \
        .targets(targets(queries)).thresholds(thresholds).mappings(mappings) \
        .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS)) \
        .show_value(common.VisibilityMode.AUTO).merge_values(True)


def series_panel(pid: int, title: str, description: str, queries: Sequence[Query], *,
                 unit: str, width: int = 12, height: int = 8,
                 lines: Sequence[tuple[float, str]] = ()) -> timeseries.Panel:
    """A time series; ``lines``: thresholds drawn as dashed lines (limits, burn factors)."""
    panel = _common(timeseries.Panel(), pid, title, description, unit, width, height) \
        .targets(targets(queries))
    if lines:
        panel = panel.thresholds(steps("transparent", *lines)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED))
    return panel


def table_panel(pid: int, title: str, description: str, queries: Sequence[Query], *,
                unit: str = "none", width: int = 12, height: int = 8,
                hide: Sequence[str] = ("Time", "Value", "__name__")) -> table.Panel:
    organize = model.DataTransformerConfig(
        id_val="organize", options={"excludeByName": {name: True for name in hide}})
    return _common(table.Panel(), pid, title, description, unit, width, height) \
        .targets(targets(queries, instant=True, table_format=True)) \
        .with_transformation(organize)


def bar_panel(pid: int, title: str, description: str, queries: Sequence[Query], *,
              unit: str, thresholds: dash.ThresholdsConfig, width: int = 12,
              height: int = 8, links: Sequence[dash.DashboardLink] = ()) -> bargauge.Panel:
    panel = _common(bargauge.Panel(), pid, title, description, unit, width, height) \
        .targets(targets(queries, instant=True)).thresholds(thresholds) \
        .mappings(mapping([])).reduce_options(_last()) \
        .display_mode(common.BarGaugeDisplayMode.BASIC) \
        .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
    return panel.data_links(list(links)) if links else panel


def to_endpoint(endpoint_uid: str, title: str = "Open the endpoint's dashboard") \
        -> dash.DashboardLink:
    return dash.DashboardLink(title).url(
        f"/d/{endpoint_uid}/{endpoint_uid}?var-endpoint=${{__field.labels.endpoint}}"
        "&${__url_time_range}&${datasource:queryparam}")


def variables() -> list[Builder[model.VariableModel]]:
    """``datasource``, ``job`` and ``instance`` (one probe of an HA pair: never both summed),
    ``kind`` and ``endpoint`` (narrowed to the chosen kinds)."""
    return [
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        dash.QueryVariable("job").label("Job").datasource(DATASOURCE)
        .query("label_values(runpod_probe_build_info, job)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED),
        dash.QueryVariable("instance").label("Probe").datasource(DATASOURCE)
        .query('label_values(runpod_probe_build_info{job=~"$job"}, instance)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED),
        dash.QueryVariable("kind").label("Kind").datasource(DATASOURCE)
        .query(f"label_values(runpod_probe_endpoint_info{{{PROBE}}}, kind)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True).multi(True).current(_all()),
        # No custom "all" value: Grafana then substitutes the listed endpoints, so the
        # kind filter carries through to every query that selects on $endpoint.
        dash.QueryVariable("endpoint").label("Endpoint").datasource(DATASOURCE)
        .query(f'label_values(runpod_probe_endpoint_info{{{PROBE},kind=~"$kind"}}, endpoint)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True).multi(True).current(_all()),
    ]


def _all() -> model.VariableOption:
    return model.VariableOption(selected=True, text="All", value="$__all")


def dashboard(uid: str, title: str, description: str) -> dash.Dashboard:
    board = dash.Dashboard(title).uid(uid).description(description) \
        .tags(["runpod", "vllm", "llm", "runpod-probe"]).timezone("utc").refresh("30s") \
        .time("now-6h", "now").editable()
    for variable in variables():
        board = board.with_variable(variable)
    return board


def render(board: dash.Dashboard) -> str:
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
