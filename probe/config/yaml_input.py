"""Read the config's YAML within bounds: a size cap, and a cap on how many values the
document expands to, so aliases cannot make a small file cost minutes ("billion laughs").

PyYAML composes the node graph (libyaml's C parser when available), in which an alias is a
second reference to the same node, not a copy. Building Python values from it expands every
alias, so that is where the expansion is counted: past the cap the document is refused
before anything walks it. Scalars are built by PyYAML's own safe constructors (so ``yes``,
``0x1f``, ``1:30`` and dates mean what YAML 1.1 says); lists, mappings and merge keys
(``<<``) are built here, which is also several times faster than ``yaml.safe_load``.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 16 * 1024 * 1024  # a 10,000-endpoint fleet is about 1 MB
# Values a document may expand to: its own nodes several times over (merge keys and a few
# aliases are normal), never more than MAX_VALUES; an alias bomb of a few lines is refused
# after EXPANSION_FLOOR values, in milliseconds.
EXPANSION_FACTOR, EXPANSION_FLOOR, MAX_VALUES = 4, 100_000, 4_000_000
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlRefused(ValueError):
    """The document is not YAML we will read; the message says where and why."""


def load_yaml(text: str) -> Any:
    """The document's value, or ``YamlRefused``."""
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise YamlRefused(f"document: {size} bytes is more than the {MAX_BYTES} bytes a "
                          "config may have")
    try:
        return _load(text, _Loader)
    except yaml.YAMLError as exc:
        problem = _worded(text, exc)
    mark = getattr(problem, "problem_mark", None)
    where = f"line {mark.line + 1}" if mark is not None else "document"
    raise YamlRefused(f"{where}: not valid YAML: {getattr(problem, 'problem', None) or problem}")


def _worded(text: str, problem: yaml.YAMLError) -> yaml.YAMLError:
    """PyYAML's own parser words its problems better than libyaml does: ask it again."""
    if _Loader is yaml.SafeLoader:
        return problem
    try:
        _load(text, yaml.SafeLoader)
    except yaml.YAMLError as worded:
        return worded
    return problem


def _load(text: str, loader_class: Any) -> Any:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        budget = min(MAX_VALUES, max(EXPANSION_FLOOR, EXPANSION_FACTOR * _distinct(node)))
        return _Builder(loader, budget).build(node)
    finally:
        loader.dispose()


def _distinct(root: Node) -> int:
    """How many nodes the document has, each alias counted once (it is one node)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
    return len(seen)


class _Builder:
    def __init__(self, constructor: Any, budget: int) -> None:
        self.constructor = constructor
        self.budget = self.left = budget
        self.scalars = constructor.yaml_constructors

    def build(self, node: Node) -> Any:
        self.left -= 1
        if self.left < 0:
            raise YamlRefused(f"line {node.start_mark.line + 1}: the document expands to more "
                              f"than {self.budget} values (aliases nested in aliases?)")
        if isinstance(node, ScalarNode):
            tag, value = node.tag, node.value
            if tag == _STR:
                return value
            if tag == _INT and value.isdigit():
                return int(value)
            return self.scalars[tag](self.constructor, node)
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [self.build(child) for child in node.value]
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node)
        # !!set, !!omap, !!pairs: rare in a config; PyYAML's safe constructors build them
        return self.constructor.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # "<<: *defaults": earlier keys of the mapping win
                for merged in self._merged(value_node):
                    for key, value in merged.items():
                        out.setdefault(key, value)
                continue
            key = self.build(key_node)
            try:
                hash(key)
            except TypeError:
                raise YamlRefused(f"line {key_node.start_mark.line + 1}: a mapping key must "
                                  "be a plain value, not a list or a mapping") from None
            out[key] = self.build(value_node)
        return out

    def _merged(self, node: Node) -> list[dict[Any, Any]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        out = []
        for source in sources:
            value = self.build(source)
            if not isinstance(value, dict):
                raise YamlRefused(f"line {source.start_mark.line + 1}: a merge key (<<) needs "
                                  "a mapping or a list of mappings")
            out.append(value)
        return out
