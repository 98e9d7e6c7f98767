"""The one registry: every family of the gallery.

Navigation, the training CLI, the benchmarks, the tests and the README's model table all read
``FAMILIES``. A family declares everything about itself (models, data, card text, page,
trainer, benchmarks, auxiliary models) in its own module as ``FAMILY``; adding one is that
module plus one line here (see "Adding a family" in the README).
"""

from __future__ import annotations

from hub_models import ganomaly, images, pose, seqgan, stackgan, toy2d
from hub_models.family import AuxiliaryModel, Dataset, Family, PublishedModel

__all__ = ["FAMILIES", "AuxiliaryModel", "Dataset", "Family", "PublishedModel", "family"]

FAMILIES: dict[str, Family] = {
    module.FAMILY.name: module.FAMILY
    for module in (toy2d, images, ganomaly, seqgan, stackgan, pose)
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None


def published(repo_id: str) -> tuple[Family, PublishedModel]:
    """The family and entry of any repo the gallery publishes, auxiliary models included."""
    for spec in FAMILIES.values():
        for model in (*spec.models, *spec.auxiliary):
            if model.repo_id == repo_id:
                return spec, model
    raise KeyError(f"{repo_id} is not a model this gallery publishes")
