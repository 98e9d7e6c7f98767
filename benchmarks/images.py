"""The image family's benchmarks: the metric table (`images`) and sampling speed (`images-speed`).

`images` scores every published image model in its dataset's feature space next to two
reference points measured in the same run: real held-out images (the floor) and a Gaussian
fitted in pixel space (the baseline). `images-speed` times a 64-sample grid and reports the
generator's achieved FLOP/s as a fraction of this machine's matrix-multiply peak, measured
in the same process.
"""

from __future__ import annotations

import time

import torch

from benchmarks.timing import median_seconds, report_table
from hub_models import hub, imagedata
from hub_models.features import Scorer, features_for
from hub_models.images import DATASETS, ImageConfig, ImageModel, sample
from hub_models.metrics import COPY_RMS, copies, pixel_gaussian
from hub_models.registry import FAMILIES
from training.images import generate_like

FAMILY = FAMILIES["images"]
COLUMNS = ("fid", "kid", "precision", "recall", "density", "coverage", "nn_ratio", "class_accuracy")
ROW_ORDER = (
    "held-out real (floor)",
    "pixel Gaussian (baseline)",
    "vae",
    "dcgan",
    "wgan-gp",
    "cgan",
)


def score_dataset(dataset: str) -> dict[str, dict[str, float]]:
    """Every row of one dataset's table, scored with the same feature net and protocol."""
    channels = 1 if dataset == "mnist" else 3
    data = imagedata.load_images(dataset, 32, channels)
    scorer = Scorer.for_data(features_for(dataset, channels), data)
    n = len(data.held_out)
    rows: dict[str, dict[str, float]] = {}

    def score(images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        return scorer.score(images, labels) | {"copies": copies(images, data.train)}

    rows["held-out real (floor)"] = score(data.held_out, data.held_out_labels)
    rows["pixel Gaussian (baseline)"] = score(pixel_gaussian(data.train, n, seed=0))
    for kind in ("vae", "dcgan", "wgan-gp", "cgan"):
        published = FAMILY.model(f"images-{dataset}-{kind}")
        model, _ = hub.load(ImageModel, published.repo_id, published.snapshot)
        labels = data.held_out_labels if model.config.conditional else None
        rows[kind] = score(generate_like(model, n, labels), labels)
    return rows


def verdicts(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, bool]]:
    out = {}
    for dataset, rows in table.items():
        baseline = rows["pixel Gaussian (baseline)"]["fid"]
        out[dataset] = {
            "wgan_gp_beats_dcgan": rows["wgan-gp"]["fid"] < rows["dcgan"]["fid"],
            "dcgan_beats_pixel_baseline": rows["dcgan"]["fid"] < baseline,
            "wgan_gp_beats_pixel_baseline": rows["wgan-gp"]["fid"] < baseline,
            "no_gan_copies_training_images": all(
                rows[k]["copies"] == 0.0 for k in ("dcgan", "wgan-gp", "cgan")
            ),
        }
    return out


def markdown(table: dict[str, dict[str, dict[str, float]]]) -> str:
    names = {"vae": "VAE", "dcgan": "DCGAN", "wgan-gp": "WGAN-GP", "cgan": "cGAN"}
    lines = []
    for dataset, rows in table.items():
        lines += [
            f"**{DATASETS[dataset]}** (32x32; features of images-{dataset}-features)",
            "",
            "| model | FID | KID x1000 | precision | recall | density | coverage "
            "| NN ratio | copies | class acc. |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name in ROW_ORDER:
            r = rows[name]
            acc = f"{r['class_accuracy']:.3f}" if "class_accuracy" in r else "–"
            lines.append(
                f"| {names.get(name, name)} | {r['fid']:.2f} | {r['kid']:.2f} | "
                f"{r['precision']:.3f} | {r['recall']:.3f} | {r['density']:.3f} | "
                f"{r['coverage']:.3f} | {r['nn_ratio']:.2f} | {r['copies']:.1%} | {acc} |"
            )
        lines.append("")
    lines.append(
        "Domain-feature metrics, **not comparable to Inception FID**. NN ratio: median "
        "distance to the nearest training image, samples over held-out real images. Copies: "
        f"samples within {COPY_RMS:.0%} RMS of a training image. Reproduce: "
        "`python -m benchmarks images`."
    )
    return "\n".join(lines)


def table(quick: bool = False, verbose: bool = True, write_cards: bool | None = None) -> dict:
    """The metric table on both datasets; written into every image card unless --quick."""
    began = time.time()
    results = {dataset: score_dataset(dataset) for dataset in DATASETS}
    text = markdown(results)
    first_models = tuple(f"images-{d}-{kind}" for d in DATASETS for kind in ROW_ORDER[2:])
    report_table(FAMILY, text, quick, verbose, write_cards, models=first_models)
    return {
        "seconds": round(time.time() - began, 1),
        "table": results,
        "verdicts": verdicts(results),
        "markdown": text,
    }


# -- speed -------------------------------------------------------------------------------------


def generator_flops(config: ImageConfig) -> int:
    """Multiply-adds x 2 of the generator's (transposed) convolutions for one image."""
    flops, model = 0, ImageModel(config).generator
    size = 1
    for layer in model.net:
        if isinstance(layer, torch.nn.ConvTranspose2d):
            k, s = layer.kernel_size[0], layer.stride[0]
            flops += 2 * layer.in_channels * layer.out_channels * k * k * size * size
            size = size * s if s > 1 else k
    return flops


def matmul_peak(seconds: float = 1.0, n: int = 1024) -> float:
    """FLOP/s of a float32 square matrix multiply on this machine, best of repeated runs."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        began = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - began))
    return best


SPEED_TARGETS_MS = {"one_image_32": 20.0, "grid64_64": 100.0}  # on the 2-core CPU


def speed(quick: bool = False, verbose: bool = True) -> dict:
    """The featured faces model: one image at 32x32 (the page's click) and 64 images at 32x32
    and at 64x64 (its architecture under the gpu64 preset), in both memory layouts, beside
    the FLOP/s fraction of this machine's matrix-multiply peak measured in the same run."""

    presets = FAMILIES["images"].make_trainer().presets
    faces = dict(FAMILY.model("images-emoji-faces").overrides)
    repeats = 5 if quick else 20
    peak = matmul_peak(0.5 if quick else 2.0)
    out: dict = {"threads": torch.get_num_threads(), "matmul_peak_gflops": round(peak / 1e9, 1)}
    for preset in ("demo", "gpu64"):
        config = ImageConfig(**{**presets[preset], **faces})
        torch.manual_seed(0)
        model = ImageModel(config).eval()
        labels = torch.arange(64) % config.num_classes
        flops = generator_flops(config) * 64
        for layout in ("contiguous", "channels_last"):
            if layout == "channels_last":
                model = model.to(memory_format=torch.channels_last)
            grid = median_seconds(lambda m=model, y=labels: sample(m, 64, 0, labels=y), repeats)
            one = median_seconds(lambda m=model, y=labels: sample(m, 1, 0, labels=y[:1]), repeats)
            out[f"{preset}_{layout}"] = {
                "resolution": config.resolution,
                "one_image_ms": round(one * 1000, 2),
                "grid64_ms": round(grid * 1000, 1),
                "gflops": round(flops / grid / 1e9, 1),
                "fraction_of_matmul_peak": round(flops / grid / peak, 3),
            }
    best = {
        preset: min(
            (out[f"{preset}_{layout}"] for layout in ("contiguous", "channels_last")),
            key=lambda row: row["grid64_ms"],
        )
        for preset in ("demo", "gpu64")
    }
    out["targets_ms"] = SPEED_TARGETS_MS
    out["verdicts"] = {
        "one image at 32x32 < 20 ms": best["demo"]["one_image_ms"] < 20,
        "64 images at 64x64 < 100 ms": best["gpu64"]["grid64_ms"] < 100,
    }
    if verbose:
        for key, row in out.items():
            print(f"{key}: {row}")
    return out
