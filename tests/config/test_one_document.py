"""check-config reads and parses its file once and builds the config from that one document
twice (without the keys, then with the process's environment): building never changes the
document, and the second build is asked for only when the first read a stand-in key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from helpers import PLUGINS

from probe.commands import keys_stand_in, load_without_keys
from probe.config import ConfigError
from probe.config.load import config_of, read_document

DATA = Path(__file__).parents[1] / "data" / "config"
CONFIGS = sorted(DATA.glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_building_a_config_leaves_its_document_as_it_was(path: Path) -> None:
    try:
        raw = read_document(path)
    except ConfigError:
        return  # refused before there is a document (size, YAML): nothing to build twice
    before = copy.deepcopy(raw)
    for env in (keys_stand_in(raw), {}):
        try:
            config_of(raw, env, PLUGINS.config)
        except ConfigError:
            pass
        assert raw == before


def test_a_stand_in_is_marked_read_only_when_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNPOD_PROBE_TEST_UNSET_KEY", raising=False)
    monkeypatch.setenv("RUNPOD_PROBE_TEST_SET", "yes")
    env = keys_stand_in({"endpoints": [{"api_key_env": "RUNPOD_PROBE_TEST_UNSET_KEY"}]})
    assert env["RUNPOD_PROBE_TEST_SET"] == "yes"
    assert not env.read
    assert env["RUNPOD_PROBE_TEST_UNSET_KEY"].endswith(": RUNPOD_PROBE_TEST_UNSET_KEY")
    assert env.read


def test_an_unset_key_is_missing_and_a_keyless_config_lacks_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNPOD_PROBE_TEST_UNSET_KEY", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("endpoints:\n  - {name: a, kind: openai, base_url: 'http://127.0.0.1:9/v1',"
                    " api_key_env: RUNPOD_PROBE_TEST_UNSET_KEY}\n")
    loaded = load_without_keys(str(path), PLUGINS.config)
    assert loaded is not None
    assert loaded[1] == ["endpoints[0].api_key_env: environment variable "
                         "RUNPOD_PROBE_TEST_UNSET_KEY is not set"]
    path.write_text("endpoints:\n  - {name: a, kind: openai, base_url: 'http://127.0.0.1:9/v1',"
                    " api_key_env: null}\n")
    loaded = load_without_keys(str(path), PLUGINS.config)
    assert loaded is not None and loaded[1] == []
