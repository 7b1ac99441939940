"""The status document and its HTML: worst first, paged, filtered, hostile parameters and
names harmless, every name shown as text."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import parse_config, role_of
from ledgerhelpers import result

from probe.app import PLUGINS
from probe.outcome import Outcome
from probe.state import FleetState
from probe.status.html import render, sparkline
from probe.status.page import PAGE_SIZE, Query, document
from probe.status.uptime import UptimeBook
from probe.verdict import Window

ENV = {"RUNPOD_API_KEY": "k"}
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
# (a name cannot hold a line break: the config refuses it, see test_load)
HOSTILE = '<script>alert("x")</script>\'" <img src=x onerror=alert(1)>'


def fleet(names: list[str], down: set[str] = frozenset(),  # type: ignore[assignment]
          checks: str = "[models]") -> FleetState:
    text = "endpoints:\n" + "".join(
        f"  - name: {json.dumps(n)}\n    kind: pod\n    pod_id: p{i}\n    checks: {checks}\n"
        for i, n in enumerate(names))
    config = parse_config(text + "ledger: {down_after: 1, up_after: 1}\n", env=ENV)
    state = FleetState(role_of)
    state.configure(config, PLUGINS.plan(config))
    for name in names:
        outcome = Outcome.HTTP_404 if name in down else Outcome.OK
        state.update(replace(result(outcome, endpoint=name, message=f"msg of {name}"),
                             started_at=NOW - timedelta(minutes=1)))
    return state


def doc(fleet_state: FleetState, tmp_path: Path, **params: str) -> dict[str, Any]:
    return document(fleet_state.views(), fleet_state.rows, Query.of({k: [v] for k, v in params.items()}),
                    UptimeBook(tmp_path / "probe.db"), tmp_path / "probe.db", {}, NOW)


def test_worst_first_and_paged(tmp_path: Path) -> None:
    names = [f"ep-{i:03d}" for i in range(250)]
    state = fleet(names, down={"ep-200", "ep-007"})
    first = doc(state, tmp_path)
    assert first["summary"] == {"endpoints": 250, "up": 248, "down": 2, "degraded": 0,
                                "maintenance": 0, "unknown": 0}
    assert first["page"] == {"number": 1, "pages": 3, "size": PAGE_SIZE, "matching": 250,
                             "state": None, "q": None}
    assert [e["name"] for e in first["endpoints"][:3]] == ["ep-007", "ep-200", "ep-000"]
    assert first["endpoints"][0]["cause"] == {"check": "models", "outcome": "http_404"}
    last = doc(state, tmp_path, page="3")
    assert len(last["endpoints"]) == 50 and last["endpoints"][-1]["name"] == "ep-249"
    assert doc(state, tmp_path, page="99")["page"]["number"] == 3, "clamped to the last"
    downs = doc(state, tmp_path, state="down")
    assert [e["name"] for e in downs["endpoints"]] == ["ep-007", "ep-200"]
    assert [e["name"] for e in doc(state, tmp_path, q="EP-24")["endpoints"]] == [
        f"ep-24{i}" for i in range(10)]


@pytest.mark.parametrize("params", [
    {"page": "-1"}, {"page": "abc"}, {"page": "1e9"}, {"state": "<script>"},
    {"state": "UP"}, {"q": "x" * 5000},
])
def test_malformed_parameters_fall_back(params: dict[str, str]) -> None:
    query = Query.of({k: [v] for k, v in params.items()})
    assert query.page == 1 and query.state is None
    assert query.text is None or len(query.text) == 100


def test_maintenance_and_unknown_are_shown_as_such(tmp_path: Path) -> None:
    state = fleet(["a", "b"])
    state.set_maintenance("a", Window("cli:1", "manual #1", "gpu swap", "cli (alice)", NOW,
                                      NOW + timedelta(hours=1), ("a",)), NOW)
    shown = {e["name"]: e for e in doc(state, tmp_path)["endpoints"]}
    assert shown["a"]["state"] == "maintenance"
    assert shown["a"]["maintenance"] == "manual #1: gpu swap"
    assert shown["b"]["state"] == "up" and shown["b"]["uptime"] == {"24h": None, "7d": None}
    assert shown["b"]["ttft_s"] is None, "no governed prompt runs there"


def test_a_row_never_shows_a_state_its_own_results_have_moved_past(tmp_path: Path) -> None:
    """A result lands between the read of every view (for counts and order) and the page's
    rows: the row shows the state that result made, beside that result, never "unknown"
    beside a check that passed."""
    state = FleetState(role_of)
    config = parse_config("endpoints:\n  - {name: a, kind: pod, pod_id: p0, checks: [models]}\n"
                          "ledger: {down_after: 1, up_after: 1}\n", env=ENV)
    state.configure(config, PLUGINS.plan(config))
    before = state.views()
    state.update(replace(result(Outcome.OK, endpoint="a"), started_at=NOW - timedelta(minutes=1)))
    page = document(before, state.rows, Query(), UptimeBook(tmp_path / "probe.db"),
                    tmp_path / "probe.db", {}, NOW)
    assert before["a"].state.value == "unknown"
    assert page["summary"]["unknown"] == 1, "the counts are the first read's"
    [row] = page["endpoints"]
    assert (row["state"], [c["outcome"] for c in row["checks"]]) == ("up", ["ok"])


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.handlers: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_every_name_and_message_is_text(tmp_path: Path) -> None:
    state = fleet([HOSTILE, "plain"], down={HOSTILE})
    state.set_maintenance("plain", Window("cli:1", HOSTILE, HOSTILE, "cli (alice)", NOW, None,
                                          ("plain",)), NOW)
    document_ = doc(state, tmp_path)
    document_["ledger"] = {"chain": {"checked": True, "valid": True, "verified_through": 1,
                                     "head": "abc", "problem": None},
                           "entries": [{"id": 1, "ts": NOW.isoformat(), "severity": "info",
                                        "endpoint": HOSTILE, "event": "down",
                                        "pattern": HOSTILE, "hash": "abc"}]}
    page = Elements()
    page.feed(render(document_))
    assert "script" not in page.tags and "img" not in page.tags
    assert page.handlers == []
    text = "".join(page.text)
    assert text.count('<script>alert("x")</script>') >= 4  # name, window, reason, ledger
    assert "msg of " + HOSTILE.split("\n")[0] in text


def test_sparklines_are_numbers_only() -> None:
    svg = str(sparkline([0.1, 0.3, 0.2], "latency"))
    assert svg.startswith("<svg") and 'points="0.0,' in svg and "100–300 ms" in svg
    assert "no data" in str(sparkline([0.1], "latency"))
