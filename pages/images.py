"""This emoji does not exist: fresh samples, grids, interpolation, and a memorisation check."""

import streamlit as st
import torch

from gallery import images as gi
from gallery.common import (
    device,
    examples_ui,
    load_published,
    model_picker_ui,
    seed_ui,
    share_url,
    url_state,
)
from gallery.models import models_link_ui
from hub_models import imagedata
from hub_models.base import CheckpointError
from hub_models.imagedata import DataError
from hub_models.images import KIND_TITLES, generate, interpolate, latents, sample
from hub_models.registry import FAMILIES

st.title("This emoji does not exist")
st.write(
    "Every click draws a new image from a model this gallery trained. The featured model draws "
    "emoji faces in four vendors' styles (Twemoji, OpenMoji, Noto, EmojiOne) and can draw the "
    "same face in each; another draws any emoji by group and vendor. Both are small-data GANs "
    "(DiffAugment, hinge loss with spectral norm, a moving average of the generator). The "
    "first models (DCGAN, WGAN-GP, a VAE and a cGAN on Twemoji and digits) stay for "
    "comparison. Beside each image, its nearest training images show whether it is new or a "
    "copy."
)
SHARED = {  # what a link to this page reproduces
    "img_dataset": tuple(gi.published_datasets()),
    "img_kind": tuple(k for d in gi.published_datasets() for k in gi.kinds(d)),
    "img_seed": int,
    "img_truncation": float,
    "img_class": str,
}
url_state(SHARED)
FAMILY_TITLES = {m.name: m.title for m in FAMILIES["images"].models}
examples_ui(
    {
        "A new face, four styles": {
            "img_source": "Published",
            "img_dataset": "emoji-faces",
            "img_kind": "diffaugment",
            "img_class": "Noto Color Emoji",
            "img_seed": 3,
        },
        "An animal (OpenMoji)": {
            "img_source": "Published",
            "img_dataset": "emoji-all",
            "img_kind": "diffaugment",
            "img_class": "Animals & Nature / OpenMoji",
            "img_seed": 1,
        },
        "Typical first-model emoji (truncation 1.5)": {
            "img_source": "Published",
            "img_dataset": "emoji",
            "img_kind": "dcgan",
            "img_truncation": 1.5,
        },
        "A handwritten digit": {
            "img_source": "Published",
            "img_dataset": "mnist",
            "img_kind": "dcgan",
            "img_seed": 0,
        },
    },
    "img_example",
)


def choose_published(box) -> str:
    left, right = box.columns(2)
    dataset = left.selectbox(
        "Data", gi.published_datasets(), format_func=gi.DATASET_LABELS.get, key="img_dataset"
    )
    kinds = gi.kinds(dataset)
    if st.session_state.get("img_kind") not in kinds:
        st.session_state["img_kind"] = kinds[0]
    kind = right.selectbox("Model", kinds, format_func=KIND_TITLES.get, key="img_kind")
    return gi.model_name(dataset, kind)


choice = model_picker_ui(
    "images",
    "img",
    choose_published,
    "python -m training train images --data YOUR_FOLDER --out DIR",
)
model, user_data = choice.model, choice.data
models_link_ui("images", choice.key if choice.where else None)
dataset = model.config.dataset
config = model.config

controls = st.columns([1, 1, 1])
seed_ui("img_seed", controls[0])
truncation = controls[1].slider(
    "Truncation",
    min_value=1.0,
    max_value=3.0,
    value=3.0,
    step=0.25,
    key="img_truncation",
    help="Each number of the random code is kept within ±t: lower t gives more typical, less "
    "varied images; 3 changes practically nothing. Below 1 these small generators only draw "
    "their blank average image, so the slider stops there.",
)
labels = None
if config.conditional:
    if st.session_state.get("img_class") not in config.class_names:
        st.session_state.pop("img_class", None)
    chosen = controls[2].selectbox("Class", list(config.class_names), key="img_class")
    labels = torch.tensor([config.class_names.index(chosen)])

image_seed = int(st.session_state["img_seed"])
scale = max(1, 256 // config.resolution)


def next_image() -> None:
    st.session_state["img_seed"] = int(st.session_state["img_seed"]) + 1


def show_neighbours(generated: torch.Tensor, reference) -> None:
    found = gi.neighbours(reference, generated)
    distance = float(found.feature_distance[0, 0])
    st.markdown("**Is it memorised?** Its nearest training images:")
    cols = st.columns(gi.NEIGHBOURS)
    train = reference.train
    for j, col in enumerate(cols):
        index = int(found.indices[0, j])
        col.image(imagedata.to_pil(imagedata.to_uint8(train[index : index + 1])[0], scale // 2))
        col.caption(
            f"{gi.neighbour_caption(reference, index)} · {reference.space} distance "
            f"{float(found.feature_distance[0, j]):.2f} · pixel RMS "
            f"{float(found.pixel_rms[0, j]):.3f}"
        )
    st.write(gi.novelty_verdict(reference, distance))


def load_reference():
    try:
        return gi.reference(
            dataset,
            config.resolution,
            config.channels,
            str(user_data) if user_data else None,
            int(labels[0]) if labels is not None and dataset in gi.INDEX_BY_CLASS else None,
        )
    except (DataError, CheckpointError, OSError) as error:
        st.warning(f"The training set cannot be read, so novelty is not checked: {error}")
        return None


one, many, morph, compare = st.tabs(["One image", "Grid", "Interpolation", "Side by side"])

with one:
    st.button("Another one", on_click=next_image, type="primary", key="img_next")
    image = sample(model, 1, image_seed, labels=labels, truncation=truncation)
    picture = imagedata.to_pil(imagedata.to_uint8(image)[0], scale)
    left, right = st.columns([1, 1])
    left.image(picture, caption=f"seed {image_seed}")
    left.download_button(
        "Download PNG",
        imagedata.png_bytes(picture),
        file_name=f"{dataset}-{config.kind}-seed{image_seed}.png",
        mime="image/png",
        key="img_download_one",
    )
    with right:
        reference = load_reference()
        if reference is not None:
            show_neighbours(image, reference)
    styles = gi.style_row(config.class_names, int(labels[0])) if labels is not None else []
    if styles:
        st.markdown("**The same code in every vendor's style**")
        z = latents(config, 1, image_seed, truncation).repeat(len(styles), 1)
        drawn = imagedata.to_uint8(generate(model, z, torch.tensor(styles)))
        for col, label, array in zip(st.columns(len(styles)), styles, drawn, strict=True):
            col.image(imagedata.to_pil(array, scale // 2), caption=config.class_names[label])

with many:
    count = st.select_slider("Images", [16, 36, 64], value=36, key="img_grid_n")
    grid_labels = labels.repeat(count) if labels is not None else None
    images = sample(model, count, image_seed, labels=grid_labels, truncation=truncation)
    paired = st.toggle(
        "Pair each with its nearest training image",
        key="img_pairs",
        help="Is it memorised? Each sample (left) beside the training image closest to it in "
        "feature space (right): EfficientNet features for the four-vendor emoji, the small "
        "feature net's for the first models' data.",
    )
    reference = load_reference() if paired else None
    if reference is not None:
        found = gi.neighbours(reference, images, k=1)
        nearest_train = reference.train[found.indices[:, 0]]
        pairs = torch.stack([images, nearest_train], 1).flatten(0, 1)
        grid = imagedata.grid(pairs, columns=2 * int(count**0.5), scale=2)
        share = sum(reference.percentile(float(d)) for d in found.feature_distance[:, 0]) / count
        st.image(
            grid,
            caption=f"{count} samples of seed {image_seed}, each beside its nearest "
            f"training image; on average {share:.0%} of unseen real images are closer to "
            "the training set than these samples",
        )
    else:
        grid = imagedata.grid(images, scale=2)
        st.image(grid, caption=f"{count} samples of seed {image_seed}")
    st.download_button(
        "Download grid PNG",
        imagedata.png_bytes(grid),
        file_name=f"{dataset}-{config.kind}-grid-seed{image_seed}.png",
        mime="image/png",
        key="img_download_grid",
    )

with morph:
    cols = st.columns(3)
    seed_a = cols[0].number_input("From seed", 0, 2**31 - 1, image_seed, key="img_seed_a")
    seed_b = cols[1].number_input("To seed", 0, 2**31 - 1, image_seed + 1, key="img_seed_b")
    steps = cols[2].slider("Steps", 4, 24, 10, key="img_steps")
    path = interpolate(model, int(seed_a), int(seed_b), steps, labels, truncation)
    st.image(imagedata.grid(path, columns=steps, scale=2), caption="spherical interpolation")
    frames = [imagedata.to_pil(a, scale // 2) for a in imagedata.to_uint8(path)]
    st.image(imagedata.gif_bytes(frames), caption="the same path, animated")

with compare:
    if choice.where is None:
        st.info("Side by side compares published models.")
    else:
        compared = gi.compared_models(dataset)
        st.write(
            "Same seed, every published model of this data, or this model beside the first "
            "models on Twemoji: the VAE's smooth average, the first GANs' guesses, and what "
            "the small-data recipe draws. Conditional models draw the class picked here."
        )
        cols = st.columns(len(compared))
        for i, (col, (other_dataset, other)) in enumerate(zip(cols, compared, strict=True)):
            try:
                name = gi.model_name(other_dataset, other)
                other_model, _ = load_published("images", name, device())
            except CheckpointError as error:
                col.warning(str(error))
                continue
            other_labels = None
            if other_model.config.conditional:
                names = list(other_model.config.class_names)
                default = names.index(chosen) if labels is not None and chosen in names else 0
                pick = col.selectbox("Class", names, index=default, key=f"img_compare_class{i}")
                other_labels = torch.tensor([names.index(pick)]).repeat(16)
            grid = sample(other_model, 16, image_seed, labels=other_labels, truncation=truncation)
            col.image(imagedata.grid(grid, scale=2), caption=FAMILY_TITLES.get(name, name))

share_url(SHARED)
