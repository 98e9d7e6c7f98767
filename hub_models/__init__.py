"""Published models: one module per family, the registry, and Hub access.

Load any published model in one line::

    from hub_models import load
    model, source = load("gan-gallery/toy2d-ring-hinge-sn")

or, with only huggingface_hub installed beside this package::

    from hub_models.toy2d import Toy2DGAN
    model = Toy2DGAN.from_pretrained("gan-gallery/toy2d-ring-hinge-sn")
"""

from __future__ import annotations


def load(repo_id: str, revision: str | None = None, device: str = "cpu"):
    """Load a published model by repo id (Hub, HF cache, then the bundled snapshot)."""
    from hub_models import hub
    from hub_models.images import FeatureNet
    from hub_models.registry import FAMILIES, IMAGE_DATASETS, feature_model

    for family in FAMILIES.values():
        for published in family.models:
            if published.repo_id == repo_id:
                return hub.load(family.bundle, repo_id, published.snapshot, revision, device)
    for dataset in IMAGE_DATASETS:  # the image metrics' feature extractors
        published = feature_model(dataset)
        if published.repo_id == repo_id:
            return hub.load(FeatureNet, repo_id, published.snapshot, revision, device)
    raise KeyError(f"{repo_id} is not a model this gallery publishes")
