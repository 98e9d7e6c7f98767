"""StackGAN's benchmarks: the quality table (`stackgan`) and generation speed
(`stackgan-speed`).

`stackgan` grades each published model with models that never trained a generator, every row
in the same run.

- The shapes model, on the fixed test scenes (training compositions) and the fixed held-out
  compositions: attribute accuracy (colour, shape, size, relation) read by the attribute
  classifier of real renders, for the model's Stage-II samples, the retrieval baseline (the
  training render whose caption is nearest) and real renders of the same scenes (the
  classifier's ceiling).
- The emoji model, on its fixed test captions (CLDR names whose pictures it never trained on).
- Both: R-precision by the dataset's separate matcher beside chance, a shuffled-caption control
  and real pictures (all from ``training.stackgan.evaluate``, as in the card); FD-EffNet
  (hub_models/effnet.py; not Inception FID) of Stage-I (upsampled) and Stage-II against real
  pictures of the test captions, beside real pictures of other training captions (the floor)
  and a Gaussian fitted in pixel space (the baseline).

`stackgan-speed` times a caption to 8 Stage-II images on one thread (the app server's policy)
and on every thread.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch
import torch.nn.functional as F

from benchmarks.timing import median_seconds, report_table
from hub_models import effnet, hub, shapesdata
from hub_models.metrics import frechet_distance, pixel_gaussian
from hub_models.registry import FAMILIES
from hub_models.stackgan import (
    ATTRIBUTE_KEYS,
    EMOJI_MATCHER,
    MATCHER,
    SET_TITLES,
    SETS,
    StackGAN,
    encode_captions,
    fixed_captions,
    generate,
    noise,
    synthesize,
)
from training.stackgan import StackGANData, evaluate, load_data, to_tensor

FAMILY = FAMILIES["stackgan"]
QUICK_SCENES = 100  # per fixed set with --quick (the card's numbers use the config's 500)
QUICK_POOL = 1000  # the retrieval baseline's training scenes with --quick
FLOOR_SEED = 31  # the training scenes of the FD floor (not the retrieval pool's seed)
SPEED_CAPTION = "a small red circle above a large green square"
SPEED_IMAGES = 8
SPEED_TARGET_MS = 50
ATTRIBUTE_ROWS = {
    "": "Stage-II samples",
    "retrieval_": "retrieval baseline",
    "real_": "real renders (ceiling)",
}
FD_ROWS = (
    "real pictures of other training captions (floor)",
    "pixel Gaussian (baseline)",
    "Stage-I, upsampled",
    "Stage-II",
)
FLOOR, BASELINE, STAGE1, STAGE2 = FD_ROWS
BARS = {  # verdict -> (metric keys, threshold)
    "seen compositions: colour and shape >= 90 %": (("test_colour", "test_shape"), 0.90),
    "held-out compositions: colour and shape >= 75 %": (
        ("held_out_colour", "held_out_shape"),
        0.75,
    ),
}
STAGES_BAR = "Stage-II FD-EffNet below Stage-I's"
MATCHERS = {"shapes": MATCHER, "emoji": EMOJI_MATCHER}  # who grades R-precision, by dataset


def load_model(name: str | None = None) -> StackGAN:
    """A published model by name (default: the featured one)."""
    published = FAMILY.model(name) if name else FAMILY.featured_model
    model, _ = hub.load(StackGAN, published.repo_id, published.snapshot)
    return model


def graded_samples(
    model: StackGAN, captions: list[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage-I and Stage-II images of the test captions (default: the first ``eval_scenes``
    of the shapes test set), noise seed 0: the samples ``evaluate`` grades."""
    captions = captions or fixed_captions("test", model.config.eval_scenes)
    text, _ = encode_captions(model, captions)
    return synthesize(model, text, noise(model.config, len(captions), 0))


def real_rows(
    data: StackGANData, n: int, resolution: int
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(reference, floor, test captions): real pictures of the ``n`` test captions, real
    pictures of ``n`` other training captions or scenes, and the captions themselves."""
    if data.captions is None:
        reference = data.eval_set("test", n, resolution).real
        scenes = shapesdata.scenes(n, FLOOR_SEED, "train")
        floor = to_tensor(shapesdata.render_many(scenes, resolution))
        return reference, floor, fixed_captions("test", n)
    captions = data.captions
    groups = captions.test_groups[:n]
    g = torch.Generator().manual_seed(FLOOR_SEED)
    others = captions.train_groups[torch.randperm(len(captions.train_groups), generator=g)[:n]]
    return captions.first_images(groups), captions.first_images(others), captions.test_captions(n)


def fd_effnet_rows(model: StackGAN, data: StackGANData, n: int) -> dict[str, float]:
    """FD-EffNet of every FD row against real pictures of the ``n`` test captions, each row of
    ``n`` images at the model's resolution (Stage-I enlarged bilinearly, as for R-precision)."""
    resolution = model.config.resolution
    real, floor, captions = real_rows(data, n, resolution)
    n = len(captions)  # a caption set may hold fewer test captions
    reference = effnet.features(real)
    stage1, stage2 = graded_samples(model, captions)
    rows = {
        FLOOR: floor,
        BASELINE: pixel_gaussian(floor, n, seed=0, rank=min(64, max(1, n - 1))),
        STAGE1: F.interpolate(stage1, size=(resolution, resolution), mode="bilinear"),
        STAGE2: stage2,
    }
    return {name: frechet_distance(effnet.features(images), reference) for name, images in
            rows.items()}  # fmt: skip


def measure(model: StackGAN, data: StackGANData) -> dict:
    """The card's metrics (``training.stackgan.evaluate``) and the FD-EffNet rows, one run."""
    n = model.config.eval_scenes
    if data.captions is not None:
        n = min(n, len(data.captions.test_groups))
    return {
        "dataset": model.config.dataset,
        "scenes": n,
        "metrics": evaluate(model, data),
        "fd_effnet": fd_effnet_rows(model, data, n),
    }


def verdicts(results: dict) -> dict[str, bool]:
    """The issue's bars, read off the measured rows (False where a grader was missing)."""
    metrics = results["metrics"]
    out = {}
    if results["dataset"] == "shapes":  # attribute bars: only scenes have exact attributes
        out = {
            bar: all(metrics[key] >= threshold for key in keys)  # NaN compares False
            for bar, (keys, threshold) in BARS.items()
        }
    fd = results["fd_effnet"]
    out[STAGES_BAR] = fd[STAGE2] < fd[STAGE1]
    return out


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1%}"


def markdown(results: dict, quick: bool) -> str:
    metrics, n, dataset = results["metrics"], results["scenes"], results["dataset"]
    matcher = MATCHERS.get(dataset, "the run's matcher")
    lines = []
    if dataset == "shapes":
        lines += [
            f"**Attribute accuracy** ({n} scenes per set, one caption each, one Stage-II sample "
            "per caption; read by stackgan-shapes-attributes, trained on real renders only)",
            "",
            "| set | images | " + " | ".join(ATTRIBUTE_KEYS) + " |",
            "| --- | --- |" + " --- |" * len(ATTRIBUTE_KEYS),
        ]
        for split in SETS:
            for prefix, title in ATTRIBUTE_ROWS.items():
                cells = [_percent(metrics[f"{prefix}{split}_{key}"]) for key in ATTRIBUTE_KEYS]
                name = f"**{title}**" if not prefix else title
                lines.append(f"| {SET_TITLES[split]} | {name} | " + " | ".join(cells) + " |")
        lines.append("")
    chance = metrics["r_precision_chance"]
    reference = "real renders" if dataset == "shapes" else "real pictures"
    lines += [
        f"**R-precision** ({n} test captions, one Stage-II sample each; the true caption ranked "
        f"first among 100 of the same set by {matcher}, trained apart from any generator)",
        "",
        "| images, captions | R-precision | × chance |",
        "| --- | --- | --- |",
    ]
    rows = {
        "r_precision": "**Stage-II, test set**",
        "r_precision_held_out": "Stage-II, held-out compositions",
        "r_precision_stage1": "Stage-I (upsampled), test set",
        "r_precision_shuffled": "Stage-II with shuffled captions (control)",
        "r_precision_real": f"{reference}, test set (ceiling)",
        "r_precision_chance": "chance",
    }
    if dataset != "shapes":
        del rows["r_precision_held_out"]  # held-out compositions exist for shapes only
    for key, title in rows.items():
        value = metrics[key]
        ratio = "–" if math.isnan(value) else f"{value / chance:.1f}×"
        lines.append(f"| {title} | {_percent(value)} | {ratio} |")
    lines += [
        "",
        f"**FD-EffNet** against {reference} of the {n} test captions ({n} images per row; "
        "EfficientNet-Lite0 features, not Inception FID; with so few images the numbers are "
        "biased upward: compare rows of this table only)",
        "",
        "| images | FD-EffNet |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {value:.2f} |" for name, value in results["fd_effnet"].items()]
    lines.append("")
    if dataset == "shapes":
        lines.append(
            "Retrieval baseline: the training render whose caption is nearest by the model's "
            "own text encoder; it cannot compose a colour-shape pair it never saw. "
        )
    else:
        lines.append(
            "Test captions are CLDR names held out from training (every vendor's pictures of "
            "them); the floor is real pictures of other, training captions. "
        )
    lines[-1] += (
        f"Reproduce: `python -m benchmarks stackgan`"
        f"{' (this table: --quick, fewer captions)' if quick else ''}."
    )
    return "\n".join(lines)


def grade(name: str, quick: bool) -> dict:
    """One published model graded by its dataset's published auxiliary models."""
    model = load_model(name)
    if quick:  # this process's own copy of the model: fewer scenes, same protocol
        model.config = dataclasses.replace(
            model.config, eval_scenes=QUICK_SCENES, retrieval_pool=QUICK_POOL
        )
    results = measure(model, load_data(model.config))
    return {**results, "verdicts": verdicts(results), "markdown": markdown(results, quick)}


def table(quick: bool = False, verbose: bool = True, write_cards: bool | None = None) -> dict:
    """Every published model graded by the published auxiliary models, every row of a model's
    tables in one run; each table goes into its own model's card."""
    began = time.time()
    graded = {}
    for published in FAMILY.models:
        result = graded[published.name] = grade(published.name, quick)
        if verbose:
            print(f"## {published.name}")
        report_table(FAMILY, result["markdown"], quick, verbose, write_cards, (published.name,))
        if verbose:
            for check, passed in result["verdicts"].items():
                print(f"{'PASS' if passed else 'MISS'} {published.name}: {check}")
    return {"quick": quick, "seconds": round(time.time() - began, 1), "models": graded}


# -- speed ------------------------------------------------------------------------------------


def caption_to_images(model: StackGAN, caption: str, n: int, seed: int) -> torch.Tensor:
    """What the page does per caption: encode it, draw the noise, run both stages."""
    return generate(model, [caption], n, seed)[1]


def time_generation(model: StackGAN, repeats: int) -> dict[str, float]:
    """Median milliseconds of caption -> SPEED_IMAGES Stage-II images, on one thread and on
    every thread, in this process."""
    threads = torch.get_num_threads()

    def milliseconds(n_threads: int) -> float:
        torch.set_num_threads(n_threads)  # this benchmark's own process, not the app server
        try:
            run = lambda: caption_to_images(model, SPEED_CAPTION, SPEED_IMAGES, 0)  # noqa: E731
            return 1000 * median_seconds(run, repeats)
        finally:
            torch.set_num_threads(threads)

    return {"one_thread_ms": milliseconds(1), "all_threads_ms": milliseconds(threads)}


def speed(quick: bool = False, verbose: bool = True) -> dict:
    """Caption -> 8 Stage-II images with the featured model on CPU; target under 50 ms."""
    model = load_model()
    timed = time_generation(model, 10 if quick else 100)
    one = timed["one_thread_ms"]
    result = {
        "model": FAMILY.featured_model.repo_id,
        "caption": SPEED_CAPTION,
        "images": SPEED_IMAGES,
        "resolution": f"{model.config.stage1_resolution} -> {model.config.resolution}",
        "threads": torch.get_num_threads(),
        "one_thread_ms": round(one, 2),
        "all_threads_ms": round(timed["all_threads_ms"], 2),
        "per_image_ms": round(one / SPEED_IMAGES, 3),
        "target_ms": SPEED_TARGET_MS,
        "meets_target": one < SPEED_TARGET_MS,
    }
    if verbose:
        print(
            f"caption -> {SPEED_IMAGES} Stage-II images: {one:.1f} ms on one thread, "
            f"{timed['all_threads_ms']:.1f} ms on {result['threads']} "
            f"(target < {SPEED_TARGET_MS} ms)"
        )
    return result
