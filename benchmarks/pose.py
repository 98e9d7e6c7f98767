"""Pose transfer's benchmarks: the quality table (`pose`) and transfer speed (`pose-speed`).

`pose` measures the published PG2 model on held-out people beside the three baselines, all in
one run and with the card's own evaluation (training/pose.py's ``evaluate``): copying the
source image, Stage I alone, and a piecewise-affine warp of each limb. Columns: SSIM,
mask-SSIM and PCK@0.1 of the keypoints the keypoint regressor finds in each picture, plus the
regressor's PCK on the real target renders (its ceiling); every number over all pairs and
split by whether the figure turned to another view, and PCK again by the target's view.
`pose-speed` times one transfer (the page's click) and a 30-frame sequence (the page's
animation) on the CPU.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.timing import median_seconds, report_table
from hub_models import figuredata as fd
from hub_models import hub
from hub_models.pose import (
    METHOD_TITLES,
    METHODS,
    NEUTRAL_POSE,
    PCK_ALPHA,
    REGRESSOR,
    KeypointRegressor,
    PosePairs,
    PosePG2,
    animate,
    images_from_renders,
    render_pool,
    sequence_keypoints,
    transfer,
)
from hub_models.registry import FAMILIES
from training.pose import EVAL_SEED, evaluate

FAMILY = FAMILIES["pose"]
QUICK_PAIRS = 100
SPLITS = ("all", "same_view", "turned")
SPLIT_TITLES = {"all": "all pairs", "same_view": "same view", "turned": "turned"}
BASELINES = tuple(m for m in METHODS if m != "final")
REQUIRED_PCK = 0.9
SEQUENCE_FRAMES = 30
SPEED_TARGETS_MS = {"one_transfer": 50.0, "sequence_30": 1000.0}  # on the 2-core CPU


def load_published() -> tuple[PosePG2, KeypointRegressor]:
    published = FAMILY.featured_model
    model, _ = hub.load(PosePG2, published.repo_id, published.snapshot)
    regressor, _ = hub.load(KeypointRegressor, REGRESSOR.repo_id, REGRESSOR.snapshot)
    return model, regressor


def measure(
    model: PosePG2, regressor: KeypointRegressor, pairs: PosePairs
) -> dict[str, dict[str, float]]:
    """split -> the card's metrics on that split's pairs. ``evaluate`` splits SSIM by view
    itself but gives PCK over all pairs only, so each split is evaluated on its own pairs."""
    same = pairs.same_view
    out = {"all": evaluate(model, pairs, regressor)}
    for split, keep in (("same_view", same), ("turned", ~same)):
        if keep.any():
            out[split] = evaluate(model, pairs.take(keep), regressor)
    return out


VIEW_METHODS = {"final": "PG2 final (Stage II)", "stage1": "Stage I only", "real": "real targets"}


def by_view(
    model: PosePG2, regressor: KeypointRegressor, pairs: PosePairs
) -> dict[str, dict[str, float]]:
    """target view -> the pairs' count and the PCK of the final image, Stage I and the real
    target: where the judge itself reads worse (side on, only a darker shade tells the far
    limbs from the near ones), no generator can read better."""
    out = {}
    for index, view in enumerate(fd.VIEWS):
        keep = pairs.target_view == index
        if keep.any():
            metrics = evaluate(model, pairs.take(keep), regressor)
            out[view] = {"pairs": int(keep.sum())}
            out[view].update({method: metrics[f"pck_{method}"] for method in VIEW_METHODS})
    return out


def view_markdown(views: dict[str, dict[str, float]]) -> str:
    names = list(views)
    lines = [
        f"PCK@{PCK_ALPHA:g} by the target's view (pairs):",
        "",
        "| | " + " | ".join(f"{v.replace('_', '-')} ({views[v]['pairs']})" for v in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for method, title in VIEW_METHODS.items():
        cells = " | ".join(_number(views[v][method], percent=True) for v in names)
        lines.append(f"| {title} | {cells} |")
    return "\n".join(lines)


def rows(measured: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    """method -> split -> {ssim, mask_ssim, pck} (NaN for a split without pairs); "real" has
    PCK only: the regressor on the real target renders."""
    nan = float("nan")
    table: dict[str, dict[str, dict[str, float]]] = {}
    for method in (*METHODS, "real"):
        for split in SPLITS:
            metrics = measured.get(split, {})
            cell = {"pck": metrics.get(f"pck_{method}", nan)}
            if method != "real":
                cell["ssim"] = metrics.get(f"ssim_{method}", nan)
                cell["mask_ssim"] = metrics.get(f"mask_ssim_{method}", nan)
            table.setdefault(method, {})[split] = cell
    return table


def verdicts(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, bool]:
    final = table["final"]["all"]
    out = {
        f"final_beats_{baseline}_on_mask_ssim": final["mask_ssim"]
        > table[baseline]["all"]["mask_ssim"]
        for baseline in BASELINES
    }
    out["final_beats_all_baselines_on_mask_ssim"] = all(out.values())
    out["pck_final_at_least_0.9"] = final["pck"] >= REQUIRED_PCK
    return out


def _number(value: float, percent: bool = False) -> str:
    if value != value:  # NaN: a split without pairs
        return "–"
    # Four decimals: the methods that see the target pose differ in the fourth.
    return f"{value:.1%}" if percent else f"{value:.4f}"


def markdown(
    table: dict[str, dict[str, dict[str, float]]],
    counts: dict[str, int],
    checks: dict[str, bool],
    resolution: int,
    quick: bool,
) -> str:
    header = " | ".join(f"{title} {SPLIT_TITLES[s]}" for title in ("mask-SSIM", "SSIM", "PCK@0.1")
                        for s in SPLITS)  # fmt: skip
    lines = [
        f"**Held-out people** ({counts['all']:,} pairs of test identities at {resolution}x"
        f"{resolution}: {counts['same_view']:,} in the same view, {counts['turned']:,} with the "
        f"figure turned; render_pool({counts['all']}, 'test', seed={EVAL_SEED}); baselines "
        f"measured in the same run{', --quick' if quick else ''})",
        "",
        f"| method | {header} |",
        "| --- |" + " --- |" * (3 * len(SPLITS)),
    ]
    titles = {**METHOD_TITLES, "real": "real target renders (the regressor's ceiling)"}
    for method, title in titles.items():
        cells = [
            _number(table[method][s].get(metric, float("nan")), percent=metric == "pck")
            for metric in ("mask_ssim", "ssim", "pck")
            for s in SPLITS
        ]
        name = f"**{title}**" if method == "final" else title
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    final = table["final"]["all"]
    best = max(BASELINES, key=lambda m: table[m]["all"]["mask_ssim"])
    yes = {True: "yes", False: "no"}
    lines += [
        "",
        f"PG2's final image beats all three baselines on mask-SSIM over all pairs: "
        f"**{yes[checks['final_beats_all_baselines_on_mask_ssim']]}** "
        f"({_number(final['mask_ssim'])}; the best baseline, "
        f"{METHOD_TITLES[best].removesuffix(' (baseline)')}: "
        f"{_number(table[best]['all']['mask_ssim'])}).",
        f"PCK@{PCK_ALPHA:g} of the keypoints found in the final images is at least "
        f"{REQUIRED_PCK:.0%}: **{yes[checks['pck_final_at_least_0.9']]}** "
        f"({_number(final['pck'], True)}; on the real renders "
        f"{_number(table['real']['all']['pck'], True)}).",
        "",
        "The figure covers about a tenth of the picture, so mask-SSIM is high for any method: "
        "compare its differences. PCK is measured by the keypoint regressor "
        f"{REGRESSOR.name}, trained on real renders only. Reproduce: `python -m benchmarks "
        "pose`.",
    ]
    return "\n".join(lines)


def table(
    quick: bool = False,
    verbose: bool = True,
    write_cards: bool | None = None,
    pairs: int | None = None,
) -> dict:
    """The quality table on held-out pairs (the card's 500; --quick: 100); written into the
    published card unless quick."""
    began = time.time()
    model, regressor = load_published()
    n = pairs or (QUICK_PAIRS if quick else model.config.eval_pairs)
    test = render_pool(n, "test", EVAL_SEED, model.config.resolution)
    measured = rows(measure(model, regressor, test))
    same = int(test.same_view.sum())
    counts = {"all": n, "same_view": same, "turned": n - same}
    checks = verdicts(measured)
    views = by_view(model, regressor, test)
    text = markdown(measured, counts, checks, model.config.resolution, quick)
    text += "\n\n" + view_markdown(views)
    report_table(FAMILY, text, quick, verbose, write_cards)
    return {
        "seconds": round(time.time() - began, 1),
        "quick": quick,
        "pairs": counts,
        "table": measured,
        "by_view": views,
        "verdicts": checks,
        "markdown": text,
    }


# -- speed -------------------------------------------------------------------------------------


def speed(quick: bool = False, verbose: bool = True) -> dict:
    """Milliseconds for one transfer and for a 30-frame walk of one person (keypoints of every
    frame, then one forward pass) with the published model on the CPU, on one thread (the app
    server's policy) beside every thread, in the same run."""
    model, _ = load_published()
    r = model.config.resolution
    batch = fd.render_pairs(1, "test", seed=0, resolution=r)
    source = images_from_renders(batch.source)
    points = batch.target_keypoints, batch.target_visible, batch.source_keypoints
    person_id = fd.identities("test")[0]
    person = fd.identity(person_id)
    frame_points, frame_visible = sequence_keypoints(person, "walk", SEQUENCE_FRAMES, r)
    sources = source.expand(SEQUENCE_FRAMES, -1, -1, -1)
    repeats = 10 if quick else 50
    threads = torch.get_num_threads()

    def milliseconds(run, times: int, n_threads: int = 1) -> float:
        torch.set_num_threads(n_threads)  # this benchmark's own process, not the app server
        try:
            return 1000 * median_seconds(run, times)
        finally:
            torch.set_num_threads(threads)

    one = milliseconds(lambda: transfer(model, source, *points), repeats)
    one_all = milliseconds(lambda: transfer(model, source, *points), repeats, threads)
    few = max(3, repeats // 10)
    sequence = milliseconds(lambda: animate(model, person_id, "walk", SEQUENCE_FRAMES), few)
    poses = milliseconds(lambda: sequence_keypoints(person, "walk", SEQUENCE_FRAMES, r), few)
    # animate's source: the person standing
    standing = np.repeat(fd.keypoints(person, NEUTRAL_POSE, r)[0][None], SEQUENCE_FRAMES, 0)
    network = milliseconds(
        lambda: transfer(model, sources, frame_points, frame_visible, standing), few
    )
    targets = SPEED_TARGETS_MS
    out = {
        "model": FAMILY.featured_model.repo_id,
        "resolution": r,
        "threads": threads,
        "one_transfer_ms": round(one, 2),
        "one_transfer_all_threads_ms": round(one_all, 2),
        "sequence_30_ms": round(sequence, 1),
        "sequence_30_keypoints_ms": round(poses, 1),
        "sequence_30_network_ms": round(network, 1),
        "per_frame_in_sequence_ms": round(sequence / SEQUENCE_FRAMES, 2),
        "batching_speedup": round(one / (network / SEQUENCE_FRAMES), 1),
        "targets_ms": targets,
        "one_transfer_over_target": round(one / targets["one_transfer"], 3),
        "sequence_30_over_target": round(sequence / targets["sequence_30"], 3),
        "verdicts": {
            f"one transfer < {targets['one_transfer']:g} ms": one < targets["one_transfer"],
            f"30-frame sequence < {targets['sequence_30'] / 1000:g} s": sequence
            < targets["sequence_30"],
        },
    }
    if verbose:
        for key, value in out.items():
            print(f"{key}: {value}")
    return out
