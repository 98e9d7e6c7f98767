"""Classifiers of real emoji that grade generated ones: linear heads on EfficientNet features.

A conditional model is judged by whether a classifier trained on *real* images reads its
samples as the class that was asked for; the faces model also by whether its samples are faces
at all. Each classifier is one linear layer (multinomial logistic regression) on the pooled
ImageNet features of EfficientNet-Lite0 (hub_models/effnet.py), trained on the training split
of the real data and published as an auxiliary model of the image family:

- ``images-emoji-faces-vendors``: which vendor drew a face (4 classes);
- ``images-emoji-all-classes``: CLDR group and vendor of any emoji (36 classes);
- ``images-emoji-face-check``: face or not a face, on the whole multi-vendor set.

The frozen ImageNet features do the seeing; the head only learns which directions separate the
classes, so it cannot key on a pixel quirk of one vendor's renderer the way a small CNN
trained from scratch on 32x32 pictures can.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hub_models import effnet
from hub_models.base import HubBundle
from hub_models.family import AuxiliaryModel

PROBES = {  # name -> (dataset, task)
    "images-emoji-faces-vendors": ("emoji-faces", "classes"),
    "images-emoji-all-classes": ("emoji-all", "classes"),
    "images-emoji-face-check": ("emoji-all", "face"),
}
FACE_CLASSES = ("not a face", "face")


@dataclass(frozen=True)
class ProbeConfig:
    dataset: str = "emoji-faces"
    task: str = "classes"  # "classes": the dataset's labels; "face": face or not
    class_names: tuple[str, ...] = ()
    resolution: int = 32  # of the real images it was trained on
    feature_dim: int = effnet.FEATURE_DIM
    weight_decay: float = 1e-3
    steps: int = 300
    # Each class weighs the same in the loss, whatever its share of the data: faces are 4 % of
    # all emoji, and an unweighted fit would call a doubtful picture "not a face" on the prior.
    balanced: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in ("classes", "face"):
            raise ValueError(f"task must be 'classes' or 'face', not {self.task!r}")
        if len(self.class_names) < 2:
            raise ValueError("a probe needs at least two class names")


class LinearProbe(HubBundle):
    """One linear layer on EfficientNet-Lite0's pooled features."""

    config_class = ProbeConfig

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.feature_dim, len(config.class_names))

    @torch.no_grad()
    def logits_of_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images in [-1, 1] -> (N,) class indices."""
        return self.head(effnet.features(images)).argmax(1)


def fit_probe(config: ProbeConfig, features: torch.Tensor, labels: torch.Tensor) -> LinearProbe:
    """Full-batch L-BFGS on the (class-balanced) cross-entropy with weight decay (the features
    are fixed, so the problem is convex and a few hundred iterations reach the optimum)."""
    torch.manual_seed(config.seed)
    probe = LinearProbe(config)
    features = features.clone()  # a normal tensor: features come from inference mode
    mean, scale = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / scale
    optimizer = torch.optim.LBFGS(probe.head.parameters(), max_iter=config.steps)

    counts = torch.bincount(labels, minlength=len(config.class_names)).clamp_min(1)
    weight = (len(labels) / counts / len(counts)).float() if config.balanced else None

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(probe.head(x), labels, weight=weight)
        loss = loss + config.weight_decay * probe.head.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():  # fold the standardisation into the layer: it takes raw features
        probe.head.weight.div_(scale)
        probe.head.bias.sub_(probe.head.weight @ mean)
    return probe.eval()


@torch.no_grad()
def smoke_probe(probe: LinearProbe, n: int, seed: int) -> torch.Tensor:
    """Class scores of ``n`` seeded random feature vectors: the contract tests' smoke run."""
    generator = torch.Generator().manual_seed(seed)
    return probe.logits_of_features(torch.rand(n, probe.config.feature_dim, generator=generator))


def probe_model(name: str) -> AuxiliaryModel:
    dataset, task = PROBES[name]
    what = "face or not" if task == "face" else f"the class of a {dataset} image"
    return AuxiliaryModel(
        name,
        f"classifier of real emoji ({what}) on EfficientNet-Lite0 features",
        bundle=LinearProbe,
        sample=smoke_probe,
    )


def load_probe(name: str) -> LinearProbe:
    from hub_models import hub

    published = probe_model(name)
    probe, _ = hub.load(LinearProbe, published.repo_id, published.snapshot)
    return probe
