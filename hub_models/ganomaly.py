"""Anomaly scoring with GANomaly (Akçay et al., 2018), and the baselines it is measured against.

GANomaly's generator is an autoencoder followed by a second encoder: x -> z = E(x) ->
x_hat = G(z) -> z_hat = E2(x_hat). It trains on normal images only, with three losses:
feature matching against a discriminator (adversarial), L1 reconstruction (contextual) and
L2 between the two codes (latent). An image the generator has not learnt to reproduce gets
a second code far from the first: the anomaly score is ||z - z_hat||^2 / dim.

The raw score is only meaningful relative to normal images, so every published model carries
the quantiles of its raw scores on *unseen normal* images (the calibration split): a new
image's score is reported as a multiple of the threshold at which 5 % of normal images
would be flagged, with its percentile among normal images. This answers what the original
code's users kept asking (how to score and threshold one image) without the test-set min-max
normalisation the original code uses.

``kind="autoencoder"`` is the reconstruction baseline: the same encoder and decoder trained
with an L2 reconstruction loss alone, scored by reconstruction error. ``knn_scores`` is the
second baseline: the mean distance in pixel space to the k nearest training images.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from hub_models.base import HubBundle
from hub_models.images import (
    Discriminator,
    Generator,
    ImageConfig,
    check_image_shape,
    init_dcgan,
)

KINDS = ("ganomaly", "autoencoder")
KIND_TITLES = {"ganomaly": "GANomaly", "autoencoder": "convolutional autoencoder"}
FALSE_ALARM_RATE = 0.05  # the default threshold flags this share of unseen normal images
QUANTILES = 101  # calibration quantiles stored with each model (every percentile)
KNN_K = 5

METRIC_NAMES = {
    "auroc": "AUROC, GANomaly score (higher is better)",
    "auroc_autoencoder": "AUROC, autoencoder reconstruction error (baseline)",
    "auroc_knn": "AUROC, k-NN pixel distance (baseline)",
    "false_alarm_rate": "share of normal test images above the default threshold",
    "detection_rate": "share of anomalous test images above the default threshold",
    "f1": "F1 at the default threshold",
}
PROTOCOL = (
    "Digits (the GANomaly paper's protocol on the 5,000-image MNIST subset, 32x32): one digit "
    "is the anomaly and the nine others are normal; the model trains on 72 % of the normal "
    "images, calibrates on 8 % (unseen normal images: the threshold and the score's scale) "
    "and is tested on the remaining 20 % of normal images plus all 500 images of the "
    "anomalous digit. Textures (scikit-image's brick, grass and gravel, 64x64 crops resized "
    "to 32x32): 2,000 training crops, 200 calibration crops and 600 test crops from "
    "separate 128x128 tiles of the photograph; half the test crops receive one synthetic defect "
    "(scratch, stain or patch of another texture, in turn; seeded). AUROC is computed on the "
    "whole test set from the raw score (for GANomaly ||z - z_hat||^2 / dim). The baselines "
    "are measured in the same run: a convolutional autoencoder (GANomaly's encoder and "
    "decoder, same steps, L2 loss; score = reconstruction error) and the mean L2 distance in "
    "pixel space to the 5 nearest training images. The default threshold is the 95th "
    "percentile of calibration scores; false-alarm and detection rates and F1 use it."
)
INTENDED_USE = (
    "Demonstrations and teaching: scoring one image for abnormality, seeing the "
    "reconstruction and the residual, choosing a threshold on a ROC curve, and comparing "
    "GANomaly with simple baselines under the paper's protocol. Not for inspecting real "
    "products or any safety decision."
)
LIMITATIONS = (
    "32x32 grey images and minutes of CPU training. AUROC on digits varies strongly with the "
    "anomalous digit (a 1 resembles normal strokes) and between seeds; a k-NN distance in "
    "pixel space is a strong baseline there. Texture anomalies are synthetic defects; real "
    "defects (as in MVTec AD) differ. Each texture is one photograph that is not uniform: "
    "normal crops from unseen tiles exceed the threshold calibrated to flag 5 % of normal "
    "images more often (brick 12 %, grass 57 %, gravel 3 % on the published models), and "
    "grass hides scratches and patches among its blades, so every method stays near chance "
    "on it. The score of an image unlike anything in training (a photo given to the digits "
    "model) is high for any model, which says nothing about its quality."
)


@dataclass(frozen=True)
class GanomalyConfig:
    """One anomaly model: what is normal, the network sizes and the training schedule."""

    kind: str = "ganomaly"
    dataset: str = "mnist"  # "mnist", a texture ("brick", "grass", "gravel"), or a folder name
    anomaly: str = "0"  # for mnist: the digit that is anomalous (the others are normal)
    resolution: int = 32
    channels: int = 1
    z_dim: int = 100
    width: int = 16
    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    w_adv: float = 1.0  # the paper's loss weights
    w_con: float = 50.0
    w_enc: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        check_image_shape(self.resolution, self.channels)
        for name in ("z_dim", "width", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def label(self) -> str:
        what = f"{self.anomaly} anomalous" if self.dataset == "mnist" else "defects"
        return f"{KIND_TITLES[self.kind]} on {self.dataset} ({what})"

    def image_config(self) -> ImageConfig:
        """The DCGAN-style networks' shapes: GANomaly's encoders are DCGAN discriminators with
        a z_dim output and its decoder is a DCGAN generator, as in the paper."""
        return ImageConfig(
            dataset=self.dataset,
            resolution=self.resolution,
            channels=self.channels,
            z_dim=self.z_dim,
            g_width=self.width,
            d_width=self.width,
        )


class Ganomaly(HubBundle):
    """Encoder, decoder and second encoder; the discriminator (GANomaly only) is kept so that
    a published model can be fine-tuned or resumed. ``calibration`` holds the quantiles of
    raw scores on unseen normal images."""

    config_class = GanomalyConfig
    storage_dtype = torch.float16

    def __init__(self, config: GanomalyConfig) -> None:
        super().__init__(config)
        shapes = config.image_config()
        self.encoder = Discriminator(shapes, outputs=config.z_dim)
        self.decoder = Generator(shapes)
        if config.kind == "ganomaly":
            self.encoder2 = Discriminator(shapes, outputs=config.z_dim)
            self.discriminator = Discriminator(shapes)
        init_dcgan(self)
        self.register_buffer("calibration", torch.zeros(QUANTILES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, raw score, code) of images in [-1, 1]."""
        z = self.encoder(x)
        x_hat = self.decoder(z)
        if self.config.kind == "ganomaly":
            score = (z - self.encoder2(x_hat)).pow(2).mean(1)
        else:
            score = (x - x_hat).pow(2).flatten(1).mean(1)
        return x_hat, score, z

    @property
    def threshold(self) -> float:
        """The raw score above which an image is called anomalous (5 % of normal images are)."""
        return float(self.calibration[round((1 - FALSE_ALARM_RATE) * (QUANTILES - 1))])

    @property
    def calibrated(self) -> bool:
        return bool(self.calibration[-1] > 0)

    def calibrate(self, normal: torch.Tensor) -> None:
        """Store the score quantiles of unseen normal images (after the final weights)."""
        scores = score_images(self, normal)["score"].double()
        levels = torch.linspace(0, 1, QUANTILES, dtype=torch.float64)
        quantiles = torch.quantile(scores, levels).float()
        self.calibration.copy_(quantiles.to(self.storage_dtype).float().clamp_min(1e-12))


SMALL_BATCH = 16  # up to this many images are scored on one CPU thread (see score_images)


@contextlib.contextmanager
def cpu_threads(n: int):
    """Run the block with ``n`` intra-op CPU threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.inference_mode()
def score_images(model: Ganomaly, images: torch.Tensor, batch: int = 512) -> dict:
    """Reconstructions, residual maps and scores of a batch of images, in one pass per chunk.

    ``score`` is raw; ``relative`` is score / threshold (above 1 = anomalous) and
    ``percentile`` the share of calibration images with a lower score, once calibrated.
    A few images run on one CPU thread: too little work to split, and with a second thread
    waiting on a busy core one image took 368 ms instead of 0.9 ms
    (`python -m benchmarks ganomaly-speed` measures both).
    """
    device = next(model.parameters()).device
    small = device.type == "cpu" and len(images) <= SMALL_BATCH
    recons, scores = [], []
    with cpu_threads(1) if small else contextlib.nullcontext():
        for start in range(0, len(images), batch):
            x = images[start : start + batch].to(device)
            x_hat, score, _ = model(x)
            recons.append(x_hat.float().cpu())
            scores.append(score.float().cpu())
    recon = torch.cat(recons) if recons else images.new_zeros(images.shape)
    score = torch.cat(scores) if scores else images.new_zeros(0)
    out = {
        "reconstruction": recon,
        "residual": (images - recon).abs().mean(1),
        "score": score,
    }
    if model.calibrated:
        out["relative"] = score / model.threshold
        out["percentile"] = (
            100
            * torch.searchsorted(model.calibration.float(), score.contiguous())
            .float()
            .clamp(max=QUANTILES - 1)
            / (QUANTILES - 1)
        )
    return out


def sample(model: Ganomaly, n: int, seed: int) -> torch.Tensor:
    """Reconstructions of ``n`` seeded noise images: the smoke test every family passes."""
    noise = torch.rand(n, model.config.channels, model.config.resolution, model.config.resolution,
                       generator=torch.Generator().manual_seed(seed)) * 2 - 1  # fmt: skip
    return score_images(model, noise)["reconstruction"]


# -- the baselines and the metrics ---------------------------------------------------------


def knn_scores(train: torch.Tensor, test: torch.Tensor, k: int = KNN_K) -> torch.Tensor:
    """Mean L2 pixel distance from each test image to its k nearest training images."""
    a, b = train.flatten(1).double(), test.flatten(1).double()
    out = []
    for start in range(0, len(b), 1024):
        dist = torch.cdist(b[start : start + 1024], a)
        out.append(dist.topk(min(k, len(a)), largest=False).values.mean(1))
    return torch.cat(out).float()


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: the probability that a random anomalous image scores above a
    random normal one, ties counting one half (the Mann-Whitney U statistic)."""
    scores, labels = scores.double().flatten(), labels.flatten().bool()
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        raise ValueError("AUROC needs both normal and anomalous images")
    order = scores.argsort()
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    # Average the ranks of tied scores.
    unique, inverse, counts = torch.unique(sorted_scores, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(unique), dtype=torch.float64).index_add_(
        0, inverse, torch.arange(1, len(scores) + 1, dtype=torch.float64)
    )
    ranks[order] = (sums / counts)[inverse]
    u = ranks[labels].sum() - pos * (pos + 1) / 2
    return float(u / (pos * neg))


def roc_curve(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """False- and true-positive rates at every distinct threshold, from strictest to loosest
    (an image is flagged when its score is >= the threshold)."""
    scores, labels = scores.double().flatten(), labels.flatten().double()
    order = scores.argsort(descending=True)
    s, y = scores[order], labels[order]
    tp, fp = y.cumsum(0), (1 - y).cumsum(0)
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # keep the last of each run of ties
    zero = torch.zeros(1, dtype=torch.float64)
    return {
        "fpr": torch.cat([zero, fp[last] / max(1.0, float(fp[-1]))]),
        "tpr": torch.cat([zero, tp[last] / max(1.0, float(tp[-1]))]),
        "threshold": torch.cat([torch.tensor([float("inf")], dtype=torch.float64), s[last]]),
    }


def at_threshold(scores: torch.Tensor, labels: torch.Tensor, threshold: float) -> dict:
    """Precision, recall (detection rate), F1 and false-alarm rate when flagging score >= t."""
    flagged, labels = scores >= threshold, labels.bool()
    tp = int((flagged & labels).sum())
    fp = int((flagged & ~labels).sum())
    fn = int((~flagged & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    negatives = int((~labels).sum())
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_alarm_rate": fp / negatives if negatives else 0.0,
    }
