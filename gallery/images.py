"""What the "This emoji does not exist" page computes: models, references, novelty checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from hub_models import imagedata
from hub_models.features import FeatureNet, features_for
from hub_models.images import DATASETS, KIND_TITLES
from hub_models.metrics import nearest
from hub_models.registry import FAMILIES

FAMILY = FAMILIES["images"]
DATASET_LABELS = {"emoji": "Emoji", "mnist": "Digits"}
NEIGHBOURS = 3


def model_name(dataset: str, kind: str) -> str:
    return f"images-{dataset}-{kind}"


def kinds() -> list[str]:
    return list(KIND_TITLES)


def published_datasets() -> list[str]:
    """Emoji first: the page's namesake."""
    return sorted(DATASETS, key=lambda d: d != "emoji")


@dataclass
class Reference:
    """A model's training data seen through the feature net: what novelty is measured against."""

    images: imagedata.ImageSet
    net: FeatureNet
    train_features: torch.Tensor
    held_out_nearest: np.ndarray  # sorted distances of held-out real images to the train set

    def percentile(self, distance: float) -> float:
        """Share of held-out real images that are closer to the training set than this."""
        return float(np.searchsorted(self.held_out_nearest, distance) / len(self.held_out_nearest))


@st.cache_resource(show_spinner="Reading the training set…")
def reference(dataset: str, resolution: int, channels: int, folder: str | None = None) -> Reference:
    images = imagedata.load_images(dataset, resolution, channels, Path(folder) if folder else None)
    net = features_for(dataset if folder is None else "", channels)
    train = net.features(images.train)
    held = nearest(net.features(images.held_out), train)[0][:, 0].numpy()
    return Reference(images, net, train, np.sort(held))


@dataclass
class Neighbours:
    indices: torch.Tensor  # (N, k) into the training split
    feature_distance: torch.Tensor  # (N, k)
    pixel_rms: torch.Tensor  # (N, k) root-mean-square pixel difference in [0, 1] units


def neighbours(ref: Reference, generated: torch.Tensor, k: int = NEIGHBOURS) -> Neighbours:
    distance, index = nearest(ref.net.features(generated), ref.train_features, k)
    train = ref.images.train
    pixel = ((train[index] - generated[:, None]) / 2).pow(2).flatten(2).mean(2).sqrt()
    return Neighbours(index, distance, pixel)


def neighbour_caption(ref: Reference, index: int) -> str:
    """A training image's name: its emoji name, digit or file position."""
    dataset_index = ref.images.train_index[index]
    label = ref.images.class_names[int(ref.images.labels[dataset_index])]
    if ref.images.name == "emoji":
        return imagedata.emoji_name(imagedata.emoji_stems_for(dataset_index[None])[0])
    return f"{label} (#{int(dataset_index)})"


def novelty_verdict(ref: Reference, distance: float) -> str:
    """Plain words: how close the image is to its nearest training image, measured against
    how close real images the model never saw are to theirs."""
    share = ref.percentile(distance)
    if share < 0.01:
        return (
            "**Possibly a copy:** it is closer to a training image than 99 % of real images "
            "the model never saw are to theirs."
        )
    return (
        f"**Not a copy:** {share:.0%} of real images the model never saw sit closer to a "
        "training image than this one does."
    )
