"""Maintenance windows: declared in the config or started from the command line; during one
an endpoint's state is ``maintenance`` (checks go on, alerts are silenced)."""
