"""Text to image with StackGAN (Zhang et al., ICCV 2017), on captioned shape scenes.

Beside the shapes (``dataset="shapes"``, the published model), the same networks train on
captioned pictures (hub_models/captiondata.py): every vendor's emoji captioned by CLDR name
(``dataset="emoji"``) or a user's folder (``--data FOLDER``, recorded as ``dataset="folder"``).
Those have no attribute grader; R-precision needs a matcher trained on the same captions.

A caption is read by a text encoder this project trains (hub_models/textenc.py; its weights
are copied into every StackGAN bundle, so a published model samples from a caption alone).
Conditioning augmentation turns the caption's vector into a Gaussian (mu, sigma) and samples
the generator's condition from it, with a KL term towards N(0, I): nearby captions give
overlapping conditions, and one caption gives a family of pictures. Stage-I draws a 32x32
sketch from the condition and noise; Stage-II reads that sketch and the caption again (its own
conditioning augmentation), encodes the sketch down to 16x16, joins the condition, refines with
residual blocks and draws 64x64. Each stage has a matching-aware discriminator: it judges an
image together with a caption, and a real image with a mismatched caption counts as fake, so
that matching the text is part of looking real.

Grading uses models that never train a generator: an attribute classifier of real renders
(``AttributeClassifier``: for each colour, which shape is there or none, its size and its
centre; relations follow from the centres) and a separate image-text matcher
(``textenc.TextImageModel`` trained on its own) for R-precision. The metric maths are pure
functions here (``caption_targets``, ``attribute_accuracy``, ``r_precision``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from hub_models import shapesdata, textenc
from hub_models.base import HubBundle, require_positive
from hub_models.blocks import init_dcgan
from hub_models.diffaugment import check_policy
from hub_models.emojidata import VENDORS
from hub_models.family import AuxiliaryModel, Dataset, Family, PublishedModel
from hub_models.objectives import check_objective, discriminator_loss

DATASETS = ("shapes", "emoji", "folder")  # folder: the user's --data (captiondata)
TEXT_ENCODER = "stackgan-shapes-text-encoder"
MATCHER = "stackgan-shapes-matcher"
ATTRIBUTES = "stackgan-shapes-attributes"
# The emoji model's own text encoder and matcher (training.stackgan.train_text_image).
EMOJI_TEXT_ENCODER = "stackgan-emoji-text-encoder"
EMOJI_MATCHER = "stackgan-emoji-matcher"
CAPTION_SEED = 7  # the captions of the fixed test and held-out scenes (one phrasing each)
R_CANDIDATES = 100  # R-precision: the true caption among this many (AttnGAN's protocol)

SETS = ("test", "held_out")
ATTRIBUTE_KEYS = ("colour", "shape", "size", "relation")
SOURCES = {
    "": "Stage-II samples",
    "retrieval_": "retrieval baseline (the training image of the nearest caption)",
    "real_": "real renders (the grader's ceiling)",
}
SET_TITLES = {"test": "test set", "held_out": "held-out compositions"}

METRIC_NAMES = {
    f"{source}{split}_{key}": f"{key} accuracy, {SET_TITLES[split]}, {title}"
    for source, title in SOURCES.items()
    for split in SETS
    for key in ATTRIBUTE_KEYS
} | {
    "r_precision": "R-precision, Stage-II samples, test set (higher is better)",
    "r_precision_held_out": "R-precision, Stage-II samples, held-out compositions",
    "r_precision_stage1": "R-precision, Stage-I samples (upsampled), test set",
    "r_precision_shuffled": "R-precision against shuffled captions (control: about chance)",
    "r_precision_real": "R-precision, real renders, test set (the matcher's ceiling)",
    "r_precision_chance": "R-precision by chance",
}
PROTOCOL = (
    "Captioned shapes (hub_models/shapesdata.py): the fixed test scenes (training compositions "
    "only) and the fixed held-out scenes (each with at least one colour-shape pair that no "
    "training scene holds), one caption each (seeded grammar, synonyms and word orders), one "
    "Stage-II sample per caption (seed 0). Attribute accuracy is read by a classifier trained "
    "on real renders (stackgan-shapes-attributes): for each object a caption names, colour = an "
    "object of that colour is there, shape = that object has the named shape, size = it has "
    "the named size (only where the caption states one), relation = the two objects' predicted "
    "centres stand in the named relation (the renderer's rule: the larger offset decides). "
    "Objects the caption does not name are not graded. Beside them, in the same run: the "
    "retrieval baseline (the training render whose caption is nearest by the conditioning "
    "text encoder, from a pool of training scenes), which cannot compose a pair it never saw, "
    "and real renders of the same scenes (the classifier's ceiling). R-precision: the true "
    "caption must score above 99 others drawn from the same set by a separate matcher "
    "(stackgan-shapes-matcher, trained on real pairs only, never used in training a "
    "generator); chance is 1 %, and the shuffled-caption control pairs each sample with "
    "another sample's caption."
)
INTENDED_USE = (
    "Demonstrations and teaching: type a caption and watch Stage-I sketch it and Stage-II "
    "refine it; change one word and keep the noise to see the text control the picture; "
    "measure how well a text-to-image GAN composes colour-shape pairs it never saw. Not for "
    "generating images of the real world."
)
LIMITATIONS = (
    "Synthetic scenes of one to three flat shapes from a closed grammar of about 40 words; "
    "other words become <unk> and are shown as unknown. 64x64 pictures and a CPU training "
    "budget: small objects are a few pixels wide, and relations between three objects are "
    "the hardest part. The attribute classifier and the matcher are themselves trained models "
    "with their own errors (their accuracy on real renders is reported beside every number); "
    "they grade what a caption says and ignore extra objects."
)


# -- the generator and its discriminators ---------------------------------------------------


def check_resolution(resolution: int) -> None:
    """Stage-II's side; Stage-I draws half of it, at least 8x8."""
    if resolution < 16 or resolution & (resolution - 1):
        raise ValueError("resolution must be a power of two, at least 16 (Stage-I draws half)")


@dataclass(frozen=True)
class StackGANConfig:
    """One text-to-image model: data, the copied text encoder's shape, sizes, schedule."""

    dataset: str = "shapes"
    resolution: int = 64  # Stage-II; Stage-I draws resolution / 2
    z_dim: int = 64
    c_dim: int = 64  # the condition sampled by conditioning augmentation
    # The text encoder copied into the bundle (must match the one named by text_encoder).
    vocabulary: tuple[str, ...] = textenc.shapes_vocabulary()
    word_dim: int = 64
    text_hidden: int = 64
    text_dim: int = 128
    # Sized for two hours of a 2-core CPU (see the demo preset in training/stackgan.py): the
    # paper's 64x64 model is ~10x wider, but shapes are flat colours on pale backgrounds.
    g1_width: int = 24  # Stage-I's channels at its output; doubled at each coarser level
    g2_width: int = 12  # Stage-II's channels at its output; 4x in its residual trunk
    residual_blocks: int = 2
    d1_width: int = 32
    d2_width: int = 24
    d_text_dim: int = 64  # the caption's vector compressed for each discriminator
    objective: str = "hinge"
    kl_weight: float = 2.0  # the paper's coefficient on the per-dimension mean KL
    # Share of the real pictures whose mismatched caption is a near miss (one colour, shape,
    # size or relation changed) rather than another picture's caption; rendered shapes only.
    near_misses: float = 0.0
    # Weight of the discriminators' image-caption contrastive term (0: none, and no embedding
    # layer), on real pictures for D and on samples for G, at this temperature.
    w_contrastive: float = 0.0
    temperature: float = 0.1
    # Weight of the discriminators' attribute head (AC-GAN, Odena et al. 2017; rendered shapes
    # only; 0: none, and no head): from the trunk's 4x4 features D names, for every colour,
    # the shape (or none) and size on real pictures, and their centres; G is asked to make D
    # read the caption's shapes and sizes in its samples and the stated relations between
    # the centres. A real/fake logit says only that a picture is wrong, the head says where.
    w_attributes: float = 0.0
    augment: str = ""  # DiffAugment policy; "color" is refused (it breaks colour matching)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    steps: int = 10000
    stage2_start: int = 2500  # Stage-I trains alone before this step, then both together
    batch_size: int = 32
    # Samples come from an exponential moving average of both stages' weights (and their
    # conditioning augmentation), as for the small-data emoji models; 0: the last weights.
    ema_decay: float = 0.0
    # A fine-tune: every weight copied from this trained model of the same architecture (a
    # run folder, or the name of a published StackGAN); "" starts from scratch.
    init_from: str = ""
    # Published names or folders of the auxiliary models; "" = none (the text encoder stays
    # random and the metrics that need a grader are NaN: smoke runs only).
    text_encoder: str = TEXT_ENCODER
    attributes: str = ATTRIBUTES
    matcher: str = MATCHER
    eval_scenes: int = 500  # per fixed set
    retrieval_pool: int = 5000  # training scenes the retrieval baseline searches
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(
                f"dataset must be one of {DATASETS}, not {self.dataset!r} (a folder of your "
                "own captioned pictures is --data FOLDER)"
            )
        check_resolution(self.resolution)
        check_objective(self.objective)
        if "color" in check_policy(self.augment):
            raise ValueError(
                "augment must not include 'color': the discriminator must see true colours "
                "to judge whether an image matches its caption"
            )
        require_positive(self, "z_dim", "c_dim", "word_dim", "text_hidden", "text_dim")
        require_positive(self, "g1_width", "g2_width", "d1_width", "d2_width", "d_text_dim")
        require_positive(self, "steps", "batch_size", "eval_scenes", "retrieval_pool")
        if self.w_contrastive < 0 or self.temperature <= 0:
            raise ValueError("w_contrastive must be >= 0 and temperature > 0")
        if self.w_attributes < 0:
            raise ValueError("w_attributes must be >= 0")
        if self.w_attributes and self.dataset != "shapes":
            raise ValueError(
                "w_attributes needs captions with known attributes: rendered shapes only"
            )
        if self.w_attributes and self.augment:
            raise ValueError(
                "w_attributes cannot be used with augment: the head learns where each object "
                "is, and augmentations move or hide objects"
            )
        if not 0 <= self.near_misses <= 1:
            raise ValueError("near_misses is a share: between 0 and 1")
        if self.residual_blocks < 0 or self.stage2_start < 0 or self.kl_weight < 0:
            raise ValueError("residual_blocks, stage2_start and kl_weight must be >= 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError("ema_decay must be in [0, 1); 0 samples the last weights")
        textenc.vocabulary_index(self.vocabulary)

    @property
    def stage1_resolution(self) -> int:
        return self.resolution // 2

    @property
    def text_shape(self) -> textenc.TextEncoderShape:
        return textenc.TextEncoderShape(
            self.vocabulary, self.word_dim, self.text_hidden, self.text_dim
        )

    @property
    def label(self) -> str:
        return f"StackGAN on {self.dataset}, {self.stage1_resolution} -> {self.resolution}"


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), averaged over batch and dimensions as in the paper's
    code: 0.5 * mean(mu^2 + exp(logvar) - 1 - logvar); zero exactly at mu = 0, logvar = 0."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()


class ConditioningAugmentation(nn.Module):
    """Text vector -> (mu, logvar) by one linear layer -> c = mu + sigma * eps."""

    def __init__(self, *, text_dim: int, c_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * c_dim)
        # The encoder's vectors have unit length; scaled by sqrt(dim) each entry is of order
        # one, as the paper's char-CNN-RNN embeddings were.
        self.scale = math.sqrt(text_dim)

    def forward(
        self, text: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.fc(text * self.scale).chunk(2, 1)
        return mu + (0.5 * logvar).exp() * eps, mu, logvar


def up_block(cin: int, cout: int) -> list[nn.Module]:
    """Nearest 2x upsampling and a 3x3 conv (the paper's upBlock: no checkerboard)."""
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    ]


class Stage1Generator(nn.Module):
    """(c, z) -> a linear layer to 4x4 -> upsampling blocks halving the channels -> tanh."""

    def __init__(self, *, z_dim: int, c_dim: int, width: int, resolution: int) -> None:
        super().__init__()
        levels = int(math.log2(resolution)) - 2
        top = width * 2**levels
        self.top = top
        self.fc = nn.Sequential(
            nn.Linear(z_dim + c_dim, top * 16, bias=False), nn.BatchNorm1d(top * 16), nn.ReLU(True)
        )
        layers = [m for i in range(levels) for m in up_block(top >> i, top >> (i + 1))]
        self.net = nn.Sequential(*layers, nn.Conv2d(width, 3, 3, 1, 1), nn.Tanh())

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(torch.cat([c, z], 1)).view(-1, self.top, 4, 4))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Stage2Generator(nn.Module):
    """(Stage-I image, c) -> encode to half its side -> join c -> residual blocks -> two
    upsampling blocks -> an image of twice Stage-I's side."""

    def __init__(self, *, c_dim: int, width: int, residual_blocks: int) -> None:
        super().__init__()
        trunk = 4 * width
        self.encode = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(width, trunk, 4, 2, 1, bias=False),
            nn.BatchNorm2d(trunk),
            nn.ReLU(True),
        )
        self.join = nn.Sequential(
            nn.Conv2d(trunk + c_dim, trunk, 3, 1, 1, bias=False),
            nn.BatchNorm2d(trunk),
            nn.ReLU(True),
        )
        self.residual = nn.Sequential(*(ResidualBlock(trunk) for _ in range(residual_blocks)))
        self.up = nn.Sequential(
            *up_block(trunk, 2 * width),
            *up_block(2 * width, width),
            nn.Conv2d(width, 3, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, stage1: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.encode(stage1)
        h = torch.cat([h, c[:, :, None, None].expand(-1, -1, *h.shape[2:])], 1)
        return self.up(self.residual(self.join(h)))


class MatchingDiscriminator(nn.Module):
    """Image features down to 4x4 joined with the caption's compressed vector (replicated
    over the map), a 1x1 conv, and one logit for "a real image of this caption".

    Spectral norm on every weight and no batch norm: D sees three batches per step (real with
    the right caption, fake, real with a wrong one) and batch statistics would let it tell them
    apart by the batch instead of the pair. ``trunk`` and ``judge`` are separate so that a real
    batch's features serve its right and its wrong caption."""

    def __init__(
        self,
        *,
        width: int,
        resolution: int,
        text_dim: int,
        d_text_dim: int,
        embed: bool = False,
        attributes: bool = False,
    ) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers: list[nn.Module] = []
        channels, size = 3, resolution
        while size > 4:
            layers += [sn(nn.Conv2d(channels, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            channels, width, size = width, width * 2, size // 2
        self.trunk = nn.Sequential(*layers)
        self.text = nn.Sequential(sn(nn.Linear(text_dim, d_text_dim)), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(
            sn(nn.Conv2d(channels + d_text_dim, channels, 1)), nn.LeakyReLU(0.2, True)
        )
        self.head = sn(nn.Conv2d(channels, 1, 4))
        self.scale = math.sqrt(text_dim)  # unit text vectors, entries of order one
        # The contrastive term's image embedding (pooled features -> the text space), built only
        # for a model trained with it so that models trained without it keep their weights.
        self.embed = sn(nn.Linear(channels, text_dim)) if embed else None
        # The attribute head (``w_attributes``), likewise only where trained. No spectral norm:
        # class logits must be free to grow, and the trunk below it is already normalised.
        slots = len(COLOURS) * HEAD_PER_COLOUR
        self.attributes = nn.Linear(channels * 16, slots) if attributes else None

    def embedding(self, features: torch.Tensor) -> torch.Tensor:
        """Unit vectors in the text encoder's space, from the trunk's features."""
        if self.embed is None:
            raise ValueError("this discriminator was built without the contrastive embedding")
        return F.normalize(self.embed(features.sum((2, 3))), dim=1)

    def attribute_logits(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(shape logits (N, K, S + 1), size logits (N, K, 2), centres (N, K, 2) in [0, 1]) for
        each colour slot, as AttributeClassifier reads them, from the trunk's features."""
        if self.attributes is None:
            raise ValueError("this discriminator was built without the attribute head")
        out = self.attributes(features.flatten(1)).view(len(features), len(COLOURS), -1)
        shape, size, xy = out.split([len(SHAPES) + 1, len(SIZES), 2], 2)
        return shape, size, xy.sigmoid()

    def judge(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        t = self.text(text * self.scale)[:, :, None, None].expand(-1, -1, 4, 4)
        return self.head(self.joint(torch.cat([features, t], 1))).flatten()

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.judge(self.trunk(images), text)


def contrastive_loss(
    images: torch.Tensor,
    text: torch.Tensor,
    temperature: float,
    negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """XMC-GAN's image-sentence term (Zhang et al., CVPR 2021): InfoNCE over the batch, each
    image's embedding against every caption's, both directions; row i belongs with row i. It
    asks an image to carry what tells its caption from the batch's others, where a real/fake
    logit asks only whether it looks right. ``negatives`` (one more caption per image, such as
    a near miss) join every image's candidates: among random captions colours and places
    already tell a caption apart, a near miss makes the shape or size count too."""
    extra = None if negatives is None else images @ negatives.T / temperature
    return textenc.contrastive_loss(images @ text.T / temperature, extra)


def matching_aware_discriminator_loss(
    d_real_right: torch.Tensor,
    d_fake_right: torch.Tensor,
    d_real_wrong: torch.Tensor,
    objective: str = "hinge",
) -> torch.Tensor:
    """The paper's matching-aware D loss: real image + right caption -> real; generated image +
    right caption -> fake; real image + wrong caption -> fake; the two fake terms share one
    half each: L = real + (fake + wrong) / 2. Every objective's D loss is a real term plus a
    fake term, so L = (loss(real, fake) + loss(real, wrong)) / 2 with objectives.py's loss."""
    return (
        discriminator_loss(objective, d_real_right, d_fake_right)
        + discriminator_loss(objective, d_real_right, d_real_wrong)
    ) / 2


SAMPLED = ("ca1", "g1", "ca2", "g2")  # what samples are drawn with (and averaged, with EMA)


class StackGAN(HubBundle):
    """The copied text encoder (frozen), both stages with their conditioning augmentation,
    and both discriminators (kept so a published model can be fine-tuned or resumed)."""

    config_class = StackGANConfig
    storage_dtype = torch.float16

    def __init__(self, config: StackGANConfig) -> None:
        super().__init__(config)
        c = config
        self.text = textenc.TextEncoder(**vars(c.text_shape)).requires_grad_(False)
        self.ca1 = ConditioningAugmentation(text_dim=c.text_dim, c_dim=c.c_dim)
        self.g1 = Stage1Generator(
            z_dim=c.z_dim, c_dim=c.c_dim, width=c.g1_width, resolution=c.stage1_resolution
        )
        self.ca2 = ConditioningAugmentation(text_dim=c.text_dim, c_dim=c.c_dim)
        self.g2 = Stage2Generator(
            c_dim=c.c_dim, width=c.g2_width, residual_blocks=c.residual_blocks
        )
        text = {
            "text_dim": c.text_dim,
            "d_text_dim": c.d_text_dim,
            "embed": c.w_contrastive > 0,
            "attributes": c.w_attributes > 0,
        }
        self.d1 = MatchingDiscriminator(width=c.d1_width, resolution=c.stage1_resolution, **text)
        self.d2 = MatchingDiscriminator(width=c.d2_width, resolution=c.resolution, **text)
        init_dcgan(self.g1)
        init_dcgan(self.g2)
        if c.ema_decay:
            self.ema = nn.ModuleDict(
                {name: copy.deepcopy(getattr(self, name)) for name in SAMPLED}
            ).requires_grad_(False)

    def sampled(self, name: str) -> nn.Module:
        """The module that draws samples (one of ``SAMPLED``): its moving average where the
        model keeps one and is not training, else the module itself."""
        ema = getattr(self, "ema", None)
        return ema[name] if ema is not None and not self.training else getattr(self, name)

    def copy_text_encoder(self, encoder: textenc.TextEncoder) -> None:
        """Take a trained text tower's weights (it must have this config's shape)."""
        mine = self.config.text_shape
        theirs = textenc.TextEncoderShape(
            encoder.vocabulary,
            encoder.embed.embedding_dim,
            encoder.gru.hidden_size,
            encoder.project.out_features,
        )
        if mine != theirs:
            differ = [
                f"{name}: {getattr(theirs, name)!r} in the encoder, {getattr(mine, name)!r} here"
                for name in vars(mine)
                if getattr(mine, name) != getattr(theirs, name)
            ]
            raise ValueError(
                "the text encoder does not fit this config (" + "; ".join(differ) + "): set "
                "the config's vocabulary/word_dim/text_hidden/text_dim to the encoder's"
            )
        self.text.load_state_dict(encoder.state_dict())


# -- inference --------------------------------------------------------------------------------


class Noise(NamedTuple):
    z: torch.Tensor  # (n, z_dim), Stage-I's noise
    eps1: torch.Tensor  # (n, c_dim), Stage-I's conditioning noise
    eps2: torch.Tensor  # (n, c_dim), Stage-II's conditioning noise


def noise(config: StackGANConfig, n: int, seed: int) -> Noise:
    """The noise of samples 0..n-1 of ``seed`` (a prefix of a longer draw: the draws are
    interleaved per sample)."""
    g = torch.Generator().manual_seed(seed)
    flat = torch.randn(n, config.z_dim + 2 * config.c_dim, generator=g)
    z, eps1, eps2 = flat.split([config.z_dim, config.c_dim, config.c_dim], 1)
    return Noise(z, eps1, eps2)


def encode_captions(model: StackGAN, captions: Sequence[str]):
    """(N, text_dim) caption vectors by the model's own text encoder, and each caption's
    words outside its vocabulary (read as <unk>)."""
    return textenc.encode(model.text, captions)


def merges_into_transposed(up: nn.Module, conv: nn.Module) -> bool:
    """Whether ``up`` then ``conv`` is nearest 2x upsampling then a plain 3x3 convolution
    (padding 1), the pair ``upsampling_as_transposed`` rewrites."""
    return (
        isinstance(up, nn.Upsample)
        and up.mode == "nearest"
        and up.scale_factor in (2, 2.0)
        and isinstance(conv, nn.Conv2d)
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
    )


def upsampling_as_transposed(conv: nn.Conv2d) -> nn.ConvTranspose2d:
    """Nearest 2x upsampling then ``conv`` (3x3, padding 1) as one 4x4 transposed convolution
    of stride 2 at the input's size: input row r reaches output rows 2r - 1 .. 2r + 2 with the
    kernel's rows (w2, w1 + w2, w0 + w1, w0), and likewise the columns. 16 multiplications
    per input pixel and channel pair where the pair makes 36 (4 output pixels x 9); the same
    pictures to float rounding."""
    weight = conv.weight.detach()

    def taps(kernel: torch.Tensor, dim: int) -> torch.Tensor:
        w0, w1, w2 = kernel.unbind(dim)
        return torch.stack([w2, w1 + w2, w0 + w1, w0], dim)

    out_channels, in_channels = weight.shape[:2]
    # skip_init: a default initialisation would draw from the process-wide generator, which
    # sampling for one visitor must leave alone
    merged = skip_init(
        nn.ConvTranspose2d,
        in_channels,
        out_channels,
        4,
        2,
        1,
        bias=conv.bias is not None,
        device=weight.device,  # the model's, a GPU's too
        dtype=weight.dtype,
    )
    with torch.no_grad():
        merged.weight.copy_(taps(taps(weight, 2), 3).transpose(0, 1))
        if conv.bias is not None:
            merged.bias.copy_(conv.bias)
    return merged


def _folded(module: nn.Module) -> nn.Module:
    """A copy of ``module`` for inference: each convolution or linear layer followed by batch
    norm becomes one layer with the norm's running statistics folded into its weights, and
    nearest upsampling followed by a 3x3 convolution one transposed convolution."""
    module = copy.deepcopy(module)

    def fold(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if not isinstance(child, nn.Sequential):
                fold(child)
                continue
            layers, kept = list(child), []
            while layers:
                layer = layers.pop(0)
                upsample = layers and merges_into_transposed(layer, layers[0])
                if upsample:
                    layer = layers.pop(0)
                if layers and isinstance(layers[0], nn.BatchNorm2d | nn.BatchNorm1d):
                    fuse = (
                        fuse_conv_bn_eval if isinstance(layer, nn.Conv2d) else fuse_linear_bn_eval
                    )
                    layer = fuse(layer, layers.pop(0))
                if upsample:
                    layer = upsampling_as_transposed(layer)
                fold(layer)
                kept.append(layer)
            setattr(parent, name, nn.Sequential(*kept))

    fold(module)
    return module.to(memory_format=torch.channels_last).requires_grad_(False)


def inference_generators(model: StackGAN) -> tuple[nn.Module, nn.Module]:
    """Stage-I and Stage-II as sampling runs them: in eval mode, copies with batch norm folded
    in, upsampling merged into the next convolution and channels-last weights (faster on a
    CPU, the same pictures to 1e-5),
    built once per set of weights and rebuilt when any changes in place (an optimizer step, a
    load); in train mode, the networks themselves."""
    if model.training:
        return model.g1, model.g2
    g1, g2 = model.sampled("g1"), model.sampled("g2")
    params = [*g1.parameters(), *g2.parameters()]
    key = tuple((id(p), p._version) for p in params)
    cached = model.__dict__.get("_inference")
    if cached is None or cached[0] != key:
        with torch.inference_mode(False), torch.no_grad():  # usable in and out of it
            cached = (key, _folded(g1), _folded(g2))
        model.__dict__["_inference"] = cached  # a plain attribute: not in the state dict
    return cached[1], cached[2]


@torch.inference_mode()
def synthesize(
    model: StackGAN, text: torch.Tensor, noise: Noise, noise_scale: float = 1.0, batch: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row i: caption vector i with noise i -> (Stage-I, Stage-II) images in [-1, 1].
    ``noise_scale`` scales the conditioning noise (0: each caption's mean condition)."""
    device = next(model.parameters()).device
    g1, g2 = inference_generators(model)
    first, second = [], []
    for i in range(0, len(text), batch):
        t = text[i : i + batch].to(device)
        z, e1, e2 = (part[i : i + batch].to(device) for part in noise)
        c1, _, _ = model.sampled("ca1")(t, e1 * noise_scale)
        s1 = g1(c1, z)
        c2, _, _ = model.sampled("ca2")(t, e2 * noise_scale)
        first.append(s1.float().cpu())
        second.append(g2(s1, c2).float().cpu())
    r = model.config.resolution
    if not first:
        return torch.zeros(0, 3, r // 2, r // 2), torch.zeros(0, 3, r, r)
    return torch.cat(first), torch.cat(second)


def generate(
    model: StackGAN, captions: Sequence[str], n: int, seed: int, noise_scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of each caption, caption-major ((len(captions) * n, 3, H, W) each stage).
    Sample j of every caption has the same noise, so editing a caption with the seed kept
    shows what the words change."""
    text, _ = encode_captions(model, captions)
    draws = noise(model.config, n, seed)
    tiled = Noise(*(part.repeat(len(captions), 1) for part in draws))
    return synthesize(model, text.repeat_interleave(n, 0), tiled, noise_scale)


def fixed_captions(split: str, n: int) -> list[str]:
    """One caption per fixed test (or held-out) scene, seeded: a prefix of a longer list."""
    scenes = shapesdata.test_set(n) if split == "test" else shapesdata.held_out_set(n)
    rng = np.random.default_rng([CAPTION_SEED, shapesdata.SPLITS.index(split)])
    return [shapesdata.caption(s, rng) for s in scenes]


def dataset_captions(config: StackGANConfig, n: int) -> list[str]:
    """``n`` fixed captions of the model's dataset: the shapes test set, the emoji test set
    (cached renders, see captiondata), or for a folder (whose captions a bundle does not
    carry) words of the model's vocabulary."""
    if config.dataset == "shapes":
        return fixed_captions("test", n)
    if config.dataset == "emoji":
        from hub_models import captiondata

        captions = captiondata.emoji_captions(config.resolution).test_captions(n)
        return (captions * (n // max(len(captions), 1) + 1))[:n]
    return textenc.smoke_captions(config.vocabulary, config.dataset, n)


def sample(model: StackGAN, n: int, seed: int) -> torch.Tensor:
    """Stage-II images of the first ``n`` test captions, sample i with noise i of ``seed``."""
    text, _ = encode_captions(model, dataset_captions(model.config, n))
    return synthesize(model, text, noise(model.config, n, seed))[1]


# -- the grader of attributes -----------------------------------------------------------------


COLOURS = tuple(shapesdata.COLOURS)
SHAPES = shapesdata.SHAPES
SIZES = tuple(shapesdata.SIZES)
ABSENT = len(SHAPES)  # the shape class "no object of this colour"
HEAD_PER_COLOUR = len(SHAPES) + 1 + len(SIZES) + 2  # shape or none, size, centre


@dataclass(frozen=True)
class AttributeConfig:
    """A classifier of real renders: per colour, its shape (or none), size and centre."""

    resolution: int = 64
    width: int = 16
    hidden: int = 256
    held_out_share: float = 0.25  # of each training batch: scenes with held-out pairs
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        textenc.check_resolution(self.resolution)
        require_positive(self, "width", "hidden", "steps", "batch_size")
        if not 0 <= self.held_out_share <= 1:
            raise ValueError("held_out_share must be in [0, 1]")


class AttributePrediction(NamedTuple):
    shape: torch.Tensor  # (N, colours) shape index, ABSENT for none
    size: torch.Tensor  # (N, colours) size index (meaningless where absent)
    xy: torch.Tensor  # (N, colours, 2) centre as fractions of the side, y downwards


class AttributeClassifier(HubBundle):
    """Colours are distinct within a scene, so each colour is one slot with a fixed meaning:
    the classifier needs no object order, and relations follow from the predicted centres."""

    config_class = AttributeConfig
    storage_dtype = torch.float16
    per_colour = HEAD_PER_COLOUR

    def __init__(self, config: AttributeConfig) -> None:
        super().__init__(config)
        self.trunk, channels = textenc.conv_trunk(config.width, config.resolution)
        self.head = nn.Sequential(
            nn.Linear(channels * 16, config.hidden),
            nn.ReLU(True),
            nn.Linear(config.hidden, len(COLOURS) * self.per_colour),
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(shape logits (N, K, S + 1), size logits (N, K, 2), centres (N, K, 2) in [0, 1])."""
        images = textenc.fit_images(images, self.config.resolution)
        out = self.head(self.trunk(images)).view(-1, len(COLOURS), self.per_colour)
        shape, size, xy = out.split([len(SHAPES) + 1, len(SIZES), 2], 2)
        return shape, size, xy.sigmoid()

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, batch: int = 512) -> AttributePrediction:
        device = next(self.parameters()).device
        parts = []
        for i in range(0, len(images), batch):
            shape, size, xy = self(images[i : i + batch].to(device))
            parts.append((shape.argmax(2).cpu(), size.argmax(2).cpu(), xy.float().cpu()))
        if not parts:
            k = len(COLOURS)
            empty = torch.zeros(0, k, dtype=torch.long)
            return AttributePrediction(empty, empty, torch.zeros(0, k, 2))
        return AttributePrediction(*(torch.cat(p) for p in zip(*parts, strict=True)))


def scene_targets(scenes: Sequence[shapesdata.Scene]) -> AttributePrediction:
    """The classifier's targets from the scenes' exact attributes."""
    n, k = len(scenes), len(COLOURS)
    shape = torch.full((n, k), ABSENT, dtype=torch.long)
    size = torch.zeros(n, k, dtype=torch.long)
    xy = torch.zeros(n, k, 2)
    for i, scene in enumerate(scenes):
        for o in scene.objects:
            slot = COLOURS.index(o.colour)
            shape[i, slot] = SHAPES.index(o.shape)
            size[i, slot] = SIZES.index(o.size)
            xy[i, slot] = torch.tensor([o.x, o.y])
    return AttributePrediction(shape, size, xy)


def attribute_loss(
    model: AttributeClassifier, images: torch.Tensor, target: AttributePrediction
) -> torch.Tensor:
    """Cross-entropy on shape-or-none for every colour; on size and (L1) centre where the
    colour is present."""
    return scene_attribute_loss(model(images), target)


def scene_attribute_loss(
    logits: tuple[torch.Tensor, torch.Tensor, torch.Tensor], target: AttributePrediction
) -> torch.Tensor:
    """``attribute_loss`` on a head's outputs (shape logits, size logits, centres)."""
    shape, size, xy = logits
    present = target.shape != ABSENT
    loss = F.cross_entropy(shape.flatten(0, 1), target.shape.flatten())
    if present.any():
        loss = loss + F.cross_entropy(size[present], target.size[present])
        loss = loss + 10 * (xy[present] - target.xy[present]).abs().mean()
    return loss


@torch.no_grad()
def attribute_smoke(model: AttributeClassifier, n: int, seed: int) -> torch.Tensor:
    """Shape logits of ``n`` seeded noise images: the smoke run every published model passes."""
    g = torch.Generator().manual_seed(seed)
    r = model.config.resolution
    return model(torch.rand(n, 3, r, r, generator=g) * 2 - 1)[0]


# -- the metrics ------------------------------------------------------------------------------


class CaptionTargets(NamedTuple):
    """What captions state, as colour slots: -1 pads and marks what a caption leaves out."""

    colour: torch.Tensor  # (N, 3) colour slot of each named object
    shape: torch.Tensor  # (N, 3)
    size: torch.Tensor  # (N, 3); -1 where the caption states no size
    subject: torch.Tensor  # (N, 2) colour slot of each relation's subject
    relation: torch.Tensor  # (N, 2) index into shapesdata.RELATIONS
    reference: torch.Tensor  # (N, 2)


def caption_targets(captions: Sequence[str]) -> CaptionTargets:
    """Parse captions (shapesdata.parse_caption) into padded attribute tensors. Objects
    without a known colour or shape cannot be graded and are left out."""
    n = len(captions)
    objects = torch.full((3, n, 3), -1, dtype=torch.long)
    relations = torch.full((3, n, 2), -1, dtype=torch.long)
    for i, text in enumerate(captions):
        parsed = shapesdata.parse_caption(text)
        slots = [COLOURS.index(o.colour) if o.colour else -1 for o in parsed.objects]
        for j, o in enumerate(parsed.objects[:3]):
            if o.colour and o.shape:
                size = SIZES.index(o.size) if o.size else -1
                objects[:, i, j] = torch.tensor([slots[j], SHAPES.index(o.shape), size])
        for j, r in enumerate(parsed.relations[:2]):
            a, b = slots[r.subject], slots[r.reference]
            if a >= 0 and b >= 0:
                rel = shapesdata.RELATIONS.index(r.relation)
                relations[:, i, j] = torch.tensor([a, rel, b])
    return CaptionTargets(*objects, *relations)


def caption_slots(targets: CaptionTargets) -> tuple[torch.Tensor, torch.Tensor]:
    """Per colour slot what captions state: the shape (ABSENT where the colour is not named)
    and the size (-1 where unstated), (N, K) each."""
    n, k, device = len(targets.colour), len(COLOURS), targets.colour.device
    slot = torch.where(targets.colour >= 0, targets.colour, k)  # objects left out: a spare slot
    shape = torch.full((n, k + 1), ABSENT, dtype=torch.long, device=device)
    size = torch.full((n, k + 1), -1, dtype=torch.long, device=device)
    shape, size = shape.scatter(1, slot, targets.shape), size.scatter(1, slot, targets.size)
    return shape[:, :k], size[:, :k]


# Each relation's axis (0: x, 1: y, downwards) and the sign of subject minus reference on it.
RELATION_AXIS = {"above": (1, -1.0), "below": (1, 1.0), "left of": (0, -1.0), "right of": (0, 1.0)}


def caption_attribute_loss(
    logits: tuple[torch.Tensor, torch.Tensor, torch.Tensor], targets: CaptionTargets
) -> torch.Tensor:
    """What a caption asks of a picture, on an attribute head's outputs: cross-entropy on each
    colour's shape-or-none and on every stated size, and a hinge on each stated relation that
    holds once the subject's centre is ``shapesdata.RELATION_MARGIN`` of the side past the
    reference's on the relation's axis (as the renderer places them)."""
    shape, size, xy = logits
    shape_target, size_target = caption_slots(targets)
    loss = F.cross_entropy(shape.flatten(0, 1), shape_target.flatten())
    stated = size_target >= 0
    if stated.any():
        loss = loss + F.cross_entropy(size[stated], size_target[stated])
    related = targets.relation >= 0
    if related.any():
        rows = related.nonzero()[:, 0]
        relation = targets.relation[related]
        axis, sign = (
            torch.tensor([RELATION_AXIS[r][i] for r in shapesdata.RELATIONS], device=xy.device)
            for i in (0, 1)
        )
        axis, sign = axis[relation], sign[relation]
        offset = xy[rows, targets.subject[related]] - xy[rows, targets.reference[related]]
        along = offset.gather(1, axis[:, None]).squeeze(1) * sign
        loss = loss + 10 * F.relu(shapesdata.RELATION_MARGIN - along).mean()
    return loss


def predicted_relation(dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Index into shapesdata.RELATIONS of "subject relative to reference" from the centre
    offset (subject minus reference, y downwards): the larger offset decides, as in the
    renderer."""
    index = {name: shapesdata.RELATIONS.index(name) for name in shapesdata.RELATIONS}
    horizontal = torch.where(dx < 0, index["left of"], index["right of"])
    vertical = torch.where(dy < 0, index["above"], index["below"])
    return torch.where(dx.abs() >= dy.abs(), horizontal, vertical)


def attribute_accuracy(pred: AttributePrediction, target: CaptionTargets) -> dict[str, float]:
    """Share of stated attributes the images show (see PROTOCOL); NaN where nothing is stated.

    colour: an object of the named colour is there; shape: that object has the named shape;
    size: it has the named size; relation: both objects are there and their centres stand in
    the named relation."""

    def at(values: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        index = slots.clamp(min=0)
        if values.dim() == 3:
            return values.gather(1, index[..., None].expand(-1, -1, values.shape[2]))
        return values.gather(1, index)

    def share(hits: torch.Tensor, mask: torch.Tensor) -> float:
        return float(hits[mask].float().mean()) if mask.any() else math.nan

    named = target.colour >= 0
    shape = at(pred.shape, target.colour)
    present = shape != ABSENT
    xy_s, xy_r = at(pred.xy, target.subject), at(pred.xy, target.reference)
    relation = predicted_relation(xy_s[..., 0] - xy_r[..., 0], xy_s[..., 1] - xy_r[..., 1])
    both = (at(pred.shape, target.subject) != ABSENT) & (at(pred.shape, target.reference) != ABSENT)
    return {
        "colour": share(present, named),
        "shape": share(shape == target.shape, named),
        "size": share(present & (at(pred.size, target.colour) == target.size), target.size >= 0),
        "relation": share(both & (relation == target.relation), target.relation >= 0),
    }


def r_precision(
    image_vectors: torch.Tensor,
    text_vectors: torch.Tensor,
    candidates: int = R_CANDIDATES,
    seed: int = 0,
) -> float:
    """Share of images whose own caption (row i of ``text_vectors``) scores strictly above
    ``candidates - 1`` other captions of the set, drawn at random without replacement (fewer
    when the set is smaller); scores are dot products (cosines of unit vectors)."""
    n = len(image_vectors)
    others = min(candidates - 1, n - 1)
    if n == 0:
        return math.nan
    scores = image_vectors.double() @ text_vectors.double().T
    keys = torch.rand(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    keys.fill_diagonal_(2.0)  # never drawn as another caption: keys are below 1
    wrong = keys.topk(others, dim=1, largest=False).indices
    beaten = (scores.diagonal()[:, None] > scores.gather(1, wrong)).all(1)
    return float(beaten.double().mean())


def r_precision_chance(n: int, candidates: int = R_CANDIDATES) -> float:
    return 1 / min(candidates, max(n, 1))


# -- loading the auxiliary models -------------------------------------------------------------


def load_auxiliary(bundle: type[HubBundle], name_or_folder: str) -> HubBundle:
    """An auxiliary model by folder, or by its published name (Hub, cache, bundled snapshot)."""
    if Path(name_or_folder).is_dir():
        return bundle.load_folder(name_or_folder)
    spec = next((m for m in FAMILY.auxiliary if m.name == name_or_folder), None)
    if spec is None:
        names = ", ".join(m.name for m in FAMILY.auxiliary)
        raise ValueError(f"{name_or_folder!r} is neither a folder nor one of {names}")
    from hub_models import hub

    model, _ = hub.load(bundle, spec.repo_id, spec.snapshot)
    return model


# -- the published models ---------------------------------------------------------------------

AUXILIARY = (
    AuxiliaryModel(
        TEXT_ENCODER,
        "text encoder of captioned shapes (word-level bidirectional GRU, contrastive on real "
        "pairs of training compositions), copied into every stackgan-shapes model",
        bundle=textenc.TextImageModel,
        sample=textenc.smoke,
    ),
    AuxiliaryModel(
        MATCHER,
        "image-text matcher of captioned shapes for R-precision (trained apart from any "
        "generator, on real pairs of every composition)",
        bundle=textenc.TextImageModel,
        sample=textenc.smoke,
    ),
    AuxiliaryModel(
        ATTRIBUTES,
        "attribute classifier of real shape renders (per colour: shape or none, size, centre)",
        bundle=AttributeClassifier,
        sample=attribute_smoke,
    ),
)

# The emoji text encoder and matcher, declared like AUXILIARY and published beside them.
EMOJI_AUXILIARY = (
    AuxiliaryModel(
        EMOJI_TEXT_ENCODER,
        "text encoder of emoji captioned by CLDR name and keywords (word-level bidirectional "
        "GRU, contrastive on real pairs of the training captions, every vendor's drawings)",
        bundle=textenc.TextImageModel,
        sample=textenc.smoke,
    ),
    AuxiliaryModel(
        EMOJI_MATCHER,
        "image-text matcher of emoji for R-precision (trained apart from any generator, on "
        "real pairs of every caption, test captions included)",
        bundle=textenc.TextImageModel,
        sample=textenc.smoke,
    ),
)


# The emoji model's recipe beside the demo preset: pictures this small in number (13,115 of
# 3,782 names, a tenth of the names held out) are where DiffAugment pays (Zhao et al. 2020);
# translation and cutout only, as colour must stay what the caption says.
EMOJI_RECIPE = (("dataset", "emoji"), ("augment", "translation,cutout"))


# The shapes model's recipe beside the demo preset. Scenes of up to three objects need more than
# a real/fake logit per caption: with random wrong captions a discriminator learns colours and
# places, which already tell almost any two captions apart, and shapes stay blobs. Near misses
# (a caption wrong in one colour, shape, size or relation) as the wrong captions, and XMC-GAN's
# contrastive term with them as extra negatives, make every word count; Stage-I trains alone
# longer (its steps cost a quarter of a joint one) and Stage-II is twice as wide, as the shapes
# become legible at 64x64 only. An attribute head in both discriminators (AC-GAN) reads each
# object's shape, size and place from the real scenes and asks G's pictures for what the
# caption states: at the same budget it raised colour accuracy from 81 to 94 %, size from 62
# to 85 % and relations from 45 to 61 % (the README's ablation).
SHAPES_RECIPE = (
    ("near_misses", 1.0),
    ("w_contrastive", 1.0),
    ("g2_width", 24),
    ("d2_width", 24),
    ("steps", 11000),
    ("stage2_start", 4000),
    ("w_attributes", 1.0),
)


def auxiliary_defaults(dataset: str) -> dict[str, str]:
    """The auxiliary models a config of ``dataset`` reads when it names the shapes defaults:
    emoji has its own text encoder and matcher and no attribute grader; a folder has none."""
    if dataset == "shapes":
        return {"text_encoder": TEXT_ENCODER, "matcher": MATCHER, "attributes": ATTRIBUTES}
    if dataset == "emoji":
        return {"text_encoder": EMOJI_TEXT_ENCODER, "matcher": EMOJI_MATCHER, "attributes": ""}
    return {"text_encoder": "", "matcher": "", "attributes": ""}


FAMILY = Family(
    name="stackgan",
    title="Text to image (StackGAN)",
    tagline="Type a caption and watch Stage-I sketch it at 32x32 and Stage-II refine it at "
    "64x64; change a word, keep the noise.",
    page="stackgan.py",
    icon=":material/text_fields:",
    bundle=StackGAN,
    sample=sample,
    models=(
        PublishedModel("stackgan-shapes", "StackGAN on captioned shapes, 32 -> 64", SHAPES_RECIPE),
        PublishedModel(
            "stackgan-emoji",
            "StackGAN on emoji named by CLDR, every vendor, 32 -> 64",
            EMOJI_RECIPE,
        ),
    ),
    datasets=(
        Dataset(
            "captioned shapes (1-3 coloured shapes with relations, captions from a grammar)",
            "rendered on the fly by hub_models/shapesdata.py",
            "MIT",
            "Scenes and captions generated by this project.",
        ),
        *(
            Dataset(
                f"{vendor.title}, captioned by CLDR name (stackgan-emoji)",
                f"{vendor.install.split()[-1]}, drawn by hub_models/emojidata.py; names and "
                "groups from the emoji package and CLDR (hub_models/captiondata.py)",
                vendor.licence,
                vendor.attribution.rstrip(".") + ".",
            )
            for vendor in VENDORS.values()
        ),
    ),
    papers=(
        "https://arxiv.org/abs/1612.03242",
        "https://arxiv.org/abs/1705.02894",
        "https://arxiv.org/abs/1802.05957",
        "https://arxiv.org/abs/1711.10485",
        "https://arxiv.org/abs/2103.00020",
        "https://arxiv.org/abs/2101.04702",
    ),
    metric_names=METRIC_NAMES,
    protocol=PROTOCOL,
    intended_use=INTENDED_USE,
    limitations=LIMITATIONS,
    tags=("gan", "text-to-image", "stackgan"),
    featured="stackgan-shapes",
    sample_caption="Rows: captions (test set, then held-out compositions); in each row pairs "
    "of Stage-I (32x32, shown enlarged) and Stage-II (64x64) samples.",
    trainer="training.stackgan:StackGANTrainer",
    benchmarks={
        "stackgan": "benchmarks.stackgan:table",  # attributes, R-precision, FD-EffNet
        "stackgan-speed": "benchmarks.stackgan:speed",  # caption -> 8 Stage-II images
    },
    auxiliary=AUXILIARY + EMOJI_AUXILIARY,
)
