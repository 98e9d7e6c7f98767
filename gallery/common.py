"""What every page shares: the sidebar (device, seed) and cached loading of published models."""

from __future__ import annotations

import streamlit as st
import torch

from hub_models import hub
from hub_models.base import HubBundle
from hub_models.registry import FAMILIES


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def auto_device() -> str:
    """CUDA, else MPS, else CPU."""
    devices = available_devices()
    return next((d for d in ("cuda", "mps") if d in devices), "cpu")


def sidebar_ui() -> None:
    """The sidebar every page shows; its values live in st.session_state."""
    with st.sidebar:
        st.markdown("### Settings")
        choices = ["auto", *available_devices()]
        choice = st.selectbox(
            "Device",
            choices,
            key="device_choice",
            format_func=lambda d: f"auto ({auto_device()})" if d == "auto" else d,
            help="Where models run. Auto picks CUDA, then Apple MPS, then CPU.",
        )
        st.session_state["device"] = auto_device() if choice == "auto" else choice
        st.number_input(
            "Global seed",
            min_value=0,
            max_value=2**31 - 1,
            step=1,
            key="seed",
            help="Every page draws its randomness from this seed: the same seed "
            "gives the same samples and the same training run.",
        )


def device() -> str:
    return st.session_state.get("device", auto_device())


def seed() -> int:
    return int(st.session_state.get("seed", 0))


@st.cache_resource(show_spinner="Loading model…")
def load_published(family: str, name: str, device: str = "cpu") -> tuple[HubBundle, hub.Resolved]:
    """Resolve (Hub → cache → bundled) and load a published model once per process."""
    spec = FAMILIES[family]
    published = spec.model(name)
    return hub.load(spec.bundle, published.repo_id, published.snapshot, device=device)


@st.cache_data(show_spinner=False)
def resolve_published(family: str, name: str) -> hub.Resolved:
    published = FAMILIES[family].model(name)
    return hub.resolve(published.repo_id, published.snapshot)


def source_caption(where: hub.Resolved) -> None:
    """Say where the weights came from, and why a fallback was used."""
    st.caption(f"Weights: {where.label}" + (f" — {where.notice}" if where.notice else ""))
