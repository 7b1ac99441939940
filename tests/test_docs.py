"""The README states what the program does: every outcome, every command, and the links
between the documents resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probe.app import PLUGINS
from probe.cli import build_parser
from probe.outcome import Outcome

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_outcome_is_in_the_readme_table() -> None:
    table = section(README, "Endpoint states and outcomes")
    named = set(re.findall(r"^\| (.+?) \|", table, re.M))
    listed = {name for cell in named for name in re.findall(r"`([a-z_0-9]+)`", cell)}
    assert {o.value for o in Outcome} - listed == set()


def test_every_command_is_in_the_readme_table() -> None:
    parser = build_parser(PLUGINS)
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    table = section(README, "Commands")
    for name in commands.choices:  # type: ignore[attr-defined]
        assert f"`runpod-probe {name}" in table, name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_between_documents_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target, anchor in re.findall(r"\]\(([^)#\s]+\.md)?(?:#([a-z0-9-]+))?\)", text):
        path = (doc.parent / target) if target else doc
        assert path.is_file(), f"{doc.name}: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{doc.name}: {target}#{anchor}"
