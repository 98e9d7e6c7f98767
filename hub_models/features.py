"""The feature nets the image metrics run in, and a dataset seen through one (``Scorer``).

No Inception weights exist offline: each built-in image dataset has a small classifier
trained by this project on its training split (published as an auxiliary model of the image
family, ``gan-gallery/images-DATASET-features``); its penultimate layer is the metrics'
feature space. These numbers rank models of this gallery; they are not Inception FID.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hub_models.base import CheckpointError, HubBundle
from hub_models.family import AuxiliaryModel
from hub_models.metrics import image_metrics

PRDC_REFERENCE = 500  # training images the k-NN metrics compare with
FEATURE_DATASETS = ("mnist", "emoji")  # the built-in datasets that have a feature net


@dataclass(frozen=True)
class FeatureConfig:
    dataset: str = "mnist"
    resolution: int = 32
    channels: int = 1
    num_classes: int = 10
    class_names: tuple[str, ...] = ()
    width: int = 32
    feature_dim: int = 128
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0


class FeatureNet(HubBundle):
    """A small classifier of the real data; its penultimate layer is the metrics' space."""

    config_class = FeatureConfig
    storage_dtype = torch.float16

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config)
        w = config.width

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(config.channels, w),
            *block(w, w),
            nn.MaxPool2d(2),
            *block(w, 2 * w),
            *block(2 * w, 2 * w),
            nn.MaxPool2d(2),
            *block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * w, config.feature_dim),
            nn.ReLU(),
        )
        self.classify = nn.Linear(config.feature_dim, config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.body(images))

    @torch.inference_mode()
    def features(self, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
        images = self.fit_input(images)
        device = next(self.parameters()).device
        return torch.cat(
            [
                self.body(images[i : i + batch].to(device)).float().cpu()
                for i in range(0, len(images), batch)
            ]
        )

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
        images = self.fit_input(images)
        device = next(self.parameters()).device
        return torch.cat(
            [
                self(images[i : i + batch].to(device)).argmax(1).cpu()
                for i in range(0, len(images), batch)
            ]
        )

    def fit_input(self, images: torch.Tensor) -> torch.Tensor:
        """Bring images of another size or channel count to what the classifier saw."""
        c, r = self.config.channels, self.config.resolution
        if images.shape[1] != c:
            images = images.mean(1, keepdim=True) if c == 1 else images.expand(-1, c, -1, -1)
        if images.shape[-1] != r:
            images = F.interpolate(
                images, size=(r, r), mode="area" if images.shape[-1] > r else "bilinear"
            )
        return images


@torch.no_grad()
def smoke_features(net: FeatureNet, n: int, seed: int) -> torch.Tensor:
    """Features of ``n`` seeded noise images: the smoke test every published model passes."""
    c = net.config
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, c.channels, c.resolution, c.resolution, generator=generator) * 2 - 1
    return net.features(noise)


def feature_model(dataset: str) -> AuxiliaryModel:
    """The published feature net of a built-in image dataset."""
    return AuxiliaryModel(
        f"images-{dataset}-features",
        f"{dataset} feature extractor (the image metrics' feature space)",
        bundle=FeatureNet,
        sample=smoke_features,
    )


def features_for(dataset: str, channels: int) -> FeatureNet:
    """The published feature net of a built-in dataset; for a user's folder, the emoji net
    for colour images and the digit net for grey ones (said in the card's protocol)."""
    from hub_models import hub

    if dataset not in FEATURE_DATASETS:
        dataset = "mnist" if channels == 1 else "emoji"
    published = feature_model(dataset)
    try:
        net, _ = hub.load(FeatureNet, published.repo_id, published.snapshot)
    except CheckpointError as error:
        raise CheckpointError(
            f"{error}. The metrics need the {dataset} feature net: "
            f"python -m training auxiliary {published.name}"
        ) from error
    return net


def reference_index(n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:PRDC_REFERENCE]


@dataclass
class Scorer:
    """A dataset seen through its feature net, ready to score any set of images."""

    net: FeatureNet
    train: torch.Tensor  # features of the training split
    held_out: torch.Tensor  # features of the held-out split
    reference: torch.Tensor  # indices of the training features the k-NN metrics use

    @classmethod
    def for_data(cls, net: FeatureNet, images) -> Scorer:
        """``images``: anything with ``train`` and ``held_out`` image tensors (an ImageSet)."""
        features = net.features(images.train)
        return cls(net, features, net.features(images.held_out), reference_index(len(features)))

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """Every metric; with ``labels``, also the share the feature net classifies as asked."""
        metrics = image_metrics(
            self.net.features(images), self.train, self.held_out, self.reference
        )
        if labels is not None:
            metrics["class_accuracy"] = float((self.net.predict(images) == labels).float().mean())
        return metrics
