"""Multi-vendor emoji seen through EfficientNet-Lite0: the scores of their models' cards and
of `python -m benchmarks images-effnet`.

The first emoji metrics ran in a small classifier trained on the same 32x32 emoji; it rated
colour blobs close to emoji. Here the space is ImageNet-trained EfficientNet-Lite0's pooled
features (hub_models/effnet.py), in which a blob and a face are far apart: the Fréchet
distance ("FD-EffNet", never to be mistaken for Inception FID), KID, precision / recall /
density / coverage and the nearest-neighbour ratio, plus two readings by classifiers trained
on real emoji (hub_models/probes.py): the share of images called a face, and the share read as
the class asked for.

The real images' features take minutes on a CPU, so they are kept on disk beside the rendered
emoji, keyed by a hash of the pixels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from hub_models import effnet, imagedata
from hub_models.emojidata import cache_root, write_atomically
from hub_models.metrics import (
    copies,
    frechet_distance,
    kernel_inception_distance,
    nearest,
    prdc,
)
from hub_models.probes import LinearProbe, load_probe

REFERENCE_SIZE = 4000  # training images the FD and the k-NN metrics compare with, at most
# The faces bar is read on 512 samples (128 per vendor), as the ablation reads it: on the
# held-out split's 48, one sample is 2 points and the share is uncertain by about 6.
WIDE_SAMPLES = 512
FACE_CHECK = "images-emoji-face-check"
CLASS_PROBES = {
    "emoji-faces": "images-emoji-faces-vendors",
    "emoji-all": "images-emoji-all-classes",
}
METRIC_NAMES = {
    "fd_effnet": "FD-EffNet (EfficientNet-Lite0 features; lower is better)",
    "kid_effnet": "KID-EffNet x 1000 (lower is better)",
    "precision": "precision (k=5, EffNet features)",
    "recall": "recall (k=5, EffNet features)",
    "density": "density (k=5, EffNet features)",
    "coverage": "coverage (k=5, EffNet features)",
    "nn_ratio": "nearest-train distance, samples / held-out real (EffNet features)",
    "copies": "share of samples within 2 % RMS (pixels) of a training image",
    "face_share": "share called a face by a classifier of real emoji",
    "class_accuracy": "class accuracy of conditional samples (classifier of real emoji)",
    f"face_share_{WIDE_SAMPLES}": f"share called a face, on {WIDE_SAMPLES} samples",
    f"class_accuracy_{WIDE_SAMPLES}": f"class accuracy, on {WIDE_SAMPLES} samples",
}


def cached_features(name: str, images: torch.Tensor) -> torch.Tensor:
    """EffNet features of a real image set, from the disk cache when its pixels match."""
    digest = hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]
    path = cache_root() / "effnet" / f"{name}-{len(images)}-{digest}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except (OSError, RuntimeError):  # partial or foreign: compute again
            pass
    features = effnet.features(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: torch.save(features, temporary))
    return features


def split_features(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """EffNet features of a built-in dataset's training and held-out splits (32x32)."""
    data = imagedata.load_images(dataset, 32, 3)
    return (
        cached_features(f"{dataset}-train", data.train),
        cached_features(f"{dataset}-held-out", data.held_out),
    )


def reference_index(n: int) -> torch.Tensor:
    """A fixed subset of a training split (seed 0), REFERENCE_SIZE images at most."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return order[:REFERENCE_SIZE].sort().values


def at_32(images: torch.Tensor) -> torch.Tensor:
    """Images at the 32x32 of the stored splits (a 64x64 model's samples, area-averaged)."""
    if images.shape[-1] == 32:
        return images
    return torch.nn.functional.interpolate(images, size=(32, 32), mode="area")


@dataclass
class EffNetScorer:
    """One multi-vendor dataset at 32x32 in EffNet features, ready to score any image set."""

    data: imagedata.ImageSet
    reference: torch.Tensor  # features of the training images at reference_index
    held_out: torch.Tensor  # features of the held-out split
    classes: LinearProbe
    faces: LinearProbe
    held_out_nearest: float = 0.0  # median distance of held-out real to the reference

    def __post_init__(self) -> None:
        # Every score divides by it: computed once, not per scored set.
        self.held_out_nearest = float(nearest(self.held_out, self.reference)[0].median())

    @classmethod
    def for_dataset(cls, dataset: str) -> EffNetScorer:
        train, held_out = split_features(dataset)
        return cls(
            imagedata.load_images(dataset, 32, 3),
            train[reference_index(len(train))],
            held_out,
            load_probe(CLASS_PROBES[dataset]),
            load_probe(FACE_CHECK),
        )

    def score(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Every metric of METRIC_NAMES; class accuracy only with ``labels``."""
        if features is None:
            features = effnet.features(images)
        row = {
            "fd_effnet": frechet_distance(features, self.reference),
            "kid_effnet": 1000 * kernel_inception_distance(features, self.reference),
            **prdc(self.reference, features),
            "nn_ratio": float(nearest(features, self.reference)[0].median())
            / self.held_out_nearest,
            "copies": copies(at_32(images), self.data.train),
        }
        return row | self.readings(features, labels)

    def readings(
        self, features: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """What the classifiers of real emoji read in images' features: the share called a
        face and, with ``labels``, the share read as the class asked for."""
        out = {
            "face_share": float(self.faces.logits_of_features(features).argmax(1).float().mean())
        }
        if labels is not None:
            predicted = self.classes.logits_of_features(features).argmax(1)
            out["class_accuracy"] = float((predicted == labels).float().mean())
        return out

    def wide_readings(self, model) -> dict[str, float]:
        """``readings`` of WIDE_SAMPLES samples of a conditional ImageModel (seed 0, no
        truncation, its classes in turn), keyed ``face_share_512`` and so on."""
        from hub_models.images import sample

        labels = torch.arange(WIDE_SAMPLES) % model.config.num_classes
        features = effnet.features(sample(model, WIDE_SAMPLES, 0, labels=labels))
        return {f"{k}_{WIDE_SAMPLES}": v for k, v in self.readings(features, labels).items()}

    def score_held_out(self) -> dict[str, float]:
        """The floor: real images the models never saw, scored like samples."""
        return self.score(self.data.held_out, self.data.held_out_labels, self.held_out)
