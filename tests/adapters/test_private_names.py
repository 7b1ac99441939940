"""Private names fenced (issue 21): outside ``probe/adapters/``, no module of probe touches
another distribution's private names. An AST walk over every module of probe flags:

1. importing a private name, or from a private module, of a third-party package
   (``from aiohttp.connector import _x``, ``from prometheus_client._p import y``,
   ``import aiohttp._http_parser``). Third-party: any top-level package that is neither the
   standard library nor ``probe``.
2. reading ``_name`` (one leading underscore) on anything but ``self`` or ``cls``
   (``protocol._parser``, ``super()._release``, ``getattr(r, "_protocol")``), unless the
   module defines that private name itself (a function, class, variable or attribute it
   assigns), or the object is a module of the standard library (``sys._getframe``), or the
   name is a named tuple's documented ``_replace``/``_asdict``/``_fields``/``_make``:
   probe's modules reach into objects only through their own private names (the object's
   type is not known to an AST walk, so this also covers probe's own objects; probe has no
   such access today).
3. in a class that derives from a third-party class: defining a ``_name`` that a
   third-party class in its MRO has (overriding ``_release``, ``_start_timer``), or reading
   ``self._name``/``cls._name``/``super()._name`` that no class of probe in its MRO defines
   or assigns (``self._eventloop``, ``self._local_addr_infos``: the library's).

Rule 3 looks at the classes as imported (their real MRO, so it also catches a newer
library adding a private name that a probe subclass happens to define). The standard
library is not another distribution: its private names are not fenced here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).resolve().parents[2] / "probe"
ADAPTERS = PROBE / "adapters"


# documented API despite the underscore (named tuples, the standard library's and any other)
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_field_defaults", "_make"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _third_party(module: str) -> bool:
    root = module.split(".")[0]
    return root not in sys.stdlib_module_names and root not in ("probe", "builtins", "__future__")


def _third_party_classes(cls: type) -> list[type]:
    return [k for k in cls.__mro__[1:] if _third_party(k.__module__)]


def _own_names(tree: ast.AST) -> set[str]:
    """Private names a piece of probe's code defines: functions, classes, variables,
    ``self._name = ...`` attributes, ``__slots__`` entries."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del)
              and _through_self(node.value)):
            names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
            names.update(c.value for c in ast.walk(node.value)
                         if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return {n for n in names if _private(n)}


def _through_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _through_super(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "super")


def _reads(tree: ast.AST) -> list[tuple[ast.expr, str, int]]:
    """(object, private name, line) of every ``obj._name`` and ``getattr(obj, "_name")``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            found.append((node.value, node.attr, node.lineno))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            found.append((node.args[0], node.args[1].value, node.lineno))
    return found


def _imported_from(tree: ast.AST) -> dict[str, str]:
    """Local name -> the module it was imported from (``import aiohttp``: itself)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
    return names


def _class_findings(node: ast.ClassDef, namespace: dict[str, Any],
                    imported: dict[str, str]) -> list[str]:
    cls = namespace.get(node.name)
    if isinstance(cls, type) and cls.__qualname__ == node.name:
        libraries = _third_party_classes(cls)
        derives = bool(libraries)
        probe_own = _own_names(node)
        for klass in cls.__mro__[1:]:
            if klass.__module__.split(".")[0] == "probe":
                probe_own |= _own_names(ast.parse(inspect.getsource(klass)))
    else:  # not importable as such (a nested class): its bases as written
        roots = [b.value if isinstance(b, ast.Attribute) else b for b in node.bases]
        libraries = []
        derives = any(isinstance(r, ast.Name) and _third_party(imported.get(r.id, "probe"))
                      for r in roots)
        probe_own = _own_names(node)
    if not derives:
        return []

    def owner(name: str) -> type | None:
        return next((k for k in libraries if name in vars(k)), None)

    found = []
    for item in node.body:
        names = ([item.name] if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                 else [t.id for t in getattr(item, "targets", [getattr(item, "target", None)])
                       if isinstance(t, ast.Name)])
        for name in filter(_private, names):
            if (library := owner(name)) is not None:
                found.append(f"{item.lineno}: {node.name} defines {name}, private to "
                             f"{library.__module__}.{library.__qualname__}")
    for obj, name, line in _reads(node):
        inherited = owner(name) is not None
        if (_through_super(obj) and inherited) or (
                _through_self(obj) and (inherited or name not in probe_own)):
            found.append(f"{line}: {node.name} reads {ast.unparse(obj)}.{name}, "
                         f"inherited from a third-party class")
    return found


def findings(source: str, namespace: dict[str, Any]) -> list[str]:
    """Every touch of another distribution's private name in ``source`` (a module whose
    imported names are ``namespace``), as ``"line: what"``."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and _third_party(node.module):
            private_module = any(_private(part) for part in node.module.split("."))
            for alias in node.names:
                if private_module or _private(alias.name):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _third_party(alias.name) and any(map(_private, alias.name.split("."))):
                    found.append(f"{node.lineno}: import {alias.name}")
    own = _own_names(tree)
    imported = _imported_from(tree)
    for obj, name, line in _reads(tree):
        root = obj
        while isinstance(root, ast.Attribute):
            root = root.value
        from_stdlib = isinstance(root, ast.Name) and root.id in imported and not _third_party(
            imported[root.id])
        if not (_through_self(obj) or _through_super(obj) or name in own or from_stdlib
                or name in PUBLIC_UNDERSCORE):
            found.append(f"{line}: {ast.unparse(obj)}.{name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found.extend(_class_findings(node, namespace, imported))
    return sorted(set(found), key=lambda f: int(f.split(":")[0]))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROBE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> list[Path]:
    return sorted(p for p in PROBE.rglob("*.py") if ADAPTERS not in p.parents)


def test_no_module_outside_the_adapters_touches_a_private_name_of_another_library() -> None:
    problems = []
    for path in _modules():
        name = _module_name(path)
        # a __main__ runs its program when imported: its source is enough (it defines no class)
        namespace = {} if name.endswith("__main__") else vars(importlib.import_module(name))
        problems += [f"{path.relative_to(PROBE.parent)}:{f}"
                     for f in findings(path.read_text(), namespace)]
    assert problems == [], ("private names of other libraries belong in probe/adapters/ "
                            "(one module per library):\n" + "\n".join(problems))


def test_the_walk_covers_probe_and_leaves_out_only_the_adapters() -> None:
    modules = {_module_name(p) for p in _modules()}
    assert {"probe.net.transport", "probe.scheduler", "probe.exposition.text"} <= modules
    assert not any(m.startswith("probe.adapters") for m in modules)
    assert len(modules) > 100


def _snippet(source: str) -> list[str]:
    namespace: dict[str, Any] = {"__name__": "probe.snippet"}
    exec(compile(source, "<snippet>", "exec"), namespace)  # noqa: S102 - the test's own text
    return [f.split(": ", 1)[1] for f in findings(source, namespace)]


@pytest.mark.parametrize(("source", "expected"), [
    ("from prometheus_client.exposition import _bake_output",
     ["from prometheus_client.exposition import _bake_output"]),
    ("from aiohttp import _http_parser", ["from aiohttp import _http_parser"]),
    ("import aiohttp._http_parser", ["import aiohttp._http_parser"]),
    ("def f(protocol):\n    protocol._parser = None", ["protocol._parser"]),
    ("def f(r):\n    return getattr(r, '_protocol', None)", ["r._protocol"]),
    ("import aiohttp\nclass P(aiohttp.TCPConnector):\n"
     "    def _release(self, *a):\n        super()._release(*a)",
     ["P defines _release, private to aiohttp.connector.BaseConnector",
      "P reads super()._release, inherited from a third-party class"]),
    ("import aiohttp\nclass P(aiohttp.TCPConnector):\n"
     "    def own(self):\n        return self._local_addr_infos",
     ["P reads self._local_addr_infos, inherited from a third-party class"]),
    ("from apscheduler.schedulers.asyncio import AsyncIOScheduler\n"
     "class S(AsyncIOScheduler):\n    def go(self):\n        return self._eventloop",
     ["S reads self._eventloop, inherited from a third-party class"]),
], ids=["import-private-name", "import-private-module", "import-module-path",
        "attribute-of-a-parameter", "getattr-string", "override-and-super",
        "inherited-instance-attribute", "inherited-class-attribute"])
def test_the_walk_flags_each_way_of_reaching_a_private_name(source: str,
                                                            expected: list[str]) -> None:
    assert _snippet(source) == expected


@pytest.mark.parametrize("source", [
    "class A:\n    def __init__(self):\n        self._x = 1\n"
    "    def same(self, other):\n        return other._x + self._x",
    "import httpx\nclass T(httpx.AsyncBaseTransport):\n"
    "    def __init__(self):\n        self._session = None\n"
    "    def _client(self):\n        return self._session",
    "import sys\ndef f():\n    return sys._getframe(0)",
    "from collections import namedtuple\nP = namedtuple('P', 'a')\n"
    "def f(p):\n    return p._replace(a=1)",
], ids=["own-private-name", "subclass-with-its-own-names", "standard-library",
        "standard-library-object"])
def test_the_walk_leaves_probes_own_private_names_alone(source: str) -> None:
    assert _snippet(source) == []
