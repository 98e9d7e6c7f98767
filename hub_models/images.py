"""The image family: DCGAN, WGAN-GP, a VAE and a conditional GAN on emoji, digits or your images.

One bundle, ``ImageModel``, holds what a kind needs: a DCGAN-style generator (the decoder, for
the VAE), plus the discriminator (DCGAN, cGAN), the critic (WGAN-GP) or the encoder (VAE),
so that a published repo can be sampled, fine-tuned or resumed. ``FeatureNet`` is the
classifier trained on the real data whose features the metrics use (FID, KID,
precision/recall, density/coverage, class accuracy): no Inception weights exist offline, so
these numbers are comparable between models of this gallery, not with Inception FID.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hub_models.base import HubBundle

KINDS = ("dcgan", "wgan-gp", "vae", "cgan")
KIND_TITLES = {
    "dcgan": "DCGAN",
    "wgan-gp": "WGAN-GP",
    "vae": "VAE",
    "cgan": "cGAN (class-conditional)",
}

METRIC_NAMES = {
    "fid": "FID (domain features; lower is better)",
    "kid": "KID x 1000 (domain features; lower is better)",
    "precision": "precision (k=5)",
    "recall": "recall (k=5)",
    "density": "density (k=5)",
    "coverage": "coverage (k=5)",
    "class_accuracy": "class accuracy of conditional samples",
    "nn_ratio": "nearest-train distance, samples / held-out real (1 = as novel as real)",
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
    "from the training set as unseen real images are; far below 1 would mean copies."
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
    "(People & Body is 61 % of the set, mostly skin-tone variants)."
)


def check_image_shape(resolution: int, channels: int) -> None:
    """The DCGAN-style networks double or halve the size at each stage from 4x4."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError("resolution must be a power of two, at least 8")
    if channels not in (1, 3):
        raise ValueError("channels must be 1 (grey) or 3 (RGB)")


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

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.channels == 0:
            object.__setattr__(self, "channels", 1 if self.dataset == "mnist" else 3)
        check_image_shape(self.resolution, self.channels)
        if self.kind == "cgan" and self.num_classes == 0:
            from hub_models.imagedata import DIGITS, EMOJI_GROUPS

            names = {"mnist": DIGITS, "emoji": EMOJI_GROUPS}.get(self.dataset)
            if names is None:
                raise ValueError(
                    "cgan on your own folder needs --num_classes= (one subfolder per class)"
                )
            object.__setattr__(self, "num_classes", len(names))
            object.__setattr__(self, "class_names", names)
        if self.kind != "cgan" and self.num_classes:
            raise ValueError(f"{self.kind} is unconditional: leave num_classes at 0")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError("class_names must name num_classes classes")
        for name in ("z_dim", "g_width", "d_width", "steps", "batch_size", "n_critic"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def label(self) -> str:
        return f"{KIND_TITLES[self.kind]} on {self.dataset}, {self.resolution}x{self.resolution}"

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


def _levels(resolution: int) -> int:
    """Number of 2x up- (or down-) sampling stages between 4x4 and the image."""
    return int(math.log2(resolution)) - 2


class Generator(nn.Module):
    """Radford et al.: project the code to 4x4, then strided transposed convs with batch norm
    and ReLU, halving the channels at each doubling, and tanh at the output."""

    def __init__(self, config: ImageConfig) -> None:
        super().__init__()
        levels = _levels(config.resolution)
        width = config.g_width * 2 ** (levels - 1)
        self.num_classes = config.num_classes
        inputs = config.z_dim + config.num_classes  # the class enters as a one-hot vector
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(inputs, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(levels - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, config.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this generator is class-conditional: give labels")
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], 1)
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """Strided convs with LeakyReLU(0.2), batch norm after the first layer (none for the
    WGAN-GP critic, whose penalty is per sample) and one real/fake logit. For the cGAN the
    class enters as one-hot planes beside the image (Mirza & Osindero's conditioning in a
    DCGAN), so D judges image and class jointly. (A projection discriminator and an ACGAN
    class head were tried first: with them the class term dominated D's signal and the
    generator ignored its noise, one image per class.) With ``outputs = 2 * z_dim`` it is the
    VAE's encoder (mean and log-variance)."""

    def __init__(self, config: ImageConfig, outputs: int = 1, norm: bool = True) -> None:
        super().__init__()
        width = config.d_width
        self.num_classes = config.num_classes if outputs == 1 else 0
        layers: list[nn.Module] = [
            nn.Conv2d(config.channels + self.num_classes, width, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
        ]
        for _ in range(_levels(config.resolution) - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=not norm)]
            if norm:
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            width *= 2
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, outputs, 4, 1, 0)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: give labels")
            planes = F.one_hot(labels, self.num_classes).to(images.dtype)[:, :, None, None]
            images = torch.cat([images, planes.expand(-1, -1, *images.shape[2:])], 1)
        return self.head(self.trunk(images)).flatten(1)


def init_dcgan(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) weights, batch-norm gains N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ImageModel(HubBundle):
    """Generator plus the network its kind trains against (or encodes with)."""

    config_class = ImageConfig
    storage_dtype = torch.float16

    def __init__(self, config: ImageConfig) -> None:
        super().__init__(config)
        self.generator = Generator(config)
        if config.kind == "vae":
            self.encoder = Discriminator(config, outputs=2 * config.z_dim)
        else:
            self.discriminator = Discriminator(config, norm=config.kind != "wgan-gp")
        init_dcgan(self)

    @classmethod
    def load_folder(cls, folder, device="cpu") -> ImageModel:
        """Loaded for inference in channels-last layout: measured ~1.5x faster convolutions
        on CPU (`python -m benchmarks images-speed` compares both)."""
        return super().load_folder(folder, device).to(memory_format=torch.channels_last)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels)


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


# -- the feature extractor and the metrics -------------------------------------------------


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


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two feature sets: |mu_a - mu_b|^2 + Tr(Sa + Sb - 2 (Sa Sb)^1/2).

    Tr((Sa Sb)^1/2) is the sum of square roots of the eigenvalues of Sa^1/2 Sb Sa^1/2, which is
    symmetric: computed with two eigh calls in float64 instead of a general matrix sqrt.
    """
    if min(len(a), len(b)) < 2:
        return math.nan
    a, b = a.double(), b.double()
    mu = a.mean(0) - b.mean(0)
    sa, sb = torch.cov(a.T), torch.cov(b.T)
    va, ua = torch.linalg.eigh(sa)
    root_a = (ua * va.clamp_min(0).sqrt()) @ ua.T
    middle = torch.linalg.eigvalsh(root_a @ sb @ root_a).clamp_min(0).sqrt().sum()
    return float(mu @ mu + sa.trace() + sb.trace() - 2 * middle)


def kernel_inception_distance(
    a: torch.Tensor, b: torch.Tensor, subsets: int = 10, subset_size: int = 400, seed: int = 0
) -> float:
    """KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged over random subsets."""
    a, b = a.double(), b.double()
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    if m < 2:
        return math.nan
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=g)[:m]]
        y = b[torch.randperm(len(b), generator=g)[:m]]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = m * (m - 1)
        total += float(
            (kxx.sum() - kxx.diagonal().sum()) / off
            + (kyy.sum() - kyy.diagonal().sum()) / off
            - 2 * kxy.mean()
        )
    return total / subsets


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al.
    2020) with k-nearest-neighbour balls."""
    real, fake = real.double(), fake.double()
    k = min(k, len(real) - 1, len(fake) - 1)  # a small user set: fewer neighbours
    if k < 1:
        return dict.fromkeys(("precision", "recall", "density", "coverage"), math.nan)

    def kth_radius(x: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(x, x)
        return dist.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0

    r_real, r_fake = kth_radius(real), kth_radius(fake)
    d_rf = torch.cdist(real, fake)  # (real, fake)
    inside_real = d_rf <= r_real[:, None]
    precision = inside_real.any(0).double().mean()
    recall = (d_rf <= r_fake[None, :]).any(1).double().mean()
    density = inside_real.double().sum(0).mean() / k
    coverage = (d_rf.min(1).values <= r_real).double().mean()
    return {
        "precision": float(precision),
        "recall": float(recall),
        "density": float(density),
        "coverage": float(coverage),
    }


def nearest(
    queries: torch.Tensor, bank: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of each query's k nearest rows of ``bank`` (L2)."""
    dist = torch.cdist(queries.double(), bank.double())
    values, indices = dist.topk(k, dim=1, largest=False)
    return values.float(), indices


def image_metrics(
    fake: torch.Tensor,
    train_features: torch.Tensor,
    held_out_features: torch.Tensor,
    reference_index: torch.Tensor,
) -> dict[str, float]:
    """Every unconditional metric for one feature set against the training split."""
    reference = train_features[reference_index]
    near_fake = nearest(fake, train_features)[0].median()
    near_real = nearest(held_out_features, train_features)[0].median()
    return {
        "fid": frechet_distance(fake, train_features),
        "kid": 1000 * kernel_inception_distance(fake, train_features),
        **prdc(reference, fake),
        "nn_ratio": float(near_fake / near_real),
    }


def pixel_gaussian(train: torch.Tensor, n: int, seed: int, rank: int = 64) -> torch.Tensor:
    """The pixel-space baseline: samples of a Gaussian fitted to the training images
    (mean plus the top ``rank`` principal components, the rest as isotropic noise)."""
    x = train.flatten(1).double()
    mean = x.mean(0)
    _, s, v = torch.linalg.svd(x - mean, full_matrices=False)
    scale = s[:rank] / math.sqrt(len(x) - 1)
    rest = (s[rank:] ** 2).sum() / (len(x) - 1) / max(x.shape[1] - rank, 1)
    g = torch.Generator().manual_seed(seed)
    codes = torch.randn(n, rank, generator=g, dtype=torch.float64)
    noise = torch.randn(n, x.shape[1], generator=g, dtype=torch.float64) * rest.sqrt()
    out = mean + (codes * scale) @ v[:rank] + noise
    return out.float().clamp(-1, 1).reshape(n, *train.shape[1:])
