"""Bounded YAML input: the same values as PyYAML's safe loader for every YAML a config may
hold, and a refusal (one line, with where) for what no config needs: alias bombs, huge
files, unhashable keys, unsafe tags."""

from __future__ import annotations

import pytest
import yaml

from probe.config import yaml_input
from probe.config.yaml_input import YamlRefused, load_yaml

SAME_AS_PYYAML = [
    ("scalars", "a: yes\nb: 0x1f\nc: 1:30\nd: 2026-02-18\ne: ~\nf: 1.5\ng: .inf\ni: 007\n"
                "j: 1_000\nk: 'quoted'\nl: -3\n"),
    ("merge-key", "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n"),
    ("merge-list", "m: {<<: [{a: 1}, {a: 2, b: 3}]}\n"),
    ("merge-then-override", "d: &d {a: 1, b: 2}\nm:\n  <<: *d\n  a: 3\n"),
    ("nested", "m: [1, [2, 3], {a: b}]\n"),
    ("block-scalar", "k: |\n  line\n  two\n"),
    ("top-level-list", "- a\n- b\n"),
    ("an-alias-reused", "d: &d {interval: 30s}\nendpoints:\n  - {name: a, x: *d}\n"
                        "  - {name: b, x: *d}\n"),
    ("binary-set-omap", "x: !!binary aGVsbG8=\ns: !!set {a, b}\no: !!omap [a: 1, b: 2]\n"),
]


@pytest.mark.parametrize("text", [c[1] for c in SAME_AS_PYYAML],
                         ids=[c[0] for c in SAME_AS_PYYAML])
def test_values_are_pyyamls(text: str) -> None:
    assert load_yaml(text) == yaml.safe_load(text)


def bomb(levels: int, fan_out: int = 9) -> str:
    """The "billion laughs": each level a list of ``fan_out`` aliases of the level below."""
    names = [f"l{i}" for i in range(levels + 1)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * fan_out)}]"]
    for below, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [{', '.join([f'*{below}'] * fan_out)}]")
    return "\n".join(lines) + "\n"


REFUSED = [
    ("alias-bomb", bomb(9), "line 1: the document expands to more than 100000 values "
                            "(aliases nested in aliases?)"),
    ("not-yaml", "a: [1, 2\n", "line 2: not valid YAML: expected ',' or ']', but got "
                               "'<stream end>'"),
    ("unhashable-key", "{[1]: 2}\n", "line 1: a mapping key must be a plain value, not a list "
                                     "or a mapping"),
    ("python-tag", "a: !!python/object/apply:os.system [ls]\n",
     "line 1: not valid YAML: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("merge-of-a-scalar", "a: {<<: 3}\n", "line 1: a merge key (<<) needs a mapping or a list "
                                          "of mappings"),
    # 1 KB that was a RecursionError; 100,000 deep crashed libyaml's C composer (SIGSEGV)
    ("deep-flow", "endpoints: " + "[" * 500 + "]" * 500 + "\n",
     "line 1: nested more than 64 levels deep (lists and mappings inside each other)"),
    ("very-deep-flow", "endpoints: " + "[" * 100_000 + "]" * 100_000 + "\n",
     "line 1: nested more than 64 levels deep (lists and mappings inside each other)"),
    ("deep-block", "a:\n" + "".join("  " * i + "- \n" for i in range(1, 100)),
     "line 65: nested more than 64 levels deep (lists and mappings inside each other)"),
    ("deep-through-aliases", "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 40 + "*a"
     + "]" * 40 + "\n", "line 1: nested more than 64 levels deep once aliases are expanded "
                        "(an alias inside itself?)"),
    # a second key would replace the first's value without a word
    ("duplicate-top-level-key", "endpoints: [a]\nx: 1\nendpoints: [b]\n",
     'line 3: duplicate key "endpoints" (first at line 1)'),
    ("duplicate-nested-key", "e:\n  - name: a\n    interval: 1s\n    interval: 2s\n",
     'line 4: duplicate key "interval" (first at line 3)'),
    ("duplicate-key-in-a-flow-mapping", "e: [{name: a, name: b}]\n",
     'line 1: duplicate key "name" (first at line 1)'),
    ("duplicate-key-spelled-differently", "1: a\n0x1: b\n",
     'line 2: duplicate key "1" (first at line 1)'),
    ("duplicate-key-with-a-line-break", '"a\\nb": 1\n? "a\\nb"\n: 2\n',
     'line 2: duplicate key "a\\nb" (first at line 1)'),
    ("an-alias-inside-itself", "a: &a {b: *a}\n", "line 1: nested more than 64 levels deep "
                                                  "once aliases are expanded (an alias inside "
                                                  "itself?)"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_refusals_are_one_line_with_where(text: str, message: str) -> None:
    with pytest.raises(YamlRefused) as refused:
        load_yaml(text)
    assert str(refused.value) == message


def test_nesting_up_to_the_bound_is_read() -> None:
    depth = yaml_input.MAX_DEPTH - 1  # and the top-level mapping
    nested: list[object] = []
    for _ in range(depth - 1):
        nested = [nested]
    assert load_yaml("a: " + "[" * depth + "]" * depth + "\n") == {"a": nested}


def test_an_alias_bomb_is_refused_after_the_floor_not_after_expanding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The work is bounded by the budget (values built), not by the expansion (9**10)."""
    built = []
    original = yaml_input._Builder.build

    def counting(self: yaml_input._Builder, node: yaml.nodes.Node) -> object:
        built.append(1)
        return original(self, node)

    monkeypatch.setattr(yaml_input._Builder, "build", counting)
    with pytest.raises(YamlRefused):
        load_yaml(bomb(12))
    assert len(built) == yaml_input.EXPANSION_FLOOR + 1


def test_a_large_legitimate_fleet_fits_the_budget() -> None:
    text = "endpoints:\n" + "".join(f"  - {{name: p{i}, kind: pod, pod_id: p{i}, "
                                    f"checks: [models, health]}}\n" for i in range(20_000))
    assert len(load_yaml(text)["endpoints"]) == 20_000


def test_a_document_over_the_size_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_input, "MAX_BYTES", 64)
    with pytest.raises(YamlRefused, match="more than the 64 bytes a config may have"):
        load_yaml("endpoints: " + "x" * 100)
