"""StackGAN's benchmarks: the quality table (`stackgan`) and generation speed
(`stackgan-speed`).

`stackgan` grades the featured model on the fixed test scenes (training compositions) and the
fixed held-out compositions with models that never trained a generator, every row in the same
run: attribute accuracy (colour, shape, size, relation) read by the attribute classifier of
real renders, for the model's Stage-II samples, the retrieval baseline (the training render
whose caption is nearest) and real renders of the same scenes (the classifier's ceiling);
R-precision by the separate matcher beside chance and a shuffled-caption control (all from
``training.stackgan.evaluate``, as in the card); and FD-EffNet (hub_models/effnet.py; not
Inception FID) of Stage-I (upsampled) and Stage-II against real renders of the test scenes,
beside real renders of other training scenes (the floor) and a Gaussian fitted in pixel space
(the baseline). `stackgan-speed` times a caption to 8 Stage-II images on one thread (the app
server's policy) and on every thread.
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
    "real renders of other training scenes (floor)",
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


def load_model() -> StackGAN:
    published = FAMILY.featured_model
    model, _ = hub.load(StackGAN, published.repo_id, published.snapshot)
    return model


def graded_samples(model: StackGAN, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage-I and Stage-II images of the first ``n`` test captions, noise seed 0: the samples
    ``evaluate`` grades."""
    text, _ = encode_captions(model, fixed_captions("test", n))
    return synthesize(model, text, noise(model.config, n, 0))


def fd_effnet_rows(model: StackGAN, data: StackGANData, n: int) -> dict[str, float]:
    """FD-EffNet of every FD row against real renders of the ``n`` test scenes, each row of
    ``n`` images at the model's resolution (Stage-I enlarged bilinearly, as for R-precision)."""
    resolution = model.config.resolution
    reference = effnet.features(data.eval_set("test", n, resolution).real)
    floor = to_tensor(shapesdata.render_many(shapesdata.scenes(n, FLOOR_SEED, "train"), resolution))
    stage1, stage2 = graded_samples(model, n)
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
    return {
        "scenes": n,
        "metrics": evaluate(model, data),
        "fd_effnet": fd_effnet_rows(model, data, n),
    }


def verdicts(results: dict) -> dict[str, bool]:
    """The issue's bars, read off the measured rows (False where a grader was missing)."""
    metrics = results["metrics"]
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
    metrics, n = results["metrics"], results["scenes"]
    lines = [
        f"**Attribute accuracy** ({n} scenes per set, one caption each, one Stage-II sample per "
        "caption; read by stackgan-shapes-attributes, trained on real renders only)",
        "",
        "| set | images | " + " | ".join(ATTRIBUTE_KEYS) + " |",
        "| --- | --- |" + " --- |" * len(ATTRIBUTE_KEYS),
    ]
    for split in SETS:
        for prefix, title in ATTRIBUTE_ROWS.items():
            cells = [_percent(metrics[f"{prefix}{split}_{key}"]) for key in ATTRIBUTE_KEYS]
            name = f"**{title}**" if not prefix else title
            lines.append(f"| {SET_TITLES[split]} | {name} | " + " | ".join(cells) + " |")
    chance = metrics["r_precision_chance"]
    lines += [
        "",
        "**R-precision** (the true caption ranked first among 100 of the same set by "
        "stackgan-shapes-matcher, trained apart from any generator)",
        "",
        "| images, captions | R-precision | × chance |",
        "| --- | --- | --- |",
    ]
    for key, title in (
        ("r_precision", "**Stage-II, test set**"),
        ("r_precision_held_out", "Stage-II, held-out compositions"),
        ("r_precision_stage1", "Stage-I (upsampled), test set"),
        ("r_precision_shuffled", "Stage-II with shuffled captions (control)"),
        ("r_precision_real", "real renders, test set (ceiling)"),
        ("r_precision_chance", "chance"),
    ):
        value = metrics[key]
        ratio = "–" if math.isnan(value) else f"{value / chance:.1f}×"
        lines.append(f"| {title} | {_percent(value)} | {ratio} |")
    lines += [
        "",
        f"**FD-EffNet** against real renders of the {n} test scenes ({n} images per row; "
        "EfficientNet-Lite0 features, not Inception FID; with so few images the numbers are "
        "biased upward: compare rows of this table only)",
        "",
        "| images | FD-EffNet |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {value:.2f} |" for name, value in results["fd_effnet"].items()]
    lines += [
        "",
        "Retrieval baseline: the training render whose caption is nearest by the model's own "
        "text encoder; it cannot compose a colour-shape pair it never saw. Reproduce: `python "
        f"-m benchmarks stackgan`{' (this table: --quick, fewer scenes)' if quick else ''}.",
    ]
    return "\n".join(lines)


def table(quick: bool = False, verbose: bool = True, write_cards: bool | None = None) -> dict:
    """The featured model graded by the published auxiliary models, every row in this run."""
    began = time.time()
    model = load_model()
    if quick:  # this process's own copy of the model: fewer scenes, same protocol
        model.config = dataclasses.replace(
            model.config, eval_scenes=QUICK_SCENES, retrieval_pool=QUICK_POOL
        )
    results = measure(model, load_data(model.config))
    text = markdown(results, quick)
    report_table(FAMILY, text, quick, verbose, write_cards)
    checks = verdicts(results)
    if verbose:
        for check, passed in checks.items():
            print(f"{'PASS' if passed else 'MISS'} {check}")
    return {
        "quick": quick,
        "seconds": round(time.time() - began, 1),
        **results,
        "verdicts": checks,
        "markdown": text,
    }


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
