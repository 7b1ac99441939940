"""The status page (below)."""
