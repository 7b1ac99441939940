"""Read the config's YAML within bounds: a size cap, a cap on how deep it nests, and a cap on
how many values the document expands to, so aliases cannot make a small file cost minutes
("billion laughs").

The node graph is composed here from the parser's events (libyaml's C parser when
available), in a loop rather than by recursion: PyYAML's own composers recurse once per
level, so ``[[[[…`` 500 deep (a 1 KB file) was a RecursionError and 100,000 deep crashed
libyaml's C composer outright; here nesting past MAX_DEPTH is refused with its line before
anything else looks at it. In the graph an alias is a second reference to the same node,
not a copy. Building Python values from it expands every alias, so that is where the
expansion and the expanded depth are counted: past either cap the document is refused
before anything walks it. Scalars are built by PyYAML's own safe constructors (so ``yes``,
``0x1f``, ``1:30`` and dates mean what YAML 1.1 says); lists, mappings and merge keys
(``<<``) are built here, which is also several times faster than ``yaml.safe_load``.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode

from probe.config.fields import quoted

MAX_BYTES = 16 * 1024 * 1024  # a 10,000-endpoint fleet is about 1 MB
# Values a document may expand to: its own nodes several times over (merge keys and a few
# aliases are normal), never more than MAX_VALUES; an alias bomb of a few lines is refused
# after EXPANSION_FLOOR values, in milliseconds.
EXPANSION_FACTOR, EXPANSION_FLOOR, MAX_VALUES = 4, 100_000, 4_000_000
# Lists and mappings inside each other: a config nests a handful (a prompt's messages or a
# JSON expectation a few more); aliases count where they are expanded.
MAX_DEPTH = 64
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
    except RecursionError:  # PyYAML's constructors for !!set/!!omap recurse; nothing else does
        raise YamlRefused(f"document: nested more than {MAX_DEPTH} levels deep") from None
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
        node, count = _compose(loader)
        if node is None:
            return None
        budget = min(MAX_VALUES, max(EXPANSION_FLOOR, EXPANSION_FACTOR * count))
        return _Builder(loader, budget).build(node)
    finally:
        loader.dispose()


def _compose(loader: Any) -> tuple[Node | None, int]:
    """The document's node graph, as ``loader.get_single_node()`` composes it (same tags,
    anchors and errors), and how many nodes it has (an alias is the node it names, counted
    once). Built from the parser's events in a loop: nesting past MAX_DEPTH is refused at
    the line where it goes deeper."""
    loader.get_event()  # stream start
    if loader.check_event(StreamEndEvent):
        return None, 0
    start = loader.get_event().start_mark  # document start
    get_event, resolve = loader.get_event, loader.resolve
    tags: dict[tuple[str, Any], str] = {}  # a plain scalar's resolved tag, by value
    anchors: dict[str, Node] = {}
    open_: list[CollectionNode] = []  # the collections being filled, innermost last
    keys: list[Node | None] = []  # per open collection: a mapping's key waiting for its value
    count = 0
    while True:
        event = get_event()
        kind = type(event)
        node: Node
        if kind is SequenceEndEvent or kind is MappingEndEvent:
            node = open_.pop()
            keys.pop()
            node.end_mark = event.end_mark
            if not open_:
                break
            continue
        if kind is AliasEvent:
            if event.anchor not in anchors:
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                    event.start_mark)
            node = anchors[event.anchor]
        else:
            count += 1
            tag = event.tag
            if kind is ScalarEvent:
                if tag is None or tag == "!":
                    implicit = event.value, event.implicit
                    tag = tags.get(implicit)
                    if tag is None:
                        tag = tags[implicit] = resolve(ScalarNode, *implicit)
                node = ScalarNode(tag, event.value, event.start_mark, event.end_mark,
                                  style=event.style)
            else:
                if len(open_) == MAX_DEPTH:
                    raise YamlRefused(f"line {event.start_mark.line + 1}: nested more than "
                                      f"{MAX_DEPTH} levels deep (lists and mappings inside "
                                      "each other)")
                node_class = SequenceNode if kind is SequenceStartEvent else MappingNode
                if tag is None or tag == "!":
                    tag = resolve(node_class, None, event.implicit)
                node = node_class(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                if event.anchor in anchors:
                    raise ComposerError(f"found duplicate anchor {event.anchor!r}; first "
                                        "occurrence", anchors[event.anchor].start_mark,
                                        "second occurrence", event.start_mark)
                anchors[event.anchor] = node
        if open_:  # into the innermost open collection
            parent = open_[-1]
            if type(parent) is SequenceNode:
                parent.value.append(node)
            elif keys[-1] is None:
                keys[-1] = node
            else:
                parent.value.append((keys[-1], node))
                keys[-1] = None
        if kind is SequenceStartEvent or kind is MappingStartEvent:
            open_.append(node)  # type: ignore[arg-type]
            keys.append(None)
        elif not open_:  # a document that is one scalar (or alias)
            break
    get_event()  # document end
    if not loader.check_event(StreamEndEvent):
        raise ComposerError("expected a single document in the stream", start,
                            "but found another document", get_event().start_mark)
    return node, count


class _Builder:
    def __init__(self, constructor: Any, budget: int) -> None:
        self.constructor = constructor
        self.budget = self.left = budget
        self.depth = 0  # lists and mappings open around the node being built
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
        if self.depth == MAX_DEPTH:  # composed within it: aliases took it deeper
            raise YamlRefused(f"line {node.start_mark.line + 1}: nested more than {MAX_DEPTH} "
                              "levels deep once aliases are expanded (an alias inside itself?)")
        self.depth += 1
        try:
            if isinstance(node, SequenceNode) and node.tag == _SEQ:
                return [self.build(child) for child in node.value]
            if isinstance(node, MappingNode) and node.tag == _MAP:
                return self._mapping(node)
        finally:
            self.depth -= 1
        # !!set, !!omap, !!pairs: rare in a config; PyYAML's safe constructors build them
        return self.constructor.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        lines: dict[Any, int] = {}  # the line each key of this mapping was written on
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # "<<: *defaults": earlier keys of the mapping win
                for merged in self._merged(value_node):
                    for key, value in merged.items():
                        out.setdefault(key, value)
                continue
            key = self.build(key_node)
            line = key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:
                raise YamlRefused(f"line {line}: a mapping key must be a plain value, not a "
                                  "list or a mapping") from None
            if first is not None:  # it would replace the first one's value (a second
                # ``endpoints:`` the whole list) without a word: say where both are
                raise YamlRefused(f"line {line}: duplicate key {quoted(str(key), 60)} (first "
                                  f"at line {first})")
            lines[key] = line
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
