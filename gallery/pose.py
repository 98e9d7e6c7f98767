"""What the pose-transfer page computes: people and target poses from the renderer, one transfer
beside its baselines and the renderer's own picture, and looping GIFs of pose sequences."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import streamlit as st
import torch
from PIL import Image

from hub_models import figuredata as fd
from hub_models import imagedata
from hub_models.imagedata import DataError
from hub_models.pose import (
    PosePG2,
    images_from_renders,
    mask_ssim,
    sequence_keypoints,
    ssim,
    transfer,
    warp_limbs,
)
from hub_models.registry import FAMILIES

FAMILY = FAMILIES["pose"]
DISPLAY = 192  # pixels the page shows each picture at
TEST_IDS = fd.identities("test")  # held-out people: never seen in training
# New people and donors' poses come from random streams of their own, so that a seed never
# reproduces a split's identity or a training pair.
NEW_PERSON_STREAM = 314_159
DONOR_POSE_STREAM = 271_828
MAX_SEED = 2**31 - 1
MIN_FRAMES, MAX_FRAMES, DEFAULT_FRAMES = 8, 60, 30
SECONDS_PER_FRAME = 0.08

TEST_PERSON, NEW_PERSON = "A test person", "A new person"
PERSON_KINDS = (TEST_PERSON, NEW_PERSON)
PRESET, ANGLES, DONOR = "Preset", "Joint angles", "Another person's pose"
TARGET_KINDS = (PRESET, ANGLES, DONOR)
VIEW_TITLES = {"front": "front", "three_quarter": "three-quarter", "side": "side", "back": "back"}
SEQUENCE_TITLES = {
    "walk": "walk (side view)",
    "wave": "wave (right hand)",
    "jump": "jump",
    "turn": "turn on the spot",
}

# The first is where the page starts: a pose a copy of the standing source does not match.
PRESETS: dict[str, fd.Pose] = {
    "Both arms up": fd.Pose(
        r_shoulder_flex=170.0,
        l_shoulder_flex=170.0,
        r_shoulder_abd=15.0,
        l_shoulder_abd=15.0,
        r_elbow=5.0,
        l_elbow=5.0,
    ),
    "Arms out (T)": fd.Pose(r_shoulder_abd=90.0, l_shoulder_abd=90.0, r_elbow=0.0, l_elbow=0.0),
    "Wave": fd.Pose(r_shoulder_abd=78.0, r_shoulder_flex=12.0, r_shoulder_twist=85.0, r_elbow=70.0),
    "Kick": fd.Pose(
        yaw=-60.0,
        r_hip_flex=85.0,
        r_knee=10.0,
        torso_lean=-8.0,
        r_shoulder_abd=40.0,
        l_shoulder_abd=40.0,
    ),
    "Knee lift": fd.Pose(
        l_hip_flex=95.0,
        l_knee=110.0,
        r_shoulder_flex=40.0,
        r_elbow=90.0,
        l_shoulder_flex=-30.0,
    ),
    "Crouch": fd.Pose(
        yaw=45.0,
        torso_lean=22.0,
        r_hip_flex=40.0,
        l_hip_flex=40.0,
        r_knee=70.0,
        l_knee=70.0,
        r_shoulder_flex=-35.0,
        l_shoulder_flex=-35.0,
        r_elbow=20.0,
        l_elbow=20.0,
    ),
    "Striding, side view": fd.Pose(
        yaw=90.0,
        torso_lean=5.0,
        r_hip_flex=24.0,
        l_hip_flex=-24.0,
        r_knee=16.0,
        l_knee=16.0,
        r_shoulder_flex=-22.0,
        l_shoulder_flex=22.0,
        r_elbow=15.0,
        l_elbow=30.0,
    ),
    "Arms forward, three-quarter": fd.Pose(
        yaw=-45.0, r_shoulder_flex=90.0, l_shoulder_flex=90.0, r_elbow=10.0, l_elbow=10.0
    ),
    "Standing": fd.Pose(),
    "Seen from behind": fd.Pose(yaw=180.0, r_shoulder_abd=25.0, l_shoulder_abd=25.0),
}

# The sliders: every joint of figuredata.Pose with its limits, grouped as a body is.
JOINT_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "Body": (
        ("yaw", "Turn (0 faces you, 90 shows their right side, 180 their back)"),
        ("torso_lean", "Lean forwards"),
        ("head_tilt", "Tilt the head to their left"),
    ),
    **{
        f"{side.title()} arm (theirs)": (
            (f"{side[0]}_shoulder_flex", "Raise forwards"),
            (f"{side[0]}_shoulder_abd", "Raise sideways"),
            (f"{side[0]}_shoulder_twist", "Turn the forearm up and out"),
            (f"{side[0]}_elbow", "Bend the elbow"),
        )
        for side in ("right", "left")
    },
    **{
        f"{side.title()} leg (theirs)": (
            (f"{side[0]}_hip_flex", "Raise forwards"),
            (f"{side[0]}_hip_abd", "Out to the side"),
            (f"{side[0]}_knee", "Bend the knee"),
        )
        for side in ("right", "left")
    },
}
YAW_LIMITS = (-180.0, 180.0)


def model_names() -> list[str]:
    return [m.name for m in FAMILY.models]


def model_title(name: str) -> str:
    return FAMILY.model(name).title


# -- people and poses --------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    identity: fd.Identity
    label: str  # names the person in captions
    slug: str  # ... and in file names


def held_out_person(index: int) -> Person:
    """The ``index``-th held-out identity."""
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise DataError(f"a test person is picked by a number, not {index!r}")
    if not 0 <= index < len(TEST_IDS):
        raise DataError(f"test people are numbered 0 to {len(TEST_IDS) - 1}, not {index}")
    identity_id = TEST_IDS[int(index)]
    return Person(
        fd.identity(identity_id), f"test person {index} (id {identity_id})", f"test-person-{index}"
    )


def check_seed(seed: int, what: str) -> int:
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not 0 <= seed <= MAX_SEED
    ):
        raise DataError(f"{what} is a whole number from 0 to {MAX_SEED}, not {seed!r}")
    return int(seed)


def new_person(seed: int) -> Person:
    """A person the renderer draws for ``seed``: in no split, so never seen in training."""
    rng = np.random.default_rng([NEW_PERSON_STREAM, check_seed(seed, "a new person's seed")])
    return Person(fd.random_identity(rng), f"new person {seed}", f"new-person-{seed}")


def person(kind: str, number: int) -> Person:
    if kind == TEST_PERSON:
        return held_out_person(number)
    if kind == NEW_PERSON:
        return new_person(number)
    raise DataError(f"unknown kind of person {kind!r}; choose one of {', '.join(PERSON_KINDS)}")


def source_pose(view: str) -> fd.Pose:
    """Standing, seen from ``view``: the source picture the model transfers from."""
    if view not in fd.VIEW_YAW:
        raise DataError(f"unknown view {view!r}; choose one of {', '.join(fd.VIEWS)}")
    return fd.Pose(yaw=fd.VIEW_YAW[view])


def donor_pose(index: int, pose_seed: int) -> tuple[Person, fd.Pose]:
    """Another test person in a natural pose drawn with ``pose_seed``: whose pose to copy."""
    rng = np.random.default_rng([DONOR_POSE_STREAM, check_seed(pose_seed, "a pose's seed")])
    return held_out_person(index), fd.random_pose(rng)


def angle_limits(name: str) -> tuple[float, float]:
    """A slider's range: the renderer's joint limits (any turn for the yaw)."""
    if name == "yaw":
        return YAW_LIMITS
    if name not in fd.JOINT_LIMITS:
        raise DataError(f"{name!r} is not a joint; joints: {', '.join(fd.JOINT_LIMITS)}")
    return fd.JOINT_LIMITS[name]


def slider_names() -> list[str]:
    return [name for joints in JOINT_GROUPS.values() for name, _ in joints]


def angles_of(pose: fd.Pose) -> dict[str, float]:
    """The slider values of a pose."""
    return {name: float(getattr(pose, name)) for name in slider_names()}


def pose_from_angles(angles: dict[str, float]) -> fd.Pose:
    """A pose from slider values; anything outside the joint limits is refused by name."""
    known = {f.name for f in fields(fd.Pose)}
    unknown = sorted(set(angles) - known)
    if unknown:
        raise DataError(f"not joints of a pose: {', '.join(unknown)}")
    pose = fd.Pose(**{name: float(value) for name, value in angles.items()})
    lo, hi = YAW_LIMITS
    if not lo <= pose.yaw <= hi:
        raise DataError(f"yaw={pose.yaw:g} is outside {lo:g}..{hi:g}")
    return fd.check_pose(pose)


def keep_in_range(key: str, lo: float, hi: float) -> None:
    """Pull a widget's stored value (from a hand-edited link, say) inside its range before the
    widget is drawn: Streamlit refuses a number input whose value lies outside."""
    value = st.session_state.get(key)
    if isinstance(value, int | float) and not lo <= value <= hi:
        st.session_state[key] = type(value)(min(max(value, lo), hi))


# -- one transfer ------------------------------------------------------------------------------

METHOD_TITLES = {"final": "PG2 final", "stage1": "Stage I", "warp": "limb warp", "copy": "copy"}


@dataclass
class TransferView:
    """One person moved to one pose: (3, R, R) pictures in [-1, 1] and their scores."""

    source: torch.Tensor
    skeleton: torch.Tensor  # the target pose as the model is told it
    stage1: torch.Tensor
    final: torch.Tensor
    warp: torch.Tensor  # the piecewise-affine baseline
    truth: torch.Tensor  # the renderer's picture of the person in the target pose
    # method -> {"ssim", "mask_ssim"} against ``truth``; None when the target keypoints are
    # another body's (the truth is then this person's body, not the pose the model was given)
    scores: dict[str, dict[str, float]] | None


def transfer_view(
    model: PosePG2,
    who: Person,
    source: fd.Pose,
    target: fd.Pose,
    donor: Person | None = None,
) -> TransferView:
    """``who`` seen in ``source``, moved to ``target``: the target keypoints are the person's
    own body in that pose, or ``donor``'s (a pose copied from someone else keeps their
    proportions, as a pose detected in another picture would)."""
    r = model.config.resolution
    source_image, source_points, _ = fd.render(who.identity, source, r)
    body = (donor or who).identity
    points, visible = fd.keypoints(body, target, r)
    truth_image, _, _ = fd.render(who.identity, target, r)
    source_x = images_from_renders(source_image[None])
    stage1, final = transfer(model, source_x, points[None], visible[None], source_points[None])
    warp = warp_limbs(source_x, source_points[None], points[None])
    truth = images_from_renders(truth_image[None])
    scores = None
    if donor is None:
        mask = torch.from_numpy(fd.figure_mask(who.identity, target, r))[None, None]
        outputs = {"final": final, "stage1": stage1, "warp": warp, "copy": source_x}
        scores = {
            method: {
                "ssim": float(ssim(image, truth)[0]),
                "mask_ssim": float(mask_ssim(image, truth, mask)[0]),
            }
            for method, image in outputs.items()
        }
    skeleton = images_from_renders(fd.skeleton_image(points, visible, r)[None])
    return TransferView(source_x[0], skeleton[0], stage1[0], final[0], warp[0], truth[0], scores)


def render_picture(who: Person, pose: fd.Pose, resolution: int) -> torch.Tensor:
    """(3, R, R) in [-1, 1]: the renderer's picture of the person in the pose."""
    return images_from_renders(fd.render(who.identity, pose, resolution)[0][None])[0]


def scale_for(resolution: int) -> int:
    return max(1, DISPLAY // resolution)


def picture(image: torch.Tensor) -> Image.Image:
    """A (3, R, R) image in [-1, 1], enlarged with crisp pixels for display."""
    array = imagedata.to_uint8(image[None].clamp(-1, 1))[0]
    return imagedata.to_pil(array, scale_for(image.shape[-1]))


def row_png(view: TransferView) -> bytes:
    """The row the page shows, as one PNG: source, skeleton, Stage I, final, warp, truth."""
    row = torch.stack([view.source, view.skeleton, view.stage1, view.final, view.warp, view.truth])
    return imagedata.png_bytes(imagedata.grid(row, columns=len(row), scale=2))


# -- animation ---------------------------------------------------------------------------------


def check_frames(frames: int) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer):
        raise DataError(f"the number of frames is a whole number, not {frames!r}")
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise DataError(f"an animation has {MIN_FRAMES} to {MAX_FRAMES} frames, not {frames}")
    return int(frames)


def animation(
    model: PosePG2, who: Person, source: fd.Pose, sequence: str, frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames, 3, R, R) generated frames of the person through a pose sequence (the person's
    own body in every pose), in one forward pass, and the skeletons they were told."""
    frames = check_frames(frames)
    if sequence not in fd.SEQUENCES:
        raise DataError(f"unknown sequence {sequence!r}; choose one of {', '.join(fd.SEQUENCES)}")
    r = model.config.resolution
    source_x = render_picture(who, source, r)[None]
    points, visible = sequence_keypoints(who.identity, sequence, frames, r)
    standing = np.repeat(fd.keypoints(who.identity, source, r)[0][None], len(points), 0)
    _, final = transfer(model, source_x.expand(len(points), -1, -1, -1), points, visible, standing)
    drawn = [fd.skeleton_image(p, v, r) for p, v in zip(points, visible, strict=True)]
    return final, images_from_renders(np.stack(drawn))


def looping_gif(pictures: list[Image.Image], seconds_per_frame: float = SECONDS_PER_FRAME) -> bytes:
    """The sequences loop (the frame after the last is the first): played forwards, again."""
    return imagedata.gif_bytes(pictures, seconds_per_frame, bounce=False)


def animation_pictures(generated: torch.Tensor, skeletons: torch.Tensor) -> list[Image.Image]:
    """One picture per frame: the skeleton beside the generated person."""
    scale = scale_for(generated.shape[-1])
    return [
        imagedata.grid(torch.stack([bones, person]), columns=2, scale=scale)
        for bones, person in zip(skeletons, generated, strict=True)
    ]


@st.cache_data(show_spinner="Animating…", max_entries=16)
def animation_gif(
    model_key: str,
    _model: PosePG2,
    person_kind: str,
    person_number: int,
    view: str,
    sequence: str,
    frames: int,
) -> bytes:
    """The GIF of a person through a sequence, made once per model (``model_key`` names it)
    and choice."""
    who = person(person_kind, person_number)
    generated, skeletons = animation(_model, who, source_pose(view), sequence, frames)
    return looping_gif(animation_pictures(generated, skeletons))
