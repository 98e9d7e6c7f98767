"""What every page shares: the sidebar (device, seed), cached loading of published models and
of the user's own runs, and the model picker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from hub_models import hub, runfiles
from hub_models.base import CheckpointError, HubBundle
from hub_models.imagedata import DataError
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


def seed_ui(key: str, box: Any = st, label: str = "Seed") -> int:
    """A page's seed widget that starts at the global seed and follows it when it changes
    (a page's own seed changes stay until the global one moves)."""
    followed = f"{key}__global"
    global_seed = seed()
    if followed not in st.session_state:
        st.session_state.setdefault(key, global_seed)
        st.session_state[followed] = global_seed
    elif st.session_state[followed] != global_seed:
        st.session_state[key] = global_seed
        st.session_state[followed] = global_seed
    box.number_input(
        label,
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        key=key,
        help="The same seed gives the same result; it starts at the sidebar's global seed.",
    )
    return int(st.session_state[key])


def url_state(fields: dict[str, Any]) -> None:
    """Make the page's view shareable: widgets named in ``fields`` start from the link's query
    parameters on the page's first run in a session; ``share_url`` writes them back. A field
    maps to its type (int, float, str, bool) or to the tuple of values it may take (a select
    box's options). Call before the widgets are drawn."""
    loaded = "__url_loaded__" + ",".join(fields)
    if st.session_state.get(loaded):
        return
    st.session_state[loaded] = True
    for key, kind in fields.items():
        raw = st.query_params.get(key)
        if raw is None:
            continue
        try:
            value = parse_query_value(raw, kind)
        except ValueError:
            continue  # a hand-edited link with a bad value: the widget keeps its default
        st.session_state[key] = value
        if key.endswith("seed"):
            st.session_state[f"{key}__global"] = seed()  # the link's seed wins over the global


def parse_query_value(raw: str, kind: Any) -> Any:
    if isinstance(kind, tuple):
        matches = [option for option in kind if str(option) == raw]
        if not matches:
            raise ValueError(f"{raw!r} is not one of {kind}")
        return matches[0]
    if kind is bool:
        return raw.lower() in ("1", "true", "yes")
    return kind(raw)


def share_url(fields: dict[str, Any]) -> None:
    """Write the widgets' current values into the URL, so that the link reproduces the view."""
    for key in fields:
        if key in st.session_state:
            value = st.session_state[key]
            if isinstance(value, bool | int | float | str):
                st.query_params[key] = str(value)


def examples_ui(examples: dict[str, dict[str, Any]], key: str) -> None:
    """One button per example input: a click sets the page's widgets to that example's values
    (before they are drawn, through the button's callback)."""

    def apply(values: dict[str, Any]) -> None:
        for name, value in values.items():
            st.session_state[name] = value
            if name.endswith("seed"):
                st.session_state[f"{name}__global"] = seed()  # the example's seed stays

    columns = st.columns(len(examples) + 1)
    columns[0].markdown("**Try:**")
    for column, (label, values) in zip(columns[1:], examples.items(), strict=True):
        column.button(label, on_click=apply, args=(values,), key=f"{key}_{label}")


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


@st.cache_data(show_spinner=False, ttl=300)
def published_file(family: str, name: str, filename: str) -> Path | None:
    """One of a published repo's other files (sample.png, replay.safetensors, ...), fetched
    from the revision its weights came from; None when the repo has none."""
    return hub.fetch_file(resolve_published(family, name), filename)


SOURCE_HELP = {
    "hub": "Downloaded from the model hub just now (or checked there and found unchanged).",
    "cache": "Read from this machine's Hugging Face download cache: the hub was not asked.",
    "bundled": "The copy of the published model that ships with this app, used when the hub "
    "cannot be reached.",
    "local": "A folder on this machine.",
}


def source_caption(where: hub.Resolved) -> None:
    """Say where the weights came from, and why a fallback was used, in plain words."""
    revision = (
        "The code after @ identifies the exact weights: the start of their file's SHA-256 "
        "fingerprint for a bundled copy, the hub's commit otherwise."
    )
    st.caption(
        f"Weights: {where.label}" + (f" — {where.notice}" if where.notice else ""),
        help=f"{SOURCE_HELP[where.source]} {revision}",
    )


def load_user_model(
    bundle: type[HubBundle], folder: str, device: str = "cpu"
) -> tuple[HubBundle, Path | None]:
    """A folder written by `python -m training train`; the training data it recorded, if any.

    Loaded once per bundle type, folder and weights file version, not on every rerun.
    """
    if not folder.strip():
        raise CheckpointError("enter the folder a training run wrote (its --out)")
    path = Path(folder.strip()).expanduser()
    weights = path / runfiles.WEIGHTS
    version = weights.stat().st_mtime_ns if weights.is_file() else 0
    name = f"{bundle.__module__}.{bundle.__qualname__}"
    return _load_user_model(bundle, name, str(path), version, device)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def _load_user_model(
    _bundle: type[HubBundle], bundle_name: str, path: str, version: int, device: str
) -> tuple[HubBundle, Path | None]:
    """``bundle_name`` keys the cache by model type: one folder opened on two pages must not
    come back as the other page's model."""
    folder = Path(path)
    return _bundle.load_folder(folder, device), runfiles.training_data(folder)


@dataclass
class ModelChoice:
    """What a page's model picker chose."""

    model: HubBundle
    where: hub.Resolved | None  # a published model's source; None for the user's folder
    data: Path | None  # the user data a folder was trained on (its --data)
    key: str  # names the model in caches: the published name, or the folder


PUBLISHED, USER_FOLDER = "Published", "A folder I trained"


def model_picker_ui(
    family: str,
    key: str,
    choose_published: Callable[[Any], str],
    train_command: str,
    source_box: Any = st,
    choice_box: Any = st,
) -> ModelChoice:
    """The "Published / a folder I trained" picker every page shares. ``choose_published``
    draws the page's own selection of a published model in ``choice_box`` and returns its
    name; a folder is typed into ``choice_box``. Stops the page with a message when nothing
    loadable is chosen."""
    source = source_box.radio(
        "Model", [PUBLISHED, USER_FOLDER], horizontal=source_box is st, key=f"{key}_source"
    )
    if source == PUBLISHED:
        name = choose_published(choice_box)
        try:
            model, where = load_published(family, name, device())
        except CheckpointError as error:
            st.error(str(error))
            st.stop()
        source_caption(where)
        return ModelChoice(model, where, None, name)
    folder = choice_box.text_input(
        f"Output folder of `{train_command}`",
        key=f"{key}_folder",
        placeholder=f"runs/{family}-demo",
    )
    if not folder.strip():
        st.info("Enter the folder a training run wrote (its --out).")
        st.stop()
    try:
        model, data = load_user_model(FAMILIES[family].bundle, folder, device())
    except (CheckpointError, runfiles.RunFolderError, DataError, OSError) as error:
        st.error(str(error))
        st.stop()
    return ModelChoice(model, None, data, folder.strip())
