"""What the anomaly-scoring page computes: test sets, cached scores, heatmaps and charts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from hub_models import anomalydata, imagedata
from hub_models.ganomaly import Ganomaly, knn_scores, score_images
from hub_models.metrics import at_threshold, auroc, roc_curve
from hub_models.registry import FAMILIES

FAMILY = FAMILIES["ganomaly"]
DISPLAY = 192  # pixels the page shows each 32x32 image at
# A perceptual dark-to-bright colour map (black, purple, orange, yellow) for residuals.
HEAT_STOPS = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32
)
RESIDUAL_FULL_SCALE = 0.5  # a residual of half the pixel range shows as the brightest colour


def model_names() -> list[str]:
    return [m.name for m in FAMILY.models]


def model_title(name: str) -> str:
    return FAMILY.model(name).title


@st.cache_resource(show_spinner="Preparing the test set…", max_entries=8)
def test_set(dataset: str, anomaly: str, resolution: int, channels: int, folder: str | None):
    """The model's own test set (the same split and defects its card was measured on)."""
    return anomalydata.load(
        dataset, anomaly, resolution, channels, Path(folder) if folder else None
    )


@dataclass
class TestScores:
    scores: torch.Tensor  # raw score of every test image
    labels: torch.Tensor
    auroc: float
    knn_auroc: float  # the k-NN pixel-distance baseline on the same test set

    def at(self, threshold: float) -> dict[str, float]:
        return at_threshold(self.scores, self.labels, threshold)


@st.cache_resource(show_spinner="Scoring the test set…", max_entries=8)
def test_scores(key: str, _model: Ganomaly, _data: anomalydata.AnomalySet) -> TestScores:
    """Scores of the whole test set, computed once per model (``key`` names it)."""
    scores = score_images(_model, _data.test)["score"]
    knn = auroc(knn_scores(_data.train, _data.test), _data.test_labels)
    return TestScores(scores, _data.test_labels, auroc(scores, _data.test_labels), knn)


def heatmap(residual: torch.Tensor) -> np.ndarray:
    """(R, R) absolute residual -> (R, R, 3) uint8 colours on a fixed scale (comparable
    between images: the same colour is the same error everywhere)."""
    t = (residual.clamp(0, RESIDUAL_FULL_SCALE) / RESIDUAL_FULL_SCALE).numpy()
    position = t * (len(HEAT_STOPS) - 1)
    low = np.floor(position).astype(int).clip(0, len(HEAT_STOPS) - 2)
    frac = (position - low)[..., None]
    colours = HEAT_STOPS[low] * (1 - frac) + HEAT_STOPS[low + 1] * frac
    return colours.round().astype(np.uint8)


def picture(image: torch.Tensor | np.ndarray) -> Image.Image:
    """A (C, R, R) image in [-1, 1] or an (R, R, 3) uint8 array, enlarged for display."""
    if isinstance(image, torch.Tensor):
        image = imagedata.to_uint8(image[None].clamp(-1, 1))[0]
    pil = imagedata.to_pil(image)
    return pil.resize((DISPLAY, DISPLAY), Image.NEAREST)


def verdict(relative: float) -> str:
    return "anomalous" if relative >= 1 else "normal"


# -- charts ----------------------------------------------------------------------------------


def histogram(result: TestScores, threshold: float) -> go.Figure:
    """Score distributions of normal and anomalous test images, on a log axis (scores span
    orders of magnitude), with the threshold."""
    fig = go.Figure()
    logs = result.scores.clamp_min(1e-12).log10().numpy()
    for label, name, colour in ((0, "normal", "#4c78a8"), (1, "anomalous", "#e45756")):
        fig.add_histogram(
            x=logs[result.labels.numpy() == label],
            name=name,
            opacity=0.6,
            marker_color=colour,
            nbinsx=40,
        )
    fig.add_vline(x=float(np.log10(threshold)), line_dash="dash", annotation_text="threshold")
    fig.update_layout(
        barmode="overlay",
        xaxis_title="log10 raw score",
        yaxis_title="test images",
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
    )
    return fig


def roc_figure(result: TestScores, threshold: float) -> go.Figure:
    curve = roc_curve(result.scores, result.labels)
    here = result.at(threshold)
    fig = go.Figure()
    fig.add_scatter(
        x=curve["fpr"].numpy(), y=curve["tpr"].numpy(), mode="lines", name="ROC", line_width=2
    )
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dot", color="grey")
    )
    fig.add_scatter(
        x=[here["false_alarm_rate"]],
        y=[here["recall"]],
        mode="markers",
        name="threshold",
        marker=dict(size=12, color="#e45756"),
    )
    fig.update_layout(
        title=f"AUROC {result.auroc:.3f}",
        xaxis_title="false-positive rate (normal images flagged)",
        yaxis_title="true-positive rate (anomalies caught)",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def auroc_by_kind(data: anomalydata.AnomalySet, result: TestScores) -> dict[str, float]:
    """AUROC of each kind of anomaly against all normal test images."""
    kinds = np.array(data.test_kinds)
    normal = result.labels == 0
    out = {}
    for kind in dict.fromkeys(k for k, y in zip(kinds, result.labels.tolist(), strict=True) if y):
        keep = normal | torch.from_numpy(kinds == kind)
        out[kind] = auroc(result.scores[keep], result.labels[keep])
    return out
