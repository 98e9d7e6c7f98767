"""GANomaly's benchmarks: the AUROC tables (`ganomaly`) and scoring speed (`ganomaly-speed`).

`ganomaly` retrains GANomaly and the autoencoder baseline from scratch for every setting
and seed, with the published models' configuration, and scores the k-NN baseline on the same
splits, all in one run: the per-digit table of the paper's protocol (10 columns, mean ± std
over 3 seeds) and the per-texture table for the synthetic defects. `ganomaly-speed` times
scoring one image (encoder, decoder, second encoder, residual) and a batch, for a published
model as the page runs it.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from benchmarks.timing import median_seconds, report_table
from hub_models import anomalydata, hub
from hub_models.ganomaly import Ganomaly, knn_scores, score_images
from hub_models.metrics import auroc
from hub_models.registry import FAMILIES

FAMILY = FAMILIES["ganomaly"]
DIGITS = tuple(str(d) for d in range(10))
SETTINGS = DIGITS + anomalydata.TEXTURES
SEEDS = (0, 1, 2)
METHODS = ("GANomaly", "autoencoder", "k-NN pixels")


def _fields(setting: str, kind: str, seed: int, quick: bool) -> dict:
    """The published models' configuration for ``setting`` (``quick``: a tenth of the steps)."""
    from training.ganomaly import GanomalyTrainer

    dataset, anomaly = _data_names(setting)
    fields = {**GanomalyTrainer.presets["demo"], "dataset": dataset, "anomaly": anomaly}
    fields |= {"kind": kind, "seed": seed}
    if quick:
        fields["steps"] = 150
    return fields


def _train_and_score(job: tuple[str, str, int, bool]) -> dict:
    """One (setting, kind, seed) run through the training loop, in a worker process."""
    from training.ganomaly import GanomalyTrainer
    from training.loop import RunOptions, train

    setting, kind, seed, quick = job
    torch.set_num_threads(1)
    trainer = GanomalyTrainer()
    config = FAMILY.bundle.config_class(**_fields(setting, kind, seed, quick))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ganomaly-bench-") as tmp:
        options = RunOptions(out=Path(tmp), preset="demo", log_every=10**9, sample_every=10**9)
        folder = train(trainer, config, options)
        # The loop has already scored the stored (rounded) weights on the test set.
        metrics = json.loads((folder / "eval.json").read_text())
    return {
        "setting": setting,
        "method": "GANomaly" if kind == "ganomaly" else "autoencoder",
        "seed": seed,
        "auroc": metrics["auroc"],
        "seconds": time.perf_counter() - began,
    }


def knn_row(setting: str) -> float:
    """The k-NN baseline has no seed: the same AUROC for every seed of a setting."""
    data = anomalydata.load(*_data_names(setting), 32, 1, None)
    return auroc(knn_scores(data.train, data.test), data.test_labels)


def _data_names(setting: str) -> tuple[str, str]:
    return ("mnist", setting) if setting in DIGITS else (setting, "0")


GROUPS = {"digits": DIGITS, "textures": anomalydata.TEXTURES}


def _stat(values: list[float]) -> dict[str, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def summarise(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """method -> setting -> {mean, std, n} of AUROC over seeds; "mean digits" and "mean
    textures" are each seed's mean over the group's settings, then mean ± std over seeds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        for setting in SETTINGS:
            out.setdefault(method, {})[setting] = _stat(
                [r["auroc"] for r in mine if r["setting"] == setting]
            )
        for group, settings in GROUPS.items():
            seeds = sorted({r["seed"] for r in mine})
            per_seed = [
                statistics.fmean(
                    r["auroc"] for r in mine if r["seed"] == seed and r["setting"] in settings
                )
                for seed in seeds
            ]
            out[method][f"mean {group}"] = _stat(per_seed)
    return out


def verdicts(summary: dict) -> dict[str, bool]:
    out = {}
    for group in GROUPS:
        ours = summary["GANomaly"][f"mean {group}"]["mean"]
        out[f"{group}_ganomaly_beats_autoencoder"] = (
            ours > summary["autoencoder"][f"mean {group}"]["mean"]
        )
        out[f"{group}_ganomaly_beats_knn"] = ours > summary["k-NN pixels"][f"mean {group}"]["mean"]
    return out


def _cell(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}" if stat["n"] > 1 else f"{stat['mean']:.3f}"


def markdown(summary: dict, quick: bool) -> str:
    seeds = summary["GANomaly"][DIGITS[0]]["n"]
    lines = [
        f"AUROC, mean ± std over {seeds} training seed(s) (the k-NN baseline has no seed). "
        "Digits: the column is the anomalous digit. Regenerate with `python -m benchmarks "
        f"ganomaly`{' (this table: --quick, a tenth of the steps)' if quick else ''}.",
        "",
    ]
    for group, settings in GROUPS.items():
        title = "anomalous digit" if group == "digits" else "texture"
        lines += [
            f"| method \\ {title} | " + " | ".join(settings) + " | mean |",
            "| --- |" + " --- |" * (len(settings) + 1),
        ]
        for method in METHODS:
            cells = [_cell(summary[method][s]) for s in settings]
            mean = _cell(summary[method][f"mean {group}"])
            lines.append(f"| {method} | " + " | ".join(cells) + f" | **{mean}** |")
        lines.append("")
    return "\n".join(lines)


def table(quick: bool = False, verbose: bool = True, write_cards: bool | None = None) -> dict:
    """Train every (setting, method, seed) and tabulate AUROC; writes the cards unless quick."""
    seeds = SEEDS[:1] if quick else SEEDS
    jobs = [
        (setting, kind, seed, quick)
        for seed in seeds
        for setting in SETTINGS
        for kind in ("ganomaly", "autoencoder")
    ]
    began = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for done, row in enumerate(pool.map(_train_and_score, jobs), 1):
            rows.append(row)
            if verbose:
                print(
                    f"  [{done}/{len(jobs)}] {row['setting']} {row['method']} seed "
                    f"{row['seed']}: AUROC {row['auroc']:.3f} ({row['seconds']:.0f} s)",
                    flush=True,
                )
    for setting in SETTINGS:
        value = knn_row(setting)
        rows += [{"setting": setting, "method": "k-NN pixels", "seed": s, "auroc": value}
                 for s in seeds]  # fmt: skip
    summary = summarise(rows)
    text = markdown(summary, quick)
    report_table(FAMILY, text, quick, verbose=False, write_cards=write_cards)
    return {
        "quick": quick,
        "seconds": round(time.perf_counter() - began, 1),
        "summary": summary,
        "verdicts": verdicts(summary),
        "markdown": text,
    }


def speed(quick: bool = False, verbose: bool = True) -> dict:
    """Milliseconds to score one image on one thread (the app server's policy) and a batch of
    256 with the featured model on CPU, beside one image on every thread, in the same run."""
    published = FAMILY.featured_model
    model, _ = hub.load(Ganomaly, published.repo_id, published.snapshot)
    data = anomalydata.load(model.config.dataset, model.config.anomaly, 32, 1, None)
    one, batch = data.test[:1], data.test[:256]
    repeats = 20 if quick else 200
    threads = torch.get_num_threads()

    def milliseconds(n_threads: int, run, times: int) -> float:
        torch.set_num_threads(n_threads)  # this benchmark's own process, not the app server
        try:
            return 1000 * median_seconds(run, times)
        finally:
            torch.set_num_threads(threads)

    single = milliseconds(1, lambda: score_images(model, one), repeats)
    spread = milliseconds(threads, lambda: score_images(model, one), repeats)
    batched = 1000 * median_seconds(lambda: score_images(model, batch), max(3, repeats // 20))
    return {
        "model": published.repo_id,
        "threads": threads,
        "one_image_ms": round(single, 2),
        "one_image_all_threads_ms": round(spread, 2),
        "batch_256_ms": round(batched, 1),
        "per_image_in_batch_ms": round(batched / len(batch), 3),
        "batching_speedup": round(single / (batched / len(batch)), 1),
        "target_one_image_ms": 20,
        "meets_target": single < 20,
    }
