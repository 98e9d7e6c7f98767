"""Text to image (StackGAN): type a caption, see Stage-I and Stage-II, edit a word with the
noise kept, interpolate between captions, and check the nearest training image."""

import streamlit as st

from gallery import stackgan as gs
from gallery.common import examples_ui, model_picker_ui, seed_ui, share_url, url_state
from gallery.models import models_link_ui
from hub_models import imagedata, textenc
from hub_models.stackgan import generate

st.title("Text to image (StackGAN)")
st.write(
    "StackGAN draws in two stages: Stage-I sketches a caption at low resolution, Stage-II "
    "reads the sketch and the caption again and refines it at twice the side (Zhang et al. "
    "2017). A text encoder this gallery trained turns the caption into a vector; conditioning "
    "augmentation samples the generator's condition from a Gaussian around it, so one caption "
    "gives a family of pictures. The featured model draws scenes of coloured shapes, whose "
    "captions say exactly what should be there; a second one draws emoji from their CLDR names "
    "(still colour blobs after an hour of CPU training: its card has the numbers)."
)
SHARED = {  # what a link to this page reproduces
    "stk_caption": str,
    "stk_seed": int,
    "stk_n": int,
    "stk_noise": float,
}
url_state(SHARED)


def choose_published(box) -> str:
    names = gs.model_names()
    return box.selectbox(
        "Published model",
        names,
        index=names.index(gs.FAMILY.featured_model.name),
        format_func=gs.model_title,
        key="stk_model",
    )


choice = model_picker_ui(
    "stackgan", "stk", choose_published, "python -m training train stackgan --out DIR"
)
model = choice.model
models_link_ui("stackgan", choice.key if choice.where else None)
key = choice.key if choice.where is not None else f"{choice.key}:{id(model)}"
config = model.config
s1, s2 = config.stage1_resolution, config.resolution

examples = gs.examples(config.dataset)
if examples:
    st.session_state.setdefault("stk_caption", next(iter(examples.values())))
    examples_ui({label: {"stk_caption": text} for label, text in examples.items()}, "stk_example")
caption = st.text_input(
    "Caption",
    key="stk_caption",
    help=f"Up to {gs.MAX_CAPTION_CHARS} characters; the text encoder reads the first "
    f"{textenc.MAX_WORDS} words. Words it never learnt are marked and read as `<unk>`.",
)
reading = gs.read_caption(model, caption)
if reading.problem:
    st.info(reading.problem)
    share_url(SHARED)
    st.stop()
st.markdown("**Read as:** " + gs.marked_words(reading))
if reading.unknown:
    unknown = ", ".join(f"“{w}”" for w in reading.unknown)
    st.warning(
        f"Not in the text encoder's vocabulary: {unknown}. Each is read as `<unk>` (no meaning)"
        + (
            ": nothing in this caption is known, so the picture means nothing."
            if reading.all_unknown
            else "."
        )
    )
if reading.ignored:
    st.warning(
        f"Only the first {textenc.MAX_WORDS} words are read; {reading.ignored} more "
        "are ignored (struck through)."
    )
for note in gs.composition_notes(config.dataset, caption):
    st.caption(note)

controls = st.columns(3)
sample_seed = seed_ui("stk_seed", controls[0])
count = controls[1].slider("Samples", 1, 8, 4, key="stk_n")
noise_scale = controls[2].slider(
    "Conditioning noise (× ε)",
    0.0,
    2.0,
    1.0,
    0.1,
    key="stk_noise",
    help="Conditioning augmentation draws each stage's condition as c = μ + σ·ε around the "
    "caption's vector; this scales ε. At 0 every sample gets the caption's mean condition and "
    "the samples differ only by Stage-I's noise z; at 1 the condition varies as in training; "
    "above 1 it strays further from what the caption says.",
)

samples_tab, edit_tab, morph_tab, nearest_tab = st.tabs(
    ["Samples", "Change a word", "Between two captions", "Nearest training image"]
)

with samples_tab:
    stage1, stage2 = generate(model, [caption], count, sample_seed, noise_scale)
    columns = st.columns(2)
    for j in range(count):
        columns[j % 2].image(
            gs.pair_picture(stage1[j], stage2[j]),
            caption=f"sample {j + 1}: Stage-I {s1}×{s1} (enlarged) · Stage-II {s2}×{s2}",
        )
    st.download_button(
        "Download PNG",
        imagedata.png_bytes(gs.samples_sheet(stage1, stage2)),
        file_name=f"stackgan-seed{sample_seed}.png",
        mime="image/png",
        key="stk_download",
    )

with edit_tab:
    # A new caption brings a new suggested edit; the visitor's own edit stays while the
    # caption does.
    if st.session_state.get("stk_edit__from") != caption or "stk_edit" not in st.session_state:
        st.session_state["stk_edit"] = gs.suggest_edit(caption)
        st.session_state["stk_edit__from"] = caption
    edited = st.text_input(
        "Edited caption",
        key="stk_edit",
        help="Drawn with exactly the noise of the caption above (same seed, same samples): "
        "whatever changes between the rows comes from the words.",
    )
    edit_reading = gs.read_caption(model, edited)
    if edit_reading.problem:
        st.info(edit_reading.problem)
    else:
        if edit_reading.unknown:
            st.caption("Unknown words read as `<unk>`: " + ", ".join(edit_reading.unknown))
        both1, both2 = generate(model, [caption, edited], count, sample_seed, noise_scale)
        st.image(
            gs.rows_sheet([both2[:count], both2[count:]]),
            caption=f"Stage-II, top: “{caption}”; bottom: “{edited}” (same noise per column)",
        )
        with st.expander("Stage-I of both"):
            st.image(gs.rows_sheet([both1[:count], both1[count:]]))
        if edited.strip() == caption.strip():
            st.info("Change a word (a colour, a shape, a relation) to see what it controls.")

with morph_tab:
    cols = st.columns([3, 1])
    if "stk_to" not in st.session_state:
        st.session_state["stk_to"] = gs.suggest_edit(caption)
    target = cols[0].text_input("To caption", key="stk_to")
    steps = cols[1].slider("Steps", 3, 12, 8, key="stk_steps")
    target_reading = gs.read_caption(model, target)
    if target_reading.problem:
        st.info(target_reading.problem)
    else:
        path1, path2 = gs.interpolate(model, caption, target, steps, sample_seed, noise_scale)
        sheet = gs.rows_sheet([path1, path2])
        st.image(
            sheet,
            caption="The caption vector moves along the great circle between the two captions, "
            "with sample 1's noise throughout. Top: Stage-I; bottom: Stage-II.",
        )
        st.image(imagedata.gif_bytes(gs.frames(path2)), caption="Stage-II, animated")
        st.download_button(
            "Download PNG",
            imagedata.png_bytes(sheet),
            file_name=f"stackgan-interpolation-seed{sample_seed}.png",
            mime="image/png",
            key="stk_download_path",
        )

with nearest_tab:
    if config.dataset not in gs.POOL_DATASETS:
        st.info(
            "The nearest training image needs the training pictures: a model trained on a "
            "folder leaves them in that folder, which the page does not read."
        )
    else:
        st.caption(
            "Searches the training data for the caption nearest yours and for each sample's "
            "nearest picture (is it a copy?). The first search on a fresh server takes a while: "
            "the training pictures are rendered or loaded once."
        )
        # Off by default: Streamlit runs every tab's code on every rerun, so an open search
        # would make every visit pay for the pool.
        if st.toggle("Find the nearest training images", key="stk_nearest", value=False):
            pool = gs.nearest_pool(config.dataset, config.resolution)
            found = gs.nearest_caption(model, key, pool, caption)
            st.markdown(
                f"**The nearest training caption** (by this model's text encoder; cosine "
                f"{found.similarity:.2f}): “{found.caption}”. A lookup of the training data "
                "would show its picture; the model draws its own."
            )
            left, right = st.columns(2)
            left.image(gs.enlarge(found.image), caption="its training image")
            right.image(gs.enlarge(stage2[0]), caption="sample 1, Stage-II")
            st.markdown(
                f"**Is it a copy?** Each sample beside the nearest of {len(pool.images):,} "
                f"training images in pixels. {pool.note}"
            )
            checks = gs.copy_checks(pool, stage2)
            columns = st.columns(2)
            for j, check in enumerate(checks):
                box = columns[j % 2]
                box.image(
                    gs.pair_picture(stage2[j], pool.images[check.index].float() / 127.5 - 1),
                    caption=f"sample {j + 1} · its nearest training image",
                )
                box.markdown(gs.copy_verdict(check))

share_url(SHARED)
