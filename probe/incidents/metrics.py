"""The incidents' and the vantage's series on /metrics (collected in the event loop's
thread, where both are changed).

- ``runpod_probe_incident{scope,cause}`` 1 while a fleet incident is open (gone when it
  closes);
- ``runpod_probe_endpoint_incident{endpoint,scope,cause}`` 1 for each endpoint counted in
  an open incident, so an endpoint's own alert can be held back (``unless on(endpoint)``);
- ``runpod_probe_vantage_up{target}`` 1/0 per vantage target, and ``runpod_probe_offline``
  1 when every one fails (always present);
- ``runpod_probe_incidents_opened_total`` and ``_closed_total``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from probe.incidents.tracker import IncidentTracker
from probe.incidents.vantage import Vantage
from probe.metrics import P


class IncidentMetrics(Collector):
    def __init__(self, tracker: IncidentTracker, vantage: Vantage) -> None:
        self.tracker = tracker
        self.vantage = vantage

    def collect(self) -> Iterator[Metric]:
        incident = GaugeMetricFamily(P + "incident", "1 while a fleet incident is open: many "
                                     "endpoints of one group down with one cause.",
                                     labels=["scope", "cause"])
        for open_incident in self.tracker.open_incidents():
            incident.add_metric([open_incident.scope, open_incident.cause], 1.0)
        yield incident
        members = GaugeMetricFamily(P + "endpoint_incident", "1 for each endpoint counted in "
                                    "an open fleet incident.",
                                    labels=["endpoint", "scope", "cause"])
        for endpoint, scope, cause in self.tracker.members():
            members.add_metric([endpoint, scope, cause], 1.0)
        yield members
        yield CounterMetricFamily(P + "incidents_opened", "Fleet incidents opened.",
                                  value=self.tracker.opened_total)
        yield CounterMetricFamily(P + "incidents_closed", "Fleet incidents closed.",
                                  value=self.tracker.closed_total)
        up = GaugeMetricFamily(P + "vantage_up", "1 when the probe reaches this vantage "
                               "target (RunPod's API, DNS, a reference URL, a provider).",
                               labels=["target"])
        for target, ok in sorted(self.vantage.up.items()):
            up.add_metric([target], 1.0 if ok else 0.0)
        yield up
        yield GaugeMetricFamily(P + "offline", "1 when the probe itself is cut off (every "
                                "vantage check fails): endpoints are unknown, not down.",
                                value=1.0 if self.vantage.offline else 0.0)
        yield CounterMetricFamily(P + "offline_not_observed", "Failing results taken as not "
                                  "observed because the probe was offline.",
                                  value=self.vantage.not_observed_total)
