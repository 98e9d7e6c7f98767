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

from dataclasses import dataclass

import torch

from hub_models.base import HubBundle, require_positive
from hub_models.blocks import DCGANDiscriminator, DCGANGenerator, check_image_shape, init_dcgan
from hub_models.family import Dataset, Family, PublishedModel
from hub_models.imagedata import MNIST

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
        require_positive(self, "z_dim", "width", "steps", "batch_size")

    @property
    def label(self) -> str:
        what = f"{self.anomaly} anomalous" if self.dataset == "mnist" else "defects"
        return f"{KIND_TITLES[self.kind]} on {self.dataset} ({what})"


class Ganomaly(HubBundle):
    """Encoder, decoder and second encoder; the discriminator (GANomaly only) is kept so that
    a published model can be fine-tuned or resumed. ``calibration`` holds the quantiles of
    raw scores on unseen normal images."""

    config_class = GanomalyConfig
    storage_dtype = torch.float16

    def __init__(self, config: GanomalyConfig) -> None:
        super().__init__(config)
        # As in the paper: the encoders are DCGAN discriminators with a z_dim output and the
        # decoder is a DCGAN generator.
        shape = {
            "width": config.width,
            "resolution": config.resolution,
            "channels": config.channels,
        }
        self.encoder = DCGANDiscriminator(outputs=config.z_dim, **shape)
        self.decoder = DCGANGenerator(z_dim=config.z_dim, **shape)
        if config.kind == "ganomaly":
            self.encoder2 = DCGANDiscriminator(outputs=config.z_dim, **shape)
            self.discriminator = DCGANDiscriminator(**shape)
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


@torch.inference_mode()
def score_images(model: Ganomaly, images: torch.Tensor, batch: int = 512) -> dict:
    """Reconstructions, residual maps and scores of a batch of images, in one pass per chunk.

    ``score`` is raw; ``relative`` is score / threshold (above 1 = anomalous) and
    ``percentile`` the share of calibration images with a lower score, once calibrated.
    Thread counts are the caller's policy (the app sets one for the whole server at start).
    """
    device = next(model.parameters()).device
    recons, scores = [], []
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
            * torch.searchsorted(model.calibration.float().cpu(), score.contiguous())
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


# -- the published models ------------------------------------------------------------------

# GANomaly: the paper's digit protocol for the digits named here (each one anomalous in turn,
# the nine others normal), and each texture with synthetic defects.
DIGITS = ("0", "2", "7")


def _ganomaly_models() -> tuple[PublishedModel, ...]:
    from hub_models.anomalydata import TEXTURES

    digits = tuple(
        PublishedModel(
            f"ganomaly-mnist-{digit}",
            f"GANomaly on digits, {digit} anomalous",
            (("dataset", "mnist"), ("anomaly", digit)),
        )
        for digit in DIGITS
    )
    return digits + tuple(
        PublishedModel(
            f"ganomaly-{texture}",
            f"GANomaly on {texture}, synthetic defects",
            (("dataset", texture),),
        )
        for texture in TEXTURES
    )


FAMILY = Family(
    name="ganomaly",
    title="Anomaly scoring (GANomaly)",
    tagline="Score any image for abnormality, see the reconstruction and the residual, "
    "and choose a threshold on the ROC curve.",
    page="ganomaly.py",
    icon=":material/troubleshoot:",
    bundle=Ganomaly,
    sample=sample,
    models=_ganomaly_models(),
    datasets=(
        MNIST,
        Dataset(
            "textures: brick, grass, gravel (512x512 grey photographs)",
            "scikit-image's skimage.data; defects drawn by hub_models/anomalydata.py",
            "CC0",
            "Texture photographs from scikit-image's data module (public domain).",
        ),
    ),
    papers=("https://arxiv.org/abs/1805.06725",),
    metric_names=METRIC_NAMES,
    protocol=PROTOCOL,
    intended_use=INTENDED_USE,
    limitations=LIMITATIONS,
    tags=("gan", "anomaly-detection", "ganomaly"),
    featured="ganomaly-brick",
    sample_caption="Test images (normal, then anomalous), their reconstructions and residuals.",
    trainer="training.ganomaly:GanomalyTrainer",
    benchmarks={
        "ganomaly": "benchmarks.ganomaly:table",  # per-setting AUROC with two baselines
        "ganomaly-speed": "benchmarks.ganomaly:speed",  # scoring one image, and a batch
    },
    long_benchmarks=("ganomaly",),
)
