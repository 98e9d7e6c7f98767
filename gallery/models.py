"""The Models page's logic: every published model from the registry, its files as the Hub layer
resolved them (the downloads are those bytes), its card and metrics, and the commands that
load, sample, retrain and republish it; a folder the user trained, checked for publishing."""

from __future__ import annotations

import ast
import base64
import io
import json
import math
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image

from hub_models import hub, runfiles
from hub_models.base import CheckpointError, HubBundle
from hub_models.family import AuxiliaryModel, Family, PublishedModel, org
from hub_models.registry import FAMILIES, published

ROOT = Path(__file__).resolve().parent.parent
THUMBNAIL = 96  # pixels, the longer side
YOUR_ORG = "YOUR-ORG"
SOURCES = {"hub": "Hub", "cache": "HF cache", "bundled": "bundled", "local": "local folder"}


@dataclass(frozen=True)
class Entry:
    """One published repo: a family's model or one of its auxiliary models."""

    family: Family
    model: PublishedModel

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def repo_id(self) -> str:
        return self.model.repo_id

    @property
    def auxiliary(self) -> bool:
        return isinstance(self.model, AuxiliaryModel)

    @property
    def bundle(self) -> type[HubBundle]:
        return self.model.bundle if self.auxiliary else self.family.bundle


def entries(auxiliary: bool = False) -> list[Entry]:
    """Every published model of every family, in registry order (auxiliary ones if asked)."""
    return [
        Entry(spec, model)
        for spec in FAMILIES.values()
        for model in (*spec.models, *(spec.auxiliary if auxiliary else ()))
    ]


def entry(name: str) -> Entry:
    spec, model = published(f"{org()}/{name}")
    return Entry(spec, model)


# -- what the Hub layer resolved --------------------------------------------------------------


@st.cache_data(show_spinner=False, ttl=300)
def resolved(repo_id: str) -> hub.Resolved:
    """A published repo as loading resolves it (Hub → HF cache → bundled snapshot)."""
    _, model = published(repo_id)
    return hub.resolve(repo_id, model.snapshot)


def repo_file(where: hub.Resolved, filename: str) -> Path | None:
    """One file of the resolved repo, from its revision; None when it has none (a folder is
    read afresh each time)."""
    if where.source == "local":
        return hub.fetch_file(where, filename)
    return _repo_file(where.repo_id, where.source, where.revision, str(where.path), filename)


@st.cache_data(show_spinner=False, ttl=300)
def _repo_file(repo_id: str, source: str, revision: str, path: str, filename: str):
    return hub.fetch_file(hub.Resolved(repo_id, Path(path), source, revision), filename)


@st.cache_data(show_spinner="Listing the repo's files…", ttl=300)
def _repo_files(repo_id: str, source: str, revision: str, path: str) -> list[hub.RepoFile]:
    return hub.repo_files(hub.Resolved(repo_id, Path(path), source, revision))


def repo_files(where: hub.Resolved) -> list[hub.RepoFile]:
    """Every file of the repo with its size and sha256 (a folder is read afresh each time)."""
    if where.source == "local":
        return hub.repo_files(where)
    return _repo_files(where.repo_id, where.source, where.revision, str(where.path))


def files_table(files: list[hub.RepoFile]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": [f.name for f in files],
            "size": [human_size(f.size) for f in files],
            "bytes": [f.size for f in files],
            "sha256": [f.sha256 for f in files],
        }
    )


def repo_zip(where: hub.Resolved) -> bytes:
    """The whole repo as a zip of exactly the files listed (``hub.repo_zip``)."""
    if where.source == "local":
        return hub.repo_zip(where)
    return _repo_zip(where.repo_id, where.source, where.revision, str(where.path))


@st.cache_data(show_spinner="Packing the repo…", ttl=300, max_entries=8)
def _repo_zip(repo_id: str, source: str, revision: str, path: str) -> bytes:
    where = hub.Resolved(repo_id, Path(path), source, revision)
    return hub.repo_zip(where, repo_files(where))


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    scaled, unit = next(
        (size / 1000**i, u) for i, u in ((3, "GB"), (2, "MB"), (1, "kB")) if size >= 1000**i
    )
    return f"{scaled:.1f} {unit}"


# -- what a repo says about itself ------------------------------------------------------------


def read_json(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def card_markdown(card: Path) -> str:
    """A model card's text for the page: no YAML header (the metrics are shown as a table), no
    HTML comments, and no pictures linked relative to the repo (the page shows the sample)."""
    text = card.read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text.split("---", 2)[2] if text.count("---") >= 2 else text
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"^!\[[^\]]*\]\((?!https?:)[^)]*\)\s*$", "", text, flags=re.MULTILINE)
    return text.strip()


def card_dataset(card: Path | None) -> str:
    """The dataset the card's model-index names (the repo's own statement of its data)."""
    if card is None:
        return ""
    from huggingface_hub import ModelCard

    try:
        results = ModelCard.load(card).data.eval_results or []
    except Exception:  # a card with a broken header still gets a row; publishing checks it
        return ""
    return str(results[0].dataset_name) if results else ""


def metric_names(family: Family | None, metrics: dict[str, Any], auxiliary: bool) -> dict:
    known = {} if family is None or auxiliary else family.metric_names
    return {key: known.get(key, key.replace("_", " ")) for key in metrics}


def show_value(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def key_metric(family: Family, metrics: dict[str, Any], auxiliary: bool) -> str:
    """The first of the family's metrics (in the order it declares them) the repo has."""
    order = list(metrics) if auxiliary else [*family.metric_names, *metrics]
    names = metric_names(family, metrics, auxiliary)
    for key in order:
        value = metrics.get(key)
        if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
            return f"{names[key].split(' (')[0]}: {show_value(value)}"
    return ""


def kind_of(config: dict[str, Any], entry: Entry) -> str:
    if entry.auxiliary:
        return f"auxiliary ({entry.bundle.__name__})"
    return str(config.get("objective") or config.get("kind") or entry.bundle.__name__)


def parameter_count(weights: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        return sum(math.prod(handle.get_slice(k).get_shape()) for k in handle.keys())  # noqa: SIM118


def thumbnail(picture: Path | None) -> str | None:
    """A small PNG of the repo's sample picture, as a data URL for the table."""
    if picture is None:
        return None
    with Image.open(picture) as image:
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@st.cache_data(show_spinner="Reading every published repo…", ttl=300)
def catalog(auxiliary: bool, organisation: str) -> pd.DataFrame:
    """One row per published model: what the table shows and filters on (``organisation``,
    the registry's org(), keys the cache: GAN_GALLERY_ORG names other repos)."""
    rows = [catalog_row(e) for e in entries(auxiliary)]
    return pd.DataFrame(rows)


def catalog_row(e: Entry) -> dict[str, Any]:
    row = {"sample": None, "model": e.name, "family": e.family.title, "family_name": e.family.name}
    try:
        where = resolved(e.repo_id)
    except CheckpointError as error:
        return {**row, "source": "unavailable", "revision": str(error)}
    config = read_json(where.path / runfiles.CONFIG)
    metrics = read_json(repo_file(where, runfiles.EVALUATION))
    weights = where.path / runfiles.WEIGHTS
    return {
        **row,
        "sample": thumbnail(repo_file(where, runfiles.SAMPLE)),
        "dataset": card_dataset(repo_file(where, runfiles.CARD)) or str(config.get("dataset", "")),
        "objective / kind": kind_of(config, e),
        "key metric": key_metric(e.family, metrics, e.auxiliary),
        "parameters": parameter_count(weights),
        "weights": human_size(weights.stat().st_size),
        "revision": where.revision,
        "source": SOURCES[where.source],
    }


def filter_catalog(table: pd.DataFrame, family: str | None, search: str) -> pd.DataFrame:
    """Rows of one family (None: all), whose cells contain every word of ``search``."""
    if family:
        table = table[table["family_name"] == family]
    if table.empty:
        return table
    text = table.drop(columns=["sample"]).astype(str).apply(" ".join, axis=1).str.lower()
    keep = [all(word in row for word in search.lower().split()) for row in text]
    return table[keep]


def compare_table(a: str, b: str) -> pd.DataFrame:
    """Two models' metrics side by side, in the family's order; a metric one lacks is blank."""
    left, right = entry(a), entry(b)
    ma = read_json(repo_file(resolved(left.repo_id), runfiles.EVALUATION))
    mb = read_json(repo_file(resolved(right.repo_id), runfiles.EVALUATION))
    keys = list(dict.fromkeys([*left.family.metric_names, *ma, *mb]))
    keys = [k for k in keys if k in ma or k in mb]
    names = metric_names(left.family, dict.fromkeys(keys), left.auxiliary)
    return pd.DataFrame(
        {
            a: [show_value(ma.get(k, "")) for k in keys],
            b: [show_value(mb.get(k, "")) for k in keys],
        },
        index=[names[k] for k in keys],
    )


# -- commands that work as shown ---------------------------------------------------------------


@dataclass(frozen=True)
class Snippets:
    load: str | None  # Python, hub_models.load (published repos only)
    from_pretrained: str  # Python, the bundle's Hub mixin
    download: str | None  # shell, hf download (published repos only)
    sample: str | None  # shell, python -m training sample (a family's models)
    retrain: str | None  # shell, the recorded training command, then publish (published repos)
    publish: str | None  # shell, check then publish (a folder with a training record)


def sample_suffix(family: Family) -> str:
    """The output file type ``python -m training sample FAMILY`` writes (.png when it can)."""
    return _sample_suffix(family.trainer)


@cache
def _sample_suffix(trainer: str) -> str:
    # The trainer's ``save_<suffix>`` writers name the formats. The app never imports training
    # code, so they are read from the trainer's source.
    module, _, class_name = trainer.partition(":")
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
    writers = [
        node.name.removeprefix("save_")
        for cls in ast.parse(source).body
        if isinstance(cls, ast.ClassDef) and cls.name == class_name
        for node in cls.body
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("save_")
        and node.name != "save_samples"
    ]
    for suffix in ("png", *writers):
        if suffix in writers:
            return "" if suffix == "folder" else f".{suffix}"
    return ".png"


def snippets(
    family: Family | None,
    bundle: type[HubBundle] | None,
    source: str,
    name: str,
    record: dict[str, Any],
    auxiliary: bool,
    published_repo: bool,
) -> Snippets:
    """The commands for a published repo (``source`` is its repo id) or a user's folder
    (``source`` is its path): load, download, sample, and retrain then publish."""
    quoted = json.dumps(source)
    target = f"{YOUR_ORG}/{name}"
    load = (
        "from hub_models import load\n\n"
        f"model, source = load({quoted})  # Hub → HF cache → bundled snapshot\n"
        "print(source.label)\n"
        if published_repo
        else None
    )
    if bundle is not None:
        mixin = (
            f"from {bundle.__module__} import {bundle.__name__}\n\n"
            f"model = {bundle.__name__}.from_pretrained({quoted})\n"
            "print(model.resolved.label)  # where the weights came from\n"
        )
    else:
        mixin = "# training.json does not name a family of this gallery: nothing to load\n"
    sample = None
    if family is not None and not auxiliary:
        out = f"{name}-samples{sample_suffix(family)}"
        command = ["python", "-m", "training", "sample", family.name, "--from", source]
        sample = shlex.join([*command, "--n", "16", "--seed", "0", "--out", out])
    folder = f"runs/{name}" if published_repo else source
    publish = shlex.join(["python", "-m", "training", "publish", folder, "--repo-id", target])
    publish = f"{publish} --dry-run\n{publish}\n"
    retrain = None
    if published_repo and record.get("command"):
        retrain = f"{record['command']} --out {shlex.quote(folder)}\n{publish}"
    return Snippets(
        load=load,
        from_pretrained=mixin,
        download=f"hf download {source}" if published_repo else None,
        sample=sample,
        retrain=retrain,
        publish=publish if not published_repo and record else None,
    )


# -- drawing --------------------------------------------------------------------------------------


def model_detail_ui(
    where: hub.Resolved,
    family: Family | None,
    bundle: type[HubBundle] | None,
    auxiliary: bool,
    published_repo: bool,
    key: str,
) -> None:
    """One model opened: source and revision, sample, metrics, downloads, snippets, files and
    card. Everything is read from what the Hub layer resolved."""
    name = Path(where.repo_id).name
    st.caption(f"Weights from {where.label}" + (f" — {where.notice}" if where.notice else ""))
    picture, metrics_column = st.columns([2, 3])
    sample_path = repo_file(where, runfiles.SAMPLE)
    if sample_path is not None:
        caption = "" if family is None or auxiliary else family.sample_caption
        picture.image(str(sample_path), caption=caption, width="stretch")
    else:
        picture.info("This repo has no sample picture.")
    metrics = read_json(repo_file(where, runfiles.EVALUATION))
    names = metric_names(family, metrics, auxiliary)
    if metrics:
        metrics_column.dataframe(
            pd.DataFrame(
                {"value": [show_value(v) for v in metrics.values()]},
                index=[names[k] for k in metrics],
            ),
            width="stretch",
        )
    else:
        metrics_column.info("No eval.json: no metrics to show.")
    downloads_ui(where, name, key)
    record = read_json(repo_file(where, runfiles.TRAINING))
    shown = snippets(family, bundle, where.repo_id, name, record, auxiliary, published_repo)
    use, files, card = st.tabs(["Use it", "Files", "Model card"])
    with use:
        snippets_ui(shown)
    with files:
        st.dataframe(files_table(repo_files(where)), hide_index=True, width="stretch")
    with card:
        card_path = repo_file(where, runfiles.CARD)
        if card_path is None:
            st.warning("This repo has no model card (README.md).")
        else:
            st.markdown(card_markdown(card_path))


def downloads_ui(where: hub.Resolved, name: str, key: str) -> None:
    columns = st.columns(3)
    for column, filename, mime in (
        (columns[0], runfiles.WEIGHTS, "application/octet-stream"),
        (columns[1], runfiles.CONFIG, "application/json"),
    ):
        path = where.path / filename
        if path.is_file():
            column.download_button(
                filename,
                path.read_bytes(),
                file_name=filename,
                mime=mime,
                key=f"{key}_download_{filename}",
                icon=":material/download:",
                on_click="ignore",
            )
    if (where.path / runfiles.WEIGHTS).is_file():
        columns[2].download_button(
            f"{name}.zip (the whole repo)",
            repo_zip(where),
            file_name=f"{name}.zip",
            mime="application/zip",
            key=f"{key}_download_zip",
            icon=":material/folder_zip:",
            on_click="ignore",
        )


def snippets_ui(shown: Snippets) -> None:
    if shown.load:
        st.markdown("**Load in Python** (Hub → HF cache → bundled snapshot, offline too)")
        st.code(shown.load, language="python")
    st.markdown("**Load with the Hub mixin** (the same resolution)")
    st.code(shown.from_pretrained, language="python")
    if shown.download:
        st.markdown("**Download the repo** into the HF cache (needs the Hub)")
        st.code(shown.download, language="bash")
    if shown.sample:
        st.markdown("**Sample**")
        st.code(shown.sample, language="bash")
    if shown.retrain:
        st.markdown(
            "**Retrain and republish**: the command that trained it (from its training.json), "
            f"then a check and the upload under your organisation (replace {YOUR_ORG})"
        )
        st.code(shown.retrain, language="bash")
    if shown.publish:
        st.markdown(f"**Publish**: a check, then the upload (replace {YOUR_ORG})")
        st.code(shown.publish, language="bash")


def check_ui(check: hub.PublishCheck) -> None:
    """The messages of "validate for publishing": the same checks as `publish --dry-run`."""
    if check.ok:
        total = human_size(sum(f.size for f in check.files))
        st.success(
            f"Ready to publish: {len(check.files)} files ({total}) would be uploaded; "
            "checkpoints, logs and sample snapshots stay local."
        )
        return
    for problem in check.problems:
        st.error(problem)
    st.warning("Nothing would be uploaded until every problem above is fixed.")


def folder_family(folder: Path) -> tuple[Family | None, type[HubBundle] | None, bool]:
    """The family, bundle and whether it is an auxiliary model, from training.json."""
    record = read_json(folder / runfiles.TRAINING)
    spec = FAMILIES.get(record.get("family", ""))
    if spec is None:
        return None, None, False
    for model in spec.auxiliary:
        if model.name == record.get("auxiliary"):
            return spec, model.bundle, True
    return spec, spec.bundle, False


def models_link_ui(family: str, model: str | None = None, box: Any = st) -> None:
    """A link to the Models page, filtered to ``family`` (and opening ``model``)."""
    params = {"family": family, **({"model": model} if model else {})}
    box.page_link(
        "pages/models.py",
        label="Models: download, retrain",
        icon=":material/download:",
        query_params=params,
    )
