"""Generated artefacts: Grafana dashboards, Prometheus rules, the Alertmanager example
(``probe.export.files``). Nothing here is imported by the package itself: the daemon loads
the feature (``plugin``: config sections and the ``generate`` command) without the
generators and the Grafana SDK they build on (about 5 MB of the daemon's memory)."""
