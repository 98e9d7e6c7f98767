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

from hub_models import textdata
from hub_models.registry import FAMILIES
from hub_models.seqgan import (
    Generator,
    SeqGAN,
    SeqGANConfig,
    bleu,
    make_oracle,
    nll,
    novelty,
    rollout_rewards,
    sample,
    self_bleu,
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
    texts = ["".join(p).rstrip("⏎ ").strip() for p in pieces]
    return Samples(tokens, pieces, texts)


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
def corpus_reference(corpus: str, level: str, max_chars: int, path: str | None = None):
    """Training lines (for novelty) and held-out token lists (BLEU references) of a corpus."""
    lines = textdata.load_corpus(corpus, Path(path) if path else None, max_chars)
    train, held = lines.split()
    return set(train), [textdata.tokenize(line, level) for line in held]


def text_metrics(model: SeqGAN, texts: list[str], path: Path | None = None) -> dict[str, float]:
    c = model.config
    train, references = corpus_reference(
        c.corpus, c.level, c.max_chars, str(path) if path else None
    )
    hypotheses = [textdata.tokenize(t, c.level) for t in texts]
    return {
        "novelty": novelty(texts, train),
        "BLEU-4 vs held-out": bleu(hypotheses, references),
        "self-BLEU-4": self_bleu(hypotheses) if len(hypotheses) > 1 else float("nan"),
    }


# -- the oracle experiment ---------------------------------------------------------------------


@st.cache_resource(show_spinner="Rebuilding the oracle…", max_entries=2)
def _oracle(config: SeqGANConfig) -> Generator:
    return make_oracle(config)


def oracle_nll(model: SeqGAN, tokens: torch.Tensor) -> float:
    """Mean per-token NLL of sequences under the oracle the model was trained against."""
    return nll(_oracle(model.config), tokens.cpu())


def nll_curves(folder: Path) -> dict[str, list[float]] | None:
    """The curves recorded while the oracle model trained (replay.safetensors)."""
    path = Path(folder) / "replay.safetensors"
    if not path.is_file():
        return None
    frames = load_file(str(path))
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


def benchmark_table(folder: Path) -> str | None:
    path = Path(folder) / "benchmark.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None
