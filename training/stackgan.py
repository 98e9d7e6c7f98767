"""Training adapter for StackGAN, its evaluation, and its three auxiliary models.

Data: every step renders fresh captioned scenes of the training compositions
(hub_models/shapesdata.py; about 2,000 scenes a second at 64x64 on one busy core, a few per cent
of a step), so nothing is memorised and no pool is kept. The scene seed of a step is drawn from
the loop's data generator, so a resumed run draws the same batches as an uninterrupted one.

The stages train jointly after a warm-up, not one after the other as in the paper (600 epochs
of Stage-I, then Stage-II on a frozen Stage-I). In a two-hour CPU budget a strict sequence would
give each stage half the time; jointly, Stage-II trains for the whole second part while Stage-I
keeps improving. Stage-II reads Stage-I's pictures detached, as in the paper, so its
discriminator never trains Stage-I, and Stage-I trains alone for ``stage2_start`` steps first
(its steps cost about a third of a joint one) because Stage-II learns nothing from the noise
of an untrained Stage-I.

Loss: hinge with spectral-norm discriminators (objectives.py), matching-aware (a real image
with a wrong caption is fake), plus the KL term of each stage's conditioning augmentation.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from hub_models import imagedata, shapesdata, textenc
from hub_models.diffaugment import check_policy, diff_augment
from hub_models.objectives import generator_loss
from hub_models.stackgan import (
    ATTRIBUTES,
    FAMILY,
    MATCHER,
    METRIC_NAMES,
    R_CANDIDATES,
    SETS,
    TEXT_ENCODER,
    AttributeClassifier,
    AttributeConfig,
    CaptionTargets,
    StackGAN,
    StackGANConfig,
    attribute_accuracy,
    attribute_loss,
    caption_targets,
    encode_captions,
    fixed_captions,
    generate,
    kl_divergence,
    load_auxiliary,
    matching_aware_discriminator_loss,
    noise,
    r_precision,
    r_precision_chance,
    scene_targets,
    synthesize,
)
from training.base import StepContext, Trainer

RETRIEVAL_SEED = 11  # the retrieval baseline's pool of training scenes
AUX_EVAL_SCENES = 1000  # per fixed set, for the auxiliary models' own metrics
GRID_SAMPLES = 3  # samples per caption in the card's picture


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(N, R, R, 3) uint8 -> (N, 3, R, R) float in [-1, 1]."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1


def draw_pairs(
    n: int, generator: torch.Generator, resolution: int, held_out_share: float = 0.0
) -> tuple[torch.Tensor, list[shapesdata.Scene], list[str]]:
    """``n`` fresh (render, scene, caption) triples; a share of them from the held-out stream
    (for the graders only: a generator and its text encoder see training compositions alone).
    One seed from ``generator`` decides scenes and captions."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    held_out = round(n * held_out_share)
    scenes = shapesdata.scenes(n - held_out, seed, "train")
    scenes += shapesdata.scenes(held_out, seed, "held_out")
    rng = np.random.default_rng(seed)
    captions = [shapesdata.caption(s, rng) for s in scenes]
    return to_tensor(shapesdata.render_many(scenes, resolution)), scenes, captions


@dataclass
class EvalSet:
    """One fixed set: its captions, what they state, and real renders for the ceiling rows."""

    captions: list[str]
    targets: CaptionTargets
    real: torch.Tensor


def fixed_set(split: str, n: int, resolution: int) -> EvalSet:
    """The first ``n`` scenes of the fixed test or held-out set, rendered at ``resolution``."""
    scenes = shapesdata.test_set(n) if split == "test" else shapesdata.held_out_set(n)
    captions = fixed_captions(split, n)
    real = to_tensor(shapesdata.render_many(scenes, resolution))
    return EvalSet(captions, caption_targets(captions), real)


@dataclass
class StackGANData:
    """What a run reads besides the scenes it renders: the auxiliary models, and the fixed
    sets once rendered (evaluation may run more than once: benchmarks, the CLI)."""

    text_encoder: textenc.TextImageModel | None
    attributes: AttributeClassifier | None
    matcher: textenc.TextImageModel | None
    eval_sets: dict[tuple[str, int, int], EvalSet] = field(default_factory=dict)

    def eval_set(self, split: str, n: int, resolution: int) -> EvalSet:
        key = (split, n, resolution)
        if key not in self.eval_sets:
            self.eval_sets[key] = fixed_set(split, n, resolution)
        return self.eval_sets[key]


def load_data(config: StackGANConfig) -> StackGANData:
    """The auxiliary models a run needs, loaded before any training so that a missing one
    fails at once, not after two hours."""
    if config.matcher and config.matcher == config.text_encoder:
        raise ValueError(
            "the matcher that grades the model must not be its own text encoder: a generator "
            "would be graded by its own teacher"
        )
    encoder = None
    if config.text_encoder:
        encoder = load_auxiliary(textenc.TextImageModel, config.text_encoder)
        if encoder.config.compositions != "train":
            raise ValueError(
                f"{config.text_encoder} was trained on held-out compositions too; the "
                "generator's text encoder must see training compositions only"
            )
    else:
        print(
            "stackgan: no text encoder given; captions are read by an untrained one "
            "(smoke runs only)",
            file=sys.stderr,
        )
    attributes = (
        load_auxiliary(AttributeClassifier, config.attributes) if config.attributes else None
    )
    matcher = load_auxiliary(textenc.TextImageModel, config.matcher) if config.matcher else None
    return StackGANData(encoder, attributes, matcher)


class StackGANTrainer(Trainer):
    family_name = "stackgan"
    presets: dict[str, dict[str, Any]] = {  # noqa: RUF012
        # seconds: what the tests run (16x16 from 8x8 sketches; no auxiliary model needed)
        "tiny": {
            "resolution": 16,
            "z_dim": 8,
            "c_dim": 8,
            "word_dim": 8,
            "text_hidden": 8,
            "text_dim": 16,
            "g1_width": 4,
            "g2_width": 4,
            "residual_blocks": 1,
            "d1_width": 4,
            "d2_width": 4,
            "d_text_dim": 8,
            "steps": 4,
            "stage2_start": 1,
            "batch_size": 8,
            "text_encoder": "",
            "attributes": "",
            "matcher": "",
            "eval_scenes": 8,
            "retrieval_pool": 16,
        },
        # What is published: 32 -> 64 with the config's defaults (batch 32). Timed over a few
        # train_step calls under `nice -n 19` while both cores of the 2-core machine ran two
        # other trainings: with 1 thread, 0.19 s per Stage-I step and 0.60 s per joint step;
        # 2,500 + 7,500 of them take ~5,000 s (1.4 h), plus about a minute of evaluation. With
        # 2 threads on those busy cores a step took 3-10x longer (OpenMP threads spinning
        # against the other runs: set OMP_NUM_THREADS=1 on a busy machine); an idle machine
        # with 2 threads should beat the 1-thread figures.
        "demo": {"steps": 10000, "stage2_start": 2500},
        # 64 -> 128 for a CUDA GPU
        "gpu": {
            "resolution": 128,
            "z_dim": 100,
            "c_dim": 128,
            "g1_width": 64,
            "g2_width": 32,
            "residual_blocks": 4,
            "d1_width": 64,
            "d2_width": 64,
            "d_text_dim": 128,
            "steps": 40000,
            "stage2_start": 10000,
            "batch_size": 128,
            "eval_scenes": 1000,
        },
    }

    def prepare_data(self, config: StackGANConfig, data_path: Path | None) -> StackGANData:
        if data_path is not None:
            raise ValueError(
                "stackgan renders its own captioned scenes: leave out --data (a folder of "
                "captioned images is not supported yet)"
            )
        return load_data(config)

    def build(self, config: StackGANConfig, data: StackGANData) -> StackGAN:
        model = StackGAN(config)
        if data.text_encoder is not None:
            model.copy_text_encoder(data.text_encoder.text)
        return model

    def optimizers(self, model: StackGAN) -> dict[str, torch.optim.Optimizer]:
        c = model.config
        betas = (c.beta1, c.beta2)

        def adam(lr: float, *modules: torch.nn.Module) -> torch.optim.Optimizer:
            return torch.optim.Adam([p for m in modules for p in m.parameters()], lr, betas=betas)

        # The text encoder has no optimizer: it stays as it was trained, on real pairs only.
        return {
            "g1": adam(c.lr_g, model.ca1, model.g1),
            "d1": adam(c.lr_d, model.d1),
            "g2": adam(c.lr_g, model.ca2, model.g2),
            "d2": adam(c.lr_d, model.d2),
        }

    def train_step(
        self, model: StackGAN, optimizers, data: StackGANData, ctx: StepContext
    ) -> dict[str, float]:
        c = model.config
        policy = check_policy(c.augment)
        real, _, captions = draw_pairs(c.batch_size, ctx.generator, c.resolution)
        real = real.to(ctx.device)
        ids, lengths, _ = model.text.ids(captions)
        with torch.no_grad():
            text = model.text(ids.to(ctx.device), lengths)
        wrong = text.roll(1, 0)  # each real image with another scene's caption
        draws = noise(c, c.batch_size, int(torch.randint(2**31 - 1, (1,), generator=ctx.generator)))
        z, eps1, eps2 = (part.to(ctx.device) for part in draws)

        def augmented(images: torch.Tensor) -> torch.Tensor:
            return diff_augment(images, policy, ctx.generator) if policy else images

        def stage(d, g_optimizer, d_optimizer, real_images, fake, mu, logvar, name):
            features = d.trunk(augmented(real_images))
            right, mismatched = d.judge(features, text), d.judge(features, wrong)
            loss_d = matching_aware_discriminator_loss(
                right, d(augmented(fake.detach()), text), mismatched, c.objective
            )
            ctx.update(d_optimizer, loss_d)
            kl = kl_divergence(mu, logvar)
            loss_g = generator_loss(c.objective, d(augmented(fake), text)) + c.kl_weight * kl
            ctx.update(g_optimizer, loss_g)
            return {
                f"loss_d{name}": loss_d.item(),
                f"loss_g{name}": loss_g.item(),
                f"kl{name}": kl.item(),
                # share of real images D scores higher with their caption than with another
                f"match{name}": float((right > mismatched).float().mean()),
            }

        c1, mu1, logvar1 = model.ca1(text, eps1)
        fake1 = model.g1(c1, z)
        real1 = F.avg_pool2d(real, 2)  # Stage-I's real pictures: the render, halved
        out = stage(model.d1, optimizers["g1"], optimizers["d1"], real1, fake1, mu1, logvar1, 1)
        if ctx.step >= c.stage2_start:
            c2, mu2, logvar2 = model.ca2(text, eps2)
            fake2 = model.g2(fake1.detach(), c2)  # Stage-II refines, never trains Stage-I
            out |= stage(model.d2, optimizers["g2"], optimizers["d2"], real, fake2, mu2, logvar2, 2)
        return out

    def evaluate(self, model: StackGAN, data: StackGANData) -> dict[str, float]:
        return evaluate(model, data)

    def sample_image(self, model: StackGAN, data: StackGANData) -> Image.Image:
        captions = fixed_captions("test", 2) + fixed_captions("held_out", 2)
        return caption_grid(model, captions, GRID_SAMPLES, seed=0)

    def save_png(self, model: StackGAN, data, n: int, seed: int, path: Path) -> None:
        """``n`` test captions, one Stage-I / Stage-II pair each."""
        caption_grid(model, fixed_captions("test", n), 1, seed).save(path)

    def train_auxiliary(self, name: str, out: Path) -> dict[str, float]:
        if name in (TEXT_ENCODER, MATCHER):
            return train_text_image(name, out)
        if name == ATTRIBUTES:
            return train_attributes(out)
        return super().train_auxiliary(name, out)


# -- evaluation -------------------------------------------------------------------------------


def evaluate(model: StackGAN, data: StackGANData) -> dict[str, float]:
    """The card's metrics (see PROTOCOL): NaN for what needs a grader the run was not given."""
    c = model.config
    metrics = dict.fromkeys(METRIC_NAMES, math.nan)
    n = c.eval_scenes
    metrics["r_precision_chance"] = r_precision_chance(n)
    grader_resolution = data.attributes.config.resolution if data.attributes else c.resolution
    sets = {split: data.eval_set(split, n, grader_resolution) for split in SETS}
    samples = {}
    for split, fixed in sets.items():
        text, _ = encode_captions(model, fixed.captions)
        samples[split] = synthesize(model, text, noise(c, n, 0))
    if data.attributes is not None:
        retrieved = retrieval_baseline(model, sets, grader_resolution, c.retrieval_pool)
        for split, fixed in sets.items():
            for prefix, images in (
                ("", samples[split][1]),
                ("retrieval_", retrieved[split]),
                ("real_", fixed.real),
            ):
                scores = attribute_accuracy(data.attributes.predict(images), fixed.targets)
                metrics |= {f"{prefix}{split}_{key}": value for key, value in scores.items()}
    if data.matcher is not None:
        matcher = data.matcher
        captions = {split: textenc.encode(matcher.text, s.captions)[0] for split, s in sets.items()}

        def vectors(images: torch.Tensor) -> torch.Tensor:
            return textenc.encode_images(matcher, images)

        test_images = vectors(samples["test"][1])
        metrics["r_precision"] = r_precision(test_images, captions["test"])
        metrics["r_precision_held_out"] = r_precision(
            vectors(samples["held_out"][1]), captions["held_out"]
        )
        # Stage-I's pictures enlarged to Stage-II's side before the matcher resizes them, so
        # both stages are read through the same resampling.
        stage1 = F.interpolate(samples["test"][0], scale_factor=2, mode="bilinear")
        metrics["r_precision_stage1"] = r_precision(vectors(stage1), captions["test"])
        metrics["r_precision_shuffled"] = r_precision(test_images, captions["test"].roll(1, 0))
        metrics["r_precision_real"] = r_precision(vectors(sets["test"].real), captions["test"])
    return metrics


def retrieval_baseline(
    model: StackGAN, sets: dict[str, EvalSet], resolution: int, pool: int
) -> dict[str, torch.Tensor]:
    """For each caption, the render of the training scene whose caption is nearest by the
    model's own text encoder: what a lookup of the training data gives, without composing."""
    scenes = shapesdata.scenes(pool, RETRIEVAL_SEED, "train")
    rng = np.random.default_rng(RETRIEVAL_SEED)
    pool_text, _ = encode_captions(model, [shapesdata.caption(s, rng) for s in scenes])
    out = {}
    for split, fixed in sets.items():
        query, _ = encode_captions(model, fixed.captions)
        nearest = (query @ pool_text.T).argmax(1).tolist()
        out[split] = to_tensor(shapesdata.render_many([scenes[i] for i in nearest], resolution))
    return out


# -- pictures ---------------------------------------------------------------------------------

TEXT_HEIGHT = 14  # pixels of the caption strip above each row


def caption_grid(model: StackGAN, captions: list[str], per_caption: int, seed: int) -> Image.Image:
    """One row per caption, its text above; in the row, each sample's Stage-I picture (enlarged
    to Stage-II's side, crisp pixels) beside its Stage-II picture."""
    stage1, stage2 = generate(model, captions, per_caption, seed)
    stage1 = F.interpolate(stage1, scale_factor=2, mode="nearest")
    pairs = torch.stack([stage1, stage2], 1).flatten(0, 1)  # s1, s2, s1, s2, ...
    scale = max(1, 64 // model.config.resolution)
    per_row = 2 * per_caption
    rows = [
        imagedata.grid(pairs[start : start + per_row], columns=per_row, scale=scale).convert("RGB")
        for start in range(0, len(pairs), per_row)
    ]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max([row.width for row in rows] + [int(measure.textlength(t)) + 8 for t in captions])
    canvas = Image.new("RGB", (width, sum(r.height + TEXT_HEIGHT for r in rows)), "white")
    draw = ImageDraw.Draw(canvas)
    top = 0
    for text, row in zip(captions, rows, strict=True):
        draw.text((4, top + 1), text, fill="black")
        canvas.paste(row, (0, top + TEXT_HEIGHT))
        top += row.height + TEXT_HEIGHT
    return canvas


# -- the auxiliary models ---------------------------------------------------------------------

# The conditioning encoder and the matcher differ in what they see and in their seeds; they
# share the architecture. With the config defaults (3,000 steps of 128 pairs) a step took
# 0.3 s on one busy core (~15 min per model); the attribute classifier's 0.24 s (~12 min).
TEXT_IMAGE_ROLES: dict[str, dict[str, Any]] = {
    TEXT_ENCODER: {"compositions": "train", "seed": 0},
    MATCHER: {"compositions": "all", "seed": 1},
}
HELD_OUT_SHARE = 0.25  # of a grader's training batch: scenes with held-out pairs


def _auxiliary_spec(name: str):
    return next(m for m in FAMILY.auxiliary if m.name == name)


def _schedule(optimizer: torch.optim.Optimizer, steps: int):
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, optimizer.param_groups[0]["lr"], total_steps=steps
    )


def train_text_image(
    name: str, out: Path, eval_scenes: int = AUX_EVAL_SCENES, **overrides
) -> dict[str, float]:
    """Train the conditioning text encoder or the matcher on fresh real pairs (InfoNCE both
    ways, word dropout); metrics: R-precision of real renders on the fixed sets."""
    config = textenc.TextImageConfig(**{**TEXT_IMAGE_ROLES[name], **overrides})
    share = HELD_OUT_SHARE if config.compositions == "all" else 0.0
    torch.manual_seed(config.seed)
    model = textenc.TextImageModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = _schedule(optimizer, config.steps)
    g = torch.Generator().manual_seed(config.seed)
    began = time.time()
    for _ in range(config.steps):
        images, _, captions = draw_pairs(config.batch_size, g, config.resolution, share)
        ids, lengths, _ = model.text.ids(captions)
        ids = textenc.word_dropout(ids, lengths, config.word_dropout, g)
        loss = textenc.contrastive_loss(model.logits(model.image(images), model.text(ids, lengths)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    model.round_to_storage()
    metrics = {}
    for split in SETS:
        fixed = fixed_set(split, eval_scenes, config.resolution)
        text, _ = textenc.encode(model.text, fixed.captions)
        metrics[f"{split}_r_precision"] = r_precision(
            textenc.encode_images(model, fixed.real), text
        )
    metrics["r_precision_chance"] = r_precision_chance(eval_scenes)
    role = (
        "the text encoder whose text tower every stackgan-shapes model copies and is "
        "conditioned on. It saw training compositions only"
        if name == TEXT_ENCODER
        else "the image-text matcher that grades stackgan models (R-precision). It never "
        "takes part in training a generator, and it saw held-out compositions too (from "
        "other seeds than the fixed held-out set) so that it can grade them"
    )
    description = (
        f"A word-level text encoder (bidirectional GRU over {len(config.vocabulary)} vocabulary "
        f"rows, synonyms sharing a row, unknown words as <unk>) and a small image encoder, "
        f"trained together by InfoNCE on {config.steps} batches of {config.batch_size} fresh "
        f"real (render, caption) pairs of captioned shapes: {role}. R-precision: a real "
        f"render's own caption must score above {R_CANDIDATES - 1} others of the fixed set."
    )
    write_auxiliary(name, out, model, config, metrics, began, description)
    return metrics


def blur_half(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Halve then restore the resolution of a random half of the batch, and add slight noise:
    generated pictures are softer than renders, and a grader must read them all the same."""
    size = images.shape[-1]
    soft = F.interpolate(F.avg_pool2d(images, 2), size=(size, size), mode="bilinear")
    pick = (torch.rand(len(images), generator=generator) < 0.5)[:, None, None, None]
    jitter = 0.03 * torch.randn(images.shape, generator=generator)
    return (torch.where(pick, soft, images) + jitter).clamp(-1, 1)


def train_attributes(
    out: Path, eval_scenes: int = AUX_EVAL_SCENES, **overrides
) -> dict[str, float]:
    """Train the attribute classifier on fresh real renders of every composition; metrics:
    attribute accuracy of real renders of the fixed sets, graded as generated images are."""
    config = AttributeConfig(**overrides)
    torch.manual_seed(config.seed)
    model = AttributeClassifier(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = _schedule(optimizer, config.steps)
    g = torch.Generator().manual_seed(config.seed)
    began = time.time()
    for _ in range(config.steps):
        images, scenes, _ = draw_pairs(
            config.batch_size, g, config.resolution, config.held_out_share
        )
        loss = attribute_loss(model, blur_half(images, g), scene_targets(scenes))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    model.round_to_storage()
    metrics = {}
    for split in SETS:
        fixed = fixed_set(split, eval_scenes, config.resolution)
        scores = attribute_accuracy(model.predict(fixed.real), fixed.targets)
        metrics |= {f"{split}_{key}": value for key, value in scores.items()}
    description = (
        f"A small CNN that reads a {config.resolution}x{config.resolution} picture of captioned "
        "shapes and says, for each of the six colours, which shape of that colour is there (or "
        "none), its size and its centre; relations follow from the centres. Trained on "
        f"{config.steps} batches of {config.batch_size} fresh real renders of every "
        "composition (a quarter with held-out pairs, from other seeds than the fixed held-out "
        "set), half of each batch softened, so that it grades generated pictures. It was never "
        "shown a generated image. Accuracy below: real renders of the fixed sets, graded "
        "exactly as generated images are."
    )
    write_auxiliary(ATTRIBUTES, out, model, config, metrics, began, description)
    return metrics


def write_auxiliary(
    name: str,
    out: Path,
    model,
    config,
    metrics: dict[str, float],
    began: float,
    description: str,
) -> None:
    """A published folder: weights and config, eval.json, training.json and the card."""
    from training.cards import write_auxiliary_run

    rows = "\n".join(f"| {key.replace('_', ' ')} | {value:.4f} |" for key, value in metrics.items())
    bundle = type(model)
    text = f"""---
library_name: pytorch
license: mit
tags: [gan-gallery, stackgan, pytorch_model_hub_mixin]
---

# {name}

{description}

| metric | value |
| --- | --- |
{rows}

```python
from {bundle.__module__} import {bundle.__name__}
model = {bundle.__name__}.from_pretrained("gan-gallery/{name}")
```
"""
    write_auxiliary_run(
        out, FAMILY, _auxiliary_spec(name), model, metrics, began, lambda record: text
    )
