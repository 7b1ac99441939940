"""Where an alert points a person: the dashboards' uids and panel ids, and the runbook.

Both the dashboards and the alert rules read these, so an alert's ``dashboard_url`` opens
the panel that shows its evidence and a renumbered panel cannot break the link silently.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

FLEET_UID = "runpod-probe-fleet"
ENDPOINT_UID = "runpod-probe-endpoint"
RUNBOOK = "docs/runbook.md"


class FleetPanel(enum.IntEnum):
    ENDPOINTS_BY_STATE = 1
    STATE_NOW = 2
    STATE_TIMELINE = 3
    FAILING_CHECKS = 4
    BUDGET_REMAINING = 5
    BURN_RATE = 6
    WORST_OFFENDERS = 7
    RESULTS_BY_OUTCOME = 8
    DISCOVERED = 9
    DISCOVERY_OUTCOME = 10
    DAEMON_UP = 11
    LEDGER_CHAIN = 12
    LEDGER_ERRORS = 13
    MEMORY = 14
    SCHEDULER_LAG = 15
    IN_FLIGHT = 16
    STORE = 17
    CONFIG_RELOAD = 18


class EndpointPanel(enum.IntEnum):
    STATE = 1
    CAUSE = 2
    STATE_TIMELINE = 3
    MAINTENANCE = 4
    AVAILABILITY = 5
    LATENCY_SLI = 6
    BUDGET_REMAINING = 7
    BURN_RATE = 8
    CHECKS_PASSING = 9
    OUTCOME_NOW = 10
    LATENCY = 11
    PROBE_ERRORS = 12
    LAST_PROBE_AGE = 13
    FAILURES = 14
    OBSERVATIONS = 15
    PROMPT_PASS = 16
    GENERATION_LATENCY = 17
    TOKENS_SPENT = 19
    ENGINE_QUEUE = 20
    KV_CACHE = 21
    GENERATION_RATE = 22
    MAX_MODEL_LEN = 23
    JOBS = 24
    WORKERS = 25
    ROUNDTRIP_DELAY = 26
    ROUNDTRIP_TOTAL = 27


@dataclass(frozen=True, slots=True)
class Links:
    """Base URLs for the generated links; empty Grafana base: paths relative to Grafana."""

    grafana_url: str = ""
    runbook_url: str = RUNBOOK

    def runbook(self, section: str) -> str:
        return f"{self.runbook_url}#{section}"

    def panel(self, panel: FleetPanel | EndpointPanel) -> str:
        if isinstance(panel, EndpointPanel):
            return (f"{self.grafana_url}/d/{ENDPOINT_UID}/{ENDPOINT_UID}?viewPanel={panel.value}"
                    "&var-endpoint={{ $labels.endpoint }}")
        return f"{self.grafana_url}/d/{FLEET_UID}/{FLEET_UID}?viewPanel={panel.value}"
