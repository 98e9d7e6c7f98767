"""Pose transfer (PG2): a person in any pose, beside the baselines, and animated."""

import streamlit as st

from gallery import pose as gp
from gallery.common import examples_ui, model_picker_ui, seed_ui, share_url, url_state
from gallery.models import models_link_ui
from hub_models import figuredata as fd
from hub_models.imagedata import DataError

st.title(gp.FAMILY.title)
st.write(
    "Pick a person and a target pose: PG2 draws the person in that pose from one picture of "
    "them and the pose's 18 keypoints. Both stages also see the source cut limb by limb and "
    "moved into the pose (the limb warp shown beside them). Where the person turns round, the "
    "model's copy of the warp leaves out the torso and head, which would show the wrong side, "
    "and where they turn away, paints them in the shirt and hair colours. Stage I draws a "
    "coarse picture; "
    "Stage II adds the details, trained against a discriminator that judges whether the "
    "picture shows the same person. The people are drawn by this project's renderer, so the "
    "renderer's own picture of the person in the pose shows what the answer should be."
)

SHARED = {  # what a link to this page reproduces
    "pose_person_kind": gp.PERSON_KINDS,
    "pose_person": int,
    "pose_new_seed": int,
    "pose_view": tuple(fd.VIEWS),
    "pose_target_kind": gp.TARGET_KINDS,
    "pose_preset": tuple(gp.PRESETS),
    "pose_donor": int,
    "pose_donor_seed": int,
    "pose_sequence": tuple(fd.SEQUENCES),
    "pose_frames": int,
}
url_state(SHARED)
examples_ui(
    {
        "Both arms up": {
            "pose_source": "Published",
            "pose_person_kind": gp.TEST_PERSON,
            "pose_person": 3,
            "pose_view": "front",
            "pose_target_kind": gp.PRESET,
            "pose_preset": "Both arms up",
        },
        "Turned around": {
            "pose_source": "Published",
            "pose_person_kind": gp.TEST_PERSON,
            "pose_person": 10,
            "pose_view": "front",
            "pose_target_kind": gp.PRESET,
            "pose_preset": "Seen from behind",
        },
        "A new person in another's pose": {
            "pose_source": "Published",
            "pose_person_kind": gp.NEW_PERSON,
            "pose_new_seed": 7,
            "pose_target_kind": gp.DONOR,
            "pose_donor": 12,
            "pose_donor_seed": 4,
        },
    },
    "pose_example",
)
top = st.columns([1, 2])


def choose_published(box) -> str:
    return box.selectbox(
        "Published model", gp.model_names(), format_func=gp.model_title, key="pose_model"
    )


choice = model_picker_ui(
    "pose",
    "pose",
    choose_published,
    "python -m training train pose --out DIR",
    source_box=top[0],
    choice_box=top[1],
)
model = choice.model
models_link_ui("pose", choice.key if choice.where else None)
# A published model is named by its revision; a folder's model by the object loaded from it
# (a retrained folder loads as a new object).
model_key = f"{choice.key}@{choice.where.revision}" if choice.where else f"{choice.key}:{id(model)}"
resolution = model.config.resolution

st.subheader("The person")
cols = st.columns(3)
kind = cols[0].radio("Person", gp.PERSON_KINDS, key="pose_person_kind")
if kind == gp.TEST_PERSON:
    gp.keep_in_range("pose_person", 0, len(gp.TEST_IDS) - 1)
    number = cols[1].number_input(
        "Test person",
        min_value=0,
        max_value=len(gp.TEST_IDS) - 1,
        step=1,
        key="pose_person",
        help=f"One of the {len(gp.TEST_IDS):,} held-out people: the model never saw them.",
    )
else:
    gp.keep_in_range("pose_new_seed", 0, gp.MAX_SEED)
    number = seed_ui("pose_new_seed", cols[1], "New person's seed")
view = cols[2].selectbox(
    "Source picture seen from",
    fd.VIEWS,
    format_func=gp.VIEW_TITLES.get,
    key="pose_view",
    help="The person stands in the source picture; the model sees only this picture of them.",
)
who = gp.person(kind, int(number))
source = gp.source_pose(view)


def angle_sliders() -> fd.Pose:
    """One slider per joint, within the renderer's joint limits; a preset sets them all."""

    def set_sliders() -> None:
        preset = gp.PRESETS[st.session_state["pose_angles_start"]]
        for name, value in gp.angles_of(preset).items():
            st.session_state[f"pose_angle_{name}"] = value

    left, right = st.columns([2, 1], vertical_alignment="bottom")
    start = left.selectbox(
        "Set the sliders to a preset",
        list(gp.PRESETS),
        key="pose_angles_start",
        on_change=set_sliders,
    )
    right.button("Reset the sliders to it", on_click=set_sliders, key="pose_angles_reset")
    for name, value in gp.angles_of(gp.PRESETS[start]).items():
        st.session_state.setdefault(f"pose_angle_{name}", value)
    angles = {}
    columns = st.columns(len(gp.JOINT_GROUPS))
    for column, (group, joints) in zip(columns, gp.JOINT_GROUPS.items(), strict=True):
        column.markdown(f"**{group}**")
        for name, label in joints:
            lo, hi = gp.angle_limits(name)
            gp.keep_in_range(f"pose_angle_{name}", lo, hi)
            angles[name] = column.slider(
                label,
                min_value=lo,
                max_value=hi,
                step=1.0,
                format="%.0f°",
                key=f"pose_angle_{name}",
                help=f"Degrees, from {lo:g} to {hi:g}: how far the renderer's joint goes.",
            )
    return gp.pose_from_angles(angles)


def target_ui(target_kind: str):
    """The target pose, and whose body it is given on (None: the person's own)."""
    if target_kind == gp.PRESET:
        return gp.PRESETS[st.selectbox("Pose", list(gp.PRESETS), key="pose_preset")], None
    if target_kind == gp.ANGLES:
        return angle_sliders(), None
    cols = st.columns([1, 1, 1])
    gp.keep_in_range("pose_donor", 0, len(gp.TEST_IDS) - 1)
    gp.keep_in_range("pose_donor_seed", 0, gp.MAX_SEED)
    index = cols[0].number_input(
        "Whose pose: test person",
        min_value=0,
        max_value=len(gp.TEST_IDS) - 1,
        step=1,
        key="pose_donor",
    )
    pose_seed = cols[1].number_input(
        "Their pose (seed)", min_value=0, max_value=gp.MAX_SEED, step=1, key="pose_donor_seed"
    )
    donor, pose = gp.donor_pose(int(index), int(pose_seed))
    cols[2].image(
        gp.picture(gp.render_picture(donor, pose, resolution)),
        caption=f"{donor.label}: the pose to copy",
    )
    return pose, donor


def show_scores(scores: dict[str, dict[str, float]]) -> None:
    cols = st.columns(len(scores))
    for column, (method, score) in zip(cols, scores.items(), strict=True):
        column.metric(
            f"mask-SSIM, {gp.METHOD_TITLES[method]}",
            f"{score['mask_ssim']:.3f}",
            help=f"Structural similarity to the renderer's picture (1 = the same), the "
            f"background blacked out in both (PG2's mask-SSIM). SSIM of the whole picture: "
            f"{score['ssim']:.3f}.",
        )


def transfer_tab() -> None:
    target_kind = st.radio("Target pose", gp.TARGET_KINDS, horizontal=True, key="pose_target_kind")
    # The pictures go above the pose's controls, so that a slider's effect shows as it moves.
    results = st.container()
    try:
        target, donor = target_ui(target_kind)
        shown = gp.transfer_view(model, who, source, target, donor)
    except DataError as error:
        results.error(str(error))
        return
    titles = {
        "source": f"source: {who.label}",
        "skeleton": "target pose (what the model is told)",
        "stage1": "Stage I (coarse)",
        "final": "PG2 final (Stage II)",
        "warp": "limb warp (baseline)",
        "truth": "the renderer's picture (the answer)",
    }
    with results:
        for column, (name, title) in zip(st.columns(len(titles)), titles.items(), strict=True):
            column.image(gp.picture(getattr(shown, name)), caption=title, width="stretch")
        if shown.scores is not None:
            show_scores(shown.scores)
    if shown.scores is not None:
        st.caption(
            "The figure covers about a tenth of the picture, so mask-SSIM is high for any "
            "method: compare the differences. The model card compares them over "
            f"{model.config.eval_pairs} held-out pairs (python -m benchmarks pose)."
        )
    else:
        st.caption(
            f"The keypoints are {donor.label}'s, with their body's proportions: the renderer's "
            "picture is this person's own body in the same joint angles, so it is shown, not "
            "scored."
        )
    st.download_button(
        "Download this row (PNG)",
        gp.row_png(shown),
        file_name=f"pose-transfer-{who.slug}.png",
        mime="image/png",
        key="pose_download_row",
    )


def animate_tab() -> None:
    cols = st.columns(2)
    sequence = cols[0].selectbox(
        "Sequence", fd.SEQUENCES, format_func=gp.SEQUENCE_TITLES.get, key="pose_sequence"
    )
    st.session_state.setdefault("pose_frames", gp.DEFAULT_FRAMES)
    gp.keep_in_range("pose_frames", gp.MIN_FRAMES, gp.MAX_FRAMES)
    frames = cols[1].slider(
        "Frames",
        min_value=gp.MIN_FRAMES,
        max_value=gp.MAX_FRAMES,
        key="pose_frames",
        help=f"Frames of one loop, shown {gp.SECONDS_PER_FRAME:g} s each.",
    )
    try:
        gif = gp.animation_gif(model_key, model, kind, int(number), view, sequence, int(frames))
    except DataError as error:
        st.error(str(error))
        return
    # The GIF holds two pictures: twice the source's column, so all three show at one size.
    left, right, _ = st.columns([1, 2, 1])
    left.image(
        gp.picture(gp.render_picture(who, source, resolution)),
        caption=f"source: {who.label}",
        width="stretch",
    )
    right.image(
        gif,
        caption=f"{who.label} through one {sequence} loop, {frames} frames drawn in one pass "
        "from the source picture: the pose (left) and PG2's picture (right)",
        width="stretch",
    )
    st.download_button(
        "Download GIF",
        gif,
        file_name=f"pose-{who.slug}-{sequence}.gif",
        mime="image/gif",
        key="pose_download_gif",
    )


one, animated = st.tabs(["Transfer to a pose", "Animate a sequence"])
with one:
    transfer_tab()
with animated:
    animate_tab()

share_url(SHARED)
