"""What a check's context keeps, and what it shares (``probe.check.CheckContext``)."""

from __future__ import annotations

import pytest
from helpers import config_of, endpoint, role_of

from probe.check import CheckContext
from probe.job import Job
from probe.state import FleetState


def test_memory_is_kept_between_runs_and_is_per_context() -> None:
    one, other = CheckContext(), CheckContext()
    one.memory["seen"] = 1
    assert one.memory == {"seen": 1}
    assert other.memory == {}
    other.memory["seen"] = 2
    assert one.memory["seen"] == 1


def test_a_given_memory_is_the_one_used() -> None:
    kept: dict[str, object] = {"before": True}
    ctx = CheckContext(memory=kept)
    ctx.memory["after"] = True
    assert kept == {"before": True, "after": True}


def test_shared_and_durable_are_the_given_dicts_or_new_ones() -> None:
    shared: dict[str, object] = {}
    a, b = CheckContext(shared=shared), CheckContext(shared=shared)
    a.shared["tokens"] = 5
    assert b.shared["tokens"] == 5
    assert CheckContext().shared is not CheckContext().shared
    assert CheckContext().durable is not CheckContext().durable


def test_params_default_to_an_empty_mapping_no_check_can_change() -> None:
    ctx = CheckContext()
    assert dict(ctx.params) == {}
    with pytest.raises(TypeError):
        ctx.params["prompt"] = "x"  # type: ignore[index]
    assert dict(CheckContext().params) == {}
    ctx.params = {"prompt": "p"}
    assert ctx.params["prompt"] == "p"


def test_durable_memory_is_the_states_made_on_first_use_only() -> None:
    """A check that never keeps durable memory leaves no entry in its endpoint's verdict (an
    empty dict kept per check of every endpoint otherwise); one that does gets the verdict's
    own, the same at every use (what the state saves and restores)."""
    target = endpoint(name="a", checks=("models", "vllm_metrics"))
    state = FleetState(role_of)
    state.configure(config_of(target), [Job("a/c", target, ("models", "vllm_metrics"), 15.0)])
    verdict = state.verdict("a")
    assert verdict is not None
    unused = CheckContext(durable_of=state.durable, key=("a", "models"))
    used = CheckContext(durable_of=state.durable, key=("a", "vllm_metrics"))
    assert verdict.durable == {}, "nothing made before a use"
    used.durable["streak"] = 2
    assert used.durable is verdict.durable["vllm_metrics"]
    assert verdict.durable == {"vllm_metrics": {"streak": 2}}, "the unused one made none"
    assert unused.durable is verdict.durable["models"], "made at its first use"
