"""What every page shares: the sidebar (device, seed) and cached loading of published models."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st
import torch

from hub_models import hub
from hub_models.base import WEIGHTS_NAME, CheckpointError, HubBundle
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


def load_user_model(
    bundle: type[HubBundle], folder: str, device: str = "cpu"
) -> tuple[HubBundle, Path | None]:
    """A folder written by `python -m training train`; the training data it recorded, if any.

    Loaded once per folder and weights file version, not on every rerun of the page.
    """
    if not folder.strip():
        raise CheckpointError("enter the folder a training run wrote (its --out)")
    path = Path(folder.strip()).expanduser()
    weights = path / WEIGHTS_NAME
    version = weights.stat().st_mtime_ns if weights.is_file() else 0
    return _load_user_model(bundle, str(path), version, device)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def _load_user_model(
    _bundle: type[HubBundle], path: str, version: int, device: str
) -> tuple[HubBundle, Path | None]:
    folder = Path(path)
    model = _bundle.load_folder(folder, device)
    data = None
    record = folder / "training.json"
    if record.is_file():
        try:
            recorded = json.loads(record.read_text()).get("data")
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{record} is not valid JSON ({error})") from error
        data = Path(recorded) if recorded else None
    return model, data
