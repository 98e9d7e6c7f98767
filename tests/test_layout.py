"""The layout's rules, checked on the source: dependencies run pages -> gallery -> hub_models
<- training, and a family is reached only through its registry entry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hub_models.family import import_object
from hub_models.registry import FAMILIES

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).glob("*.py"))]


@pytest.mark.parametrize("path", [ROOT / "app.py", *sources("pages", "gallery")], ids=str)
def test_the_app_never_imports_training_code(path):
    assert "training" not in imported_packages(path)


@pytest.mark.parametrize("path", sources("hub_models"), ids=str)
def test_published_models_import_neither_the_app_nor_training(path):
    assert not imported_packages(path) & {"training", "gallery", "pages", "streamlit", "benchmarks"}


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))
def test_trainer_benchmarks_and_page_are_reached_through_the_registry_entry(family):
    assert family.make_trainer().family is family
    for name, path in family.benchmarks.items():
        assert callable(import_object(path)), name
    assert (ROOT / "pages" / family.page).is_file()
    for auxiliary in family.auxiliary:
        assert auxiliary.bundle is not None and auxiliary.sample is not None
        assert auxiliary.snapshot.is_dir(), f"{auxiliary.name} has no bundled snapshot"


def test_no_code_branches_on_a_family_name():
    """A new family is its modules plus a registry entry, never a new `if family == ...`."""
    branch = re.compile(r"(family|family_name|\.name)\s*[!=]=\s*[\"'](" + "|".join(FAMILIES) + ")")
    for path in sources("training", "benchmarks", "gallery", "pages", "hub_models"):
        found = branch.search(path.read_text(encoding="utf-8"))
        assert found is None, f"{path.name} branches on a family: {found.group(0)}"
