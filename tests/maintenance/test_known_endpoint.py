"""`maintenance start` accepts an endpoint the daemon judged (found by discovery), read from
the verdicts the storage keeps; an endpoint neither configured nor judged is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import load_config

from probe.maintenance.cli import Refused, known_endpoint
from probe.storage.database import open_database, transaction
from probe.storage.verdicts import save_states


def test_a_discovered_endpoint_is_known_from_its_kept_verdict(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    conn = open_database(db)
    with transaction(conn):
        save_states(conn, [], [("found-pod", "up", '{"state": "up"}')])
    conn.close()
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f'storage: {{path: "{db}"}}\n'
                           "discovery: {pods: true}\n"
                           "endpoints:\n"
                           "  - {name: s, kind: serverless, endpoint_id: e}\n")
    config = load_config(config_path, {"RUNPOD_API_KEY": "k"})
    known_endpoint(config, "s")
    known_endpoint(config, "found-pod")
    with pytest.raises(Refused, match='no endpoint named "nobody"'):
        known_endpoint(config, "nobody")
