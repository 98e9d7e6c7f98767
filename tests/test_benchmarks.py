"""Benchmarks: the table's bookkeeping on hand-made runs, and the CLI surface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import toy2d as bench
from hub_models.toy2d import VARIANTS

ROOT = Path(__file__).resolve().parent.parent


def rows_with(scores: dict[str, tuple[float, float]], target: str = "grid") -> list[dict]:
    """Three identical seeds per variant with the given (modes, high-quality share)."""
    rows = []
    for slug, _, _ in VARIANTS:
        modes, hq = scores.get(slug, (10, 0.5))
        rows += [
            {
                "target": target,
                "variant": slug,
                "seed": s,
                "modes_covered": modes,
                "modes_total": 25,
                "high_quality": hq,
                "reverse_kl": 0.1,
                "steps": 100,
            }
            for s in range(3)
        ]
    return rows


def test_best_needs_the_precision_floor():
    # wgan-gp covers more modes but is blurry; lsgan covers fewer with sharp samples
    rows = rows_with({"wgan-gp": (25, 0.4), "lsgan": (24, 0.96), "vanilla": (25, 0.99)})
    assert bench.best_variant(rows, "grid") == "lsgan"  # the baseline is never a candidate


def test_best_falls_back_to_coverage_when_nothing_is_precise():
    rows = rows_with({"wgan-gp": (25, 0.4), "lsgan": (24, 0.5)})
    assert bench.best_variant(rows, "grid") == "wgan-gp"


def test_verdicts_and_table():
    rows = rows_with({"lsgan": (25, 0.96), "vanilla": (12, 0.9)}) + rows_with(
        {"pacgan4": (8, 0.97), "vanilla": (8, 0.5)}, target="ring"
    )
    best = {"ring": bench.best_variant(rows, "ring"), "grid": bench.best_variant(rows, "grid")}
    result = bench.report(rows, best, quick=True)
    grid, ring = result["verdicts"]["grid"], result["verdicts"]["ring"]
    assert grid["best"] == "lsgan" and grid["bar_met"] and grid["baseline_collapses"]
    assert ring["best"] == "pacgan4" and ring["bar_met"] and not ring["baseline_collapses"]
    assert "mean ± s.e." in result["markdown"] and "--quick" in result["markdown"]
    assert "| **LSGAN** | 3 | 100 | 25.00 ± 0.00 | 96.0 ± 0.0 |" in result["markdown"]


def test_unknown_benchmark_is_refused():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "unknown benchmark" in out.stderr


def test_live_speed_quick_reports_every_number():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "toy2d-live", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    live = json.loads(out.stdout)["toy2d-live"]
    (shipped,) = live["servers"].values()  # --quick measures the shipped server only
    for load in ("idle", "one_core_busy"):
        assert shipped[load]["steps_per_second"] > 0, load
        assert shipped[load]["frames_per_second"] > 0, load
        assert "target_met" in shipped["verdict"][load]


def test_image_generator_flops_by_hand():
    from benchmarks.images import generator_flops
    from hub_models.images import ImageConfig

    config = ImageConfig(resolution=16, z_dim=8, g_width=4, channels=1)
    # 1x1 -> 4x4 (8 -> 8 ch), 4 -> 8 (8 -> 4), 8 -> 16 (4 -> 1); 2 * Cin * Cout * k^2 * input
    expected = 2 * 16 * (8 * 8 * 1 + 8 * 4 * 16 + 4 * 1 * 64)
    assert generator_flops(config) == expected


def test_image_copies_and_verdicts():
    import torch

    from benchmarks.images import ROW_ORDER, markdown, verdicts
    from hub_models.metrics import copies

    train = torch.rand(50, 1, 8, 8) * 2 - 1
    assert copies(train[:10] + 0.001, train) == 1.0
    assert copies(-train[:10], train) == 0.0
    row = {k: 1.0 for k in ("fid", "kid", "precision", "recall", "density", "coverage")}
    rows = {name: {**row, "nn_ratio": 1.0, "copies": 0.0} for name in ROW_ORDER}
    rows["pixel Gaussian (baseline)"]["fid"] = 100.0
    rows["dcgan"]["fid"], rows["wgan-gp"]["fid"] = 9.0, 7.0
    verdict = verdicts({"mnist": rows})["mnist"]
    assert verdict == {
        "wgan_gp_beats_dcgan": True,
        "dcgan_beats_pixel_baseline": True,
        "wgan_gp_beats_pixel_baseline": True,
        "no_gan_copies_training_images": True,
    }
    assert "| WGAN-GP | 7.00 |" in markdown({"mnist": rows})


def test_emoji_verdicts_read_the_faces_bar_on_the_wide_sample():
    from benchmarks.emoji import BASELINE, FIRST, FLOOR, TABLES, verdicts, wide_readings

    def row(fd: float, faces: float, accuracy: float) -> dict[str, float]:
        return {"fd_effnet": fd, "face_share": faces, "class_accuracy": accuracy, "copies": 0.0}

    results = {}
    for dataset, (name,) in TABLES.items():
        results[dataset] = {
            FLOOR: row(10.0, 1.0, 0.8),
            BASELINE: row(300.0, 0.0, 0.0),
            FIRST: row(200.0, 0.0, 0.0),
            name: row(90.0, 0.95, 0.75) | {"face_share_512": 0.85, "class_accuracy_512": 0.7},
        }
    checks = verdicts(results)
    # 95 % of the table's few samples are faces, but 85 % of the 512: the bar is missed
    assert checks["emoji-faces: >= 90 % of 512 samples called a face"] is False
    assert checks["emoji-faces: best FD-EffNet <= half the first DCGAN's"] is True
    assert checks["emoji-all: class accuracy within 15 points of real"] is True
    results["emoji-faces"]["images-emoji-faces"]["face_share_512"] = 0.9
    assert verdicts(results)["emoji-faces: >= 90 % of 512 samples called a face"] is True
    assert "images-emoji-faces: 90.0% called a face, 70.0% read as the class asked for" in (
        wide_readings(results)
    )


def test_ganomaly_table_means_stds_and_verdicts():
    from benchmarks.ganomaly import DIGITS, METHODS, SETTINGS, markdown, summarise, verdicts

    auroc = {"GANomaly": 0.9, "autoencoder": 0.8, "k-NN pixels": 0.85}
    rows = [
        {"setting": s, "method": m, "seed": seed, "auroc": auroc[m] + 0.01 * seed}
        for m in METHODS
        for s in SETTINGS
        for seed in range(3)
    ]
    summary = summarise(rows)
    cell = summary["GANomaly"]["7"]
    assert cell["mean"] == pytest.approx(0.91) and cell["std"] == pytest.approx(0.01)
    assert summary["GANomaly"]["mean digits"]["mean"] == pytest.approx(0.91)
    assert summary["GANomaly"]["mean digits"]["std"] == pytest.approx(0.01)
    assert all(verdicts(summary).values())
    rows = [r if r["method"] != "k-NN pixels" else {**r, "auroc": 0.99} for r in rows]
    assert verdicts(summarise(rows)) == {
        "digits_ganomaly_beats_autoencoder": True,
        "digits_ganomaly_beats_knn": False,
        "textures_ganomaly_beats_autoencoder": True,
        "textures_ganomaly_beats_knn": False,
    }
    text = markdown(summary, quick=False)
    assert "| method \\ anomalous digit | " + " | ".join(DIGITS) in text
    assert "| GANomaly | 0.910 ± 0.010 |" in text


def test_ganomaly_scoring_speed_reports_one_image_and_a_batch():
    from benchmarks.ganomaly import speed

    result = speed(quick=True)
    assert result["one_image_ms"] > 0 and result["batch_256_ms"] > 0
    assert result["meets_target"] == (result["one_image_ms"] < 20)
