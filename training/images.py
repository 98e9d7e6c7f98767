"""Training adapter for the image family (DCGAN, WGAN-GP, VAE, cGAN) and its feature nets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hub_models import imagedata
from hub_models.diffaugment import check_policy, diff_augment
from hub_models.features import (
    FEATURE_DATASETS,
    FeatureConfig,
    FeatureNet,
    Scorer,
    feature_model,
    features_for,
)
from hub_models.images import R1_EVERY, ImageConfig, ImageModel, generate, latents, sample
from hub_models.objectives import (
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)
from hub_models.probes import FACE_CLASSES, PROBES, ProbeConfig, fit_probe, probe_model
from hub_models.registry import FAMILIES
from training.base import StepContext, Trainer, copy_weights, donor_folder, update_average
from training.cards import write_auxiliary_run

VAE_PIXEL_SIGMA = 0.2  # the VAE's Gaussian likelihood scale, in [-1, 1] pixel units


@dataclass
class TrainingData:
    images: imagedata.ImageSet
    train: torch.Tensor  # the training split, materialised once
    labels: torch.Tensor


class ImageTrainer(Trainer):
    family_name = "images"
    presets: dict[str, dict[str, Any]] = {  # noqa: RUF012
        # seconds: what the tests run
        "tiny": {
            "resolution": 16,
            "z_dim": 8,
            "g_width": 8,
            "d_width": 8,
            "steps": 4,
            "batch_size": 8,
        },
        # what is published: 32x32, tens of minutes on a 2-core CPU per model
        "demo": {"resolution": 32, "z_dim": 64, "g_width": 48, "d_width": 48, "steps": 4000},
        # 64x64, for a GPU (or long background runs resumed with --resume)
        "gpu64": {
            "resolution": 64,
            "z_dim": 100,
            "g_width": 64,
            "d_width": 64,
            "steps": 30000,
            "batch_size": 128,
        },
    }

    def prepare_data(self, config: ImageConfig, data_path: Path | None) -> TrainingData:
        images = imagedata.load_images(
            config.dataset, config.resolution, config.channels, data_path
        )
        if config.conditional and len(images.class_names) != config.num_classes:
            raise ValueError(
                f"the model has {config.num_classes} classes but the data has "
                f"{len(images.class_names)} ({', '.join(images.class_names)})"
            )
        return TrainingData(images, images.train, images.train_labels)

    def build(self, config: ImageConfig, data: TrainingData) -> ImageModel:
        model = ImageModel(config)
        if config.init_from:
            donor = ImageModel.load_folder(donor_folder(self.family, config.init_from))
            donor = donor.float().to(memory_format=torch.contiguous_format)
            copy_weights(model, donor, may_lack=("feature_discriminator.",))  # it starts fresh
        return model

    def donors(self, config: ImageConfig) -> list[Path]:
        return [donor_folder(self.family, config.init_from)] if config.init_from else []

    def optimizers(self, model: ImageModel) -> dict[str, torch.optim.Optimizer]:
        c = model.config
        betas = (c.beta1, c.beta2)
        if c.kind == "vae":
            params = [*model.generator.parameters(), *model.encoder.parameters()]
            return {"vae": torch.optim.Adam(params, lr=c.lr_g, betas=betas)}
        judges = [*model.discriminator.parameters()]
        if c.w_projected:  # both discriminators step together, on one loss
            judges += model.feature_discriminator.parameters()
        return {
            "g": torch.optim.Adam(model.generator.parameters(), lr=c.lr_g, betas=betas),
            "d": torch.optim.Adam(judges, lr=c.lr_d, betas=betas),
        }

    def train_step(
        self, model: ImageModel, optimizers, data: TrainingData, ctx: StepContext
    ) -> dict[str, float]:
        c = model.config

        def batch() -> tuple[torch.Tensor, torch.Tensor]:
            index = torch.randint(len(data.train), (c.batch_size,), generator=ctx.generator)
            return data.train[index].to(ctx.device), data.labels[index].to(ctx.device)

        def noise() -> torch.Tensor:
            return torch.randn(c.batch_size, c.z_dim, generator=ctx.generator).to(ctx.device)

        def fake_labels() -> torch.Tensor | None:
            # Drawn with the real labels' frequencies: with uniform labels on unbalanced data
            # (61 % of emoji are People & Body) D's batch norm tells real batches from fake
            # ones by their label mix alone, and D wins within a hundred steps.
            if not c.conditional:
                return None
            index = torch.randint(len(data.labels), (c.batch_size,), generator=ctx.generator)
            return data.labels[index].to(ctx.device)

        if c.kind == "vae":
            real, _ = batch()
            stats = model.encoder(real)
            mu, logvar = stats.chunk(2, 1)
            eps = torch.randn(mu.shape, generator=ctx.generator).to(ctx.device)
            recon = model.generator(mu + eps * (0.5 * logvar).exp())
            rec = ((recon - real) ** 2).flatten(1).sum(1) / (2 * VAE_PIXEL_SIGMA**2)
            kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
            loss = (rec + c.kl_weight * kl).mean()
            ctx.update(optimizers["vae"], loss)
            return {"recon": rec.mean().item(), "kl": kl.mean().item()}

        d, g = model.discriminator, model.generator
        if c.kind == "diffaugment":
            return small_data_step(model, optimizers, ctx, batch, noise, fake_labels)
        objective = c.objective
        out: dict[str, float] = {}
        for _ in range(c.n_critic):
            real, labels = batch()
            y_fake = fake_labels()
            with torch.no_grad():
                fake = g(noise(), y_fake)
            # (1) Update D: maximize log D(x) + log(1 - D(G(z))), or the critic's
            # E[d(x)] - E[d(G(z))] - gp_weight * (||grad d(x_hat)|| - 1)^2 for WGAN-GP
            loss_d = discriminator_loss(
                objective, d(real, labels if c.conditional else None), d(fake, y_fake)
            )
            if c.kind == "wgan-gp":
                out["wasserstein"] = -loss_d.item()
                loss_d = loss_d + c.gp_weight * gradient_penalty(d, real, fake, ctx.generator)
            ctx.update(optimizers["d"], loss_d)
        # (2) Update G: maximize log D(G(z)) (the non-saturating loss DCGAN trains with),
        # or E[d(G(z))] for WGAN-GP
        y_fake = fake_labels()
        loss_g = generator_loss(objective, d(g(noise(), y_fake), y_fake))
        ctx.update(optimizers["g"], loss_g)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), **out}

    def evaluate(self, model: ImageModel, data: TrainingData) -> dict[str, float]:
        return evaluate_images(model, data.images)

    def sample_image(self, model: ImageModel, data: TrainingData):
        return sample_grid(model)

    def save_png(self, model: ImageModel, data: TrainingData, n: int, seed: int, path) -> None:
        """A grid of ``n`` samples (a conditional model: its classes in turn), small images
        scaled up to 64 pixels so that a grid in a README can be read."""
        scale = max(1, 64 // model.config.resolution)
        imagedata.grid(sample(model, n, seed), scale=scale).save(path)

    def save_folder(self, model: ImageModel, data: TrainingData, n: int, seed: int, path) -> None:
        for i, array in enumerate(imagedata.to_uint8(sample(model, n, seed))):
            imagedata.to_pil(array).save(path / f"sample_{seed}_{i:05d}.png")

    def train_auxiliary(
        self, name: str, out: Path, overrides: dict[str, Any] | None = None
    ) -> dict[str, float]:
        if name in PROBES:
            return train_probe(name, out)
        for dataset in FEATURE_DATASETS:
            if feature_model(dataset).name == name:
                return train_features(dataset, out)
        return super().train_auxiliary(name, out, overrides)


def small_data_step(model: ImageModel, optimizers, ctx: StepContext, batch, noise, fake_labels):
    """One step of the small-data recipe (see RECIPE in hub_models/images.py): D and G both
    see real and generated images only through DiffAugment; D is judged by ``c.objective``
    (hinge), with lazy R1 on the augmented real images; then G's average moves."""
    c = model.config
    d, g = model.discriminator, model.generator
    policy = check_policy(c.augment)

    def augmented(images: torch.Tensor) -> torch.Tensor:
        return diff_augment(images, policy, ctx.generator)

    real, labels = batch()
    labels = labels if c.conditional else None
    y_fake = fake_labels()
    with torch.no_grad():
        fake = g(noise(), y_fake)
    projected = c.w_projected > 0 and ctx.step >= c.projected_start
    real = augmented(real)
    real_logit, real_classes = d.judge(real, labels)
    fake = augmented(fake)
    loss_d = discriminator_loss(c.objective, real_logit, d(fake, y_fake))
    out = {"loss_d": loss_d.item()}
    if projected:
        f = model.feature_discriminator
        projected_d = discriminator_loss(c.objective, f(real, labels), f(fake, y_fake))
        loss_d = loss_d + c.w_projected * projected_d
        out["projected_d"] = projected_d.item()
    if c.w_class:  # the class head learns from real images only
        class_d = F.cross_entropy(real_classes, labels)
        loss_d = loss_d + c.w_class * class_d
        out["class_d"] = class_d.item()
    if c.r1_weight and ctx.step % R1_EVERY == 0:
        r1 = r1_penalty(lambda x: d(x, labels), real)
        loss_d = loss_d + c.r1_weight / 2 * R1_EVERY * r1
        out["r1"] = r1.item()
    ctx.update(optimizers["d"], loss_d)

    y_fake = fake_labels()
    fake = augmented(g(noise(), y_fake))
    fake_logit, fake_classes = d.judge(fake, y_fake)
    loss_g = generator_loss(c.objective, fake_logit)
    out["loss_g"] = loss_g.item()
    if projected:
        projected_g = generator_loss(c.objective, model.feature_discriminator(fake, y_fake))
        loss_g = loss_g + c.w_projected * projected_g
        out["projected_g"] = projected_g.item()
    if c.w_class:
        class_g = F.cross_entropy(fake_classes, y_fake)
        loss_g = loss_g + c.w_class * class_g
        out["class_g"] = class_g.item()
    ctx.update(optimizers["g"], loss_g)
    if c.ema_decay:
        update_average(model.generator_ema, g, c.ema_decay, ctx.step)
    return out


def sample_grid(model: ImageModel, rows: int = 8, seed: int = 0):
    """The card's picture: 8x8 samples, or one column per class for a conditional model."""
    c = model.config
    if c.conditional:
        labels = torch.arange(c.num_classes).repeat(rows)
        images = sample(model, len(labels), seed, labels=labels)
        return imagedata.grid(images, columns=c.num_classes, scale=2)
    return imagedata.grid(sample(model, rows * rows, seed), columns=rows, scale=2)


def evaluate_images(model: ImageModel, images: imagedata.ImageSet) -> dict[str, float]:
    """The card's metrics: generated samples against the training split (see PROTOCOL)."""
    if model.config.dataset in imagedata.MULTI_VENDOR:
        from hub_models.emojiscore import EffNetScorer

        labels = images.held_out_labels if model.config.conditional else None
        fake = generate_like(model, len(images.held_out), labels)
        scorer = EffNetScorer.for_dataset(model.config.dataset)
        wide = scorer.wide_readings(model) if model.config.conditional else {}
        return scorer.score(fake, labels) | wide
    scorer = Scorer.for_data(features_for(model.config.dataset, model.config.channels), images)
    labels = images.held_out_labels if model.config.conditional else None
    fake = generate_like(model, len(scorer.held_out), labels)
    builtin = model.config.dataset in imagedata.BUILTIN  # a user's classes are not the net's
    return scorer.score(fake, labels if builtin else None)


def generate_like(model: ImageModel, n: int, labels: torch.Tensor | None) -> torch.Tensor:
    """The evaluated samples: seed 0, no truncation, the given labels (held-out's, if any)."""
    return generate(model, latents(model.config, n, 0), labels)


# -- the feature extractors the metrics use ------------------------------------------------


def train_features(dataset: str, out: Path, epochs: int = 8, seed: int = 0) -> dict[str, float]:
    """Train the classifier whose features score a dataset's models; write a published folder.

    Light augmentation (random shifts of up to 2 pixels) keeps it from keying on exact pixels.
    """
    config = FeatureConfig(
        dataset=dataset,
        channels=1 if dataset == "mnist" else 3,
        num_classes=10 if dataset == "mnist" else len(imagedata.EMOJI_GROUPS),
        class_names=imagedata.DIGITS if dataset == "mnist" else imagedata.EMOJI_GROUPS,
        epochs=epochs,
        seed=seed,
    )
    data = imagedata.load_images(dataset, config.resolution, config.channels)
    torch.manual_seed(seed)
    net = FeatureNet(config).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    x, y = data.train, data.train_labels
    steps = epochs * (len(x) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=steps)
    began = time.time()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x) - config.batch_size + 1, config.batch_size):
            index = order[start : start + config.batch_size]
            shift = torch.randint(-2, 3, (2,), generator=g).tolist()
            batch = torch.roll(x[index], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(net(batch), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    accuracy = float((net.predict(data.held_out) == data.held_out_labels).float().mean())
    majority = float((data.held_out_labels == data.train_labels.bincount().argmax()).float().mean())
    net.round_to_storage()
    metrics = {"held_out_accuracy": accuracy, "majority_class_accuracy": majority}
    write_auxiliary_run(
        out,
        FAMILIES["images"],
        feature_model(dataset),
        net,
        metrics,
        began,
        lambda record: feature_card(dataset, config, metrics, record),
    )
    return metrics


def feature_card(dataset: str, config: FeatureConfig, metrics: dict, record: dict) -> str:
    return f"""---
library_name: pytorch
license: mit
tags: [gan-gallery, feature-extractor, pytorch_model_hub_mixin]
---

# images-{dataset}-features

The feature extractor behind this gallery's image metrics on **{dataset}**: a small CNN
classifier ({config.num_classes} classes: {", ".join(config.class_names)}) trained on the
training split (90 %, fixed split seed {imagedata.SPLIT_SEED}); FID, KID, precision/recall and
density/coverage are computed on its {config.feature_dim}-d penultimate layer. These numbers
are **not comparable to Inception FID**; they rank models of this gallery.

| metric | value |
| --- | --- |
| held-out accuracy | {metrics["held_out_accuracy"]:.4f} |
| majority-class accuracy (reference) | {metrics["majority_class_accuracy"]:.4f} |

Trained with `{record["command"]}` in {record["wall_seconds"]:.0f} s (CPU, torch
{record["torch"]}), {config.epochs} epochs, AdamW with a one-cycle schedule, random shifts of
up to 2 pixels.

```python
from hub_models.features import FeatureNet
net = FeatureNet.from_pretrained("gan-gallery/images-{dataset}-features")
```
"""


# -- the classifiers of real emoji that grade conditional samples ---------------------------


def probe_data(dataset: str, task: str) -> tuple[imagedata.ImageSet, torch.Tensor]:
    """A probe's real images (32x32, the fixed split) and its labels for every image."""
    images = imagedata.load_images(dataset, 32, 3)
    if task == "classes":
        return images, images.labels
    return images, emoji_is_face(dataset)


def emoji_is_face(dataset: str) -> torch.Tensor:
    """(N,) 1 where an image of a multi-vendor emoji set is a face (emojidata.FACE_SUBGROUPS)."""
    from hub_models import emojidata

    emoji = emojidata.load_emoji(
        tuple(emojidata.VENDORS), 32, imagedata.MULTI_VENDOR[dataset], aligned=False
    )
    return torch.tensor([emojidata.is_face(key) for key in emoji.codepoints], dtype=torch.long)


def train_probe(name: str, out: Path) -> dict[str, float]:
    """Fit a linear probe on EfficientNet features of the training split; held-out accuracy
    beside the majority-class accuracy as its card's metrics."""
    from hub_models.emojiscore import split_features

    dataset, task = PROBES[name]
    images, labels = probe_data(dataset, task)
    classes = images.class_names if task == "classes" else FACE_CLASSES
    config = ProbeConfig(dataset=dataset, task=task, class_names=classes)
    began = time.time()
    train_labels, held_labels = labels[images.train_index], labels[images.held_out_index]
    train_features, held_out_features = split_features(dataset)
    probe = fit_probe(config, train_features, train_labels)
    predicted = probe.logits_of_features(held_out_features).argmax(1)
    recall = [
        float((predicted[held_labels == c] == c).float().mean())
        for c in range(len(classes))
        if (held_labels == c).any()
    ]
    metrics = {
        "held_out_accuracy": float((predicted == held_labels).float().mean()),
        "balanced_accuracy": sum(recall) / len(recall),
        **({"face_recall": recall[1], "not_face_recall": recall[0]} if task == "face" else {}),
        "majority_class_accuracy": float(
            (held_labels == train_labels.bincount().argmax()).float().mean()
        ),
    }
    write_auxiliary_run(
        out,
        FAMILIES["images"],
        probe_model(name),
        probe,
        metrics,
        began,
        lambda record: probe_card(name, config, metrics, len(images.train)),
    )
    return metrics


def probe_card(name: str, config: ProbeConfig, metrics: dict, n_train: int) -> str:
    what = (
        "whether an emoji is a face (the CLDR face subgroups: smileys, cat and monkey faces)"
        if config.task == "face"
        else f"the class of a {config.dataset} image ({len(config.class_names)} classes)"
    )
    return f"""---
library_name: pytorch
license: mit
tags: [gan-gallery, classifier, pytorch_model_hub_mixin]
---

# {name}

A linear classifier of {what}, on the pooled ImageNet features of EfficientNet-Lite0
(hub_models/effnet.py), fitted by L-BFGS on the {n_train} real training images of
`{config.dataset}` at 32x32, every class weighing the same in the loss. The gallery uses it
to grade generated emoji: the share of a conditional model's samples it reads as the class
asked for, and of the faces model's samples it calls a face. It was never shown a generated
image.

| metric | value |
| --- | --- |
| held-out accuracy (real images) | {metrics["held_out_accuracy"]:.4f} |
| balanced accuracy (mean of per-class recalls) | {metrics["balanced_accuracy"]:.4f} |
| majority-class accuracy (reference) | {metrics["majority_class_accuracy"]:.4f} |

```python
from hub_models.probes import LinearProbe
probe = LinearProbe.from_pretrained("gan-gallery/{name}")
```
"""
