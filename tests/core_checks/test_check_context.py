"""What a check's context keeps, and what it shares (``probe.check.CheckContext``)."""

from __future__ import annotations

import pytest

from probe.check import CheckContext


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
