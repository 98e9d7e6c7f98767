"""What the text-generation page computes: samples, Monte-Carlo token rewards, text metrics,
and the oracle experiment's NLL curves."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch
from safetensors.torch import load_file

from hub_models.registry import FAMILIES
from hub_models.seqgan import (
    Generator,
    SeqData,
    SeqGAN,
    SeqGANConfig,
    make_oracle,
    nll,
    rollout_rewards,
    sample,
    text_data,
    text_scores,
    texts,
)

FAMILY = FAMILIES["seqgan"]
CORPUS_LABELS = {
    "idioms": "Chinese idioms",
    "names": "Names",
    "fortunes": "Short fortunes",
    "oracle": "Oracle experiment (token ids)",
}
SIDES = {"mle": "MLE only", "seqgan": "SeqGAN"}


def model_name(corpus: str) -> str:
    return f"seqgan-{corpus}"


def corpora() -> list[str]:
    """The published corpora, featured one first."""
    names = [m.name.removeprefix("seqgan-") for m in FAMILY.models]
    featured = FAMILY.featured_model.name.removeprefix("seqgan-")
    return sorted(names, key=lambda n: n != featured)


@dataclass
class Samples:
    tokens: torch.Tensor  # (N, L) ids
    pieces: list[list[str]]  # each row's tokens as text, up to and including the end token
    texts: list[str]


def generate_samples(model: SeqGAN, n: int, seed: int, temperature: float, which: str) -> Samples:
    c = model.config
    tokens = sample(model, n, seed, temperature, which)
    pieces = []
    for row in tokens.tolist():
        end = row.index(0) + 1 if (c.level != "token" and 0 in row) else len(row)
        if c.level == "token":
            pieces.append([f"{t} " for t in row[:end]])
        else:
            sep = " " if c.level == "word" else ""
            pieces.append([c.tokens[t] + sep if t else "⏎" for t in row[:end]])
    return Samples(tokens, pieces, texts(model, tokens))


def token_rewards(model: SeqGAN, tokens: torch.Tensor, rollouts: int, seed: int) -> torch.Tensor:
    """Each token's Monte-Carlo reward (B, L): D's mean score of completions of its prefix,
    completed by the model's own SeqGAN generator (as the roll-out policy in training)."""
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    return rollout_rewards(model.generator, model.discriminator, tokens.to(device), rollouts, g)


def reward_colour(reward: float) -> str:
    """Red (D: fake) through yellow to green (D: real)."""
    r = max(0.0, min(1.0, reward))
    red, green = (255, int(510 * r)) if r < 0.5 else (int(510 * (1 - r)), 200)
    return f"rgba({red}, {green}, 60, 0.45)"


def rewards_html(samples: Samples, rewards: torch.Tensor | None) -> str:
    """One line per sample; with rewards, each token on a background coloured by its reward."""
    lines = []
    for i, pieces in enumerate(samples.pieces):
        spans = []
        for k, piece in enumerate(pieces):
            text = html.escape(piece)
            if rewards is None:
                spans.append(text)
            else:
                value = float(rewards[i, k])
                spans.append(
                    f'<span title="reward {value:.2f}" style="background:{reward_colour(value)};'
                    f'border-radius:3px">{text}</span>'
                )
        lines.append("".join(spans))
    body = "<br>".join(lines)
    return f'<div style="font-family:monospace;line-height:1.9;white-space:pre-wrap">{body}</div>'


@st.cache_resource(show_spinner="Reading the corpus…", max_entries=4)
def corpus_data(_config: SeqGANConfig, config_key: str, path: str | None = None) -> SeqData:
    """The model's corpus split as its card's metrics split it (training lines, held-out
    lines); cached per config (``config_key``: its repr) and data file."""
    return text_data(_config, Path(path) if path else None)


TEXT_SCORE_LABELS = {
    "novelty": "novelty",
    "bleu4": "BLEU-4 vs held-out",
    "self_bleu4": "self-BLEU-4",
}


def text_metrics(model: SeqGAN, lines: list[str], path: Path | None = None) -> dict[str, float]:
    """The card's novelty and BLEU scores of these samples."""
    data = corpus_data(model.config, repr(model.config), str(path) if path else None)
    scores = text_scores(lines, data, model.config.level)
    return {TEXT_SCORE_LABELS[key]: value for key, value in scores.items()}


# -- the oracle experiment ---------------------------------------------------------------------


@st.cache_resource(show_spinner="Rebuilding the oracle…", max_entries=2)
def _oracle(config: SeqGANConfig) -> Generator:
    return make_oracle(config)


def oracle_nll(model: SeqGAN, tokens: torch.Tensor) -> float:
    """Mean per-token NLL of sequences under the oracle the model was trained against."""
    return nll(_oracle(model.config), tokens.cpu())


def nll_curves(replay: Path) -> dict[str, list[float]]:
    """The curves recorded while the oracle model trained (its replay.safetensors)."""
    frames = load_file(str(replay))
    return {k: v.float().tolist() for k, v in frames.items()}


def curves_figure(curves: dict[str, list[float]], mle_epochs: int, steps: int) -> go.Figure:
    """Oracle and held-out NLL against training step, the MLE phase shaded."""
    fig = go.Figure()
    x = curves["step"]
    names = {
        "oracle_nll": "oracle NLL of samples (quality)",
        "held_out_nll": "held-out NLL (diversity)",
    }
    for key, name in names.items():
        if key in curves:
            fig.add_trace(go.Scatter(x=x, y=curves[key], mode="lines+markers", name=name))
    fig.add_vrect(
        x0=0,
        x1=mle_epochs,
        fillcolor="grey",
        opacity=0.12,
        line_width=0,
        annotation_text="MLE pre-training",
        annotation_position="top left",
    )
    fig.add_vrect(
        x0=mle_epochs,
        x1=steps,
        fillcolor="orange",
        opacity=0.08,
        line_width=0,
        annotation_text="D pre-training, then adversarial",
        annotation_position="top right",
    )
    fig.update_layout(
        xaxis_title="step (MLE epoch, D round, then adversarial step)",
        yaxis_title="NLL (nats per token)",
        height=380,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig
