"""Every bundled model card: it parses, its model-index numbers are eval.json's, and it states
the training command, the data with their licences, intended use and limitations."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from huggingface_hub import ModelCard

from hub_models import runfiles
from hub_models.registry import FAMILIES
from training.cards import AUXILIARY_SECTIONS, refresh_card

BUNDLED = [(f, m) for f in FAMILIES.values() for m in (*f.models, *f.auxiliary)]


@pytest.mark.parametrize(("family", "model"), BUNDLED, ids=[m.name for _, m in BUNDLED])
def test_bundled_card_parses_and_its_numbers_are_eval_json(family, model):
    card = ModelCard.load(model.snapshot / runfiles.CARD)
    metrics = json.loads((model.snapshot / runfiles.EVALUATION).read_text())
    record = json.loads((model.snapshot / runfiles.TRAINING).read_text())
    assert card.data.license == family.license
    assert card.data.model_name == model.name
    results = card.data.eval_results
    defined = {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
    assert {r.metric_type: r.metric_value for r in results} == defined  # exactly, not rounded
    assert len({(r.task_name, r.dataset_name) for r in results}) == 1
    text = card.text
    assert f"`{record['command']}`" in text
    data = text.split("## Data", 1)[1].split("\n## ", 1)[0]
    licences = [d.license for d in family.datasets if f"**{d.name}**" in data]
    assert licences and all(f"license {licence}" in data for licence in licences)
    for section in ("## Intended use", "## Limitations"):
        assert text.split(section, 1)[1].strip(), section


def test_auxiliary_card_rewrite_is_stable_and_names_the_target_repo(tmp_path):
    model = next(m for f in FAMILIES.values() for m in f.auxiliary)
    folder = tmp_path / model.name
    shutil.copytree(model.snapshot, folder)
    refresh_card(folder, model.repo_id)
    assert (folder / runfiles.CARD).read_bytes() == (model.snapshot / runfiles.CARD).read_bytes()
    refresh_card(folder, f"a-fork/{model.name}")
    text = (folder / runfiles.CARD).read_text()
    assert f'from_pretrained("a-fork/{model.name}")' in text
    assert f"{model.repo_id}" not in text
    assert text.count(AUXILIARY_SECTIONS) == 1
