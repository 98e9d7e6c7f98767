"""Anomaly scoring with GANomaly: score any image, see why, and choose a threshold."""

import streamlit as st
import torch

from gallery import ganomaly as gg
from gallery.common import examples_ui, model_picker_ui, seed, share_url, url_state
from gallery.models import models_link_ui
from hub_models import anomalydata
from hub_models.ganomaly import score_images
from hub_models.imagedata import DataError

st.title("Anomaly scoring (GANomaly)")
st.write(
    "GANomaly learns only what normal images look like: it encodes an image, reconstructs it "
    "and encodes the reconstruction again. An unusual image comes back changed and its two "
    "codes disagree: that disagreement is the score, shown as a multiple of the threshold "
    "that flags 5 % of unseen normal images."
)

SHARED = {  # what a link to this page reproduces
    "gan_model": tuple(gg.model_names()),
    "gan_threshold": float,
    "gan_index": int,
}
url_state(SHARED)
examples_ui(
    {
        "Brick with defects": {"gan_source": "Published", "gan_model": "ganomaly-brick"},
        "Digits: is it a 7?": {"gan_source": "Published", "gan_model": "ganomaly-mnist-7"},
        "Gravel, strict threshold": {
            "gan_source": "Published",
            "gan_model": "ganomaly-gravel",
            "gan_threshold": 0.6,
        },
    },
    "gan_example",
)
top = st.columns([1, 2, 2])


def choose_published(box) -> str:
    names = gg.model_names()
    return box.selectbox(
        "What is normal",
        names,
        index=names.index(gg.FAMILY.featured_model.name),
        format_func=gg.model_title,
        key="gan_model",
    )


choice = model_picker_ui(
    "ganomaly",
    "gan",
    choose_published,
    "python -m training train ganomaly --data FOLDER --out DIR",
    source_box=top[0],
    choice_box=top[1],
)
model, data_folder = choice.model, choice.data
models_link_ui("ganomaly", choice.key if choice.where else None)
key = choice.key if choice.where is not None else f"{choice.key}:{id(model)}"
config = model.config
if not model.calibrated:
    st.error("This model carries no score calibration; train it again with this version.")
    st.stop()
data = results = None
try:
    data = gg.test_set(
        config.dataset,
        config.anomaly,
        config.resolution,
        config.channels,
        str(data_folder) if data_folder else None,
    )
    results = gg.test_scores(key, model, data)
except DataError as error:  # e.g. the training folder moved: uploads can still be scored
    st.warning(f"The model's test images cannot be read ({error}); you can still upload one.")
NEEDS_DATA = "This needs the model's test images, which cannot be read (see above)."

relative_threshold = top[2].slider(
    "Threshold (× the default)",
    min_value=0.2,
    max_value=5.0,
    value=1.0,
    step=0.05,
    key="gan_threshold",
    help="1 is the default threshold: it flags 5 % of the calibration images (normal images "
    "set aside when the model was trained, seen neither in training nor in the test set). "
    "The Test set tab shows how many normal test images it flags.",
)
threshold = relative_threshold * model.threshold


def show_scored(images: torch.Tensor, captions: list[str]) -> None:
    """Input, reconstruction and residual of each image in a row, with its score."""
    out = score_images(model, images)
    for i, caption in enumerate(captions):
        relative = float(out["score"][i]) / threshold
        st.markdown(f"**{caption}**")
        cols = st.columns(4)
        cols[0].image(gg.picture(images[i]), caption="input")
        cols[1].image(gg.picture(out["reconstruction"][i]), caption="reconstruction")
        cols[2].image(gg.picture(gg.heatmap(out["residual"][i])), caption="residual |x - x̂|")
        cols[3].metric("Anomaly score", f"{relative:.2f}×", help="score / threshold")
        cols[3].write(
            f"Higher than {float(out['percentile'][i]):.0f} % of unseen normal images. "
            f"Verdict: **{gg.verdict(relative)}**."
        )


def defect_view(data) -> None:
    normal = torch.nonzero(data.test_labels == 0).flatten()
    cols = st.columns(3)
    base = cols[0].number_input(
        "Normal test image", min_value=0, max_value=len(normal) - 1, step=1, key="gan_base"
    )
    kind = cols[1].selectbox("Defect", anomalydata.DEFECTS, key="gan_defect")
    size = cols[2].slider("Size", 0.05, 0.8, 0.3, 0.05, key="gan_size")
    cols = st.columns(4)
    x_at = cols[0].slider("Across", 0.0, 1.0, 0.5, 0.05, key="gan_x")
    y_at = cols[1].slider("Down", 0.0, 1.0, 0.5, 0.05, key="gan_y")
    strength, angle = -0.8, 30  # a patch replaces the pixels: neither applies to it
    if kind != "patch":
        strength = cols[2].slider(
            "Contrast", -1.0, 1.0, -0.8, 0.1, key="gan_strength", help="negative: darker"
        )
    if kind == "scratch":
        angle = cols[3].slider("Angle", 0, 180, 30, 5, key="gan_angle")
    clean = data.test[normal[int(base)]]
    texture = config.dataset if config.dataset in anomalydata.TEXTURES else None
    damaged = anomalydata.add_defect(
        clean, kind, x_at, y_at, size, angle, strength, texture=texture
    )
    show_scored(torch.stack([clean, damaged]), ["without the defect", f"with a {kind}"])


def test_set_view(data, results) -> None:
    here = results.at(threshold)
    if results.auroc <= results.knn_auroc:
        st.warning(
            f"On its own test set this model is no better than the simple baseline: its "
            f"AUROC is {results.auroc:.3f}, while ranking images by their pixel distance to the "
            f"5 nearest training images reaches {results.knn_auroc:.3f}."
        )
    cols = st.columns(5)
    cols[0].metric(
        "AUROC",
        f"{results.auroc:.3f}",
        delta=f"{results.auroc - results.knn_auroc:+.3f} vs k-NN pixels",
        help="AUROC: the chance that a random anomalous test image scores higher than a random "
        "normal one (1 = perfect, 0.5 = a coin toss). The k-NN baseline (mean pixel distance "
        f"to the 5 nearest training images) reaches {results.knn_auroc:.3f} on the same test "
        "set.",
    )
    cols[1].metric(
        "Precision", f"{here['precision']:.2f}", help="share of flagged images that are anomalous"
    )
    cols[2].metric("Recall", f"{here['recall']:.2f}", help="share of anomalies flagged")
    cols[3].metric("F1", f"{here['f1']:.2f}", help="harmonic mean of precision and recall")
    cols[4].metric(
        "False alarms (test set)",
        f"{here['false_alarm_rate']:.1%}",
        help="Share of normal test images above the threshold. At 1× the threshold was set to "
        "flag 5 % of the calibration images; normal test images can differ from those (a "
        "texture photograph is not uniform), so the rate here can be higher.",
    )
    if relative_threshold == 1:
        cols[4].caption("set to flag 5 % of the calibration images")
    left, right = st.columns(2)
    left.plotly_chart(gg.histogram(results, threshold), key="gan_hist")
    right.plotly_chart(gg.roc_figure(results, threshold), key="gan_roc")
    by_kind = gg.auroc_by_kind(data, results)
    st.write(
        f"{len(data.test)} test images ({int(results.labels.sum())} anomalous), never seen "
        "in training. AUROC of each kind of anomaly against all normal test images: "
        + ", ".join(f"{kind} {value:.3f}" for kind, value in by_kind.items())
        + ". The model card compares these with the baselines: python -m benchmarks ganomaly."
    )


one, defect, test = st.tabs(["Score one image", "Add a defect", "Test set"])

with one:
    sources = ["A test image", "Upload"] if data is not None else ["Upload"]
    pick = st.radio("Image", sources, horizontal=True, key="gan_pick")
    if pick == "A test image":
        if "gan_index" not in st.session_state:  # start on an anomaly: the residual shows why
            first_anomaly = int(torch.nonzero(data.test_labels)[0])
            st.session_state["gan_index"] = (first_anomaly + seed()) % len(data.test)
        left, right = st.columns([3, 1])
        left.number_input(
            "Test image", min_value=0, max_value=len(data.test) - 1, step=1, key="gan_index"
        )

        def random_image() -> None:
            g = torch.Generator().manual_seed(int(st.session_state["gan_index"]) + seed())
            st.session_state["gan_index"] = int(torch.randint(len(data.test), (1,), generator=g))

        right.button("Random test image", on_click=random_image, key="gan_random")
        index = int(st.session_state["gan_index"])
        truth, kind = "anomalous" if data.test_labels[index] else "normal", data.test_kinds[index]
        label = truth if kind == truth else f"{truth} ({kind})"
        show_scored(data.test[index : index + 1], [f"Test image {index}: {label}"])
    else:
        how = (
            "a photo or drawing of one digit, either ink colour: it is fitted and centred the "
            "way the training digits were"
            if config.dataset == "mnist"
            else "it is centre-cropped to a square"
        )
        upload = st.file_uploader(
            f"An image ({how}; resized to {config.resolution}x{config.resolution})",
            type=["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"],
            key="gan_upload",
        )
        if upload is not None:
            try:
                x = anomalydata.prepare_upload(
                    upload.getvalue(),
                    upload.name,
                    config.resolution,
                    config.channels,
                    config.dataset,
                )
            except DataError as error:
                st.error(str(error))
            else:
                show_scored(x, [upload.name])


with defect:
    if data is None:
        st.info(NEEDS_DATA)
    else:
        defect_view(data)
with test:
    if results is None:
        st.info(NEEDS_DATA)
    else:
        test_set_view(data, results)

share_url(SHARED)
