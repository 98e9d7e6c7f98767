"""The README's first screen and model table stay true to the project."""

from __future__ import annotations

import re
from pathlib import Path

from hub_models.registry import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_first_screen_has_the_install_and_test_commands():
    first_screen = "\n".join(README.splitlines()[:20])
    assert "pip install -r requirements.txt && streamlit run app.py" in first_screen
    assert "python -m pytest -q" in first_screen
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text()


def test_screenshot_exists():
    image = re.search(r"!\[[^\]]*\]\(([^)]+)\)", README).group(1)
    assert (ROOT / image).is_file()


def test_model_table_lists_every_family_and_page():
    for family in FAMILIES.values():
        row = next(line for line in README.splitlines() if f"`{family.name}`" in line)
        assert family.title in row and f"pages/{family.page}" in row
        assert f"{len(family.models)}:" in row


def test_every_published_toy2d_repo_is_in_the_braces():
    row = next(line for line in README.splitlines() if "`toy2d`" in line)
    targets, variants = re.search(r"toy2d-\{([^}]*)\}-\{([^}]*)\}", row).groups()
    named = {f"gan-gallery/toy2d-{t}-{v}" for t in targets.split(",") for v in variants.split(",")}
    assert named == {m.repo_id for m in FAMILIES["toy2d"].models}


def test_every_published_image_repo_is_in_the_braces():
    row = next(line for line in README.splitlines() if "`images`" in line)
    datasets, kinds = re.search(r"images-\{([^}]*)\}-\{([^}]*)\}", row).groups()
    named = {f"gan-gallery/images-{d}-{k}" for d in datasets.split(",") for k in kinds.split(",")}
    vendors = re.search(r"images-emoji-\{([^}]*)\}`", row).group(1).split(",")
    named |= {f"gan-gallery/images-emoji-{v}" for v in vendors}
    assert named == {m.repo_id for m in FAMILIES["images"].models}


def test_every_published_ganomaly_repo_is_in_the_braces():
    row = next(line for line in README.splitlines() if "`ganomaly`" in line)
    digits = re.search(r"ganomaly-mnist-\{([^}]*)\}", row).group(1).split(",")
    textures = re.search(r"ganomaly-\{([^}]*)\}`", row).group(1).split(",")
    named = {f"gan-gallery/ganomaly-mnist-{d}" for d in digits}
    named |= {f"gan-gallery/ganomaly-{t}" for t in textures}
    assert named == {m.repo_id for m in FAMILIES["ganomaly"].models}


def test_every_published_seqgan_repo_is_named():
    row = next(line for line in README.splitlines() if "`seqgan`" in line)
    corpora = re.search(r"seqgan-\{([^}]*)\}", row).group(1).split(",")
    named = {f"gan-gallery/seqgan-{c}" for c in corpora} | {"gan-gallery/seqgan-oracle"}
    assert "`gan-gallery/seqgan-oracle`" in row
    assert named == {m.repo_id for m in FAMILIES["seqgan"].models}
