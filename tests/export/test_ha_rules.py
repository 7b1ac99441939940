"""Two probes (an HA pair, one job, two instances) under promtool: an endpoint pages once
when the quorum of the online probes sees it down; one probe alone seeing it down pages
nothing (quorum ``all``, the default), one probe offline pages only RunpodProbeOffline; the
quorum ``any`` and ``majority`` rules (``generate --quorum``) decide as they say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool_cases import STEPS, Expect, case, constant, run, series, steps

from probe.config.fields import Problems
from probe.export.files import ExportOptions, render_rules
from probe.export.ha import HaSettings, parse_ha

EP = "pod-a"
A, B = "10.0.0.1:9464", "10.0.0.2:9464"


def probe(instance: str, seen: str, offline: int = 0,
          outcome: str = "http_502") -> list[dict[str, str]]:
    """One probe's series: itself up, ``offline`` or not, and ``EP`` ``seen`` in that state
    (down for ``outcome`` of its models check). As the daemon does, only the state the
    endpoint is in has a series."""
    job = {"job": "runpod-probe", "instance": instance}
    out = [series("up", constant(1), **job),
           series("runpod_probe_offline", constant(offline), **job),
           series("runpod_probe_maintenance", constant(0), endpoint=EP, **job),
           series("runpod_probe_endpoint_state", constant(1), endpoint=EP, state=seen, **job)]
    if seen == "down":
        out.append(series("runpod_probe_endpoint_cause", constant(1), endpoint=EP,
                          state="down", check="models", outcome=outcome, **job))
    return out


def stopped_at(minute: int, probe_series: list[dict[str, str]]) -> list[dict[str, str]]:
    """A probe's series when it stops at ``minute``: ``up`` 0 from then, the rest gone."""
    out = []
    for s in probe_series:
        value = s["values"].split("x")[0]  # every series here is a constant
        if s["series"].startswith("up{"):
            out.append({**s, "values": steps([1.0] * minute + [0.0] * (STEPS + 1 - minute))})
        else:
            out.append({**s, "values": " ".join([value] * minute + ["stale"])})
    return out


def rules(tmp_path: Path, quorum: str) -> tuple[Path, Expect]:
    text = render_rules(ExportOptions(ha=HaSettings(quorum=quorum)))
    path = tmp_path / f"rules-{quorum}.yml"
    path.write_text(text)
    return path, Expect(yaml.safe_load(text))


def down(expect: Expect) -> list[dict[str, Any]]:
    return [expect.alert("RunpodEndpointDown", {"cause": "server_down"}, endpoint=EP,
                         check="models", outcome="http_502")]


def quiet(at: str, expect: Expect, *but: str) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """No alert at ``at`` except those named in ``but`` (checked by their own entries)."""
    return [(at, name, []) for name in expect.names() if name not in but]


def test_quorum_all_pages_once_when_every_online_probe_sees_it_down(tmp_path: Path) -> None:
    path, expect = rules(tmp_path, "all")
    offline = [expect.alert("RunpodProbeOffline", {}, instance=B)]
    run([
        case("both probes see it down: one page", [*probe(A, "down"), *probe(B, "down")],
             [("5m", "RunpodEndpointDown", down(expect)),
              *quiet("5m", expect, "RunpodEndpointDown")]),
        case("both see it down for different causes: one page, cause other",
             [*probe(A, "down"), *probe(B, "down", outcome="connect_error")],
             [("5m", "RunpodEndpointDown", [expect.alert(
                 "RunpodEndpointDown", {"cause": "other"}, endpoint=EP)]),
              *quiet("5m", expect, "RunpodEndpointDown")]),
        case("one probe sees it down, the other up: nothing",
             [*probe(A, "up"), *probe(B, "down")], quiet("5m", expect)),
        case("the probe seeing it down is offline: only RunpodProbeOffline",
             [*probe(A, "up"), *probe(B, "down", offline=1)],
             [("5m", "RunpodProbeOffline", offline),
              *quiet("5m", expect, "RunpodProbeOffline")]),
        case("one probe offline, the other sees it down: it alone decides, one page",
             [*probe(A, "down"), *probe(B, "unknown", offline=1)],
             [("5m", "RunpodEndpointDown", down(expect)), ("5m", "RunpodProbeOffline", offline)]),
        case("one probe alone reports a fleet incident of it: no page at all",
             [*probe(A, "up"), *probe(B, "down"),
              series("runpod_probe_incident", constant(1), scope="proxy", cause="server_down",
                     job="runpod-probe", instance=B),
              series("runpod_probe_endpoint_incident", constant(1), endpoint=EP,
                     job="runpod-probe", instance=B)], quiet("5m", expect)),
        case("both report the fleet incident: it pages once, the endpoint does not",
             [*probe(A, "down"), *probe(B, "down"),
              *(series("runpod_probe_incident", constant(1), scope="proxy",
                       cause="server_down", job="runpod-probe", instance=i) for i in (A, B)),
              *(series("runpod_probe_endpoint_incident", constant(1), endpoint=EP,
                       job="runpod-probe", instance=i) for i in (A, B))],
             [("5m", "RunpodFleetIncident", [expect.alert(
                 "RunpodFleetIncident", {}, scope="proxy", cause="server_down")]),
              *quiet("5m", expect, "RunpodFleetIncident")]),
        case("one probe stopped (not scraped), the other sees it down: one page",
             [*probe(A, "down"), *stopped_at(3, probe(B, "up"))],
             [("20m", "RunpodEndpointDown", down(expect))]),
    ], path)


@pytest.mark.parametrize(("quorum", "fires"), [("any", True), ("majority", False)])
def test_quorum_any_and_majority(tmp_path: Path, quorum: str, fires: bool) -> None:
    path, expect = rules(tmp_path, quorum)
    run([case(f"quorum {quorum}: one of two probes sees it down",
              [*probe(A, "up"), *probe(B, "down")],
              [("5m", "RunpodEndpointDown", down(expect) if fires else [])])], path)


def test_the_ha_section() -> None:
    problems = Problems()
    assert parse_ha({"quorum": "majority"}, "ha", problems) == HaSettings("majority")
    assert parse_ha(None, "ha", problems) == HaSettings("all")
    assert not problems
    assert parse_ha({"quorum": "most"}, "ha", problems) == HaSettings("all")
    assert problems.lines == ["ha.quorum: expected one of all, majority, any, got 'most'"]
