"""The 2D lab's logic, free of Streamlit so it can be tested and benchmarked without a browser.

A ``LabRun`` is one live training run (model, optimizers, data RNG, history). A ``View`` is
what one frame draws: generated and real points, the critic's field, the generator's push on
its points, the warped latent grid and the mode histogram. Views come either from a live run
or from a published run's replay frames, and one set of plotting functions draws both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from safetensors.torch import load_file

from hub_models import toy2d

VIEW_POINTS = 512  # generated points drawn per frame
FIELD_RESOLUTION = 40
MANIFOLD_RESOLUTION = 12
METRIC_SAMPLES = 1000  # live metrics; the benchmark and cards use the protocol's 2,500
REAL_COLOUR, FAKE_COLOUR = "#7f7f7f", "#e8710a"


@dataclass
class LabRun:
    config: toy2d.Toy2DConfig
    target: toy2d.Target
    model: toy2d.Toy2DGAN
    optimizers: dict[str, torch.optim.Optimizer]
    generator: torch.Generator
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)


def new_run(config: toy2d.Toy2DConfig, target: toy2d.Target, device: str = "cpu") -> LabRun:
    """A fresh run; the same config, target and seed always start from the same weights."""
    torch.manual_seed(config.seed)
    model = toy2d.Toy2DGAN(config).to(device).train()
    return LabRun(
        config,
        target,
        model,
        toy2d.make_optimizers(model),
        torch.Generator().manual_seed(config.seed),
    )


def advance(run: LabRun, iterations: int) -> None:
    """``iterations`` full D+G iterations, then one history entry."""
    for _ in range(iterations):
        run.last_losses = toy2d.train_step(run.model, run.optimizers, run.target, run.generator)
        run.step += 1
    _log(run)


FRAME_SECONDS = 0.2  # the live view refreshes 5 times a second
TRAIN_SHARE = 0.5  # of each frame spent training; viewing, drawing and sending get the rest


@dataclass
class Pace:
    """Iterations per frame, adapted to this machine so that a frame fits in FRAME_SECONDS.

    ``max_per_second`` is the user's speed limit (None: as fast as the frame budget allows).
    """

    per_frame: int = 10
    max_per_second: int | None = None

    def update(self, iterations: int, seconds: float) -> None:
        rate = iterations / max(seconds, 1e-6)  # measured on the last frame
        fit = max(int(rate * FRAME_SECONDS * TRAIN_SHARE), 1)
        cap = max(int(self.max_per_second * FRAME_SECONDS), 1) if self.max_per_second else fit
        self.per_frame = min(fit, cap)


def play_frame(runs: list[LabRun], pace: Pace) -> list[View]:
    """What one live frame does: train every run ``pace.per_frame`` iterations, then view them."""
    began = time.perf_counter()
    for run in runs:
        advance(run, pace.per_frame)
    pace.update(pace.per_frame * len(runs), time.perf_counter() - began)
    return [live_view(run) for run in runs]


def frame_figures(
    view: View, history: list[dict[str, float]], title: str, show: dict[str, bool]
) -> list[go.Figure]:
    """The figures the page draws for one run: view, mode histogram (if any), curves."""
    figures = [view_figure(view, title, show)]
    if view.target.has_modes:
        figures.append(mode_histogram(view))
    if history:
        figures.append(curves_figure(history))
    return figures


def single_update(run: LabRun, which: str) -> None:
    """One discriminator ('d') or generator ('g') update, to watch each half of the game."""
    update = toy2d.d_step if which == "d" else toy2d.g_step
    run.last_losses = {
        **run.last_losses,
        f"loss_{which}": update(run.model, run.optimizers, run.target, run.generator),
    }
    run.step += which == "g"
    _log(run)


def _log(run: LabRun) -> None:
    entry = {"step": run.step, **run.last_losses}
    entry.update(toy2d.evaluate(run.model, run.target, n=METRIC_SAMPLES, seed=0))
    run.history.append(entry)


@dataclass
class View:
    """Everything one frame draws, as numpy arrays."""

    target: toy2d.Target
    extent: tuple[float, float, float, float]
    real: np.ndarray  # (N, 2)
    points: np.ndarray  # (M, 2) generated
    directions: np.ndarray  # (M, 2) where G's loss pushes each generated point
    field: np.ndarray  # (R, R) critic over the extent, rows = y
    manifold: np.ndarray  # (L, L, 2) image of a latent grid
    field_is_probability: bool
    step: int
    metrics: dict[str, float]


def real_points(target: toy2d.Target, n: int = VIEW_POINTS) -> np.ndarray:
    return target.sample(n, torch.Generator().manual_seed(7)).numpy()


def live_view(run: LabRun) -> View:
    run.model.eval()
    drawn = toy2d.frame(run.model, run.target, VIEW_POINTS, FIELD_RESOLUTION, MANIFOLD_RESOLUTION)
    run.model.train()
    return View(
        target=run.target,
        extent=run.target.extent(),
        real=real_points(run.target),
        **{key: value.numpy() for key, value in drawn.items()},
        field_is_probability=run.config.objective in ("minimax", "nonsaturating"),
        step=run.step,
        metrics=run.history[-1] if run.history else {},
    )


# ----------------------------------------------------------------------------- replay

MODE_METRIC_KEYS = ("modes_covered", "modes_total", "high_quality", "reverse_kl")


@dataclass(frozen=True)
class Replay:
    """Frames saved along a published run (replay.safetensors), drawn without any training."""

    config: toy2d.Toy2DConfig
    target: toy2d.Target
    frames: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.frames["step"])

    def metrics(self, index: int) -> dict[str, float]:
        keys = MODE_METRIC_KEYS if self.target.has_modes else ("energy_distance",)
        return dict(zip(keys, self.frames["metrics"][index].tolist(), strict=True))

    def view(self, index: int) -> View:
        f = self.frames
        return View(
            target=self.target,
            extent=self.target.extent(),
            real=real_points(self.target),
            points=f["points"][index].float().numpy(),
            directions=f["directions"][index].float().numpy(),
            field=f["field"][index].float().numpy(),
            manifold=f["manifold"][index].float().numpy(),
            field_is_probability=self.config.objective in ("minimax", "nonsaturating"),
            step=int(f["step"][index]),
            metrics=self.metrics(index),
        )

    def curves(self) -> list[dict[str, float]]:
        return [self.metrics(i) | {"step": int(self.frames["step"][i])} for i in range(len(self))]


def load_replay(replay: Path, config: toy2d.Toy2DConfig) -> Replay:
    """A published run's replay frames (its replay.safetensors)."""
    frames = load_file(str(replay))
    return Replay(config, toy2d.builtin_target(config.target), frames)


# ----------------------------------------------------------------------------- targets


def target_from_table(rows: list[dict]) -> toy2d.Target:
    """A mixture from editable-table rows with x, y, std, weight (bad rows raise ValueError)."""
    means, stds, weights = [], [], []
    for number, row in enumerate(rows, 1):
        try:
            x, y = float(row["x"]), float(row["y"])
            std, weight = float(row["std"]), float(row["weight"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"row {number} needs numbers in x, y, std and weight") from None
        if not all(math.isfinite(v) for v in (x, y, std, weight)):
            raise ValueError(f"row {number} holds a value that is not finite")
        means.append((x, y))
        stds.append(std)
        weights.append(weight)
    if not means:
        raise ValueError("the mixture needs at least one mode")
    return toy2d.mixture("custom mixture", means, stds, weights)


def target_from_csv(raw: bytes, name: str) -> toy2d.Target:
    return toy2d.point_cloud(name, toy2d.parse_points_csv(raw, name))


# ----------------------------------------------------------------------------- plots


def _segments(starts: np.ndarray, ends: np.ndarray) -> tuple[list, list]:
    """x, y lists drawing one line per (start, end) pair, separated by None."""
    xs = np.stack([starts[:, 0], ends[:, 0], np.full(len(starts), np.nan)], 1).reshape(-1)
    ys = np.stack([starts[:, 1], ends[:, 1], np.full(len(starts), np.nan)], 1).reshape(-1)
    return [None if np.isnan(v) else float(v) for v in xs], [
        None if np.isnan(v) else float(v) for v in ys
    ]


def _arrow_ends(points: np.ndarray, directions: np.ndarray, extent, share: float = 0.06):
    """Arrow tips, scaled so that the longest arrow spans ``share`` of the view."""
    span = max(extent[1] - extent[0], extent[3] - extent[2])
    norms = np.linalg.norm(directions, axis=1)
    scale = share * span / max(float(norms.max()), 1e-12)
    return points + directions * scale


def view_traces(view: View, show: dict[str, bool], arrows: int = 128) -> list[go.BaseTraceType]:
    """Plotly traces for one frame: heatmap, real, manifold, arrows, generated points."""
    xmin, xmax, ymin, ymax = view.extent
    res = view.field.shape[0]
    traces: list[go.BaseTraceType] = []
    if show.get("field", True):
        traces.append(
            go.Heatmap(
                z=view.field,
                x=np.linspace(xmin, xmax, res),
                y=np.linspace(ymin, ymax, res),
                colorscale="RdBu",
                reversescale=False,
                opacity=0.55,
                showscale=False,
                zmin=0 if view.field_is_probability else None,
                zmax=1 if view.field_is_probability else None,
                hovertemplate="D = %{z:.3f}<extra></extra>",
                name="discriminator",
            )
        )
    traces.append(
        go.Scattergl(
            x=view.real[:, 0],
            y=view.real[:, 1],
            mode="markers",
            marker={"size": 3, "color": REAL_COLOUR},
            name="real",
        )
    )
    if show.get("manifold", True):
        grid = view.manifold
        lines = [grid[i] for i in range(len(grid))] + [grid[:, j] for j in range(grid.shape[1])]
        xs, ys = [], []
        for line in lines:
            xs += [*line[:, 0].tolist(), None]
            ys += [*line[:, 1].tolist(), None]
        traces.append(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="latent grid",
                line={"width": 0.6, "color": "rgba(60,60,160,0.45)"},
                hoverinfo="skip",
            )
        )
    if show.get("arrows", True):
        points, directions = view.points[:arrows], view.directions[:arrows]
        xs, ys = _segments(points, _arrow_ends(points, directions, view.extent))
        traces.append(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="G gradient",
                line={"width": 1, "color": "#2a7a2a"},
                hoverinfo="skip",
            )
        )
    traces.append(
        go.Scattergl(
            x=view.points[:, 0],
            y=view.points[:, 1],
            mode="markers",
            marker={"size": 4, "color": FAKE_COLOUR},
            name="generated",
        )
    )
    return traces


def _square_layout(view: View, height: int, title: str) -> dict:
    """One layout dict: plotly validates a dict once, far cheaper than chained update calls."""
    xmin, xmax, ymin, ymax = view.extent
    axis = {"showgrid": False, "zeroline": False}
    return {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        "title": {"text": title, "y": 0.98, "yanchor": "top", "font": {"size": 14}},
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        "uirevision": "keep",  # keep the user's zoom while frames replace each other
        "xaxis": {**axis, "range": [xmin, xmax]},
        "yaxis": {**axis, "range": [ymin, ymax], "scaleanchor": "x"},
    }


def _metric_title(view: View, title: str) -> str:
    m = view.metrics
    if "modes_covered" in m:
        rkl = m.get("reverse_kl", float("nan"))
        return (
            f"{title} — step {view.step:,}: {m['modes_covered']:.0f}/{m['modes_total']:.0f} "
            f"modes, {100 * m['high_quality']:.1f}% HQ, rev-KL "
            f"{'n/a' if math.isnan(rkl) else f'{rkl:.2f}'}"
        )
    if "energy_distance" in m:
        return f"{title} — step {view.step:,}: energy distance {m['energy_distance']:.4f}"
    return f"{title} — step {view.step:,}"


def view_figure(
    view: View, title: str = "", show: dict[str, bool] | None = None, height: int = 520
) -> go.Figure:
    return go.Figure(
        view_traces(view, show or {}), _square_layout(view, height, _metric_title(view, title))
    )


def mode_histogram(view: View) -> go.Figure:
    """How many high-quality samples land on each mode (a flat bar chart = no collapse)."""
    data = []
    if view.target.has_modes:
        counts = toy2d.mode_counts(view.points, view.target).numpy()
        expected = np.asarray(view.target.weights) * len(view.points)
        # round, then add 0.0 so that -1e-16 reads "0.0", not "-0.0"
        labels = [f"({round(x, 1) + 0.0}, {round(y, 1) + 0.0})" for x, y in view.target.means]
        data = [
            go.Bar(x=labels, y=counts, name="generated (HQ)", marker_color=FAKE_COLOUR),
            go.Scatter(
                x=labels,
                y=expected,
                mode="markers",
                name="ideal",
                marker={"color": "black", "symbol": "line-ew-open", "size": 14},
            ),
        ]
    return go.Figure(
        data,
        {
            "height": 220,
            "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
            "title": {"text": "mode histogram (high-quality samples)"},
            "showlegend": False,
            "xaxis": {"type": "category"},
        },
    )


def curves_figure(history: list[dict[str, float]]) -> go.Figure:
    """Losses (left) and metrics (right) against steps, as two side-by-side axes."""
    steps = [h["step"] for h in history]
    data = []
    for key, colour in (("loss_d", "#1f77b4"), ("loss_g", FAKE_COLOUR)):
        if any(key in h for h in history):
            data.append(
                go.Scatter(
                    x=steps, y=[h.get(key) for h in history], name=key, line={"color": colour}
                )
            )
    for key in ("modes_covered", "high_quality", "reverse_kl", "energy_distance"):
        if any(key in h for h in history):
            data.append(
                go.Scatter(
                    x=steps, y=[h.get(key) for h in history], name=key, xaxis="x2", yaxis="y2"
                )
            )
    return go.Figure(
        data,
        {
            "height": 260,
            "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
            "xaxis": {"domain": [0, 0.45], "title": {"text": "step"}},
            "xaxis2": {"domain": [0.55, 1], "title": {"text": "step"}},
            "yaxis2": {"anchor": "x2"},
            "annotations": [
                {
                    "text": "losses",
                    "x": 0.225,
                    "y": 1.08,
                    "xref": "paper",
                    "yref": "paper",
                    "showarrow": False,
                },
                {
                    "text": "metrics",
                    "x": 0.775,
                    "y": 1.08,
                    "xref": "paper",
                    "yref": "paper",
                    "showarrow": False,
                },
            ],
        },
    )


def replay_animation(
    replay: Replay, title: str, show: dict[str, bool] | None = None, height: int = 560
) -> go.Figure:
    """All replay frames in one figure with a slider and play button: runs in the browser."""
    show = show or {}
    views = [replay.view(i) for i in range(len(replay))]
    fig = go.Figure(view_traces(views[-1], show))
    fig.frames = [
        go.Frame(
            data=view_traces(v, show), name=str(v.step), layout={"title": _metric_title(v, title)}
        )
        for v in views
    ]
    fig.update_layout(
        title=_metric_title(views[-1], title),
        updatemenus=[
            {
                "type": "buttons",
                "showactive": False,
                "direction": "left",
                "x": 0.0,
                "y": -0.06,
                "xanchor": "left",
                "yanchor": "top",
                "buttons": [
                    {
                        "label": "Play",
                        "method": "animate",
                        "args": [
                            None,
                            {
                                "frame": {"duration": 150, "redraw": True},
                                "fromcurrent": True,
                                "transition": {"duration": 0},
                            },
                        ],
                    },
                    {
                        "label": "Pause",
                        "method": "animate",
                        "args": [[None], {"mode": "immediate", "frame": {"duration": 0}}],
                    },
                ],
            }
        ],
        sliders=[
            {
                "active": len(views) - 1,
                "currentvalue": {"prefix": "step "},
                "x": 0.22,
                "len": 0.78,
                "y": -0.02,
                "yanchor": "top",
                "steps": [
                    {
                        "label": f"{v.step:,}",
                        "method": "animate",
                        "args": [
                            [str(v.step)],
                            {"mode": "immediate", "frame": {"duration": 0, "redraw": True}},
                        ],
                    }
                    for v in views
                ],
            }
        ],
    )
    fig.update_layout(_square_layout(views[-1], height, _metric_title(views[-1], title)))
    fig.update_layout(margin={"b": 90})
    return fig
