"""``instance:``, ``peers:`` and ``learning.writer``: which probe of an HA pair this is,
where the other is, and which one appends to LEARNING.md; parsing fails closed."""

from __future__ import annotations

import socket

import pytest
from helpers import parse_config

from probe.config import ConfigError
from probe.config.model import Peers, default_instance
from probe.ledger.settings import LearningSettings

BASE = ("runpod: {api_key_env: RUNPOD_API_KEY}\n"
        "endpoints:\n  - {name: pod-1, kind: pod, pod_id: p1}\n")
ENV = {"RUNPOD_API_KEY": "made-up-key"}


def test_a_probe_alone_is_named_after_its_host() -> None:
    config = parse_config(BASE, ENV)
    assert config.instance == default_instance() != ""
    assert socket.gethostname().startswith(config.instance[:8])
    assert config.peers is None and config.probes == 1


def test_a_pair_names_its_probe_and_its_peer() -> None:
    config = parse_config(BASE + "instance: probe-1\npeers: [http://probe-2.example:9464/]\n",
                          ENV)
    assert config.instance == "probe-1"
    assert config.peers == Peers(("http://probe-2.example:9464",), 30.0, 5.0)
    assert config.probes == 2
    config = parse_config(BASE + "peers: {urls: [http://10.0.0.2:9464], every: 10s, "
                                 "timeout: 2s}\n", ENV)
    assert config.peers == Peers(("http://10.0.0.2:9464",), 10.0, 2.0)


@pytest.mark.parametrize(("section", "problem"), [
    ('instance: "probe 1"', "instance: expected a name of letters, digits"),
    ("instance: 12", "instance: expected a name"),
    ("peers: [ftp://x]", "peers.urls[0]: expected an http(s) URL"),
    ("peers: [http://x/?a=1]", "peers.urls[0]: a peer's URL is its base"),
    ("peers: [http://x, http://x/]", "peers.urls: a peer is listed twice"),
    ("peers: {urls: []}", "peers.urls: expected at least one URL"),
    ("peers: {urls: [http://x], every: 5s, timeout: 10s}", "peers.timeout: must not be longer"),
    ("peers: {urls: [http://x], poll: 5s}", "peers.poll: unknown key"),
    ("peers: http://x", "peers: expected a mapping"),
    ("learning: {writer: 3}", "learning.writer: expected true, false or the instance name"),
    ("instance: probe-2\nlearning: {writer: probe-1}", "learning.writer: names probe 'probe-1'"),
])
def test_a_bad_vantage_is_refused(section: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(BASE + section + "\n", ENV)
    assert any(line.startswith(problem) for line in refused.value.problems), \
        refused.value.problems


@pytest.mark.parametrize(("instance", "writer", "writes"), [
    ("probe-1", "probe-1", True), ("probe-2", "probe-1", False),
    ("probe-2", "true", True), ("probe-2", "false", False)])
def test_only_the_named_writer_appends(instance: str, writer: str, writes: bool) -> None:
    config = parse_config(BASE + f"instance: {instance}\npeers: [http://other:9464]\n"
                                 f"learning: {{writer: {writer}}}\n", ENV)
    assert (LearningSettings.of(config) is not None) is writes
