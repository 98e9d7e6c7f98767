"""Pose transfer with PG2 (Ma et al., Pose Guided Person Image Generation, NeurIPS 2017).

Given one picture of a person and a target pose (18 COCO keypoints), draw the person in that
pose. PG2 does it in two stages:

- Stage I: a U-Net from the source image and 18 Gaussian heatmaps of the target keypoints to
  a coarse target image, trained with L1 weighted by (1 + mask), where the mask covers the
  person in the target image (the "pose-mask loss"): the person, not the background, is what
  is hard and what matters. A fully connected bottleneck (PG2's) lets every output pixel see
  the whole source, which the U-Net's local convolutions do not: the person moves across the
  picture between source and target.
- Stage II: a second U-Net from the source image and the Stage-I image predicts a difference
  map added to Stage I, trained with the same masked L1 plus an adversarial loss from a
  discriminator that judges (source, image) pairs, so that it has to keep the person's look.
- With ``warp_source`` (the published model), both stages also read the source warped limb by
  limb to the target pose (``warp_limbs``, the piecewise-affine baseline below): Deformable
  GAN's deformable skip connections (Siarohin et al., CVPR 2018), applied to the pixels rather
  than to the encoder's features. Plain PG2 has to move the person across the picture through
  its bottleneck and draws a blurred figure; the warp puts the source's texture where the
  target's limbs are, and the network learns what the warp cannot do (a figure that turned,
  a limb in front of another, the parts the source hid). It needs the source's keypoints,
  which the renderer gives (and a keypoint regressor would for a picture).

Why PG2 rather than PATN (Zhu et al., CVPR 2019): PATN conditions on the source pose as well
(a user's own picture would first need a keypoint estimate), runs nine two-stream attention
blocks, and has a single stage, so the page's Stage I / final comparison would not exist.
PG2's two U-Nets at 64x64 (2.8 M generator weights) take 0.65 s per training step of 16
pairs on this project's busy 2-core CPU, 8,000 steps in about 1.5 hours (training/pose.py
gives the measurement); PATN was not built or timed here.

Data are the project's own renders (hub_models/figuredata.py): exact keypoints and visibility,
exact figure masks, identities split between train and test. Everything here is pure
inference and metrics: SSIM and PG2's mask-SSIM (written in torch after Wang et al. 2004),
PCK of a keypoint regressor (the family's auxiliary model, trained on real renders), and the
three baselines the model is measured against: copying the source, Stage I alone, and a
piecewise-affine warp of each limb from the source pose to the target pose.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hub_models import figuredata as fd
from hub_models.base import HubBundle, require_positive
from hub_models.blocks import DCGANDiscriminator, ProjectionDiscriminator, init_dcgan
from hub_models.family import AuxiliaryModel, Dataset, Family, PublishedModel
from hub_models.imagedata import DataError, to_tensor
from hub_models.objectives import check_objective

KEYPOINT_COUNT = len(fd.KEYPOINTS)  # 18, COCO order
PCK_ALPHA = 0.1  # PCK@0.1: within 10 % of the figure's bounding box (its longer side)
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Wang et al.'s Gaussian window
NEUTRAL_POSE = fd.Pose()  # standing, facing the camera: the source of an animated identity
METHODS = ("final", "stage1", "copy", "warp")  # the model, and the three baselines
DISCRIMINATORS = ("dcgan", "spectral")
# What Stage I is built from: a model whose Stage I is copied must agree on these.
STAGE1_FIELDS = ("resolution", "width", "levels", "fc_dim", "res_blocks", "warp_source")
VIEW_SPLITS = ("all", "same_view", "turned")
TURN_MODES = ("warp", "drop", "fill")  # warp_limbs' choices where the figure turned round

METHOD_TITLES = {
    "final": "PG2 final (Stage II)",
    "stage1": "Stage I only (baseline)",
    "copy": "copy the source image (baseline)",
    "warp": "piecewise-affine limb warp (baseline)",
}
SPLIT_TITLES = {"all": "all pairs", "same_view": "same view", "turned": "the figure turned"}


def _metric_names() -> dict[str, str]:
    names = {}
    for metric, title in (("mask_ssim", "mask-SSIM"), ("ssim", "SSIM")):
        for method in METHODS:
            for split in VIEW_SPLITS:
                key = f"{metric}_{method}" + ("" if split == "all" else f"_{split}")
                names[key] = f"{title}, {METHOD_TITLES[method]}, {SPLIT_TITLES[split]}"
    for method in METHODS:
        names[f"pck_{method}"] = f"PCK@0.1 of the regressor on {METHOD_TITLES[method]}"
    names["pck_real"] = "PCK@0.1 of the regressor on the real target renders (ceiling)"
    return names


METRIC_NAMES = _metric_names()
PROTOCOL = (
    "Held-out identities: pairs rendered by hub_models/figuredata.py from the test split "
    "(identities 100000-100999, never seen in training; the pairs of render_pairs(n, 'test', "
    "seed=0)), one person in two poses, three times in four seen from another view. SSIM is "
    "Wang et al.'s (Gaussian window 11, sigma 1.5, on [0, 1] colour images, mean over the "
    "channels and the valid window positions); mask-SSIM is PG2's: SSIM with the background "
    "set to black in both images by the target's exact figure mask. PCK@0.1: the share of "
    "visible target keypoints that the keypoint regressor (the auxiliary model "
    "pose-figures-keypoints, trained on real renders of training identities) finds within "
    "10 % of the longer side of the figure's keypoint bounding box; on the real target "
    "renders it is the ceiling. The baselines are measured in the same run: the source image "
    "itself, Stage I alone, and a piecewise-affine warp of the source (each limb by the "
    "similarity mapping its source bone to its target bone, the torso by the spine and the "
    "shoulder and hip spans, the background from the source's side columns). Every metric is "
    "reported over all pairs and split by whether the figure turned to another view."
)
INTENDED_USE = (
    "Demonstrations and teaching: showing a drawn person in any pose, animating them through "
    "a pose sequence, and comparing PG2's two stages with simple baselines on exactly "
    "labelled data. Not for photographs of real people, identification, or any decision "
    "about a person."
)
LIMITATIONS = (
    "Trained only on the project's procedural figures at 64x64: a photograph of a person is "
    "far outside what it has seen. A target view that shows what the source hid (the back "
    "of a shirt seen from the front) can only be guessed from the training distribution. "
    "Small details (eyes, patterns) blur at this size. The figure covers about a tenth of "
    "the picture, so mask-SSIM, whose black background matches everywhere, is high for any "
    "method (0.92 for a copy of the source): compare its differences, not its level. The "
    "metrics are exact for these renders and do not compare with PG2's numbers on "
    "DeepFashion or Market-1501."
)


# -- configs -----------------------------------------------------------------------------------


def _check_levels(resolution: int, levels: int, name: str) -> None:
    # The deepest map must stay at least 4x4: the bottleneck's fully connected layer, and the
    # discriminator's last 4x4 convolution, assume it.
    if not 1 <= levels <= int(math.log2(resolution)) - 2:
        raise ValueError(
            f"{name} must be between 1 and {int(math.log2(resolution)) - 2} at {resolution}x"
            f"{resolution} (the deepest map stays at least 4x4)"
        )


@dataclass(frozen=True)
class PoseConfig:
    """A PG2 model: the picture size, the two U-Nets, D, the losses and the schedule."""

    resolution: int = 64  # one of figuredata.RESOLUTIONS
    width: int = 16  # Stage I's channels at full resolution; doubled per level, at most 8x
    levels: int = 4  # Stage I's downsamplings (64 -> 4x4)
    fc_dim: int = 64  # Stage I's fully connected bottleneck (PG2's 64); 0 leaves it out
    refine_width: int = 16  # Stage II's
    refine_levels: int = 3  # Stage II has no bottleneck layer and is shallower, as in PG2
    res_blocks: int = 1  # residual blocks per level, in both U-Nets
    d_width: int = 16
    # "dcgan": PG2's discriminator, with batch norm. "spectral": spectral norm on every layer
    # and no batch norm (hub_models/blocks.ProjectionDiscriminator, unconditional). D judges
    # the real and the generated batch in separate passes, so a batch-normed D can tell them
    # apart by their batch statistics, and Stage II learns to shift those (coloured noise over
    # the figure) rather than to draw the person.
    discriminator: str = "dcgan"
    # PG2's second phase: Stage I copied from this trained model (a run folder, or the name of
    # a published pose model) and frozen; the run trains Stage II and D only. "" trains both
    # stages together from the start.
    stage1_from: str = ""
    # Both stages also see the source warped limb by limb to the target pose (warp_limbs):
    # the pixel-level form of Deformable GAN's deformable skip connections (Siarohin et al.,
    # CVPR 2018). A U-Net's skips sit where the source was, not where the target is; the
    # warp puts the source's texture in place, and the network corrects what the warp gets
    # wrong (a turned figure, overlapping limbs). False is plain PG2.
    warp_source: bool = False
    # Where the figure turned between facing the camera and facing away (``facing``), the warp
    # input leaves out the torso and the head (background there): pasted through, the warp
    # puts a face on the back of a head and the front of a shirt on its back, the network
    # copies them, and the picture shows the person facing the wrong way (its left and right
    # swapped). The "limb warp" baseline stays the plain warp.
    warp_facing: bool = False
    # With warp_facing, where the figure turned away from the camera: rather than background,
    # the warp input paints the torso in the source's shirt colour and the head in its hair
    # colour (figuredata draws the back of a head as hair). Left empty, the network has to
    # fetch those colours from wherever the source stood, through its bottleneck: it drew a
    # dull torso and a skin-coloured head, and the keypoint judge read a person facing the
    # camera (28 % PCK on the test pairs turned from the front to the back, 95 % on the real
    # targets). Where the figure turned to the camera the torso stays empty: a flat shirt
    # there reads as a back (the front's pattern cannot be known), and painted both ways
    # those pairs fell from 87 % to 50 %.
    turn_fill: bool = False
    # With warp_facing: a figure seen side on in the source that faces the camera or away in
    # the target counts as turned too. The profile's warped head is half hair, and the
    # published model drew those figures facing away: 56 % PCK on the test pairs from the
    # side to the front, 93 % on the real targets.
    turn_from_side: bool = False
    # With warp_source: where the figure turned (the pairs warp_facing treats, turn_from_side
    # included), Stage II reads the source with the figure replaced by the background
    # (``refine_source``). Its U-Net has no bottleneck, and its skips sit where the source
    # stood, about where the target stands: it copied the back of the source's head and its
    # back pattern onto a figure now facing the camera, which the keypoint judge then read as
    # facing away (PCK 87.3 % on the 135 test pairs turned to the camera, Stage I 90.8 %, by
    # the soft-argmax judge of the time). 1,500 steps of Stage II with it kept 87.3 % there;
    # the same steps without it, 85.9 %.
    refine_hides_turn: bool = False
    # A fine-tune: every weight (both stages and D) copied from this trained model of the
    # same architecture (a run folder, or the name of a published pose model). "" starts
    # from scratch.
    init_from: str = ""
    objective: str = "nonsaturating"
    w_stage1: float = 1.0  # the masked L1 of Stage I
    w_stage2: float = 1.0  # the masked L1 of Stage II
    w_mask: float = 1.0  # L1 weight is (1 + w_mask * mask): PG2's pose-mask loss has 1
    # ... + w_parts * part_mask: the target's limbs and head, a few pixels wide each, weigh
    # little in a figure-wide mask and come out smeared, yet they carry the pose, and the
    # head whether the figure faces the camera (which sets left and right).
    w_parts: float = 0.0
    # PATN's perceptual loss, on EfficientNet-Lite0's early feature maps (effnet.perceptual_l1),
    # for both stages: L1 alone averages what it is unsure of into a blur.
    w_perceptual: float = 0.0
    w_adv: float = 0.01  # Stage II's adversarial loss, beside an L1 of weight 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    steps: int = 8000
    batch_size: int = 16
    train_pairs: int = 6000  # pairs of training identities rendered once per run
    eval_pairs: int = 500  # pairs of test identities the metrics are measured on
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution not in fd.RESOLUTIONS:
            raise ValueError(f"resolution must be one of {fd.RESOLUTIONS}, not {self.resolution}")
        require_positive(
            self, "width", "refine_width", "res_blocks", "d_width", "steps", "batch_size"
        )
        require_positive(self, "train_pairs", "eval_pairs")
        _check_levels(self.resolution, self.levels, "levels")
        _check_levels(self.resolution, self.refine_levels, "refine_levels")
        if self.fc_dim < 0:
            raise ValueError("fc_dim must be >= 0 (0: no fully connected bottleneck)")
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(
                f"discriminator must be one of {', '.join(DISCRIMINATORS)}, not "
                f"{self.discriminator!r}"
            )
        check_objective(self.objective)
        for option in ("turn_fill", "turn_from_side"):
            if getattr(self, option) and not self.warp_facing:
                raise ValueError(f"{option} changes what warp_facing does: set warp_facing too")
        if self.refine_hides_turn and not self.warp_source:
            raise ValueError("refine_hides_turn needs warp_source: Stage II's figure is the warp")

    @property
    def label(self) -> str:
        return f"PG2 at {self.resolution}x{self.resolution}"

    @property
    def turned(self) -> str:
        """What the warp input does where the figure turned round (``warp_limbs``)."""
        return "fill" if self.turn_fill else "drop" if self.warp_facing else "warp"


READOUTS = ("soft", "peak")
PEAK_WINDOW = 2  # cells either side of a heatmap's maximum that the "peak" readout averages
HEATMAP_SIGMA = 1.0  # cells: the width of the "peak" readout's training target


@dataclass(frozen=True)
class KeypointConfig:
    """The keypoint regressor: a small U-Net to 18 heatmaps, read out by soft-argmax."""

    resolution: int = 64
    width: int = 16
    levels: int = 3  # below the stride-2 stem: 32 -> 4x4
    res_blocks: int = 1
    hidden_weight: float = 0.2  # hidden keypoints have exact positions: learn them, less
    # Train on imagedata.blur_half of each batch (half of it at half the resolution, slight
    # noise on all): a generator's pictures are softer than the renders, and the judge of
    # their pose must not read softness as a different pose.
    soften: bool = False
    # How a heatmap becomes a point. "soft": soft-argmax over the whole map, trained by L1 on
    # the points; where two limbs could hold a keypoint (the near and far leg side on) the
    # expected position can land between them and miss both. "peak": soft-argmax within
    # PEAK_WINDOW cells of the map's maximum, trained by cross-entropy against a Gaussian at
    # the true point, so that an unsure map keeps two peaks and the reading commits to one.
    readout: str = "soft"
    # Side views are where the judge errs (its misses there are mostly the near and far limbs
    # swapped, which only the far side's darker shade tells apart): they are drawn this many
    # times as often as the other views' renders into the training batches.
    side_weight: float = 1.0
    # Mirror half of each training batch, left and right keypoints swapped (the flip
    # augmentation of pose estimation: a mirrored person is a person).
    flip: bool = False
    init_from: str = ""  # a regressor's folder to fine-tune (the same architecture)
    lr: float = 1e-3
    steps: int = 3000
    batch_size: int = 32
    train_pairs: int = 4000  # two renders each
    eval_pairs: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution not in fd.RESOLUTIONS:
            raise ValueError(f"resolution must be one of {fd.RESOLUTIONS}, not {self.resolution}")
        require_positive(
            self,
            "width",
            "res_blocks",
            "steps",
            "batch_size",
            "train_pairs",
            "eval_pairs",
            "side_weight",
        )
        _check_levels(self.resolution // 2, self.levels, "levels")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, not {self.readout!r}")


# -- networks ----------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """PG2's residual block: two 3x3 convolutions with a ReLU between them, added to the input.
    The second starts at zero, so that a new block is the identity and deep U-Nets without
    normalisation train from the start."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, 1, 1),
        )
        nn.init.zeros_(self.body[2].weight)
        nn.init.zeros_(self.body[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PoseUNet(nn.Module):
    """An encoder-decoder with skip connections at every level (PG2's generators).

    Each level: residual blocks, then a stride-2 convolution; the decoder mirrors it with
    stride-2 transposed convolutions, the encoder's map of the same size concatenated and
    merged by a 1x1 convolution. No normalisation: PG2 has none, and small CPU batches make
    batch statistics noisy. ``fc_dim`` adds PG2's fully connected bottleneck.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        width: int,
        levels: int,
        res_blocks: int,
        resolution: int,
        fc_dim: int = 0,
    ) -> None:
        super().__init__()
        widths = [width * 2 ** min(i, 3) for i in range(levels + 1)]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1), nn.ReLU(True))

        def blocks(channels: int) -> nn.Sequential:
            return nn.Sequential(*(ResidualBlock(channels) for _ in range(res_blocks)))

        self.encode = nn.ModuleList(blocks(widths[i]) for i in range(levels))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1), nn.ReLU(True))
            for i in range(levels)
        )
        self.middle = blocks(widths[levels])
        self.fc_dim = fc_dim
        if fc_dim:
            side = resolution >> levels
            flat = widths[levels] * side * side
            self.squeeze = nn.Linear(flat, fc_dim)
            self.expand = nn.Linear(fc_dim, flat)
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(widths[i + 1], widths[i], 4, 2, 1), nn.ReLU(True))
            for i in range(levels)
        )
        self.merge = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * widths[i], widths[i], 1), nn.ReLU(True))
            for i in range(levels)
        )
        self.decode = nn.ModuleList(blocks(widths[i]) for i in range(levels))
        self.head = nn.Conv2d(widths[0], out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        skips = []
        for encode, down in zip(self.encode, self.down, strict=True):
            h = encode(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        if self.fc_dim:
            # Added to the convolutional path rather than replacing it: the global code tells
            # every pixel about the whole source, the convolutions keep the local detail.
            h = h + self.expand(F.relu(self.squeeze(h.flatten(1)))).view_as(h)
        for i in reversed(range(len(skips))):
            h = self.up[i](h)
            h = self.decode[i](self.merge[i](torch.cat([h, skips[i]], 1)))
        return self.head(h)


class PosePG2(HubBundle):
    """PG2's Stage-I and Stage-II generators, and the discriminator (kept so that a published
    model can be fine-tuned or resumed)."""

    config_class = PoseConfig
    storage_dtype = torch.float16

    def __init__(self, config: PoseConfig) -> None:
        super().__init__(config)
        c = config
        warped = 3 if c.warp_source else 0
        self.stage1 = PoseUNet(
            in_channels=3 + KEYPOINT_COUNT + warped,
            out_channels=3,
            width=c.width,
            levels=c.levels,
            res_blocks=c.res_blocks,
            resolution=c.resolution,
            fc_dim=c.fc_dim,
        )
        self.stage2 = PoseUNet(
            in_channels=6 + warped,
            out_channels=3,
            width=c.refine_width,
            levels=c.refine_levels,
            res_blocks=c.res_blocks,
            resolution=c.resolution,
        )
        # Stage II starts as "no change": its difference map is zero until it learns one.
        nn.init.zeros_(self.stage2.head.weight)
        nn.init.zeros_(self.stage2.head.bias)
        # D judges (source, image) pairs: a copy of the source is not the person in the pose.
        if c.discriminator == "dcgan":
            self.discriminator = DCGANDiscriminator(
                width=c.d_width, resolution=c.resolution, channels=6
            )
            init_dcgan(self.discriminator)
        else:  # no batch statistics anywhere in D, minibatch standard deviation included
            self.discriminator = ProjectionDiscriminator(
                width=c.d_width, resolution=c.resolution, channels=6, mbstd=False
            )

    def _inputs(self, *parts: torch.Tensor, warped: torch.Tensor | None) -> torch.Tensor:
        if self.config.warp_source:
            if warped is None:
                raise ValueError("this model also takes the source warped to the target pose")
            parts = (*parts, warped)
        return torch.cat(parts, 1)

    def coarse(
        self, source: torch.Tensor, pose: torch.Tensor, warped: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Stage I: the source image and the target's heatmaps (and, with ``warp_source``, the
        warped source) -> a coarse image in [-1, 1]."""
        return torch.tanh(self.stage1(self._inputs(source, pose, warped=warped)))

    def refine(
        self, source: torch.Tensor, coarse: torch.Tensor, warped: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Stage II: Stage I plus a predicted difference map (not clamped: see ``transfer``).
        ``source`` is what Stage II reads of it (``refine_source`` with refine_hides_turn)."""
        return coarse + self.stage2(self._inputs(source, coarse, warped=warped))

    def judge(self, source: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """D's logit for (source, image): is ``image`` a real picture of that person?"""
        return self.discriminator(torch.cat([source, image], 1))

    def forward(
        self,
        source: torch.Tensor,
        pose: torch.Tensor,
        warped: torch.Tensor | None = None,
        refined_from: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(Stage I, final); Stage II reads ``refined_from`` where given, else the source."""
        coarse = self.coarse(source, pose, warped)
        return coarse, self.refine(source if refined_from is None else refined_from, coarse, warped)


class KeypointRegressor(HubBundle):
    """18 keypoints from a picture: a stride-2 stem, a U-Net to 18 heatmaps at half the
    resolution, and soft-argmax (the expected position under each heatmap's softmax), which
    is differentiable and finer than the heatmap's 2-pixel cells."""

    config_class = KeypointConfig
    storage_dtype = torch.float16

    def __init__(self, config: KeypointConfig) -> None:
        super().__init__(config)
        c = config
        self.stem = nn.Sequential(nn.Conv2d(3, c.width, 4, 2, 1), nn.ReLU(True))
        self.net = PoseUNet(
            in_channels=c.width,
            out_channels=KEYPOINT_COUNT,
            width=c.width,
            levels=c.levels,
            res_blocks=c.res_blocks,
            resolution=c.resolution // 2,
        )
        # Pixel centres of the heatmap's cells, in input pixels.
        centres = (torch.arange(c.resolution // 2, dtype=torch.float32) + 0.5) * 2
        self.register_buffer("centres", centres, persistent=False)

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 18, R/2, R/2) probabilities: each keypoint's map sums to 1."""
        logits = self.net(self.stem(images))
        return logits.flatten(2).softmax(-1).view_as(logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 18, 2) keypoint pixels (x, y) of images in [-1, 1]."""
        return self.read(self.heatmaps(images))

    def read(self, p: torch.Tensor) -> torch.Tensor:
        """(N, 18, 2) keypoint pixels from (N, 18, R/2, R/2) heatmaps, by the config's readout."""
        if self.config.readout == "peak":
            cells = p.shape[-1]
            peak = p.flatten(2).argmax(-1)
            index = torch.arange(cells, device=p.device)
            near_row = (index - (peak // cells)[..., None]).abs() <= PEAK_WINDOW
            near_column = (index - (peak % cells)[..., None]).abs() <= PEAK_WINDOW
            p = p * (near_row[..., :, None] & near_column[..., None, :])
            p = p / p.sum((2, 3), keepdim=True)
        x = (p.sum(2) * self.centres).sum(-1)  # marginal over rows, then the expected column
        y = (p.sum(3) * self.centres).sum(-1)
        return torch.stack([x, y], -1)

    def heatmap_loss(
        self, images: torch.Tensor, points: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """The "peak" readout's training loss (``heatmap_cross_entropy``) on ``images``."""
        return heatmap_cross_entropy(self.net(self.stem(images)), points, weight, self.centres)


def heatmap_cross_entropy(
    logits: torch.Tensor, points: torch.Tensor, weight: torch.Tensor, centres: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of each keypoint's heatmap (N, 18, C, C logits over cells whose centres
    are ``centres`` pixels) against a Gaussian of HEATMAP_SIGMA cells at its true pixel
    (x, y), weighted per keypoint (N, 18)."""
    sigma = HEATMAP_SIGMA * (centres[1] - centres[0])
    gx = torch.exp(-((centres - points[..., :1]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((centres - points[..., 1:]) ** 2) / (2 * sigma**2))
    target = gy[..., :, None] * gx[..., None, :]
    target = target / target.sum((2, 3), keepdim=True)
    log_p = logits.flatten(2).log_softmax(-1).view_as(logits)
    return (-(target * log_p).sum((2, 3)) * weight).sum() / weight.sum()


# -- inputs ------------------------------------------------------------------------------------


def heatmaps(
    keypoints: torch.Tensor | np.ndarray,
    visible: torch.Tensor | np.ndarray,
    resolution: int = 64,
    sigma: float | None = None,
) -> torch.Tensor:
    """(N, 18, R, R) float32 pose heatmaps of (N, 18, 2) keypoints: figuredata.pose_heatmaps
    for a whole batch at once (the same Gaussians, peak 1, zeros for hidden keypoints)."""
    points = torch.as_tensor(keypoints, dtype=torch.float32)
    shown = torch.as_tensor(visible, dtype=torch.bool, device=points.device)
    if points.dim() != 3 or points.shape[1:] != (KEYPOINT_COUNT, 2):
        raise DataError(f"expected (N, 18, 2) keypoints, got {tuple(points.shape)}")
    if shown.shape != points.shape[:2]:
        raise DataError(f"expected (N, 18) visibility, got {tuple(shown.shape)}")
    sigma = 1.5 * resolution / 64 if sigma is None else sigma
    centres = torch.arange(resolution, dtype=torch.float32, device=points.device) + 0.5
    # A 2-D Gaussian is the outer product of two 1-D ones: N x 18 x R values each.
    gx = torch.exp(-((centres - points[..., :1]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((centres - points[..., 1:]) ** 2) / (2 * sigma**2))
    return gy[..., :, None] * gx[..., None, :] * shown[..., None, None]


def images_from_renders(images: np.ndarray) -> torch.Tensor:
    """(N, R, R, 3) uint8 renders -> (N, 3, R, R) float in [-1, 1], the models' input."""
    return to_tensor(images, 3)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """(N, C, R, R) uint8 as stored in ``PosePairs`` -> float in [-1, 1] (masks: use / 255)."""
    return images.float() / 127.5 - 1.0


@dataclass(frozen=True)
class PosePairs:
    """Rendered pairs with their figure masks, stored compactly (uint8 pictures, CHW)."""

    source: torch.Tensor  # (N, 3, R, R) uint8
    target: torch.Tensor
    source_mask: torch.Tensor  # (N, 1, R, R) uint8: 255 where the figure covers the pixel
    target_mask: torch.Tensor
    source_keypoints: torch.Tensor  # (N, 18, 2) float32 pixels (x, y)
    target_keypoints: torch.Tensor
    source_visible: torch.Tensor  # (N, 18) bool
    target_visible: torch.Tensor
    source_view: torch.Tensor  # (N,) int64 index into figuredata.VIEWS
    target_view: torch.Tensor
    identity_ids: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.source)

    def take(self, index: torch.Tensor | slice) -> PosePairs:
        return PosePairs(*(getattr(self, f.name)[index] for f in fields(self)))

    @property
    def same_view(self) -> torch.Tensor:
        return self.source_view == self.target_view


@functools.lru_cache(maxsize=4)
def render_pool(n: int, split: str = "train", seed: int = 0, resolution: int = 64) -> PosePairs:
    """``n`` pairs of one split with both figure masks: the pairs of
    ``figuredata.render_pairs(n, split, seed, resolution)`` (the same people, poses and
    pictures), plus the masks PG2's loss and mask-SSIM need. Rendered once per process for the
    same arguments (callers must not modify the tensors)."""
    if split not in fd.SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(fd.SPLITS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DataError(f"n must be a positive integer, not {n!r}")
    ids, split_index = fd.identities(split), list(fd.SPLITS).index(split)
    images = np.empty((2, n, resolution, resolution, 3), np.uint8)
    masks = np.empty((2, n, resolution, resolution), np.float32)
    points = np.empty((2, n, KEYPOINT_COUNT, 2), np.float32)
    visible = np.empty((2, n, KEYPOINT_COUNT), bool)
    views = np.empty((2, n), np.int64)
    people = np.empty(n, np.int64)
    for i in range(n):
        # The draw figuredata.render_pairs makes for item i (tests hold the two in step).
        rng = np.random.default_rng([int(seed), split_index, i])
        chosen = fd.pair(ids[int(rng.integers(len(ids)))], rng, split)
        people[i] = chosen.identity_id
        for j, pose in enumerate((chosen.source, chosen.target)):
            images[j, i], points[j, i], visible[j, i] = fd.render(chosen.identity, pose, resolution)
            masks[j, i] = fd.figure_mask(chosen.identity, pose, resolution)
            views[j, i] = pose.view_id
    pictures = torch.from_numpy(images).permute(0, 1, 4, 2, 3).contiguous()
    mask_bytes = torch.from_numpy(np.round(masks * 255).astype(np.uint8))[:, :, None]
    return PosePairs(
        pictures[0],
        pictures[1],
        mask_bytes[0],
        mask_bytes[1],
        *torch.from_numpy(points),
        *torch.from_numpy(visible),
        *torch.from_numpy(views),
        torch.from_numpy(people),
    )


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def transfer(
    model: PosePG2,
    source_images: torch.Tensor,
    target_keypoints: torch.Tensor | np.ndarray,
    target_visibility: torch.Tensor | np.ndarray,
    source_keypoints: torch.Tensor | np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Stage I, final) images in [-1, 1] of the sources' people in the target poses.

    ``source_images``: (N, 3, R, R) in [-1, 1]; ``target_keypoints``: (N, 18, 2) pixels (x, y);
    ``target_visibility``: (N, 18). One forward pass for the batch. Plain PG2 conditions on
    the target pose alone; a ``warp_source`` model also needs ``source_keypoints`` (N, 18, 2),
    to warp the source to the target pose.
    """
    c = model.config
    if source_images.dim() != 4 or source_images.shape[1:] != (3, c.resolution, c.resolution):
        raise DataError(
            f"expected (N, 3, {c.resolution}, {c.resolution}) source images, got "
            f"{tuple(source_images.shape)}"
        )
    device = _device(model)
    pose = heatmaps(target_keypoints, target_visibility, c.resolution).to(device)
    if len(pose) != len(source_images):
        raise DataError(f"{len(source_images)} source images but {len(pose)} target poses")
    warped = refined_from = None
    if c.warp_source:
        if source_keypoints is None:
            raise DataError("this model warps the source to the target pose: it needs the "
                            "source's keypoints too")  # fmt: skip
        if len(source_keypoints) != len(source_images):
            raise DataError(
                f"{len(source_images)} source images but {len(source_keypoints)} source poses"
            )
        source_cpu = source_images.float().cpu()
        warped = warp_limbs(
            source_cpu, source_keypoints, target_keypoints, c.turned, c.turn_from_side
        ).to(device)
        if c.refine_hides_turn:
            refined_from = refine_source(
                source_cpu, source_keypoints, target_keypoints, c.turn_from_side
            ).to(device)
    coarse, final = model(source_images.to(device, torch.float32), pose, warped, refined_from)
    return coarse.float().cpu(), final.clamp(-1, 1).float().cpu()


def sample(model: PosePG2, n: int, seed: int) -> torch.Tensor:
    """Final images of ``n`` test-split pairs rendered with ``seed``: the contract smoke test."""
    batch = fd.render_pairs(n, "test", seed=seed, resolution=model.config.resolution)
    source = images_from_renders(batch.source)
    points = batch.target_keypoints, batch.target_visible, batch.source_keypoints
    return transfer(model, source, *points)[1]


def average_person() -> fd.Identity:
    """A person of average height and build: the skeleton used for a source given as a
    picture, whose body proportions are unknown."""
    return replace(fd.identity(fd.identities("test")[0]), height=1.0, build=1.0)


def sequence_keypoints(
    person: fd.Identity, name: str, frames: int, resolution: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(frames, 18, 2) keypoints and (frames, 18) visibility of ``person`` through one of
    figuredata.SEQUENCES."""
    found = [fd.keypoints(person, pose, resolution) for pose in fd.sequence(name, frames)]
    return np.stack([k for k, _ in found]), np.stack([v for _, v in found])


def source_of(identity_id: int, resolution: int = 64) -> torch.Tensor:
    """(1, 3, R, R): the person with this id standing, facing the camera."""
    image, _, _ = fd.render(fd.identity(identity_id), NEUTRAL_POSE, resolution)
    return images_from_renders(image[None])


def animate(
    model: PosePG2, source: int | torch.Tensor, sequence_name: str, frames: int = 30
) -> torch.Tensor:
    """(frames, 3, R, R) final images of a person through a pose sequence, in one pass.

    ``source``: an identity id (rendered standing, with that person's own skeleton) or a
    (3, R, R) / (1, 3, R, R) picture in [-1, 1] (the skeleton of an average person).
    """
    r = model.config.resolution
    if isinstance(source, torch.Tensor):
        image = source if source.dim() == 4 else source[None]
        if len(image) != 1:
            raise DataError("animate takes one source picture")
        person = average_person()
    else:
        image, person = source_of(source, r), fd.identity(source)
    points, visible = sequence_keypoints(person, sequence_name, frames, r)
    standing = np.repeat(fd.keypoints(person, NEUTRAL_POSE, r)[0][None], len(points), 0)
    sources = image.expand(len(points), -1, -1, -1)
    return transfer(model, sources, points, visible, standing)[1]


# -- losses and metrics ------------------------------------------------------------------------


def pose_mask_l1(
    output: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    mask_weight: float = 1.0,
    parts: torch.Tensor | None = None,
    parts_weight: float = 0.0,
) -> torch.Tensor:
    """PG2's pose-mask loss: mean |output - target| * (1 + mask_weight * mask), the mask
    (N, 1, R, R) in [0, 1] covering the person in the target; with ``parts`` (the target's
    ``part_mask``), ``parts_weight * parts`` more."""
    weight = 1 + mask_weight * mask
    if parts is not None:
        weight = weight + parts_weight * parts
    return ((output - target).abs() * weight).mean()


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    offsets = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - SSIM_WINDOW // 2
    g = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _ssim01(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) images in [0, 1] (Wang et al. 2004, L = 1).

    Local statistics under an 11x11 Gaussian window (sigma 1.5) at every position where the
    window fits inside the image (skimage's structural_similarity with gaussian_weights and
    use_sample_covariance=False crops the same border), averaged over channels and positions.
    """
    c, h, w = a.shape[1:]
    if min(h, w) < SSIM_WINDOW:
        raise DataError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    window = _gaussian_window(a.dtype, a.device).expand(c, 1, -1, -1)

    def local(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)

    mu_a, mu_b = local(a), local(b)
    var_a = local(a * a) - mu_a**2
    var_b = local(b * b) - mu_b**2
    cov = local(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return s.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) SSIM of image batches in [-1, 1]."""
    return _ssim01((x + 1) / 2, (y + 1) / 2)


def mask_ssim(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) PG2's mask-SSIM: SSIM after setting the background (mask 0) to black in both
    images; ``mask`` is (N, 1, H, W) or (N, H, W) in [0, 1], the target's figure."""
    m = mask if mask.dim() == 4 else mask[:, None]
    m = m.to(x.dtype)
    return _ssim01((x + 1) / 2 * m, (y + 1) / 2 * m)


def pck(
    predicted: torch.Tensor,
    true: torch.Tensor,
    visible: torch.Tensor,
    alpha: float = PCK_ALPHA,
    size: float | None = None,
) -> float:
    """Share of visible keypoints predicted within ``alpha`` x a reference length of the truth.

    The reference is the longer side of the bounding box of each image's visible true
    keypoints, or ``size`` (the picture's side, say) when given. (N, 18, 2) pixels.
    """
    shown = torch.as_tensor(visible, dtype=torch.bool)
    true = torch.as_tensor(true, dtype=torch.float32)
    predicted = torch.as_tensor(predicted, dtype=torch.float32)
    if not shown.any():
        return math.nan
    if size is None:
        big = torch.finfo(true.dtype).max
        lo = torch.where(shown[..., None], true, big).amin(1)
        hi = torch.where(shown[..., None], true, -big).amax(1)
        reference = (hi - lo).amax(-1).clamp_min(1.0)  # (N,): one visible point gives 1 pixel
    else:
        reference = torch.full((len(true),), float(size))
    hit = (predicted - true).norm(dim=-1) <= alpha * reference[:, None]
    return float(hit[shown].float().mean())


# -- baselines ---------------------------------------------------------------------------------

# The warp's body parts: (from joint, to joint, extension, radius). The extension lengthens the
# bone past its end joint over what hangs off it (the hand, the foot, the head above the
# nose); the radius, in fractions of the picture, is how far from the bone a pixel belongs to
# the part.
WARP_LIMBS = (
    (fd.NECK, fd.NOSE, 0.8, 0.05),
    (fd.R_SHOULDER, fd.R_ELBOW, 0.0, 0.04),
    (fd.R_ELBOW, fd.R_WRIST, 0.35, 0.04),
    (fd.L_SHOULDER, fd.L_ELBOW, 0.0, 0.04),
    (fd.L_ELBOW, fd.L_WRIST, 0.35, 0.04),
    (fd.R_HIP, fd.R_KNEE, 0.0, 0.05),
    (fd.R_KNEE, fd.R_ANKLE, 0.2, 0.045),
    (fd.L_HIP, fd.L_KNEE, 0.0, 0.05),
    (fd.L_KNEE, fd.L_ANKLE, 0.2, 0.045),
)
HEAD_PART = 0  # WARP_LIMBS' neck -> nose bone, lengthened over the skull
FACING_SPAN = 0.13  # of the figure's height: shoulder plus hip spans past this face one way
TORSO_MARGIN = 0.03  # beyond the shoulder or hip span, in fractions of the picture
MIN_TORSO_HALF_WIDTH = 0.03  # a side view's shoulders overlap; the torso still has depth
MAX_LIMB_SCALE = 3.0  # a bone foreshortened to a point in the target must not blow up


def _complex(points: torch.Tensor) -> torch.Tensor:
    return torch.complex(points[..., 0].double(), points[..., 1].double())


def _unit(z: torch.Tensor) -> torch.Tensor:
    """z / |z|, and 1 where z is (nearly) zero: a direction that is always defined."""
    size = z.abs()
    return torch.where(size > 1e-9, z / size.clamp_min(1e-9), torch.ones_like(z))


def _segment_distance(p: torch.Tensor, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Distance from points ``p`` to the segments a -> a + d (complex, broadcast)."""
    length2 = (d.abs() ** 2).clamp_min(1e-9)
    t = ((p - a) * d.conj()).real.div(length2).clamp(0, 1)
    return (p - a - t * d).abs()


_LIMB_COLUMNS = list(zip(*WARP_LIMBS, strict=True))
LIMB_START, LIMB_END = (torch.tensor(column) for column in _LIMB_COLUMNS[:2])
LIMB_EXTEND, LIMB_RADIUS = (torch.tensor(c, dtype=torch.float64) for c in _LIMB_COLUMNS[2:])


def _pixel_grid(resolution: int) -> torch.Tensor:
    """(R, R) complex pixel centres x + iy."""
    centres = torch.arange(resolution, dtype=torch.float64) + 0.5
    return torch.complex(
        centres[None, :].expand(resolution, resolution),
        centres[:, None].expand(resolution, resolution),
    )


def _limb_scores(points: torch.Tensor, pixels: torch.Tensor, resolution: int):
    """Each WARP_LIMBS bone of (N, 18) complex keypoints as (N, P, 1, 1) start and direction,
    and (N, P, R, R) each pixel's distance from the bone (lengthened by its extension) over
    the part's radius: at most 1 inside the part."""
    start = points[:, LIMB_START, None, None]
    direction = points[:, LIMB_END, None, None] - start
    reach = direction * (1 + LIMB_EXTEND[None, :, None, None])
    score = _segment_distance(pixels, start, reach) / (LIMB_RADIUS[:, None, None] * resolution)
    return start, direction, score


def part_mask(keypoints: torch.Tensor | np.ndarray, resolution: int = 64) -> torch.Tensor:
    """(N, 1, R, R) float32: 1 on the limbs and the head of (N, 18, 2) keypoints (the warp's
    parts: each bone, lengthened over the hand, foot or skull, and its radius), else 0."""
    points = _complex(torch.as_tensor(keypoints, dtype=torch.float32))
    _, _, score = _limb_scores(points, _pixel_grid(resolution), resolution)
    return (score.amin(1, keepdim=True) <= 1).float()


def source_background(source: torch.Tensor) -> torch.Tensor:
    """(N, 3, R, R) estimate of the empty background: each row the mean of its first and last
    pixel (the renderer's backgrounds are vertical gradients, and figures keep off the sides)."""
    edges = (source[..., :1] + source[..., -1:]) / 2
    return edges.expand_as(source)


def facing(keypoints: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(N,) of (N, 18, 2) pixel keypoints: 1 where the figure faces the camera (its left
    shoulder and hip right of its right ones in the picture), -1 where it faces away, 0 side
    on (the two spans together under FACING_SPAN of the figure's height either way)."""
    points = torch.as_tensor(keypoints, dtype=torch.float32)
    span = (points[:, fd.L_SHOULDER, 0] - points[:, fd.R_SHOULDER, 0]) + (
        points[:, fd.L_HIP, 0] - points[:, fd.R_HIP, 0]
    )
    # The picture's size is not passed: the keypoints' own spread (the figure's height) scales
    # the threshold, so it holds at 64 and 128 pixels alike.
    height = points[..., 1].amax(1) - points[..., 1].amin(1)
    limit = FACING_SPAN * height.clamp_min(1.0)
    return torch.where(span > limit, 1, torch.where(span < -limit, -1, 0))


def _torso_frame(points: torch.Tensor, r: int):
    """(N,) neck, unit spine direction, spine length and half-width across the spine (pixels)
    of (N, 18) complex keypoints: the torso's frame, which the warp maps between poses."""
    neck = points[:, fd.NECK]
    hips = (points[:, fd.R_HIP] + points[:, fd.L_HIP]) / 2
    spine = hips - neck
    length = spine.abs().clamp_min(1.0)
    along = _unit(spine)
    spans = torch.stack(
        [
            points[:, fd.L_SHOULDER] - points[:, fd.R_SHOULDER],
            points[:, fd.L_HIP] - points[:, fd.R_HIP],
        ],
        -1,
    )
    across = (spans * along[:, None].conj()).imag.abs().amax(-1) / 2
    return neck, along, length, across.clamp_min(MIN_TORSO_HALF_WIDTH * r)


def _torso_score(points: torch.Tensor, pixels: torch.Tensor, r: int) -> torch.Tensor:
    """(N, R, R) each pixel's distance from the spine over the torso's half-width (with
    TORSO_MARGIN): at most 1 on the torso."""
    neck, along, length, half = (v[:, None, None] for v in _torso_frame(points, r))
    return _segment_distance(pixels, neck, along * length) / (half + TORSO_MARGIN * r)


def turns(
    source_keypoints: torch.Tensor | np.ndarray,
    target_keypoints: torch.Tensor | np.ndarray,
    from_side: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) bool each: the pairs whose figure turned between facing the camera and facing
    away (``facing``; with ``from_side`` also from side on to either), and those of them that
    turned away."""
    facing_source, facing_target = facing(source_keypoints), facing(target_keypoints)
    is_turned = facing_source * facing_target < 0
    if from_side:
        is_turned |= (facing_source == 0) & (facing_target != 0)
    return is_turned, is_turned & (facing_target < 0)


def figure_mask(keypoints: torch.Tensor | np.ndarray, resolution: int = 64) -> torch.Tensor:
    """(N, 1, R, R) bool: the whole figure of (N, 18, 2) keypoints, the warp's parts and its
    torso, grown by a pixel for the antialiased edges."""
    points = _complex(torch.as_tensor(keypoints, dtype=torch.float32))
    pixels = _pixel_grid(resolution)
    _, _, limbs = _limb_scores(points, pixels, resolution)
    inside = (limbs.amin(1) <= 1) | (_torso_score(points, pixels, resolution) <= 1)
    return F.max_pool2d(inside[:, None].float(), 3, 1, 1) > 0


def refine_source(
    source: torch.Tensor,
    source_keypoints: torch.Tensor | np.ndarray,
    target_keypoints: torch.Tensor | np.ndarray,
    from_side: bool = False,
) -> torch.Tensor:
    """The source as Stage II reads it with ``PoseConfig.refine_hides_turn``: where the figure
    turned (``turns``), the figure replaced by the background."""
    is_turned, _ = turns(source_keypoints, target_keypoints, from_side)
    if not is_turned.any():
        return source
    hidden = is_turned[:, None, None, None] & figure_mask(source_keypoints, source.shape[-1])
    return torch.where(hidden.to(source.device), source_background(source), source)


def warp_limbs(
    source: torch.Tensor,
    source_keypoints: torch.Tensor | np.ndarray,
    target_keypoints: torch.Tensor | np.ndarray,
    turned: str = "warp",
    from_side: bool = False,
) -> torch.Tensor:
    """The piecewise-affine baseline: each target pixel near a target bone is sampled from the
    source through that bone's transform; every other pixel is the source's background.

    Limbs and the head move by the similarity (rotation, scale, shift) that maps the target
    bone onto the source bone; the torso by the affine map that takes the target spine (neck
    to mid-hip) to the source spine and scales across it by the ratio of the shoulder and hip
    spans. A pixel belongs to the part nearest it relative to the part's radius. All parts of
    all images are computed at once and sampled with one grid_sample.

    ``turned`` says what happens where the figure turned between facing the camera and facing
    away (``facing``): "warp" warps it like any other pair (the baseline); "drop" leaves the
    torso and the head as background (PoseConfig.warp_facing); "fill" does the same where
    the figure turned to the camera, and where it turned away paints the torso in the
    source's shirt colour and the head in its hair colour (``turn_colours``;
    PoseConfig.turn_fill). ``from_side``: a figure seen side on that comes to face the camera
    or to face away counts as turned too (PoseConfig.turn_from_side).
    """
    if turned not in TURN_MODES:
        raise ValueError(f"turned must be one of {', '.join(TURN_MODES)}, not {turned!r}")
    r = source.shape[-1]
    src = _complex(torch.as_tensor(source_keypoints, dtype=torch.float32))  # (N, 18)
    tgt = _complex(torch.as_tensor(target_keypoints, dtype=torch.float32))
    pixels = _pixel_grid(r)
    a_t, d_t, limb_score = _limb_scores(tgt, pixels, r)
    a_s = src[:, LIMB_START, None, None]
    d_s = src[:, LIMB_END, None, None] - a_s
    # Source bone / target bone, the target bone at least a pixel long.
    scale = d_s / (_unit(d_t) * d_t.abs().clamp_min(1.0))
    scale = scale * (MAX_LIMB_SCALE / scale.abs().clamp_min(MAX_LIMB_SCALE))  # cap the zoom
    limb_from = a_s + (pixels - a_t) * scale

    # Torso: the spine's frame (along, across) in the target, mapped to the source's.
    neck_t, along_t, length_t, half_t = (v[:, None, None] for v in _torso_frame(tgt, r))
    neck_s, along_s, length_s, half_s = (v[:, None, None] for v in _torso_frame(src, r))
    q = (pixels - neck_t) * along_t.conj()  # real: along the spine, imag: across it
    mapped = torch.complex(q.real * length_s / length_t, q.imag * half_s / half_t)
    torso_from = neck_s + along_s * mapped
    torso_score = _torso_score(tgt, pixels, r)

    scores = torch.cat([torso_score[:, None], limb_score], 1)  # (N, 1 + P, R, R)
    torso, head = 0, 1 + HEAD_PART  # indices into scores: the torso, then the limbs
    is_turned, turned_away = turns(source_keypoints, target_keypoints, from_side)
    if turned != "warp":
        left_out = torch.zeros(len(scores), scores.shape[1], dtype=torch.bool)
        left_out[:, head] = left_out[:, torso] = (
            is_turned & ~turned_away if turned == "fill" else is_turned
        )
        scores = torch.where(left_out[..., None, None], torch.inf, scores)
    origins = torch.cat([torso_from[:, None], limb_from], 1)
    best, part = scores.min(1)
    origin = origins.gather(1, part[:, None]).squeeze(1)  # (N, R, R)
    # grid_sample's (-1, 1) spans the outer edges of the corner pixels (align_corners=False).
    grid = torch.stack([origin.real, origin.imag], -1) / r * 2 - 1
    warped = F.grid_sample(
        source, grid.to(source.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )
    inside = (best <= 1)[:, None]
    if turned == "fill" and turned_away.any():  # an animation's frames seldom turn away
        shirt, hair = (c[..., None, None] for c in turn_colours(source, source_keypoints))
        filled = turned_away[:, None, None, None] & inside
        warped = torch.where(filled & (part == torso)[:, None], shirt, warped)
        warped = torch.where(filled & (part == head)[:, None], hair, warped)
    return torch.where(inside, warped, source_background(source))


# Where turn_colours reads the colours, in the source's own proportions. The shirt: the
# upper arms from the shoulder on, sleeves of the shirt's own colour in every view and with
# every pattern (figuredata paints patterns on the torso only). The middle of the torso, read
# before, is the accent's in a two-tone shirt and often a stripe's: on 4,000 renders of
# training identities (render_pool(2000, "train", 7)) the median is within 0.1 (on [-1, 1])
# of the identity's shirt colour for 96 % of those facing the camera (the sources a turn
# away starts from) against 39 % for the torso's middle; 85 % against 67 % over all views.
# Its hair colour: 81 %. A 64x64 head is about five pixels across, so the crown's probe is
# one to three pixels.
SLEEVE_SPAN = (0.0, 0.4)  # along the upper arm, shoulder 0 to elbow 1
SLEEVE_HALF_WIDTH = 0.08  # of the spine's length (neck to the hips' midpoint)
CROWN_OFFSET = 0.6  # past the ears' midpoint, of the neck-to-ears length: the hair's crown
CROWN_RADIUS = 0.2  # of the same length


def turn_colours(
    source: torch.Tensor, source_keypoints: torch.Tensor | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) shirt and (N, 3) hair colours of the (N, 3, R, R) sources: the median of the
    pixels on both upper arms next to the shoulders, and of those at the crown of the head
    (figuredata covers it with hair from every view). Medians, so that a forearm across a
    sleeve or a strand of background does not tint them; the background estimate where a
    probe is empty."""
    r = source.shape[-1]
    points = _complex(torch.as_tensor(source_keypoints, dtype=torch.float32))
    pixels = _pixel_grid(r)
    neck = points[:, fd.NECK, None, None]
    spine = (points[:, fd.R_HIP, None, None] + points[:, fd.L_HIP, None, None]) / 2 - neck
    lo, hi = SLEEVE_SPAN
    on_sleeves = torch.zeros(pixels.shape[-2:], dtype=torch.bool)
    for shoulder, elbow in ((fd.R_SHOULDER, fd.R_ELBOW), (fd.L_SHOULDER, fd.L_ELBOW)):
        start = points[:, shoulder, None, None]
        upper_arm = points[:, elbow, None, None] - start
        on_sleeves = on_sleeves | (
            _segment_distance(pixels, start + lo * upper_arm, (hi - lo) * upper_arm)
            <= SLEEVE_HALF_WIDTH * spine.abs()
        )
    ears = (points[:, fd.R_EAR, None, None] + points[:, fd.L_EAR, None, None]) / 2
    head = ears - neck
    on_crown = (pixels - (ears + CROWN_OFFSET * head)).abs() <= CROWN_RADIUS * head.abs()

    background = source_background(source)[..., r // 2]  # (N, 3, R) -> the middle column's

    def median(region: torch.Tensor) -> torch.Tensor:
        values = torch.where(region[:, None], source.double(), torch.nan).flatten(2)
        found = values.nanmedian(-1).values.to(source.dtype)  # (N, 3); NaN where empty
        return torch.where(found.isnan(), background.mean(-1), found)

    return median(on_sleeves), median(on_crown)


# -- the published models ----------------------------------------------------------------------


@torch.inference_mode()
def smoke_keypoints(model: KeypointRegressor, n: int, seed: int) -> torch.Tensor:
    """(n, 18, 2) keypoints the regressor finds in ``n`` test renders drawn with ``seed``."""
    batch = fd.render_pairs(n, "test", seed=seed, resolution=model.config.resolution)
    return model(images_from_renders(batch.target).to(_device(model))).float().cpu()


REGRESSOR = AuxiliaryModel(
    "pose-figures-keypoints",
    "COCO-18 keypoint regressor for the rendered figures (the PCK metric's judge)",
    bundle=KeypointRegressor,
    sample=smoke_keypoints,
)

FIGURES = Dataset(
    "people in poses: procedural figures with exact COCO-18 keypoints",
    "rendered by hub_models/figuredata.py (identities split train / val / test)",
    "MIT",
    "Drawn by this project; no photograph of a person is used.",
)

FAMILY = Family(
    name="pose",
    title="Pose transfer (PG2)",
    tagline="Pick a person and a target pose and see them in it: Stage I, the refined image, "
    "and an animation through a pose sequence.",
    page="pose.py",
    icon=":material/accessibility_new:",
    bundle=PosePG2,
    sample=sample,
    models=(PublishedModel("pose-figures", "PG2 pose transfer on rendered figures, 64x64"),),
    datasets=(FIGURES,),
    papers=("https://arxiv.org/abs/1705.09368", "https://arxiv.org/abs/1801.00055"),
    metric_names=METRIC_NAMES,
    protocol=PROTOCOL,
    intended_use=INTENDED_USE,
    limitations=LIMITATIONS,
    trainer="training.pose:Trainer",
    benchmarks={
        "pose": "benchmarks.pose:table",  # SSIM, mask-SSIM and PCK beside the three baselines
        "pose-speed": "benchmarks.pose:speed",  # one transfer, and a 30-frame sequence
    },
    auxiliary=(REGRESSOR,),
    tags=("gan", "pose-transfer", "pg2", "image-to-image"),
    sample_caption="Held-out people: source, target skeleton, Stage I, final, real target.",
)
