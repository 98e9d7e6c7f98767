"""Training adapter for PG2 pose transfer, its evaluation, and the keypoint regressor.

Stages: by default one step trains Stage I, Stage II and D together, with Stage I's output
detached before it enters Stage II, so Stage II's L1 and D's verdict never reach Stage I;
every checkpoint and sample of such a run is a complete model. ``stage1_from`` adds PG2's
second phase: Stage I copied from a finished run and frozen, Stage II and D trained alone
(about half the cost of a joint step). ``init_from`` fine-tunes every weight of a finished
run. The published model is made in two phases, with the warp settings and part weights that
a longer chain of fine-tunes found (the README lists both; each run's training.json, and so
the card, lists the runs before it):

    python -m training train pose --preset demo --w_parts=8 --warp_facing=true \
        --turn_fill=true --turn_from_side=true --out runs/pose-scratch
    python -m training train pose --preset demo --stage1_from=runs/pose-scratch \
        --discriminator=spectral --steps=3000 --w_adv=0.0001 --w_parts=8 --warp_facing=true \
        --turn_fill=true --turn_from_side=true --out runs/pose-phase2

Why the second phase: in the joint run Stage II, against PG2's batch-normed discriminator,
covered the figures in coloured noise (mask-SSIM 0.960 against its own Stage I's 0.965 on the
test pairs); a discriminator without batch norm (``discriminator="spectral"``) removed the
noise, and a lower adversarial weight let Stage II add sharpness without losing structure.
The weight was picked on 500 fresh pairs of training identities, not on the test identities:
final mask-SSIM 0.9633 at 0.002, 0.9643 at 0.0005, 0.9650 at 0.0001 (Stage I 0.9648, the
warp 0.9641). The fine-tunes' settings were picked on 500 pairs of validation identities
(README).

Each training pair is used in both directions (A -> B and B -> A, drawn per sample), which
doubles the pairs at no rendering cost.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from hub_models import figuredata as fd
from hub_models import hub, imagedata
from hub_models.base import CheckpointError
from hub_models.effnet import EfficientNetLite0, load_effnet, perceptual_l1
from hub_models.family import Family
from hub_models.objectives import discriminator_loss, generator_loss
from hub_models.pose import (
    FAMILY,
    METHODS,
    PEAK_WINDOW,
    REGRESSOR,
    STAGE1_FIELDS,
    KeypointConfig,
    KeypointRegressor,
    PoseConfig,
    PosePairs,
    PosePG2,
    animate,
    heatmaps,
    images_from_renders,
    mask_ssim,
    part_mask,
    pck,
    pose_mask_l1,
    refine_source,
    render_pool,
    sequence_keypoints,
    ssim,
    to_float,
    transfer,
    warp_limbs,
)
from training.base import StepContext, donor_folder
from training.base import Trainer as BaseTrainer
from training.cards import write_auxiliary_run

EVAL_SEED = 0  # the test pairs are render_pool(eval_pairs, "test", EVAL_SEED): PROTOCOL's
EVAL_CHUNK = 100  # pairs per forward pass in evaluation (the warp holds N x 10 x R x R maps)
GRID_PAIRS = 8  # rows of the sample picture
GIF_SEQUENCE = "walk"
GIF_SECONDS_PER_FRAME = 0.08

# The keypoint regressor's schedules: "tiny" for the tests, "demo" for what is published.
REGRESSOR_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "width": 4,
        "levels": 2,
        "steps": 2,
        "batch_size": 4,
        "train_pairs": 4,
        "eval_pairs": 4,
        "soften": True,
    },
    # What is published. The defaults' 3,000 steps at width 16 left it underfit (train and
    # test PCK equal, 78.9 / 79.8 %): wider, longer and on more renders.
    # Softened training (KeypointConfig.soften): the 24-wide regressor of 6,000 steps read
    # 89.2 % of the real test renders' keypoints, 73 % of the same renders blurred
    # (Gaussian, sigma 1 pixel); most of its misses were the left and right limbs swapped.
    "demo": {"width": 32, "steps": 9000, "train_pairs": 10000, "soften": True},
}


@dataclass
class PoseData:
    """The training pool (rendered on first use: evaluating or sampling never needs it), the
    held-out test pairs, and the regressor that PCK is measured with."""

    config: PoseConfig
    regressor: KeypointRegressor
    perceptual: EfficientNetLite0 | None = None  # the frozen net of the perceptual loss

    @functools.cached_property
    def train(self) -> PosePairs:
        c = self.config
        return render_pool(c.train_pairs, "train", c.seed, c.resolution)

    @functools.cached_property
    def test(self) -> PosePairs:
        return render_pool(self.config.eval_pairs, "test", EVAL_SEED, self.config.resolution)


class Trainer(BaseTrainer):
    family_name = "pose"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # seconds: what the tests run
        "tiny": {
            "width": 4,
            "levels": 2,
            "fc_dim": 8,
            "refine_width": 4,
            "refine_levels": 2,
            "d_width": 4,
            "steps": 2,
            "batch_size": 2,
            "train_pairs": 4,
            "eval_pairs": 4,
            "warp_source": True,
        },
        # The published model's first phase (the second: see the module docstring): 64x64,
        # the config's defaults (2.8 M generator weights, 8,000 steps of 16 pairs). Measured
        # on this project's 2-core CPU at nice 19, one torch thread, while two other training
        # runs held both cores (load average 4.5): 0.65 s per step
        # (Stage I forward + backward 0.33 s of it), so 8,000 steps take ~87 min, plus ~1 min
        # to render the 6,000-pair pool and under a minute to evaluate: ~1.5 h, inside the two
        # hours with room to spare; an idle machine is faster. (Two threads under that load
        # were slower, 2.3 s per step: they spin against the other runs.)
        # The warped source as a third input (PoseConfig.warp_source), and a fifth of the
        # adversarial weight that plain PG2 was trained with: at 0.01 Stage II covered the
        # figures in coloured checkerboard noise and lowered mask-SSIM from Stage I's 0.954
        # to 0.940 (python -m benchmarks pose, the plain PG2 model of 8,000 steps).
        "demo": {"warp_source": True, "w_adv": 0.002},
        # A CUDA GPU: 128x128, one more level, larger batches and pool. The widths stay the
        # demo's to keep the bundle small: 11 MB in float16 with D (doubled widths: 45 MB).
        "gpu128": {
            "resolution": 128,
            "warp_source": True,
            "w_adv": 0.002,
            "levels": 5,
            "refine_levels": 4,
            "batch_size": 32,
            "steps": 40000,
            "train_pairs": 30000,
            "eval_pairs": 1000,
        },
    }
    # A regressor to measure PCK with instead of the published one (tests set a tiny one).
    regressor: KeypointRegressor | None = None

    @property
    def family(self) -> Family:
        # The registry does not list this family until its models are trained (its contract
        # tests would fail on missing snapshots); the family's own FAMILY is the same object
        # the registry will hold, so the loop and the cards work before and after.
        return FAMILY

    def keypoint_regressor(self) -> KeypointRegressor:
        if self.regressor is not None:
            return self.regressor
        try:
            model, _ = hub.load(KeypointRegressor, REGRESSOR.repo_id, REGRESSOR.snapshot)
        except CheckpointError as error:
            raise CheckpointError(
                f"{error}. PCK needs the keypoint regressor: "
                f"python -m training auxiliary {REGRESSOR.name}"
            ) from error
        return model

    def prepare_data(self, config: PoseConfig, data_path: Path | None) -> PoseData:
        if data_path is not None:
            raise ValueError("pose renders its own people: leave out --data")
        # Resolved now, so that a missing regressor stops the run before training, not after.
        perceptual = load_effnet() if config.w_perceptual > 0 else None
        return PoseData(config, self.keypoint_regressor(), perceptual)

    def build(self, config: PoseConfig, data: PoseData) -> PosePG2:
        model = PosePG2(config)
        if config.init_from:
            donor = donor_model(config.init_from, "init_from")
            try:
                model.load_state_dict(donor.state_dict())
            except RuntimeError as error:
                raise ValueError(
                    f"init_from: {config.init_from} is another architecture: "
                    + str(error).splitlines()[-1].strip()
                ) from error
        if config.stage1_from:
            donor = donor_model(config.stage1_from, "stage1_from")
            differ = [f for f in STAGE1_FIELDS if getattr(donor.config, f) != getattr(config, f)]
            if differ:
                raise ValueError(
                    f"{config.stage1_from}'s Stage I is not this config's: "
                    + ", ".join(
                        f"{f} {getattr(donor.config, f)!r} there, {getattr(config, f)!r} here"
                        for f in differ
                    )
                )
            model.stage1.load_state_dict(donor.stage1.state_dict())
        return model

    def donors(self, config: PoseConfig) -> list[Path]:
        """Each folder once: a fine-tune of Stage II alone names one model twice (init_from
        for every weight, stage1_from to freeze Stage I), and its time counts once."""
        folders = [
            donor_folder(FAMILY, name, option)
            for name, option in (
                (config.init_from, "init_from"),
                (config.stage1_from, "stage1_from"),
            )
            if name
        ]
        return list(dict.fromkeys(folders))

    def optimizers(self, model: PosePG2) -> dict[str, torch.optim.Optimizer]:
        c = model.config
        betas = (c.beta1, c.beta2)
        generators = [*model.stage2.parameters()]
        if not c.stage1_from:  # a copied Stage I stays as it was trained
            generators += model.stage1.parameters()
        return {
            "g": torch.optim.Adam(generators, lr=c.lr_g, betas=betas),
            "d": torch.optim.Adam(model.discriminator.parameters(), lr=c.lr_d, betas=betas),
        }

    def train_step(
        self, model: PosePG2, optimizers, data: PoseData, ctx: StepContext
    ) -> dict[str, float]:
        c = model.config
        source, target, mask, pose, warped, parts, refined_from = training_batch(
            data.train,
            c.batch_size,
            ctx,
            c.warp_source,
            c.w_parts > 0,
            c.turned,
            c.turn_from_side,
            c.refine_hides_turn,
        )

        frozen = bool(c.stage1_from)
        perceptual = data.perceptual.to(ctx.device) if c.w_perceptual > 0 else None

        def image_losses(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(the masked L1, the weighted sum of it and the perceptual loss)"""
            l1 = pose_mask_l1(output, target, mask, c.w_mask, parts, c.w_parts)
            if perceptual is None:
                return l1, l1
            return l1, l1 + c.w_perceptual * perceptual_l1(perceptual, output, target)

        with torch.set_grad_enabled(not frozen):
            coarse = model.coarse(source, pose, warped)
            l1_stage1, loss_stage1 = image_losses(coarse)
        final = model.refine(refined_from, coarse.detach(), warped)  # never changes Stage I

        loss_d = discriminator_loss(
            c.objective, model.judge(source, target), model.judge(source, final.detach())
        )
        ctx.update(optimizers["d"], loss_d)

        l1_stage2, loss_stage2 = image_losses(final)
        adversarial = generator_loss(c.objective, model.judge(source, final))
        loss_g = c.w_stage2 * loss_stage2 + c.w_adv * adversarial
        if not frozen:
            loss_g = loss_g + c.w_stage1 * loss_stage1
        ctx.update(optimizers["g"], loss_g)
        return {
            "l1_stage1": l1_stage1.item(),
            "l1_stage2": l1_stage2.item(),
            "adv": adversarial.item(),
            "loss_d": loss_d.item(),
        }

    def evaluate(self, model: PosePG2, data: PoseData) -> dict[str, float]:
        return evaluate(model, data.test, data.regressor)

    def sample_image(self, model: PosePG2, data: PoseData) -> Image.Image:
        return comparison_grid(model, data.test.take(slice(0, GRID_PAIRS)))

    # Samples: n test pairs drawn with seed as a comparison grid (PNG), or a test person
    # picked by seed walking through n frames (GIF).
    def save_png(self, model: PosePG2, data, n: int, seed: int, path: Path) -> None:
        comparison_grid(model, render_pool(n, "test", seed, model.config.resolution)).save(path)

    def save_gif(self, model: PosePG2, data, n: int, seed: int, path: Path) -> None:
        ids = fd.identities("test")
        write_gif(model, ids[seed % len(ids)], GIF_SEQUENCE, max(n, 2), path)

    def auxiliary_config_class(self, name: str) -> type | None:
        return KeypointConfig if name == REGRESSOR.name else super().auxiliary_config_class(name)

    def train_auxiliary(
        self, name: str, out: Path, overrides: dict[str, Any] | None = None
    ) -> dict[str, float]:
        if name == REGRESSOR.name:
            overrides = overrides or {}
            config = KeypointConfig(**{**REGRESSOR_PRESETS["demo"], **overrides})
            options = tuple(f"--{k}={v}" for k, v in overrides.items())
            return train_regressor(config, out, options)
        return super().train_auxiliary(name, out, overrides)


# -- one step ----------------------------------------------------------------------------------


def donor_model(name_or_folder: str, option: str) -> PosePG2:
    """The model a run copies weights from (``option``: init_from, or stage1_from for the
    second phase): a run folder, or a published pose model's name."""
    folder = donor_folder(FAMILY, name_or_folder, option)  # refuses an unknown name
    if Path(name_or_folder).is_dir():
        return PosePG2.load_folder(folder)
    published = FAMILY.model(name_or_folder)
    model, _ = hub.load(PosePG2, published.repo_id, published.snapshot)
    return model


def training_batch(
    pairs: PosePairs,
    batch_size: int,
    ctx: StepContext,
    warp: bool = False,
    parts: bool = False,
    turned: str = "warp",
    from_side: bool = False,
    hides_turn: bool = False,
):
    """(source, target, target mask, target heatmaps, warped source or None, target part mask
    or None, the source Stage II reads) on the step's device, in [-1, 1] and [0, 1]:
    ``batch_size`` pairs drawn from the pool, each swapped (the target as the source) with
    probability 1/2; the source warped to the target pose when ``warp`` (``turned``,
    ``from_side``: see warp_limbs); the target's limbs and head (part_mask) when ``parts``;
    Stage II's source with the turned figures left out when ``hides_turn``
    (``refine_source``), else the source itself."""
    index = torch.randint(len(pairs), (batch_size,), generator=ctx.generator)
    swap = torch.rand(batch_size, generator=ctx.generator) < 0.5
    picked = pairs.take(index)

    def oriented(first: torch.Tensor, second: torch.Tensor) -> tuple:
        flip = swap.view(-1, *([1] * (first.dim() - 1)))
        return torch.where(flip, second, first), torch.where(flip, first, second)

    # Built on the CPU, where the pairs and keypoints are (the warp is one grid_sample for
    # the batch), and moved to the step's device once.
    source, target = oriented(picked.source, picked.target)
    _, mask = oriented(picked.source_mask, picked.target_mask)
    source_points, points = oriented(picked.source_keypoints, picked.target_keypoints)
    _, visible = oriented(picked.source_visible, picked.target_visible)
    source = to_float(source)
    pose = heatmaps(points, visible, source.shape[-1])
    warped, refined_from = None, source
    if warp:
        warped = warp_limbs(source, source_points, points, turned, from_side)
    if hides_turn:
        refined_from = refine_source(source, source_points, points, from_side)
    limbs = part_mask(points, source.shape[-1]) if parts else None
    batch = (source, to_float(target), mask.float() / 255, pose, warped, limbs, refined_from)
    return tuple(None if part is None else part.to(ctx.device) for part in batch)


# -- evaluation --------------------------------------------------------------------------------


def _mean(values: torch.Tensor) -> float:
    return float(values.double().mean()) if len(values) else float("nan")


@torch.inference_mode()
def evaluate(
    model: PosePG2, pairs: PosePairs, regressor: KeypointRegressor | None
) -> dict[str, float]:
    """The card's metrics on held-out pairs (see PROTOCOL): SSIM and mask-SSIM of the final
    image, Stage I and the two other baselines, over all pairs and split by view change, and
    PCK@0.1 of the regressor on each and on the real targets."""
    scores: dict[str, list[torch.Tensor]] = {}
    found: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(pairs), EVAL_CHUNK):
        chunk = pairs.take(slice(start, start + EVAL_CHUNK))
        source, target = to_float(chunk.source), to_float(chunk.target)
        mask = chunk.target_mask.float() / 255
        stage1, final = transfer(
            model, source, chunk.target_keypoints, chunk.target_visible, chunk.source_keypoints
        )
        outputs = {
            "final": final,
            "stage1": stage1,
            "copy": source,
            "warp": warp_limbs(source, chunk.source_keypoints, chunk.target_keypoints),
        }
        for method, image in outputs.items():
            scores.setdefault(f"ssim_{method}", []).append(ssim(image, target))
            scores.setdefault(f"mask_ssim_{method}", []).append(mask_ssim(image, target, mask))
        if regressor is not None:
            for method, image in {**outputs, "real": target}.items():
                found.setdefault(method, []).append(find_keypoints(regressor, image))
    same = pairs.same_view
    metrics = {}
    for metric in ("mask_ssim", "ssim"):
        for method in METHODS:
            values = torch.cat(scores[f"{metric}_{method}"])
            metrics[f"{metric}_{method}"] = _mean(values)
            metrics[f"{metric}_{method}_same_view"] = _mean(values[same])
            metrics[f"{metric}_{method}_turned"] = _mean(values[~same])
    for method in (*METHODS, "real"):
        metrics[f"pck_{method}"] = (
            pck(torch.cat(found[method]), pairs.target_keypoints, pairs.target_visible)
            if regressor is not None
            else float("nan")
        )
    return metrics


def find_keypoints(regressor: KeypointRegressor, images: torch.Tensor) -> torch.Tensor:
    """(N, 18, 2) keypoints in the images' pixels, the images resized to the regressor's
    resolution first if they differ (a 128x128 model is judged by the 64x64 regressor; PCK
    relative to the figure's size does not change with the scale)."""
    size, own = images.shape[-1], regressor.config.resolution
    device = next(regressor.parameters()).device
    if size != own:
        images = F.interpolate(images, size=(own, own), mode="area")
    return regressor(images.to(device)).float().cpu() * (size / own)


# -- pictures ----------------------------------------------------------------------------------


def skeletons(keypoints: torch.Tensor, visible: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, 3, R, R) skeleton drawings in [-1, 1], for display."""
    drawn = [fd.skeleton_image(k, v, resolution) for k, v in zip(keypoints, visible, strict=True)]
    return images_from_renders(np.stack(drawn))


def comparison_grid(model: PosePG2, pairs: PosePairs) -> Image.Image:
    """One row per pair: source | target skeleton | Stage I | final | real target."""
    source, target = to_float(pairs.source), to_float(pairs.target)
    stage1, final = transfer(
        model, source, pairs.target_keypoints, pairs.target_visible, pairs.source_keypoints
    )
    skeleton = skeletons(pairs.target_keypoints, pairs.target_visible, source.shape[-1])
    rows = torch.stack([source, skeleton, stage1, final, target], 1).flatten(0, 1)
    return imagedata.grid(rows, columns=5, scale=2)


def write_gif(
    model: PosePG2, identity_id: int, sequence_name: str, frames: int, path: Path
) -> None:
    """The person walking (or any sequence): skeleton | generated frame, looping forwards."""
    r = model.config.resolution
    images = animate(model, identity_id, sequence_name, frames)
    points, visible = sequence_keypoints(fd.identity(identity_id), sequence_name, frames, r)
    shown = torch.stack([skeletons(torch.from_numpy(points), torch.from_numpy(visible), r),
                         images], 1)  # fmt: skip
    pictures = [imagedata.grid(pair, columns=2, scale=3) for pair in shown]
    Path(path).write_bytes(imagedata.gif_bytes(pictures, GIF_SECONDS_PER_FRAME, bounce=False))


# -- the keypoint regressor --------------------------------------------------------------------


def _single_renders(pairs: fd.PairBatch) -> tuple[torch.Tensor, ...]:
    """Both pictures of every pair as separate examples: images, keypoints, visibility, view."""
    images = images_from_renders(np.concatenate([pairs.source, pairs.target]))
    points = torch.from_numpy(np.concatenate([pairs.source_keypoints, pairs.target_keypoints]))
    visible = torch.from_numpy(np.concatenate([pairs.source_visible, pairs.target_visible]))
    views = torch.from_numpy(np.concatenate([pairs.source_view, pairs.target_view]))
    return images, points, visible, views


# Each keypoint's mirror image: left and right swap (COCO-18 order).
SIDES = {"r_": "l_", "l_": "r_"}
MIRRORED = tuple(
    fd.KEYPOINTS.index(SIDES.get(name[:2], name[:2]) + name[2:]) for name in fd.KEYPOINTS
)


def mirror(
    images: torch.Tensor, points: torch.Tensor, visible: torch.Tensor, chosen: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``chosen`` (N,) examples mirrored left to right: the picture flipped, each keypoint
    moved to its mirror position (x -> R - x, pixel centres at i + 0.5) under its mirror
    name."""
    flipped = points[:, MIRRORED].clone()
    flipped[..., 0] = images.shape[-1] - flipped[..., 0]
    return (
        torch.where(chosen[:, None, None, None], images.flip(-1), images),
        torch.where(chosen[:, None, None], flipped, points),
        torch.where(chosen[:, None], visible[:, MIRRORED], visible),
    )


def keypoint_loss(
    predicted: torch.Tensor, true: torch.Tensor, visible: torch.Tensor, hidden_weight: float
) -> torch.Tensor:
    """Mean L1 distance in pixels; hidden keypoints (exact positions all the same) count
    ``hidden_weight`` as much, so that the regressor guesses them without trading the visible
    ones for them."""
    weight = torch.where(visible, 1.0, hidden_weight)
    return ((predicted - true).abs().sum(-1) * weight).sum() / weight.sum()


def regressor_donor(config: KeypointConfig) -> KeypointRegressor:
    """The regressor ``config.init_from`` names, in float32 to train on."""
    folder = Path(config.init_from)
    donor = KeypointRegressor.load_folder(folder).float()
    shape = ("resolution", "width", "levels", "res_blocks")  # a readout may change
    differ = [f for f in shape if getattr(donor.config, f) != getattr(config, f)]
    if differ:
        values = ", ".join(f"{f}={getattr(donor.config, f)}" for f in differ)
        raise ValueError(f"init_from={folder} differs in {', '.join(differ)}: {values}")
    return donor


@torch.inference_mode()
def predict_keypoints(regressor: KeypointRegressor, images: torch.Tensor) -> torch.Tensor:
    return torch.cat(
        [find_keypoints(regressor, images[s : s + 256]) for s in range(0, len(images), 256)]
    )


def train_regressor(
    config: KeypointConfig, out: Path, options: tuple[str, ...] = ()
) -> dict[str, float]:
    """Train the keypoint regressor on real renders of training identities (from scratch, or
    on from ``config.init_from``); measure it on the test identities; write a published folder
    (weights, config, card, eval.json, training.json). ``options`` are the command line's
    --field=value overrides, for the record."""
    began = time.time()
    donor = regressor_donor(config) if config.init_from else None
    r = config.resolution
    images, points, visible, views = _single_renders(
        fd.render_pairs(config.train_pairs, "train", config.seed, r)
    )
    test_images, test_points, test_visible, test_views = _single_renders(
        fd.render_pairs(config.eval_pairs, "test", EVAL_SEED, r)
    )
    side = fd.VIEWS.index("side")
    drawn = torch.where(views == side, config.side_weight, 1.0)
    torch.manual_seed(config.seed)
    net = KeypointRegressor(config)
    if donor is not None:
        net.load_state_dict(donor.state_dict())
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    g = torch.Generator().manual_seed(config.seed)
    for _ in range(config.steps):
        if config.side_weight == 1:
            index = torch.randint(len(images), (config.batch_size,), generator=g)
        else:
            index = torch.multinomial(drawn, config.batch_size, replacement=True, generator=g)
        batch, at, shown = images[index], points[index], visible[index]
        if config.flip:
            chosen = torch.rand(config.batch_size, generator=g) < 0.5
            batch, at, shown = mirror(batch, at, shown, chosen)
        batch = imagedata.blur_half(batch, g) if config.soften else batch
        if config.readout == "peak":
            weight = torch.where(shown, 1.0, config.hidden_weight)
            loss = net.heatmap_loss(batch, at.float(), weight)
        else:
            loss = keypoint_loss(net(batch), at, shown, config.hidden_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    net.round_to_storage()  # the numbers below are the saved weights'
    net.eval()
    predicted = predict_keypoints(net, test_images)
    mean_pose = points.mean(0, keepdim=True).expand_as(test_points)  # the trivial baseline
    metrics = {
        "pck_real": pck(predicted, test_points, test_visible),
        "pck_real_softened": pck(
            predict_keypoints(net, imagedata.halve_resolution(test_images)),
            test_points,
            test_visible,
        ),
        "pck_mean_pose": pck(mean_pose, test_points, test_visible),
        **{
            f"pck_real_{view}": pck(
                predicted[test_views == i],
                test_points[test_views == i],
                test_visible[test_views == i],
            )
            for i, view in enumerate(fd.VIEWS)
        },
        "mean_error_px": float(
            (predicted - test_points).norm(dim=-1)[test_visible].double().mean()
        ),
    }
    write_auxiliary_run(
        out,
        FAMILY,
        REGRESSOR,
        net,
        metrics,
        began,
        lambda record: regressor_card(config, metrics, record),
        options=options,
        donor=Path(config.init_from) if config.init_from else None,
    )
    return metrics


def regressor_card(
    config: KeypointConfig, metrics: dict[str, float], record: dict[str, Any] | None = None
) -> str:
    record = record or {}
    images = 2 * config.train_pairs
    soften_note = (
        "\nHalf of each training batch was shown at half the resolution, scaled back up, "
        "and every picture with slight noise: generated pictures are softer than renders, "
        "and the judge must read their pose all the same, not their sharpness."
        if config.soften
        else ""
    )
    command = record.get("command", f"python -m training auxiliary {REGRESSOR.name}")
    readout = (
        f"soft-argmax within {PEAK_WINDOW} cells of each map's peak (the maps trained by "
        "cross-entropy, so that where two limbs could hold a keypoint the reading commits to "
        "one)"
        if config.readout == "peak"
        else "soft-argmax"
    )
    if config.side_weight != 1:
        soften_note += (
            f"\nSide views were drawn {config.side_weight:g} times as often as the others: "
            "there the near and far limbs overlap, and only the far side's darker shade tells "
            "left from right."
        )
    if config.flip:
        soften_note += (
            "\nHalf of each batch was mirrored, left and right keypoints swapped (a mirrored "
            "person is a person)."
        )
    reproduce = f"`{command} --out DIR`"
    earlier = record.get("started_from", [])
    if earlier:  # a donor's folder may be the published one this run replaced: train anew
        runs = [run["command"] for run in earlier] + [command]
        folders = [f"DONOR{i}" for i in range(1, len(runs))] + ["DIR"]
        steps = [
            re.sub(r"--init_from=\S+", f"--init_from={folders[i - 1]}", run) if i else run
            for i, run in enumerate(runs)
        ]
        reproduce = ", then ".join(
            f"`{run} --out {folder}`" for run, folder in zip(steps, folders, strict=True)
        )
    by_view = "".join(
        f"| PCK@0.1, {view.replace('_', '-')} views only | {metrics[f'pck_real_{view}']:.4f} |\n"
        for view in fd.VIEWS
        if f"pck_real_{view}" in metrics
    )
    schedule = f"Trained for {config.steps:,} steps of {config.batch_size} at width {config.width}"
    if config.init_from:
        schedule += f", fine-tuned at learning rate {config.lr:g} from"
        for run in record.get("started_from", []):
            schedule += f" `{run['command']}` ({run['wall_seconds']:.0f} s), then"
        schedule += (
            f" this command; {record.get('total_wall_seconds', 0) / 60:.0f} minutes on the "
            "2-core CPU in all"
        )
    return f"""---
library_name: pytorch
license: mit
tags: [gan-gallery, keypoint-detection, pytorch_model_hub_mixin]
---

# {REGRESSOR.name}

Finds the 18 COCO keypoints of a rendered figure in a {config.resolution}x{config.resolution}
picture: a small U-Net to 18 heatmaps and {readout}. Trained on {images:,} real renders of
training identities (hub_models/figuredata.py), never on a generated image; the pose family
measures its models' PCK@0.1 with it (the pose in a generated picture, read by a judge that
knows only real ones).{soften_note}

```python
from hub_models.pose import KeypointRegressor

regressor = KeypointRegressor.from_pretrained("{REGRESSOR.repo_id}")
keypoints = regressor(images)  # (N, 3, R, R) in [-1, 1] -> (N, 18, 2) pixels (x, y)
```

| metric (test identities, real renders) | value |
| --- | --- |
| PCK@0.1 of the bounding box | {metrics["pck_real"]:.4f} |
| PCK@0.1 of the mean training pose (reference) | {metrics["pck_mean_pose"]:.4f} |
| PCK@0.1 on the same renders halved and scaled back up | {metrics["pck_real_softened"]:.4f} |
| mean error of visible keypoints, pixels | {metrics["mean_error_px"]:.3f} |
{by_view}
{schedule}.
Reproduce: {reproduce} (the numbers: `DIR/eval.json`).
"""
