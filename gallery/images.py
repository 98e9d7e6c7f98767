"""What the "This emoji does not exist" page computes: models, references, novelty checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from hub_models import imagedata
from hub_models.features import features_for
from hub_models.metrics import nearest
from hub_models.registry import FAMILIES

FAMILY = FAMILIES["images"]
DATASET_LABELS = {  # in the page's order: the featured faces first
    "emoji-faces": "Emoji faces (4 vendors)",
    "emoji-all": "All emoji (4 vendors)",
    "emoji": "Twemoji (first models)",
    "mnist": "Digits",
}
NEIGHBOURS = 3


def published_models() -> dict[str, dict[str, str]]:
    """dataset -> {kind: published model name}, from the registry's model list."""
    table: dict[str, dict[str, str]] = {}
    for published in FAMILY.models:
        settings = dict(published.overrides)
        table.setdefault(str(settings["dataset"]), {})[str(settings["kind"])] = published.name
    return {d: table[d] for d in sorted(table, key=list(DATASET_LABELS).index)}


def published_datasets() -> list[str]:
    return list(published_models())


def kinds(dataset: str) -> list[str]:
    return list(published_models()[dataset])


def model_name(dataset: str, kind: str) -> str:
    return published_models()[dataset][kind]


def compared_models(dataset: str) -> list[tuple[str, str]]:
    """(dataset, kind) pairs for "side by side": every model of the dataset, or, for a dataset
    with one model, it beside the first Twemoji models."""
    own = [(dataset, kind) for kind in kinds(dataset)]
    if len(own) > 1:
        return own
    return own + [("emoji", kind) for kind in kinds("emoji")]


def style_row(class_names: tuple[str, ...], chosen: int) -> list[int]:
    """The classes that draw the chosen one in every vendor's style: every class of the faces
    model (its classes are the vendors), the chosen group's classes of the whole-set model
    ("Animals & Nature / OpenMoji"), none for a model without vendors."""
    titles = list(imagedata.builtin_classes("emoji-faces"))
    if list(class_names) == titles:
        return list(range(len(titles)))
    group = class_names[chosen].rsplit(" / ", 1)[0]
    row = [class_names.index(f"{group} / {t}") for t in titles if f"{group} / {t}" in class_names]
    return row if len(row) > 1 else []


@dataclass
class Reference:
    """A model's training data seen through the feature net: what novelty is measured against."""

    images: imagedata.ImageSet
    features: Callable[[torch.Tensor], torch.Tensor]  # images -> the space's features
    space: str  # what the distances are measured in, for captions
    train_rows: torch.Tensor  # the training images searched: positions in the training split
    train_features: torch.Tensor
    held_out_nearest: np.ndarray  # sorted distances of held-out real images to the train set

    @property
    def train(self) -> torch.Tensor:
        return self.images.train[self.train_rows]

    def percentile(self, distance: float) -> float:
        """Share of held-out real images that are closer to the training set than this."""
        return float(np.searchsorted(self.held_out_nearest, distance) / len(self.held_out_nearest))


# The whole-set emoji model's 11,803 training images take minutes to index in EfficientNet
# features on a CPU: its samples are searched among the training images of the class they were
# drawn for (a few hundred), and compared with that class's held-out images. The faces (437
# images) are searched whole, across vendors.
INDEX_BY_CLASS = ("emoji-all",)


@st.cache_resource(
    show_spinner="Reading the training set (the first time on a machine, the four-vendor "
    "emoji are indexed in EfficientNet features: a few seconds)…"
)
def reference(
    dataset: str,
    resolution: int,
    channels: int,
    folder: str | None = None,
    label: int | None = None,
) -> Reference:
    """The four-vendor emoji in EfficientNet-Lite0 features (what a person sees); the first
    models' data and a user's folder in their small feature net's."""
    images = imagedata.load_images(dataset, resolution, channels, Path(folder) if folder else None)
    train_rows = torch.arange(len(images.train_index))
    held_rows = torch.arange(len(images.held_out_index))
    if label is not None and folder is None:  # the pages give a label for INDEX_BY_CLASS only
        train_rows = (images.train_labels == label).nonzero()[:, 0]
        held_rows = (images.held_out_labels == label).nonzero()[:, 0]
    train_images, held_images = images.train[train_rows], images.held_out[held_rows]
    if folder is None and dataset in imagedata.MULTI_VENDOR and resolution == 32:
        from hub_models import effnet
        from hub_models.emojiscore import cached_features

        name = dataset if label is None else f"{dataset}-class{label}"
        train = cached_features(f"{name}-train", train_images)
        held_out = cached_features(f"{name}-held-out", held_images)
        features, space = effnet.features, "EfficientNet"
    else:
        net = features_for(dataset if folder is None else "", channels)
        train, held_out = net.features(train_images), net.features(held_images)
        features, space = net.features, "feature"
    held = nearest(held_out, train)[0][:, 0].numpy()
    return Reference(images, features, space, train_rows, train, np.sort(held))


@dataclass
class Neighbours:
    indices: torch.Tensor  # (N, k) into the reference's training images (Reference.train)
    feature_distance: torch.Tensor  # (N, k)
    pixel_rms: torch.Tensor  # (N, k) root-mean-square pixel difference in [0, 1] units


def neighbours(ref: Reference, generated: torch.Tensor, k: int = NEIGHBOURS) -> Neighbours:
    distance, index = nearest(ref.features(generated), ref.train_features, k)
    train = ref.train
    pixel = ((train[index] - generated[:, None]) / 2).pow(2).flatten(2).mean(2).sqrt()
    return Neighbours(index, distance, pixel)


def neighbour_caption(ref: Reference, index: int) -> str:
    """A training image's name: its emoji name (and vendor), digit or file position."""
    dataset_index = int(ref.images.train_index[ref.train_rows[index]])
    label = ref.images.class_names[int(ref.images.labels[dataset_index])]
    if ref.images.item_names:
        vendor = label.rsplit(" / ", 1)[-1] if ref.images.name in imagedata.MULTI_VENDOR else ""
        return ref.images.item_names[dataset_index] + (f" ({vendor})" if vendor else "")
    return f"{label} (#{dataset_index})"


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
