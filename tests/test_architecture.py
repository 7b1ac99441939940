"""The import-linter contracts in pyproject.toml and docs/architecture.md describe the same
house, and leave no module of probe out of it: a new module is placed in a layer before it
lands, and the simulator's list of what it may not import keeps up with the package."""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path

import probe

ROOT = Path(__file__).resolve().parent.parent


def contracts() -> list[dict[str, object]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: list[dict[str, object]] = data["tool"]["importlinter"]["contracts"]
    return found


def top_level() -> set[str]:
    return {f"probe.{m.name}" for m in pkgutil.iter_modules(probe.__path__)}


def contract(name_start: str) -> dict[str, object]:
    (found,) = [c for c in contracts() if str(c["name"]).startswith(name_start)]
    return found


def layered_modules() -> set[str]:
    layers = contract("Layers:")["layers"]
    assert isinstance(layers, list)
    return {m for layer in layers for m in re.split(r"\s*[|:]\s*", layer)}


def test_every_module_of_probe_is_in_a_layer() -> None:
    unplaced = top_level() - layered_modules() - {"probe.simulator"}
    assert not unplaced, f"place these in the layers contract (pyproject.toml): {unplaced}"


def test_the_layers_contract_names_only_modules_that_exist() -> None:
    assert layered_modules() <= top_level()


def test_the_simulator_may_import_nothing_else_of_probe() -> None:
    forbidden = contract("The simulator stands alone")["forbidden_modules"]
    assert isinstance(forbidden, list)
    assert set(forbidden) == top_level() - {"probe.simulator", "probe.__main__"}


def test_every_layer_has_a_contract_of_its_own() -> None:
    layers = contract("Layers:")["layers"]
    assert isinstance(layers, list)
    covered: set[str] = set()
    for c in contracts():
        if c["type"] == "forbidden":
            covered |= set(c["source_modules"])  # type: ignore[call-overload]
        if c["type"] == "independence":
            covered |= set(c["modules"])  # type: ignore[call-overload]
    entry = {"probe.__main__", "probe.cli", "probe.app"}  # the top: nothing is above it
    for layer in layers:
        modules = set(re.split(r"\s*[|:]\s*", layer))
        assert modules <= covered | entry, f"no contract of its own for {modules - covered}"


def test_the_architecture_page_names_every_layered_module() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = {m for m in layered_modules() if f"`{m}`" not in page}
    assert not missing, f"docs/architecture.md's layer table does not name {missing}"
