"""`runpod-probe status` rendering a /status.json document: worst first, the incidents
section when the daemon has one (another feature's), the maintenance windows."""

from __future__ import annotations

from probe.status.cli import Fleet, render

DOCUMENT = {
    "version": "0.1.0", "commit": None,
    "summary": {"endpoints": 3, "up": 1, "down": 1, "maintenance": 1},
    "endpoints": [
        {"name": "ok", "state": "up", "since": None, "cause": None, "maintenance": None},
        {"name": "moving", "state": "maintenance", "since": "2026-12-05T01:00:00+00:00",
         "cause": None, "maintenance": "gpu-swap: new H100"},
        {"name": "gone", "state": "down", "since": "2026-12-05T00:00:00+00:00",
         "cause": {"check": "models", "outcome": "http_404"}, "maintenance": None},
    ],
}


def test_worst_first_with_windows_and_no_incidents_section() -> None:
    lines = render(Fleet("http://127.0.0.1:9464/status.json", True, dict(DOCUMENT))).splitlines()
    assert lines == [
        "daemon: running, runpod-probe 0.1.0, at http://127.0.0.1:9464/status.json",
        "3 endpoints: 1 down, 1 maintenance, 1 up",
        "  DOWN         gone    models: http_404, since 2026-12-05T00:00:00+00:00",
        "  MAINTENANCE  moving  gpu-swap: new H100, since 2026-12-05T01:00:00+00:00",
        "  UP           ok",
        "maintenance windows on now: 1",
        "  moving: gpu-swap: new H100"]


def test_the_incidents_section_is_read_when_present() -> None:
    document = {**DOCUMENT, "incidents": {
        "offline": False, "open": [{"id": "pool/http_404/2026", "scope": "pool", "cause":
                                    "http_404", "opened_at": "2026-12-05T00:00:00+00:00",
                                    "affected": ["gone", "a", "b", "c"], "failing_now": 4}]}}
    text = render(Fleet("x", True, document))
    assert "open incidents: 1\n  pool, http_404, 4 endpoints (gone, a, b, …), 4 failing now, " \
        "since 2026-12-05T00:00:00+00:00\n" in text
    none = render(Fleet("x", True, {**DOCUMENT, "incidents": {"open": []}}))
    assert "open incidents: none" in none
