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
    from hub_models.registry import published

    family, model = published(repo_id)
    bundle = getattr(model, "bundle", None) or family.bundle
    return hub.load(bundle, repo_id, model.snapshot, revision, device)
