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
For rendered shapes the wrong caption can be a near miss (``near_misses``: the same scene with
one colour, shape, size or relation changed), and ``w_contrastive`` adds XMC-GAN's
image-caption InfoNCE on each discriminator's pooled features (real pictures train D, samples
train G), the near misses joining the batch's captions as negatives (see SHAPES_RECIPE).

With ``ema_decay`` each step also moves an average of both stages' weights (and their
conditioning augmentation) towards the live ones, and samples are drawn from the average.
``init_from`` starts every weight from a trained model (a fine-tune); a donor without averages
starts them at its own weights.

Captioned pictures (``dataset="emoji"``, or a folder given as ``--data``) are read once
(hub_models/captiondata.py) and drawn from at random instead of rendered; the model's vocabulary
is then its text encoder's, or, without one, the training captions' words. Data with no
published text encoder (a user's folder) get one of their own: before the GAN, the run trains
it on the training pairs by the published encoders' routine into ``OUT/text-encoder/`` (an
auxiliary folder, read back like one), then copies it, frozen, as a shapes model copies its
published encoder; ``--resume`` reuses it.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from hub_models import captiondata, imagedata, runfiles, shapesdata, textenc
from hub_models.base import CheckpointError
from hub_models.diffaugment import check_policy, diff_augment
from hub_models.objectives import generator_loss
from hub_models.stackgan import (
    ATTRIBUTES,
    EMOJI_AUXILIARY,
    EMOJI_MATCHER,
    EMOJI_TEXT_ENCODER,
    FAMILY,
    MATCHER,
    METRIC_NAMES,
    R_CANDIDATES,
    SAMPLED,
    SETS,
    TEXT_ENCODER,
    AttributeClassifier,
    AttributeConfig,
    CaptionTargets,
    StackGAN,
    StackGANConfig,
    attribute_accuracy,
    attribute_loss,
    auxiliary_defaults,
    caption_attribute_loss,
    caption_targets,
    contrastive_loss,
    dataset_captions,
    encode_captions,
    fixed_captions,
    generate,
    kl_divergence,
    load_auxiliary,
    matching_aware_discriminator_loss,
    noise,
    r_precision,
    r_precision_chance,
    scene_attribute_loss,
    scene_targets,
    synthesize,
)
from training.base import StepContext, Trainer, copy_weights, donor_folder, update_average

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
    captions: captiondata.CaptionSet | None = None  # captioned pictures; None: render shapes

    def eval_set(self, split: str, n: int, resolution: int) -> EvalSet:
        key = (split, n, resolution)
        if key not in self.eval_sets:
            self.eval_sets[key] = fixed_set(split, n, resolution)
        return self.eval_sets[key]


def run_dataset(config: StackGANConfig, data_path: Path | None) -> str:
    """What a run reads: the user's folder when --data is given, else the config's dataset."""
    return "folder" if data_path is not None else config.dataset


def auxiliary_names(config: StackGANConfig, dataset: str) -> dict[str, str]:
    """The config's auxiliary models, the shapes defaults replaced by ``dataset``'s own."""
    shapes, own = auxiliary_defaults("shapes"), auxiliary_defaults(dataset)
    return {
        role: own[role] if getattr(config, role) == shapes[role] else getattr(config, role)
        for role in shapes
    }


def _text_image(name: str, dataset: str) -> textenc.TextImageModel:
    model = load_auxiliary(textenc.TextImageModel, name)
    if model.config.dataset != dataset:
        raise ValueError(
            f"{name} reads {model.config.dataset} captions but this run reads {dataset}: "
            f"give one trained on {dataset} captions (--text_encoder / --matcher), or ''"
        )
    return model


def load_captions(dataset: str, resolution: int, data_path: Path | None):
    """The captioned pictures of an emoji or folder run (None for shapes, which renders)."""
    if dataset == "emoji":
        return captiondata.emoji_captions(resolution)
    if dataset != "folder":
        return None
    if data_path is None:
        raise ValueError(
            "this model was trained on a folder of captioned pictures: give it as --data FOLDER"
        )
    captions = captiondata.folder_captions(data_path, resolution)
    if captions.problems:
        print(
            f"stackgan: {len(captions)} captioned pictures of {data_path} load; left out: "
            + captiondata.problem_summary(captions.problems),
            file=sys.stderr,
        )
    return captions


def load_data(
    config: StackGANConfig,
    data_path: Path | None = None,
    run_folder: Path | None = None,
    resume: bool = False,
) -> StackGANData:
    """The auxiliary models a run needs and its captioned pictures (for emoji and folders),
    loaded before any training so that a missing one fails at once, not after two hours.

    Captioned pictures with no published text encoder (a folder) and none named get their
    own when ``run_folder`` is given (a training run): trained into ``run_folder``'s
    ``OWN_TEXT_ENCODER``, or, with ``resume``, reused from there when complete."""
    dataset = run_dataset(config, data_path)
    names = auxiliary_names(config, dataset)
    own_encoder = not names["text_encoder"] and not auxiliary_defaults(dataset)["text_encoder"]
    if names["matcher"] and names["matcher"] == names["text_encoder"]:
        raise ValueError(
            "the matcher that grades the model must not be its own text encoder: a generator "
            "would be graded by its own teacher"
        )
    encoder = None
    if names["text_encoder"]:
        encoder = _text_image(names["text_encoder"], dataset)
        if encoder.config.compositions != "train":
            raise ValueError(
                f"{names['text_encoder']} was trained on held-out compositions too; the "
                "generator's text encoder must see training compositions only"
            )
    elif not own_encoder:  # a folder's model read to evaluate or sample holds its own
        print(
            "stackgan: no text encoder given; captions are read by an untrained one "
            "(smoke runs only)",
            file=sys.stderr,
        )
    if names["attributes"] and dataset != "shapes":
        raise ValueError(
            f"the attribute grader reads shape scenes only; for {dataset} pass --attributes=''"
        )
    attributes = (
        load_auxiliary(AttributeClassifier, names["attributes"]) if names["attributes"] else None
    )
    matcher = _text_image(names["matcher"], dataset) if names["matcher"] else None
    captions = load_captions(dataset, config.resolution, data_path)
    if own_encoder and captions is not None and run_folder is not None:
        # Last: everything that can fail has been read before minutes go into training.
        folder = Path(run_folder) / OWN_TEXT_ENCODER
        own_text_encoder(config, captions, folder, data_path, resume)
        encoder = _text_image(str(folder), dataset)
    return StackGANData(encoder, attributes, matcher, captions=captions)


OWN_TEXT_ENCODER = "text-encoder"  # the run folder's own encoder, for data without a published one
# The own encoder's budget. The published emoji encoder makes about 30 passes over its ~13,000
# training pictures (3,000 steps of 128). A user's folder is often a few hundred pictures, for
# which 30 passes are a few dozen steps: too few for the one-cycle schedule to warm up and
# anneal, so at least 300 steps are taken (a tenth of the published budget: about 1.5 minutes
# at 64x64 on one busy core), and at most the published 3,000 (~15 minutes), which a folder
# reaches at about 13,000 pictures.
OWN_ENCODER_PASSES = 30
OWN_ENCODER_STEPS = (300, 3000)


def own_encoder_config(
    config: StackGANConfig, captions: captiondata.CaptionSet
) -> textenc.TextImageConfig:
    """The own encoder of a run: the model's text tower (so that it can be copied), the
    vocabulary of the training captions, and a budget scaled to the training pictures."""
    pictures = len(captions.image_index("train"))
    defaults = textenc.TextImageConfig()
    # A batch larger than the folder would repeat most pictures, and a repeated picture is
    # its own negative in the contrastive loss.
    batch = max(2, min(defaults.batch_size, pictures))
    low, high = OWN_ENCODER_STEPS
    steps = min(max(math.ceil(OWN_ENCODER_PASSES * pictures / batch), low), high)
    return textenc.TextImageConfig(
        **{
            **TEXT_IMAGE_ROLES[EMOJI_TEXT_ENCODER],
            "dataset": "folder",
            "vocabulary": captions.vocabulary("train"),
            "word_dim": config.word_dim,
            "text_hidden": config.text_hidden,
            "text_dim": config.text_dim,
            # the published encoders read 64x64; larger pictures are reduced for its image tower
            "resolution": min(config.resolution, defaults.resolution),
            "steps": steps,
            "batch_size": batch,
        }
    )


def own_encoder_complete(folder: Path, expected: textenc.TextImageConfig) -> bool:
    """Whether ``folder`` holds a whole encoder trained as ``expected`` says."""
    try:
        found = textenc.TextImageModel.load_folder(folder)
    except (CheckpointError, OSError, ValueError, TypeError):
        return False
    return found.config == expected and (folder / runfiles.EVALUATION).is_file()


def own_text_encoder(
    config: StackGANConfig,
    captions: captiondata.CaptionSet,
    folder: Path,
    data_path: Path | None,
    resume: bool,
) -> None:
    """Train the run's own text encoder into ``folder`` (reused when resuming and complete).

    It is written to a sibling folder and renamed into place, so that a killed run leaves no
    half-written encoder for ``--resume`` to trust. Every process of a multi-process run trains
    the same one (same seed, same pairs, on the CPU); the main process writes it. The global
    RNG is left as it was, so that the GAN starts alike whether the encoder was trained now or
    reused."""
    from accelerate import PartialState

    expected = own_encoder_config(config, captions)
    if resume and own_encoder_complete(folder, expected):
        print(f"stackgan: reusing the text encoder in {folder}", file=sys.stderr)
        return
    state = PartialState()
    with torch.random.fork_rng(devices=[]):
        model, metrics, began = fit_caption_encoder(captions, expected, AUX_EVAL_SCENES, True)
    if state.is_main_process:
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write_own_encoder(partial, model, metrics, began, captions, data_path)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        print(
            f"stackgan: trained a text encoder on the {len(captions.image_index('train'))} "
            f"training pictures of {data_path or captions.name} ({expected.steps} steps of "
            f"{expected.batch_size} pairs) into {folder}; the GAN reads captions with it, frozen",
            file=sys.stderr,
        )
    state.wait_for_everyone()


def write_own_encoder(
    out: Path,
    model: textenc.TextImageModel,
    metrics: dict[str, float],
    began: float,
    captions: captiondata.CaptionSet,
    data_path: Path | None,
) -> None:
    """The files of an auxiliary folder (weights, config, eval.json, training.json, card);
    the card says what this encoder is rather than where it would be published."""
    c = model.config
    model.save_pretrained(out)
    runfiles.write_json(out, runfiles.EVALUATION, metrics)
    record = {
        "family": FAMILY.name,
        "auxiliary": OWN_TEXT_ENCODER,
        "data": str(data_path) if data_path is not None else None,
        "wall_seconds": round(time.time() - began, 1),
        "torch": torch.__version__,
        "config": dataclasses.asdict(c),
    }
    runfiles.write_json(out, runfiles.TRAINING, record)
    rows = "\n".join(f"| {key.replace('_', ' ')} | {value:.4f} |" for key, value in metrics.items())
    (out / runfiles.CARD).write_text(
        f"""# Text encoder of {captions.name}

A word-level text encoder (bidirectional GRU over {len(c.vocabulary)} vocabulary rows, unknown
words as <unk>) and a small image encoder, trained together by InfoNCE on {c.steps} batches
of {c.batch_size} real (picture, caption) pairs of the training captions of {captions.name},
by the routine of the published StackGAN text encoders. The StackGAN model in the folder
above copies its text tower and is conditioned on it, frozen. The test captions' pictures
and their words are new to it. R-precision: a real picture's own caption must score above
up to {R_CANDIDATES - 1} others of the test captions.

| metric | value |
| --- | --- |
{rows}
""",
        encoding="utf-8",
    )


def model_config(config: StackGANConfig, data: StackGANData) -> StackGANConfig:
    """The config a model is built with. For captioned pictures the dataset is recorded
    ("folder" for --data) and, unless the config names a vocabulary of its own, the shapes
    grammar's rows give way to the text encoder's (or, without one, the training captions'
    words); shapes configs are returned unchanged."""
    if data.captions is None:
        return config
    dataset = "emoji" if config.dataset == "emoji" else "folder"
    vocabulary = config.vocabulary
    if vocabulary == textenc.shapes_vocabulary():
        vocabulary = (
            data.text_encoder.config.vocabulary
            if data.text_encoder is not None
            else data.captions.vocabulary("train")
        )
    return dataclasses.replace(config, dataset=dataset, vocabulary=vocabulary)


def data_pairs(
    data: StackGANData, n: int, generator: torch.Generator, resolution: int
) -> tuple[torch.Tensor, list[shapesdata.Scene] | None, list[str]]:
    """``n`` real (picture, scene, caption) triples of training captions, as ``draw_pairs``
    gives them; captioned pictures have no scenes (None)."""
    if data.captions is not None:
        images, captions = data.captions.draw(n, generator)
        return textenc.fit_images(images, resolution), None, captions
    return draw_pairs(n, generator, resolution)


def right_and_wrong_captions(
    captions: list[str],
    scenes: list[shapesdata.Scene] | None,
    share: float,
    generator: torch.Generator,
) -> tuple[list[str], list[str]]:
    """Each real picture's caption, and a mismatched one: another picture's caption (the
    batch rolled by one), or for a ``share`` of rendered scenes a near miss, a caption of the
    same scene with one thing changed (shapesdata.near_miss), phrased from the same draw as
    the true caption (which is phrased anew), so the two share their structure. A near miss
    that reads as the true caption (a size it leaves unsaid) falls back to the rolled one."""
    right, wrong = list(captions), captions[-1:] + captions[:-1]
    if scenes is None or share <= 0:
        return right, wrong
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    for i in np.flatnonzero(rng.random(len(scenes)) < share):
        phrasing = int(rng.integers(2**31 - 1))
        changed = shapesdata.near_miss(scenes[i], rng)
        true = shapesdata.caption(scenes[i], np.random.default_rng(phrasing))
        near = shapesdata.caption(changed, np.random.default_rng(phrasing))
        if near != true:
            right[i], wrong[i] = true, near
    return right, wrong


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
        run = self.run_options
        if run is None:  # evaluation or sampling of a trained model
            return load_data(config, data_path)
        return load_data(config, data_path, run.out, run.resume)

    def build(self, config: StackGANConfig, data: StackGANData) -> StackGAN:
        model = StackGAN(model_config(config, data))
        if data.text_encoder is not None:
            model.copy_text_encoder(data.text_encoder.text)
        if config.init_from:
            copy_donor(model, donor_model(config.init_from))
        return model

    def donors(self, config: StackGANConfig) -> list[Path]:
        return [donor_folder(FAMILY, config.init_from)] if config.init_from else []

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
        real, scenes, captions = data_pairs(data, c.batch_size, ctx.generator, c.resolution)
        real = real.to(ctx.device)
        captions, wrong_ones = right_and_wrong_captions(
            captions, scenes, c.near_misses, ctx.generator
        )
        ids, lengths, _ = model.text.ids(captions + wrong_ones)
        with torch.no_grad():
            text, wrong = model.text(ids.to(ctx.device), lengths).chunk(2)
        draws = noise(c, c.batch_size, int(torch.randint(2**31 - 1, (1,), generator=ctx.generator)))
        z, eps1, eps2 = (part.to(ctx.device) for part in draws)

        if c.w_attributes:  # what each real scene holds, and what each caption asks for
            scene_truth = on_device(scene_targets(scenes), ctx.device)
            caption_truth = on_device(caption_targets(captions), ctx.device)

        def augmented(images: torch.Tensor) -> torch.Tensor:
            return diff_augment(images, policy, ctx.generator) if policy else images

        def stage(d, g_optimizer, d_optimizer, real_images, fake, mu, logvar, name):
            features = d.trunk(augmented(real_images))
            right, mismatched = d.judge(features, text), d.judge(features, wrong)
            loss_d = matching_aware_discriminator_loss(
                right, d(augmented(fake.detach()), text), mismatched, c.objective
            )
            if c.w_contrastive:
                contrast = contrastive_loss(d.embedding(features), text, c.temperature, wrong)
                loss_d = loss_d + c.w_contrastive * contrast
            if c.w_attributes:
                head = d.attribute_logits(features)
                loss_d = loss_d + c.w_attributes * scene_attribute_loss(head, scene_truth)
            ctx.update(d_optimizer, loss_d)
            kl = kl_divergence(mu, logvar)
            fake_features = d.trunk(augmented(fake))
            loss_g = generator_loss(c.objective, d.judge(fake_features, text)) + c.kl_weight * kl
            if c.w_contrastive:
                fake_contrast = contrastive_loss(
                    d.embedding(fake_features), text, c.temperature, wrong
                )
                loss_g = loss_g + c.w_contrastive * fake_contrast
            if c.w_attributes:
                stated = caption_attribute_loss(d.attribute_logits(fake_features), caption_truth)
                loss_g = loss_g + c.w_attributes * stated
            ctx.update(g_optimizer, loss_g)
            out = {
                f"loss_d{name}": loss_d.item(),
                f"loss_g{name}": loss_g.item(),
                f"kl{name}": kl.item(),
                # share of real images D scores higher with their caption than with another
                f"match{name}": float((right > mismatched).float().mean()),
            }
            if c.w_contrastive:
                out[f"contrast{name}"] = contrast.item()
                out[f"contrast_fake{name}"] = fake_contrast.item()
            return out

        c1, mu1, logvar1 = model.ca1(text, eps1)
        fake1 = model.g1(c1, z)
        real1 = F.avg_pool2d(real, 2)  # Stage-I's real pictures: the render, halved
        out = stage(model.d1, optimizers["g1"], optimizers["d1"], real1, fake1, mu1, logvar1, 1)
        if ctx.step >= c.stage2_start:
            c2, mu2, logvar2 = model.ca2(text, eps2)
            fake2 = model.g2(fake1.detach(), c2)  # Stage-II refines, never trains Stage-I
            out |= stage(model.d2, optimizers["g2"], optimizers["d2"], real, fake2, mu2, logvar2, 2)
        if c.ema_decay:
            for name in SAMPLED:
                update_average(model.ema[name], getattr(model, name), c.ema_decay, ctx.step)
        return out

    def evaluate(self, model: StackGAN, data: StackGANData) -> dict[str, float]:
        return evaluate(model, data)

    def sample_image(self, model: StackGAN, data: StackGANData) -> Image.Image:
        if data is not None and data.captions is not None:
            captions = data.captions.test_captions(4)
        else:
            captions = fixed_captions("test", 2) + fixed_captions("held_out", 2)
        return caption_grid(model, captions, GRID_SAMPLES, seed=0)

    def save_png(self, model: StackGAN, data, n: int, seed: int, path: Path) -> None:
        """``n`` test captions, one Stage-I / Stage-II pair each."""
        caption_grid(model, grid_captions(model, data, n), 1, seed).save(path)

    def train_auxiliary(
        self, name: str, out: Path, overrides: dict[str, Any] | None = None
    ) -> dict[str, float]:
        if name in TEXT_IMAGE_ROLES:
            return train_text_image(name, out)
        if name == ATTRIBUTES:
            return train_attributes(out)
        return super().train_auxiliary(name, out, overrides)


T = TypeVar("T", bound=tuple)


def on_device(tensors: T, device: torch.device) -> T:
    """A NamedTuple of tensors (the attribute targets) with each tensor moved to ``device``."""
    return type(tensors)(*(part.to(device) for part in tensors))


def donor_model(name_or_folder: str) -> StackGAN:
    return StackGAN.load_folder(donor_folder(FAMILY, name_or_folder)).float()


def copy_donor(model: StackGAN, donor: StackGAN) -> None:
    """Every weight of ``donor`` into ``model`` (the same architecture); a donor without
    moving averages starts the model's from its own weights."""
    if copy_weights(model, donor, may_lack=("ema.",)) and hasattr(model, "ema"):
        for name in SAMPLED:
            model.ema[name].load_state_dict(getattr(model, name).state_dict())


# -- evaluation -------------------------------------------------------------------------------


def grid_captions(model: StackGAN, data: StackGANData | None, n: int) -> list[str]:
    """``n`` test captions of the run's data (or, without it, of the model's dataset)."""
    if data is not None and data.captions is not None:
        return data.captions.test_captions(n)
    return dataset_captions(model.config, n)


def matcher_rows(
    matcher: textenc.TextImageModel,
    samples: tuple[torch.Tensor, torch.Tensor],
    captions: torch.Tensor,
    real: torch.Tensor,
) -> dict[str, float]:
    """R-precision of the test set's Stage-II samples, its Stage-I samples, its samples
    against shuffled captions, and its real pictures; ``captions`` are the matcher's vectors."""

    def vectors(images: torch.Tensor) -> torch.Tensor:
        return textenc.encode_images(matcher, images)

    test_images = vectors(samples[1])
    # Stage-I's pictures enlarged to Stage-II's side before the matcher resizes them, so
    # both stages are read through the same resampling.
    stage1 = F.interpolate(samples[0], scale_factor=2, mode="bilinear")
    return {
        "r_precision": r_precision(test_images, captions),
        "r_precision_stage1": r_precision(vectors(stage1), captions),
        "r_precision_shuffled": r_precision(test_images, captions.roll(1, 0)),
        "r_precision_real": r_precision(vectors(real), captions),
    }


def evaluate_captions(model: StackGAN, data: StackGANData) -> dict[str, float]:
    """Captioned pictures: no attribute grader and no held-out compositions, so only the
    test set's R-precision rows (NaN without a matcher); one sample per test caption."""
    c, captions = model.config, data.captions
    metrics = dict.fromkeys(METRIC_NAMES, math.nan)
    groups = captions.test_groups[: c.eval_scenes]
    texts = [captions.captions[g] for g in groups.tolist()]
    metrics["r_precision_chance"] = r_precision_chance(len(texts))
    if data.matcher is None:
        return metrics
    text, _ = encode_captions(model, texts)
    samples = synthesize(model, text, noise(c, len(texts), 0))
    truth = textenc.encode(data.matcher.text, texts)[0]
    real = captions.first_images(groups)
    return metrics | matcher_rows(data.matcher, samples, truth, real)


def evaluate(model: StackGAN, data: StackGANData) -> dict[str, float]:
    """The card's metrics (see PROTOCOL): NaN for what needs a grader the run was not given."""
    if data.captions is not None:
        return evaluate_captions(model, data)
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
        metrics |= matcher_rows(matcher, samples["test"], captions["test"], sets["test"].real)
        metrics["r_precision_held_out"] = r_precision(
            textenc.encode_images(matcher, samples["held_out"][1]), captions["held_out"]
        )
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
    font = imagedata.text_font(TEXT_HEIGHT - 3)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(
        [row.width for row in rows] + [int(measure.textlength(t, font=font)) + 8 for t in captions]
    )
    canvas = Image.new("RGB", (width, sum(r.height + TEXT_HEIGHT for r in rows)), "white")
    draw = ImageDraw.Draw(canvas)
    top = 0
    for text, row in zip(captions, rows, strict=True):
        draw.text((4, top + 1), text, fill="black", font=font)
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
    EMOJI_TEXT_ENCODER: {"dataset": "emoji", "compositions": "train", "seed": 0},
    EMOJI_MATCHER: {"dataset": "emoji", "compositions": "all", "seed": 1},
}
HELD_OUT_SHARE = 0.25  # of a grader's training batch: scenes with held-out pairs


def _auxiliary_spec(name: str):
    return next(m for m in (*FAMILY.auxiliary, *EMOJI_AUXILIARY) if m.name == name)


def _schedule(optimizer: torch.optim.Optimizer, steps: int):
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, optimizer.param_groups[0]["lr"], total_steps=steps
    )


def fit_auxiliary(
    model: torch.nn.Module, config: Any, batch_loss: Callable[[torch.Generator], torch.Tensor]
) -> float:
    """The auxiliary models' one loop: AdamW with a one-cycle schedule for ``config.steps``
    steps, each on ``batch_loss(g)`` of a fresh batch drawn with ``g`` (seeded by
    ``config.seed``); then eval mode, rounded to storage precision. Returns when it began."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = _schedule(optimizer, config.steps)
    g = torch.Generator().manual_seed(config.seed)
    began = time.time()
    for _ in range(config.steps):
        loss = batch_loss(g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    model.round_to_storage()
    return began


def train_text_image(
    name: str, out: Path, eval_scenes: int = AUX_EVAL_SCENES, **overrides
) -> dict[str, float]:
    """Train a conditioning text encoder or a matcher on fresh real pairs (InfoNCE both ways,
    word dropout): of rendered shapes, or of captioned emoji (``EMOJI_TEXT_ENCODER``,
    ``EMOJI_MATCHER``). Metrics: R-precision of real pictures of the fixed sets."""
    config = textenc.TextImageConfig(**{**TEXT_IMAGE_ROLES[name], **overrides})
    if config.dataset == "shapes":
        return _train_shapes_text_image(name, out, config, eval_scenes)
    return _train_captions_text_image(name, out, config, eval_scenes, "vocabulary" in overrides)


def _contrastive(
    model: textenc.TextImageModel,
    images: torch.Tensor,
    captions: list[str],
    config: textenc.TextImageConfig,
    g: torch.Generator,
) -> torch.Tensor:
    ids, lengths, _ = model.text.ids(captions)
    ids = textenc.word_dropout(ids, lengths, config.word_dropout, g)
    return textenc.contrastive_loss(model.logits(model.image(images), model.text(ids, lengths)))


def _train_shapes_text_image(
    name: str, out: Path, config: textenc.TextImageConfig, eval_scenes: int
) -> dict[str, float]:
    share = HELD_OUT_SHARE if config.compositions == "all" else 0.0
    torch.manual_seed(config.seed)
    model = textenc.TextImageModel(config).train()

    def batch_loss(g: torch.Generator) -> torch.Tensor:
        images, _, captions = draw_pairs(config.batch_size, g, config.resolution, share)
        return _contrastive(model, images, captions, config, g)

    began = fit_auxiliary(model, config, batch_loss)
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


def fit_caption_encoder(
    captions: captiondata.CaptionSet,
    config: textenc.TextImageConfig,
    eval_scenes: int,
    own_vocabulary: bool,
) -> tuple[textenc.TextImageModel, dict[str, float], float]:
    """A text-image model of captioned pictures: pairs drawn from the pictures of the training
    captions ("train") or of every caption ("all"); the vocabulary is those captions' words
    unless ``config`` gives one. Returns it, the R-precision of the test captions' real
    pictures, and when training began."""
    split = "train" if config.compositions == "train" else "all"
    if not own_vocabulary:
        config = dataclasses.replace(config, vocabulary=captions.vocabulary(split))
    torch.manual_seed(config.seed)
    model = textenc.TextImageModel(config).train()

    def batch_loss(g: torch.Generator) -> torch.Tensor:
        images, texts = captions.draw(config.batch_size, g, split)
        return _contrastive(model, images, texts, config, g)

    began = fit_auxiliary(model, config, batch_loss)
    groups = captions.test_groups[:eval_scenes]
    texts = [captions.captions[g] for g in groups.tolist()]
    text, _ = textenc.encode(model.text, texts)
    real = textenc.encode_images(model, captions.first_images(groups))
    metrics = {
        "test_r_precision": r_precision(real, text),
        "r_precision_chance": r_precision_chance(len(texts)),
    }
    return model, metrics, began


def _train_captions_text_image(
    name: str,
    out: Path,
    config: textenc.TextImageConfig,
    eval_scenes: int,
    own_vocabulary: bool,
) -> dict[str, float]:
    """The emoji encoders, from every vendor's pictures (``fit_caption_encoder``)."""
    if config.dataset != "emoji":
        raise ValueError(
            f"text encoders of {config.dataset!r} captions are not trained here: a folder's "
            "run trains its own into its run folder (own_text_encoder)"
        )
    captions = captiondata.emoji_captions(config.resolution)
    model, metrics, began = fit_caption_encoder(captions, config, eval_scenes, own_vocabulary)
    config = model.config
    role = (
        "the text encoder a stackgan emoji model copies and is conditioned on. It saw the "
        "training captions only: the test captions' pictures and their words are new to it"
        if config.compositions == "train"
        else "the image-text matcher that grades stackgan emoji models (R-precision). It never "
        "takes part in training a generator; it saw every caption, the test captions' real "
        "pictures included, so its R-precision of real pictures is a ceiling, not a measure "
        "of generalisation"
    )
    description = (
        f"A word-level text encoder (bidirectional GRU over {len(config.vocabulary)} vocabulary "
        f"rows, unknown words as <unk>) and a small image encoder, trained together by InfoNCE "
        f"on {config.steps} batches of {config.batch_size} real (picture, caption) pairs of "
        f"{captions.name}, captioned by CLDR name or by name and keywords: {role}. "
        f"R-precision: a real picture's own name must score above {R_CANDIDATES - 1} others "
        "of the fixed test captions."
    )
    write_auxiliary(name, out, model, config, metrics, began, description)
    return metrics


def train_attributes(
    out: Path, eval_scenes: int = AUX_EVAL_SCENES, **overrides
) -> dict[str, float]:
    """Train the attribute classifier on fresh real renders of every composition; metrics:
    attribute accuracy of real renders of the fixed sets, graded as generated images are."""
    config = AttributeConfig(**overrides)
    torch.manual_seed(config.seed)
    model = AttributeClassifier(config).train()

    def batch_loss(g: torch.Generator) -> torch.Tensor:
        images, scenes, _ = draw_pairs(
            config.batch_size, g, config.resolution, config.held_out_share
        )
        return attribute_loss(model, imagedata.blur_half(images, g), scene_targets(scenes))

    began = fit_auxiliary(model, config, batch_loss)
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
