"""Models: every published model with its card, files and downloads, the commands that load,
sample, retrain and republish it, two models side by side, and a folder you trained."""

from pathlib import Path

import streamlit as st

from gallery import models as gm
from hub_models import hub
from hub_models.base import CheckpointError
from hub_models.family import org
from hub_models.registry import FAMILIES

BROWSE, COMPARE, FOLDER = "Browse", "Compare two", "A folder I trained"
ALL = ""

st.title("Models")
st.write(
    "Every model this gallery publishes is a Hub repo: safetensors weights, a config and a "
    "model card. Open one to read its card, download its files (exactly the bytes the app "
    "loads), and copy the commands that load, sample, retrain and republish it."
)
view = st.radio("View", [BROWSE, COMPARE, FOLDER], horizontal=True, key="models_view")


def browse_ui() -> None:
    if "models_family" not in st.session_state:  # a link from a demo page names its family
        linked = st.query_params.get("family", ALL)
        st.session_state["models_family"] = linked if linked in FAMILIES else ALL
    filters = st.columns([2, 3, 2])
    family = filters[0].selectbox(
        "Family",
        [ALL, *FAMILIES],
        format_func=lambda name: FAMILIES[name].title if name else "All families",
        key="models_family",
    )
    search = filters[1].text_input(
        "Search", key="models_search", placeholder="dataset, objective, metric, revision…"
    )
    auxiliary = filters[2].toggle(
        "Auxiliary models too",
        key="models_auxiliary",
        help="Models the families load besides their own (the image metrics' feature nets).",
    )
    everything = gm.catalog(auxiliary, org())
    table = gm.filter_catalog(everything, family or None, search)
    st.dataframe(
        table.drop(columns=["family_name"]),
        column_config={
            "sample": st.column_config.ImageColumn("sample", width="small"),
            "parameters": st.column_config.NumberColumn("parameters", format="localized"),
        },
        hide_index=True,
        width="stretch",
        row_height=56,
    )
    st.caption(f"{len(table)} of {len(everything)} published models")
    if table.empty:
        st.info("No model matches these filters.")
        return
    names = list(table["model"])
    linked = st.query_params.get("model")
    name = st.selectbox(
        "Open a model",
        names,
        index=names.index(linked) if linked in names else 0,
        key="models_open",
    )
    entry = gm.entry(name)
    st.subheader(entry.repo_id)
    st.write(f"{entry.model.title} — {entry.family.title}")
    try:
        where = gm.resolved(entry.repo_id)
    except CheckpointError as error:
        st.error(str(error))
        return
    gm.model_detail_ui(where, entry.family, entry.bundle, entry.auxiliary, True, key="open")


def compare_ui() -> None:
    family = st.selectbox(
        "Family", list(FAMILIES), format_func=lambda n: FAMILIES[n].title, key="models_cmp_family"
    )
    names = [m.name for m in FAMILIES[family].models]
    left, right = st.columns(2)
    a = left.selectbox("Model A", names, index=0, key=f"models_cmp_a_{family}")
    b = right.selectbox(
        "Model B", names, index=min(1, len(names) - 1), key=f"models_cmp_b_{family}"
    )
    st.dataframe(gm.compare_table(a, b), width="stretch")
    for column, name in ((left, a), (right, b)):
        where = gm.resolved(gm.entry(name).repo_id)
        picture = gm.repo_file(where, "sample.png")
        if picture is not None:
            column.image(str(picture), caption=name, width="stretch")
        column.caption(f"Weights from {where.label}")


def folder_ui() -> None:
    folder = st.text_input(
        "Output folder of `python -m training train ... --out DIR`",
        key="models_folder",
        placeholder="runs/toy2d-demo",
    )
    if not folder.strip():
        st.info("Enter the folder a training run wrote (its --out).")
        return
    path = Path(folder.strip()).expanduser()
    if not path.is_dir():
        st.error(f"{path} is not a folder: enter the --out folder of `python -m training train`")
        return
    if st.button("Validate for publishing", key="models_validate"):
        st.session_state["models_check"] = hub.check_publishable(path)
    check = st.session_state.get("models_check")
    if check is not None and check.folder == path:
        gm.check_ui(check)
    family, bundle, auxiliary = gm.folder_family(path)
    gm.model_detail_ui(hub.resolve(str(path)), family, bundle, auxiliary, False, key="folder")


{BROWSE: browse_ui, COMPARE: compare_ui, FOLDER: folder_ui}[view]()
