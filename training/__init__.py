"""`python -m training`: train, evaluate, sample and publish every family of the gallery."""

from __future__ import annotations


def trainers() -> dict:
    """Family name -> its Trainer; the keys match hub_models.registry.FAMILIES (tested)."""
    from training.ganomaly import GanomalyTrainer
    from training.images import ImageTrainer
    from training.seqgan import SeqGANTrainer
    from training.toy2d import Toy2DTrainer

    return {
        "toy2d": Toy2DTrainer(),
        "images": ImageTrainer(),
        "ganomaly": GanomalyTrainer(),
        "seqgan": SeqGANTrainer(),
    }
