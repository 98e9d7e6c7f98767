"""Procedural people for pose transfer: articulated figures with exact COCO-18 keypoints.

Why draw people: a pose-transfer model (PG2, Ma et al. 2017) learns "this person, in that pose"
from pairs of images of one person in two poses, conditioned on heatmaps of the target pose's
keypoints. DeepFashion and Market-1501 ship with no wheel and nothing can be downloaded here,
and there is no pose estimator to label photographs with. Drawing the people gives what the
model needs and what real data lacks: keypoints that are exact (hidden joints included), a
visibility flag that is right by construction, identities that never leak from train to test,
and as many pairs as wanted, reproducibly from a seed.

The model: a 3-D skeleton in figure units (a person of height 1 stands about 0.94 tall to the
top of the head; y up, x towards the figure's left, z towards where it faces). Joint angles are
bounded by ``JOINT_LIMITS``; the figure stands on the floor (its lower ankle sets the height)
and turns about the vertical axis by ``Pose.yaw``, which also names the view. The projection is
orthographic. Limbs are tapered capsules around the bones and the torso a quad around the
spine, painted far to near at ``SUPERSAMPLE`` times the size and then box-reduced, which
antialiases the edges. Clothes show which way the person faces: the shirt's front pattern is
never its back pattern, the face is drawn only from the front half, and hair covers the head
from behind.

A keypoint is visible when it is inside the picture, a face point turns towards the camera,
and no body part it does not belong to lies in front of it (clothing and hair hide nothing:
annotators mark a knee under a skirt as visible). Hidden keypoints keep their positions.

Coordinates: keypoints are (x, y) pixels with (0, 0) the top-left corner of the top-left pixel,
so the pixel holding keypoint (x, y) is ``image[int(y), int(x)]``.

Render rate, measured with ``render_pairs`` (two renders per pair, new identities included) on
this project's 2-core machine at ``nice 19`` while both cores were busy with a training run
(load average 5), so an idle machine is faster: about 640 renders/s at 64x64 and 470/s at
128x128, i.e. 1,000 pairs in ~3 s at 64 and ~4 s at 128. Most of a render is Python geometry
(kinematics, visibility), not pixels, so 128 costs little more than 64.
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from hub_models.imagedata import DataError

KEYPOINTS = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)
(NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST) = range(8)
(R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EYE, L_EYE, R_EAR, L_EAR) = range(8, 18)
FACE_POINTS = (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)

# The 17 limbs OpenPose draws for COCO-18, and its colours (a hue sweep), for display.
LIMBS = (
    (NECK, R_SHOULDER),
    (NECK, L_SHOULDER),
    (R_SHOULDER, R_ELBOW),
    (R_ELBOW, R_WRIST),
    (L_SHOULDER, L_ELBOW),
    (L_ELBOW, L_WRIST),
    (NECK, R_HIP),
    (R_HIP, R_KNEE),
    (R_KNEE, R_ANKLE),
    (NECK, L_HIP),
    (L_HIP, L_KNEE),
    (L_KNEE, L_ANKLE),
    (NECK, NOSE),
    (NOSE, R_EYE),
    (R_EYE, R_EAR),
    (NOSE, L_EYE),
    (L_EYE, L_EAR),
)
LIMB_COLOURS = tuple(
    tuple(round(255 * c) for c in colorsys.hsv_to_rgb(i / len(LIMBS), 1.0, 1.0))
    for i in range(len(LIMBS))
)

VIEWS = ("front", "three_quarter", "side", "back")
VIEW_YAW = {"front": 0.0, "three_quarter": 45.0, "side": 90.0, "back": 180.0}
RESOLUTIONS = (64, 128)
SUPERSAMPLE = 4  # drawn at 4x and box-reduced: 16 samples per pixel for the edges
SEQUENCES = ("walk", "wave", "jump", "turn")

# Identities are integers; each split owns one range, with gaps between them so that an
# off-by-one (or off-by-a-thousand) id can never land in another split.
SPLITS = {
    "train": range(0, 5_000),
    "val": range(50_000, 50_500),
    "test": range(100_000, 101_000),
}
IDENTITY_SEED = 518_2017  # identity i is drawn from default_rng([IDENTITY_SEED, i])

# Degrees, per Pose field. Flexion is forwards (a raised arm or leg), abduction outwards, a
# positive shoulder twist is external rotation (the bent forearm turns up and out), a positive
# lean is forwards and a positive head tilt towards the figure's left shoulder. The ranges are
# within what people reach; the arm's abduction stops at horizontal so that, combined with
# any flexion, the arm never swings across the body.
_LIMITS_ONE_SIDE = {
    "shoulder_flex": (-50.0, 175.0),
    "shoulder_abd": (0.0, 90.0),
    "shoulder_twist": (-30.0, 90.0),
    "elbow": (0.0, 145.0),
    "hip_flex": (-30.0, 110.0),
    "hip_abd": (-10.0, 45.0),
    "knee": (0.0, 140.0),
}
JOINT_LIMITS = {
    "torso_lean": (-15.0, 40.0),
    "head_tilt": (-30.0, 30.0),
    **{f"{side}_{joint}": lim for side in "rl" for joint, lim in _LIMITS_ONE_SIDE.items()},
}
# Root jitter: x and y in fractions of the picture (negative y lifts off the floor, as in a
# jump), scale a factor on the figure's size.
ROOT_LIMITS = {"x": (-0.06, 0.06), "y": (-0.1, 0.03), "scale": (0.9, 1.06)}

# Body proportions in figure units for a person of height 1 (widths also scale with build).
HEAD_R = 0.062
NECK_LENGTH = 0.085  # neck keypoint (between the shoulders) to the head's centre
SPINE = 0.29  # pelvis to neck
SHOULDER_W, HIP_W = 0.095, 0.052  # half-widths between the joints
CHEST_DEPTH, PELVIS_DEPTH = 0.055, 0.06  # half-depths: the torso seen from the side
UPPER_ARM, FOREARM, THIGH, SHIN = 0.16, 0.145, 0.23, 0.22
ANKLE_HEIGHT = 0.035
# Radii at the two ends of each capsule.
UPPER_ARM_RADII, FOREARM_RADII = (0.027, 0.023), (0.022, 0.018)
THIGH_RADII, SHIN_RADII = (0.04, 0.032), (0.031, 0.024)
HAND_RADIUS, FOOT_RADIUS, NECK_RADIUS = 0.024, 0.024, 0.03
# Placement: pixels per figure unit and the floor's height, as fractions of the resolution.
# A tall person (1.06) at the largest scale with both arms straight up still fits.
PX_PER_UNIT = 0.68
FLOOR = 0.93
HIDE_MARGIN = 0.02  # figure units a part must be nearer than a keypoint to hide it
FAR_SHADE = 0.82  # far-side limbs are drawn darker: a depth cue the model can use
EYE_COLOUR = (35, 28, 28)
MIN_BACKGROUND_DISTANCE = 70.0  # RGB distance between the background and anything drawn

# Face points in the head's frame, in head radii; all lie well inside the head's sphere so that
# they land on the drawn head, not on its antialiased rim. Then the threshold on how far each
# must turn towards the camera (the z of its unit direction) to be seen: the nose is seen in
# profile, the far eye is not.
_FACE_OFFSETS = {
    NOSE: ((0.0, -0.2, 0.78), -0.3),
    R_EYE: ((-0.34, 0.12, 0.72), 0.15),
    L_EYE: ((0.34, 0.12, 0.72), 0.15),
    R_EAR: ((-0.75, 0.05, -0.1), -0.3),
    L_EAR: ((0.75, 0.05, -0.1), -0.3),
}
_HAIR_OFFSET, _FACE_OFFSET, _MOUTH_OFFSET = (0.0, 0.12, -0.18), (0.0, -0.12, 0.45), (0.0, -0.5, 0.8)
_LONG_HAIR = ((0.0, 0.0, -0.4), (0.0, -2.2, -0.5))

# Extra points after the 18 keypoints, used for drawing.
(PELVIS, HEAD, R_HAND, L_HAND, R_TOE, L_TOE, R_HEEL, L_HEEL) = range(18, 26)
(HAIR, FACE, MOUTH, HAIR_TOP, HAIR_END) = range(26, 31)

SKIN_TONES = (
    (255, 224, 196),
    (241, 194, 160),
    (224, 172, 130),
    (198, 134, 92),
    (161, 102, 66),
    (120, 76, 48),
    (88, 57, 39),
)
HAIR_COLOURS = (
    (25, 20, 18),
    (60, 40, 28),
    (101, 67, 40),
    (150, 100, 55),
    (205, 165, 95),
    (230, 210, 150),
    (140, 140, 140),
    (165, 60, 35),
)
BOTTOM_COLOURS = (
    (40, 60, 110),
    (30, 30, 35),
    (125, 112, 88),
    (90, 90, 95),
    (75, 48, 36),
    (150, 40, 50),
    (205, 205, 198),
    (60, 95, 60),
)
SHOE_COLOURS = ((20, 20, 20), (238, 238, 238), (110, 70, 40), (170, 30, 30), (40, 60, 140))
HAIR_STYLES = ("short", "long")
SLEEVES = ("short", "long")
BOTTOMS = ("trousers", "shorts", "skirt")
FRONT_PATTERNS = ("stripes", "two_tone", "vneck")
BACK_PATTERNS = ("plain", "logo", "yoke")  # none of them is a front pattern

Colour = tuple[int, int, int]


# -- people and poses --------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """What a person looks like, whatever the pose: build, colours and clothes."""

    height: float  # 1.0 = average; scales every length
    build: float  # 1.0 = average; scales widths only
    skin: Colour
    hair: Colour
    hair_style: str  # HAIR_STYLES
    shirt: Colour
    shirt_accent: Colour  # the colour of the shirt's patterns
    front_pattern: str  # FRONT_PATTERNS: shows when the person faces the camera
    back_pattern: str  # BACK_PATTERNS: shows from behind
    sleeves: str  # SLEEVES
    bottom: Colour
    bottom_style: str  # BOTTOMS
    shoes: Colour
    background_top: Colour
    background_bottom: Colour  # equal to background_top for a plain background

    def __post_init__(self) -> None:
        for name, allowed in (
            ("hair_style", HAIR_STYLES),
            ("front_pattern", FRONT_PATTERNS),
            ("back_pattern", BACK_PATTERNS),
            ("sleeves", SLEEVES),
            ("bottom_style", BOTTOMS),
        ):
            if getattr(self, name) not in allowed:
                raise DataError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}"
                )
        if not (0.8 <= self.height <= 1.1 and 0.7 <= self.build <= 1.3):
            raise DataError(
                f"height {self.height} and build {self.build} must lie in 0.8..1.1 and 0.7..1.3"
            )

    def figure_colours(self) -> list[Colour]:
        """Every colour the figure is painted with, far-side shading included."""
        base = [self.skin, self.hair, self.shirt, self.shirt_accent, self.bottom, self.shoes]
        return [*base, *(_shade(c, FAR_SHADE) for c in base), EYE_COLOUR]


@dataclass(frozen=True)
class Pose:
    """Joint angles in degrees (see ``JOINT_LIMITS``), the turn, and a small root jitter.

    ``yaw`` turns the figure about the vertical axis: 0 faces the camera, 90 shows its right
    side (facing right in the picture), -90 its left side, 180 its back. ``view`` names it.
    """

    yaw: float = 0.0
    torso_lean: float = 0.0
    head_tilt: float = 0.0
    r_shoulder_flex: float = 0.0
    r_shoulder_abd: float = 8.0
    r_shoulder_twist: float = 0.0
    r_elbow: float = 10.0
    l_shoulder_flex: float = 0.0
    l_shoulder_abd: float = 8.0
    l_shoulder_twist: float = 0.0
    l_elbow: float = 10.0
    r_hip_flex: float = 0.0
    r_hip_abd: float = 3.0
    r_knee: float = 0.0
    l_hip_flex: float = 0.0
    l_hip_abd: float = 3.0
    l_knee: float = 0.0
    x: float = 0.0
    y: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        bad = [f.name for f in fields(self) if not math.isfinite(getattr(self, f.name))]
        if bad:
            raise DataError(f"pose values must be finite numbers; not: {', '.join(bad)}")

    @property
    def view(self) -> str:
        return view_of(self.yaw)

    @property
    def view_id(self) -> int:
        return VIEWS.index(self.view)


def _wrap(degrees: float) -> float:
    """An angle in (-180, 180]."""
    wrapped = math.fmod(degrees, 360.0)
    if wrapped > 180.0:
        wrapped -= 360.0
    elif wrapped <= -180.0:
        wrapped += 360.0
    return wrapped


def view_of(yaw: float) -> str:
    """The named view nearest a yaw: front, three_quarter (±45), side (±90) or back (180).

    Turned past 112.5 degrees the face is gone, so that half of the circle is all "back".
    """
    turn = abs(_wrap(yaw))
    if turn < 22.5:
        return "front"
    if turn < 67.5:
        return "three_quarter"
    return "side" if turn < 112.5 else "back"


def _check_view(view: str) -> str:
    if view not in VIEWS:
        raise DataError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    return view


def clip_pose(pose: Pose) -> Pose:
    """The pose with every joint inside ``JOINT_LIMITS``, the root inside ``ROOT_LIMITS`` and
    the yaw wrapped into (-180, 180]."""
    limits = {**JOINT_LIMITS, **ROOT_LIMITS}
    clipped = {name: min(max(getattr(pose, name), lo), hi) for name, (lo, hi) in limits.items()}
    return replace(pose, yaw=_wrap(pose.yaw), **clipped)


def check_pose(pose: Pose) -> Pose:
    """The pose itself, or DataError naming every joint outside its limits."""
    limits = {**JOINT_LIMITS, **ROOT_LIMITS}
    bad = [
        f"{name}={getattr(pose, name):g} (limits {lo:g}..{hi:g})"
        for name, (lo, hi) in limits.items()
        if not lo - 1e-6 <= getattr(pose, name) <= hi + 1e-6
    ]
    if bad:
        raise DataError(f"pose outside human limits: {'; '.join(bad)}; clip_pose() fixes it")
    return pose


def random_pose(rng: np.random.Generator, view: str | None = None) -> Pose:
    """A natural pose in a given or random view, turned a little off the named angle.

    Angles are not drawn uniformly from the limits: most people in photographs stand, so
    legs mostly stay low and at most one is raised high.
    """
    view = _check_view(view) if view is not None else VIEWS[int(rng.integers(len(VIEWS)))]
    yaw = VIEW_YAW[view] + rng.uniform(-12.0, 12.0)
    if view != "front" and rng.random() < 0.5:
        yaw = -yaw  # the figure's other side
    angles: dict[str, float] = {}
    for side in "rl":
        raised = rng.random() < 0.5
        angles[f"{side}_shoulder_flex"] = rng.uniform(-40, 170) if raised else rng.uniform(-20, 40)
        angles[f"{side}_shoulder_abd"] = (
            rng.uniform(0, 90) if rng.random() < 0.5 else rng.uniform(0, 20)
        )
        angles[f"{side}_shoulder_twist"] = rng.uniform(-20, 90)
        angles[f"{side}_elbow"] = rng.uniform(0, 140)
        angles[f"{side}_hip_flex"] = rng.uniform(-20, 35)
        angles[f"{side}_hip_abd"] = rng.uniform(-5, 30)
        angles[f"{side}_knee"] = rng.uniform(0, 40)
    if rng.random() < 0.3:  # one leg raised: a kick, a step up, a knee lift
        side = "rl"[int(rng.integers(2))]
        angles[f"{side}_hip_flex"] = rng.uniform(35, 100)
        angles[f"{side}_knee"] = rng.uniform(0, 120)
    pose = Pose(
        yaw=yaw,
        torso_lean=rng.uniform(-10, 25),
        head_tilt=rng.uniform(-20, 20),
        x=rng.uniform(-0.04, 0.04),
        y=rng.uniform(-0.02, 0.02),
        scale=rng.uniform(0.92, 1.04),
        **angles,
    )
    return clip_pose(pose)


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (round(255 * r), round(255 * g), round(255 * b))


def _jitter(rng: np.random.Generator, colour: Colour, amount: int) -> Colour:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(round(c * factor) for c in colour)


def random_identity(rng: np.random.Generator) -> Identity:
    """A person: build, colours and clothes, with a background no figure colour is close to
    (so that every pixel of the figure stands out from the background)."""
    skin = _jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 8)
    hair = _jitter(rng, HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], 10)
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.35, 0.9), rng.uniform(0.35, 0.95)
    shirt = _hsv(hue, sat, val)
    # The accent contrasts in hue and brightness so that patterns show at 64 pixels.
    accent = _hsv(hue + rng.uniform(0.33, 0.67), rng.uniform(0.2, 0.8), 1.25 - val)
    partial = {
        "height": float(rng.uniform(0.9, 1.06)),
        "build": float(rng.uniform(0.85, 1.2)),
        "skin": skin,
        "hair": hair,
        "hair_style": HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        "shirt": shirt,
        "shirt_accent": accent,
        "front_pattern": FRONT_PATTERNS[int(rng.integers(len(FRONT_PATTERNS)))],
        "back_pattern": BACK_PATTERNS[int(rng.integers(len(BACK_PATTERNS)))],
        "sleeves": SLEEVES[int(rng.integers(len(SLEEVES)))],
        "bottom": _jitter(rng, BOTTOM_COLOURS[int(rng.integers(len(BOTTOM_COLOURS)))], 12),
        "bottom_style": BOTTOMS[int(rng.integers(len(BOTTOMS)))],
        "shoes": SHOE_COLOURS[int(rng.integers(len(SHOE_COLOURS)))],
    }
    probe = Identity(**partial, background_top=(0, 0, 0), background_bottom=(0, 0, 0))
    colours = np.array(probe.figure_colours(), float)

    def clearance(top: Colour, bottom: Colour) -> float:
        samples = np.linspace(top, bottom, 5)  # along the gradient
        return float(np.linalg.norm(samples[:, None] - colours[None], axis=-1).min())

    best, best_clearance = ((128, 128, 128), (128, 128, 128)), -1.0
    for _ in range(60):
        top = _hsv(rng.uniform(0, 1), rng.uniform(0, 0.35), rng.uniform(0.25, 0.98))
        bottom = top
        if rng.random() < 0.5:  # a vertical gradient
            bottom = _hsv(rng.uniform(0, 1), rng.uniform(0, 0.35), rng.uniform(0.25, 0.98))
        score = clearance(top, bottom)
        if score >= MIN_BACKGROUND_DISTANCE:
            best = (top, bottom)
            break
        if score > best_clearance:
            best, best_clearance = (top, bottom), score
    else:  # no luck (a rainbow of clothes): the plain greys, white and black are the fallback
        greys = [(g, g, g) for g in range(0, 256, 15)]
        grey = max(greys, key=lambda g: clearance(g, g))
        if clearance(grey, grey) > best_clearance:
            best = (grey, grey)
    return Identity(**partial, background_top=best[0], background_bottom=best[1])


def _split_name(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def identities(split: str) -> range:
    """The identity ids of a split; the splits' ranges never overlap."""
    return SPLITS[_split_name(split)]


def split_of(identity_id: int) -> str:
    """The split an identity id belongs to; DataError for an id in none of them."""
    if isinstance(identity_id, bool) or not isinstance(identity_id, int | np.integer):
        raise DataError(f"an identity id is an integer, not {identity_id!r}")
    for name, ids in SPLITS.items():
        if identity_id in ids:
            return name
    ranges = ", ".join(f"{n} {r.start}..{r.stop - 1}" for n, r in SPLITS.items())
    raise DataError(f"identity {identity_id} is in no split; ids are {ranges}")


def identity(identity_id: int) -> Identity:
    """The person with this id: the same on every call and machine."""
    split_of(identity_id)
    return _identity(int(identity_id))


@functools.cache
def _identity(identity_id: int) -> Identity:
    return random_identity(np.random.default_rng([IDENTITY_SEED, identity_id]))


@dataclass(frozen=True)
class Pair:
    """One person in two poses: the source image to transfer from and the target pose."""

    identity_id: int
    identity: Identity
    source: Pose
    target: Pose


def pair(identity_id: int, rng: np.random.Generator, split: str | None = None) -> Pair:
    """Two poses of one person; three times in four the target is seen from another view.

    With ``split`` given, an id outside that split is refused (a test id cannot slip into
    training this way).
    """
    if split is not None and identity_id not in identities(split):
        raise DataError(
            f"identity {identity_id} is not in the {split} split "
            f"(its ids are {SPLITS[split].start}..{SPLITS[split].stop - 1})"
        )
    person = identity(identity_id)
    source = random_pose(rng)
    view = source.view
    if rng.random() < 0.75:
        others = [v for v in VIEWS if v != view]
        view = others[int(rng.integers(len(others)))]
    return Pair(int(identity_id), person, source, random_pose(rng, view))


# -- forward kinematics ------------------------------------------------------------------------


def _pitch(degrees: float) -> np.ndarray:
    """Rotation about the left-right axis taking down (0, -1, 0) towards forwards (+z)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def _roll(degrees: float) -> np.ndarray:
    """Rotation about the forward axis taking up (0, 1, 0) towards the figure's left (+x)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _yaw(degrees: float) -> np.ndarray:
    """Turn about the vertical axis: at 90 degrees forwards (+z) points to the picture's right."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _arm(flex: float, abd: float, twist: float, elbow: float, side: int):
    """Unit directions of the upper arm and forearm in the torso's frame (side -1: right).

    The upper arm is abducted in the frontal plane, then flexed about the left-right axis;
    the elbow bends the forearm towards the arm's own forward direction, turned by the
    shoulder's twist about the upper arm.
    """
    f, a, t, k = (math.radians(v) for v in (flex, abd, twist, elbow))
    upper = np.array([side * math.sin(a), -math.cos(a) * math.cos(f), math.cos(a) * math.sin(f)])
    bend = np.array([0.0, math.sin(f), math.cos(f)])  # perpendicular to upper
    bend = math.cos(t) * bend + math.sin(t) * side * np.cross(bend, upper)
    return upper, math.cos(k) * upper + math.sin(k) * bend


def _leg(flex: float, abd: float, knee: float, side: int):
    """Unit directions of the thigh and shin; the knee bends the shin backwards."""
    f, a, k = (math.radians(v) for v in (flex, abd, knee))
    out, down = side * math.sin(a), math.cos(a)
    thigh = np.array([out, -down * math.cos(f), down * math.sin(f)])
    shin = np.array([out, -down * math.cos(f - k), down * math.sin(f - k)])
    return thigh, shin


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or resolution not in RESOLUTIONS:
        raise DataError(
            f"resolution must be one of {', '.join(map(str, RESOLUTIONS))}, not {resolution!r}"
        )
    return int(resolution)


@dataclass
class _Figure:
    """A posed figure in the picture: points in output pixels and their depths."""

    screen: np.ndarray  # (31, 2): the 18 keypoints, then the drawing points
    depth: np.ndarray  # (31,) figure units towards the camera
    facing: np.ndarray  # (18,) how far each face point's direction turns to the camera
    px: float  # pixels per figure unit
    yaw: float
    resolution: int


def _figure(person: Identity, pose: Pose, resolution: int) -> _Figure:
    resolution = _check_resolution(resolution)
    check_pose(pose)
    h, w = person.height, person.height * person.build
    torso = _pitch(-pose.torso_lean)  # a forward lean tips the spine towards +z
    head = torso @ _roll(pose.head_tilt)
    p = np.zeros((31, 3))  # the pelvis is the origin
    p[NECK] = torso @ (0.0, SPINE * h, 0.0)
    p[HEAD] = p[NECK] + head @ (0.0, NECK_LENGTH * h, 0.0)
    for side, (sho, elb, wri, hand, name) in (
        (-1, (R_SHOULDER, R_ELBOW, R_WRIST, R_HAND, "r")),
        (1, (L_SHOULDER, L_ELBOW, L_WRIST, L_HAND, "l")),
    ):
        upper, fore = _arm(
            getattr(pose, f"{name}_shoulder_flex"),
            getattr(pose, f"{name}_shoulder_abd"),
            getattr(pose, f"{name}_shoulder_twist"),
            getattr(pose, f"{name}_elbow"),
            side,
        )
        p[sho] = p[NECK] + torso @ (side * SHOULDER_W * w, -0.012 * h, 0.0)
        p[elb] = p[sho] + UPPER_ARM * h * (torso @ upper)
        p[wri] = p[elb] + FOREARM * h * (torso @ fore)
        p[hand] = p[wri] + 0.02 * h * (torso @ fore)
    for side, (hip, knee, ankle, toe, heel, name) in (
        (-1, (R_HIP, R_KNEE, R_ANKLE, R_TOE, R_HEEL, "r")),
        (1, (L_HIP, L_KNEE, L_ANKLE, L_TOE, L_HEEL, "l")),
    ):
        thigh, shin = _leg(
            getattr(pose, f"{name}_hip_flex"),
            getattr(pose, f"{name}_hip_abd"),
            getattr(pose, f"{name}_knee"),
            side,
        )
        p[hip] = (side * HIP_W * w, 0.0, 0.0)
        p[knee] = p[hip] + THIGH * h * thigh
        p[ankle] = p[knee] + SHIN * h * shin
        p[toe] = p[ankle] + np.array([side * 0.008, -0.022, 0.07]) * h  # feet point forwards
        p[heel] = p[ankle] + np.array([0.0, -0.022, -0.012]) * h
    offsets = {i: offset for i, (offset, _) in _FACE_OFFSETS.items()}
    offsets |= {HAIR: _HAIR_OFFSET, FACE: _FACE_OFFSET, MOUTH: _MOUTH_OFFSET}
    offsets |= {HAIR_TOP: _LONG_HAIR[0], HAIR_END: _LONG_HAIR[1]}
    for i, offset in offsets.items():
        p[i] = p[HEAD] + (head @ np.array(offset)) * HEAD_R * h
    # Standing: the lower ankle is at ankle height above the floor (y = 0).
    p[:, 1] -= min(p[R_ANKLE, 1], p[L_ANKLE, 1]) - ANKLE_HEIGHT * h
    turn = _yaw(pose.yaw)
    p = p @ turn.T
    px = PX_PER_UNIT * resolution * pose.scale
    screen = np.empty((len(p), 2))
    screen[:, 0] = resolution * (0.5 + pose.x) + p[:, 0] * px
    screen[:, 1] = resolution * (FLOOR + pose.y) - p[:, 1] * px
    facing = np.full(18, np.inf)
    for i, (offset, _) in _FACE_OFFSETS.items():
        direction = turn @ head @ np.array(offset)
        facing[i] = direction[2] / np.linalg.norm(direction)
    return _Figure(screen, p[:, 2].copy(), facing, px, pose.yaw, resolution)


# -- parts: what is painted, in which order, and what hides what -------------------------------


@dataclass
class _Shape:
    """A part's outline in output pixels, for hiding keypoints: a capsule (two points and a
    radius), a disc (one point) or a convex polygon, with depths at its points. Plain floats:
    a render asks ~400 of these questions, and numpy's per-call overhead would dominate."""

    points: tuple[tuple[float, float], ...]
    depths: tuple[float, ...]
    radius: float = 0.0

    @classmethod
    def of(cls, points: np.ndarray, depths: np.ndarray, radius: float = 0.0) -> _Shape:
        return cls(tuple(map(tuple, points.tolist())), tuple(depths.tolist()), float(radius))

    def depth_at(self, x: float, y: float) -> float | None:
        """The part's depth where it covers (x, y), or None where it does not."""
        pts = self.points
        if len(pts) == 1:
            (cx, cy), r = pts[0], self.radius
            return self.depths[0] if (x - cx) ** 2 + (y - cy) ** 2 <= r * r else None
        if len(pts) == 2:
            (ax, ay), (bx, by) = pts
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = ((x - ax) * dx + (y - ay) * dy) / length2 if length2 > 1e-12 else 0.0
            t = min(max(t, 0.0), 1.0)
            if (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2 > self.radius**2:
                return None
            return self.depths[0] + t * (self.depths[1] - self.depths[0])
        signs = set()
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True):
            cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
            if cross:
                signs.add(cross > 0)
        return sum(self.depths) / len(self.depths) if len(signs) < 2 else None


@dataclass
class _Part:
    depth: float  # painted from far (small) to near (large)
    paint: Callable[[_Canvas], None]
    shape: _Shape | None = None  # None: clothing and hair, which hide no keypoint
    owns: frozenset[int] = frozenset()  # keypoints on the part: it does not hide them


class _Canvas:
    """A supersampled Pillow image taking output-pixel coordinates."""

    def __init__(self, image: Image.Image, scale: int, ink: int | None = None) -> None:
        self.image, self.scale = image, scale
        self.draw = ImageDraw.Draw(image)
        self.ink = ink  # paint everything in this one value (a silhouette) when given

    def _fill(self, colour: Colour):
        return colour if self.ink is None else self.ink

    def _xy(self, point) -> tuple[float, float]:
        # Output pixel edges are at integers; Pillow puts supersampled pixel centres there.
        return (point[0] * self.scale - 0.5, point[1] * self.scale - 0.5)

    def disc(self, centre, radius: float, colour: Colour) -> None:
        x, y = self._xy(centre)
        r = radius * self.scale
        self.draw.ellipse((x - r, y - r, x + r, y + r), fill=self._fill(colour))

    def polygon(self, points, colour: Colour) -> None:
        self.draw.polygon([self._xy(p) for p in points], fill=self._fill(colour))

    def capsule(self, a, b, ra: float, rb: float, colour: Colour) -> None:
        a, b = np.asarray(a, float), np.asarray(b, float)
        d = b - a
        length = float(np.hypot(*d))
        if length > 1e-6:
            n = np.array([-d[1], d[0]]) / length
            self.polygon([a + ra * n, b + rb * n, b - rb * n, a - ra * n], colour)
        self.disc(a, ra, colour)
        self.disc(b, rb, colour)

    def clipped_disc(self, centre, radius: float, clip_centre, clip_radius: float, colour) -> None:
        """A disc drawn only inside another disc (the face on the head)."""
        s = self.scale
        cx, cy = self._xy(clip_centre)
        box = (
            math.floor(cx - clip_radius * s) - 1,
            math.floor(cy - clip_radius * s) - 1,
            math.ceil(cx + clip_radius * s) + 2,
            math.ceil(cy + clip_radius * s) + 2,
        )
        size = (box[2] - box[0], box[3] - box[1])
        masks = []
        for (x, y), r in ((self._xy(clip_centre), clip_radius), (self._xy(centre), radius)):
            mask = Image.new("L", size, 0)
            x, y, r = x - box[0], y - box[1], r * s
            ImageDraw.Draw(mask).ellipse((x - r, y - r, x + r, y + r), fill=255)
            masks.append(mask)
        self.image.paste(self._fill(colour), box, ImageChops.multiply(*masks))


def _parts(person: Identity, fig: _Figure) -> list[_Part]:
    pts, z, px = fig.screen, fig.depth, fig.px
    h, w = person.height, person.height * person.build
    cos_yaw, sin_yaw = math.cos(math.radians(fig.yaw)), math.sin(math.radians(fig.yaw))
    parts: list[_Part] = []

    def limb(a: int, b: int, radii, colour: Colour, owns, bias: float = 0.0) -> None:
        ra, rb = radii[0] * w * px, radii[1] * w * px
        depth = (z[a] + z[b]) / 2
        if depth < -0.03:
            colour = _shade(colour, FAR_SHADE)
        shape = _Shape.of(pts[[a, b]], z[[a, b]], max(ra, rb))
        parts.append(
            _Part(
                depth + bias,
                lambda c: c.capsule(pts[a], pts[b], ra, rb, colour),
                shape,
                frozenset(owns),
            )
        )

    # Legs (under the torso's hip band and the skirt), then shoes.
    upper_leg = person.skin if person.bottom_style == "skirt" else person.bottom
    lower_leg = person.bottom if person.bottom_style == "trousers" else person.skin
    for hip, knee, ankle, toe, heel in (
        (R_HIP, R_KNEE, R_ANKLE, R_TOE, R_HEEL),
        (L_HIP, L_KNEE, L_ANKLE, L_TOE, L_HEEL),
    ):
        limb(hip, knee, THIGH_RADII, upper_leg, (hip, knee), bias=-0.006)
        limb(knee, ankle, SHIN_RADII, lower_leg, (knee, ankle), bias=-0.006)
        limb(heel, toe, (FOOT_RADIUS, FOOT_RADIUS), person.shoes, (ankle,), bias=-0.004)

    # Torso: a quad around the spine whose width is the chest's (an ellipse) seen at this yaw.
    top, bottom = pts[NECK], pts[PELVIS]
    axis = top - bottom
    axis /= max(float(np.hypot(*axis)), 1e-6)
    normal = np.array([-axis[1], axis[0]])

    def half_width(half_w: float, half_d: float) -> float:
        return math.hypot(half_w * w * cos_yaw, half_d * w * sin_yaw) * px

    top_w = half_width(SHOULDER_W + 0.014, CHEST_DEPTH)
    hip_w = half_width(HIP_W + 0.035, PELVIS_DEPTH)
    waist = top + 0.78 * (bottom - top)
    waist_w = top_w + 0.78 * (hip_w - top_w)
    hem = bottom - axis * 0.03 * h * px  # the hip band reaches below the hip joints
    torso_depth = float((z[NECK] + z[PELVIS]) / 2)
    quad = np.array([top + top_w * normal, hem + hip_w * normal, hem - hip_w * normal])
    quad = np.vstack([quad, top - top_w * normal])

    def on_shirt(u: float, v: float) -> np.ndarray:
        """A point on the shirt: u across (-1..1), v down from the neck (0) to the waist (1)."""
        return top + v * (waist - top) + u * (top_w + v * (waist_w - top_w)) * normal

    def band(v0: float, v1: float) -> list[np.ndarray]:
        """The shirt between two heights, across its whole width."""
        return [on_shirt(1, v0), on_shirt(1, v1), on_shirt(-1, v1), on_shirt(-1, v0)]

    def paint_torso(c: _Canvas) -> None:
        hips = [hem + hip_w * normal, hem - hip_w * normal]
        c.polygon([waist + waist_w * normal, *hips, waist - waist_w * normal], person.bottom)
        c.polygon(band(0.0, 1.0), person.shirt)
        cap = 0.035 * w * px  # rounded shoulders
        for sign in (1, -1):
            c.disc(top + sign * (top_w - cap) * normal - axis * cap * 0.4, cap, person.shirt)
        accent = person.shirt_accent
        if cos_yaw > 0.3:  # the front faces the camera
            if person.front_pattern == "stripes":
                c.polygon(band(0.28, 0.42), accent)
                c.polygon(band(0.6, 0.74), accent)
            elif person.front_pattern == "two_tone":
                c.polygon(band(0.52, 1.0), accent)
            else:  # a deep V-neck
                c.polygon([on_shirt(-0.5, 0), on_shirt(0.5, 0), on_shirt(0, 0.45)], accent)
        elif cos_yaw < -0.3:  # the back faces the camera
            if person.back_pattern == "logo":
                c.disc(on_shirt(0, 0.42), 0.4 * waist_w, accent)
            elif person.back_pattern == "yoke":
                c.polygon(band(0.0, 0.24), accent)

    parts.append(
        _Part(
            torso_depth,
            paint_torso,
            _Shape.of(quad, np.full(4, torso_depth)),
            frozenset({NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP}),
        )
    )

    if person.bottom_style == "skirt":  # from the waist to above the knees, over both thighs
        outline = [waist + waist_w * normal, waist - waist_w * normal]
        for hip, knee in ((R_HIP, R_KNEE), (L_HIP, L_KNEE)):
            along = pts[knee] - pts[hip]
            length = max(float(np.hypot(*along)), 1e-6)
            side = np.array([-along[1], along[0]]) / length * THIGH_RADII[0] * 1.6 * w * px
            hem_point = pts[hip] + 0.7 * along
            outline += [pts[hip] + side, pts[hip] - side, hem_point + side, hem_point - side]
        skirt = _convex_hull(np.array(outline))
        skirt_depth = max(torso_depth, (z[R_HIP] + z[R_KNEE]) / 2, (z[L_HIP] + z[L_KNEE]) / 2)
        parts.append(_Part(skirt_depth + 0.001, lambda c: c.polygon(skirt, person.bottom)))

    # Arms, painted over the torso's sides at equal depth.
    sleeve_lower = person.shirt if person.sleeves == "long" else person.skin
    for sho, elb, wri, hand in (
        (R_SHOULDER, R_ELBOW, R_WRIST, R_HAND),
        (L_SHOULDER, L_ELBOW, L_WRIST, L_HAND),
    ):
        # The neck keypoint is the midpoint of the shoulders: a shoulder in front (a side
        # view) does not hide it.
        limb(sho, elb, UPPER_ARM_RADII, person.shirt, (sho, elb, NECK), bias=0.005)
        limb(elb, wri, FOREARM_RADII, sleeve_lower, (elb, wri), bias=0.005)
        limb(wri, hand, (FOREARM_RADII[1], HAND_RADIUS), person.skin, (wri,), bias=0.006)

    # Neck, head, hair and face.
    head_r = HEAD_R * h * px
    face = set(FACE_POINTS) | {NECK}
    neck_r = NECK_RADIUS / person.build  # limb() widens by build; a neck hardly does
    limb(NECK, HEAD, (neck_r, neck_r), person.skin, face, bias=0.01)
    if person.hair_style == "long":  # hanging behind the head (over the back from behind)
        hair_r = 0.85 * head_r
        parts.append(
            _Part(
                float((z[HAIR_TOP] + z[HAIR_END]) / 2) + 0.012,
                lambda c: c.capsule(pts[HAIR_TOP], pts[HAIR_END], hair_r, hair_r, person.hair),
            )
        )
    hair_size = 1.06 if person.hair_style == "long" else 1.02
    facing = fig.facing

    def paint_head(c: _Canvas) -> None:
        c.disc(pts[HEAD], head_r, person.skin)
        c.disc(pts[HAIR], hair_size * head_r, person.hair)
        if facing[NOSE] > _FACE_OFFSETS[NOSE][1]:  # the face turns towards the camera
            c.clipped_disc(pts[FACE], 0.82 * head_r, pts[HEAD], head_r, person.skin)
            c.disc(pts[NOSE], 0.22 * head_r, person.skin)  # a bump on the profile
            for eye in (R_EYE, L_EYE):
                if facing[eye] > _FACE_OFFSETS[eye][1]:
                    c.disc(pts[eye], 0.13 * head_r, EYE_COLOUR)
            if z[MOUTH] - z[HEAD] > 0.3 * HEAD_R * h:
                c.disc(pts[MOUTH], 0.11 * head_r, _shade(person.skin, 0.65))

    parts.append(
        _Part(
            float(z[HEAD]) + 0.02,
            paint_head,
            _Shape.of(pts[[HEAD]], z[[HEAD]], head_r),
            frozenset(face),
        )
    )
    return parts


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain: the hull's corners in order."""
    ordered = sorted(map(tuple, points))

    def chain(seq):
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(chain(ordered) + chain(ordered[::-1]))


def _visibility(fig: _Figure, parts: list[_Part]) -> np.ndarray:
    visible = np.ones(18, bool)
    size = fig.resolution
    for k in range(18):
        x, y = fig.screen[k].tolist()
        if not (0 <= x < size and 0 <= y < size):
            visible[k] = False
            continue
        if k in _FACE_OFFSETS and fig.facing[k] <= _FACE_OFFSETS[k][1]:
            visible[k] = False  # turned away from the camera
            continue
        for part in parts:
            if part.shape is None or k in part.owns:
                continue
            depth = part.shape.depth_at(x, y)
            if depth is not None and depth > fig.depth[k] + HIDE_MARGIN:
                visible[k] = False
                break
    return visible


# -- pictures ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _background(person: Identity, size: int) -> Image.Image:
    """Shared between calls: copy before drawing on it."""
    rows = (np.arange(size) + 0.5) / size
    top, bottom = np.array(person.background_top, float), np.array(person.background_bottom, float)
    column = np.round(top + (bottom - top) * rows[:, None]).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.broadcast_to(column[:, None], (size, size, 3))))


def background(person: Identity, resolution: int = 64) -> np.ndarray:
    """The person's empty background, (R, R, 3) uint8, exactly as under the figure."""
    resolution = _check_resolution(resolution)
    return np.asarray(_background(person, resolution * SUPERSAMPLE).reduce(SUPERSAMPLE))


def keypoints(person: Identity, pose: Pose, resolution: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(18, 2) float32 keypoint pixels (x, y) in COCO-18 order, and (18,) bool visibility."""
    fig = _figure(person, pose, resolution)
    return fig.screen[:18].astype(np.float32), _visibility(fig, _parts(person, fig))


def render(
    person: Identity, pose: Pose, resolution: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The person in the pose: (R, R, 3) uint8 image, (18, 2) keypoints, (18,) visibility."""
    fig = _figure(person, pose, resolution)
    parts = _parts(person, fig)
    canvas = _Canvas(_background(person, fig.resolution * SUPERSAMPLE).copy(), SUPERSAMPLE)
    for part in sorted(parts, key=lambda p: p.depth):  # stable: ties keep the listed order
        part.paint(canvas)
    image = np.asarray(canvas.image.reduce(SUPERSAMPLE))
    return image, fig.screen[:18].astype(np.float32), _visibility(fig, parts)


def figure_mask(person: Identity, pose: Pose, resolution: int = 64) -> np.ndarray:
    """(R, R) float32 share of each pixel the person covers (0 = background, 1 = figure):
    PG2's pose mask, which weights its L1 loss towards the person."""
    fig = _figure(person, pose, resolution)
    size = fig.resolution * SUPERSAMPLE
    canvas = _Canvas(Image.new("L", (size, size), 0), SUPERSAMPLE, ink=255)
    for part in _parts(person, fig):  # one ink: the painting order does not matter
        part.paint(canvas)
    return np.asarray(canvas.image.reduce(SUPERSAMPLE), np.float32) / 255.0


def _check_keypoints(points, visibility) -> tuple[np.ndarray, np.ndarray]:
    points, visibility = np.asarray(points, np.float64), np.asarray(visibility)
    if points.shape != (18, 2) or visibility.shape != (18,):
        raise DataError(
            f"expected (18, 2) keypoints and (18,) visibility, got {points.shape} and "
            f"{visibility.shape}"
        )
    return points, visibility.astype(bool)


def pose_heatmaps(
    points: np.ndarray, visibility: np.ndarray, resolution: int = 64, sigma: float | None = None
) -> np.ndarray:
    """(18, R, R) float32 Gaussians (peak 1 at each visible keypoint, zeros for hidden ones),
    PG2's pose input. ``sigma`` in pixels defaults to 1.5 at 64 (PG2's 6 at 256, scaled)."""
    points, visibility = _check_keypoints(points, visibility)
    resolution = _check_resolution(resolution)
    sigma = 1.5 * resolution / 64 if sigma is None else sigma
    if not sigma > 0:
        raise DataError(f"sigma must be a positive number of pixels, not {sigma!r}")
    centres = np.arange(resolution) + 0.5
    # A 2-D Gaussian is the outer product of two 1-D ones: 18 x R values each, not R x R.
    gx = np.exp(-((centres[None, :] - points[:, :1]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((centres[None, :] - points[:, 1:]) ** 2) / (2 * sigma**2))
    maps = gy[:, :, None] * gx[:, None, :] * visibility[:, None, None]
    return maps.astype(np.float32)


def skeleton_image(points: np.ndarray, visibility: np.ndarray, resolution: int = 64) -> np.ndarray:
    """The visible COCO limbs in OpenPose's colours on black, (R, R, 3) uint8, for display."""
    points, visibility = _check_keypoints(points, visibility)
    resolution = _check_resolution(resolution)
    canvas = _Canvas(Image.new("RGB", (resolution * SUPERSAMPLE,) * 2), SUPERSAMPLE)
    thickness = resolution / 64
    for (a, b), colour in zip(LIMBS, LIMB_COLOURS, strict=True):
        if visibility[a] and visibility[b]:
            canvas.capsule(points[a], points[b], thickness, thickness, colour)
    for k in np.flatnonzero(visibility):
        canvas.disc(points[k], 1.4 * thickness, (255, 255, 255))
    return np.asarray(canvas.image.reduce(SUPERSAMPLE))


# -- batches and animation ---------------------------------------------------------------------


@dataclass
class PairBatch:
    """Rendered pairs: item i is one person in two poses."""

    source: np.ndarray  # (N, R, R, 3) uint8
    target: np.ndarray  # (N, R, R, 3) uint8
    source_keypoints: np.ndarray  # (N, 18, 2) float32 pixels (x, y)
    target_keypoints: np.ndarray  # (N, 18, 2) float32
    source_visible: np.ndarray  # (N, 18) bool
    target_visible: np.ndarray  # (N, 18) bool
    source_view: np.ndarray  # (N,) int64 index into VIEWS
    target_view: np.ndarray  # (N,) int64
    identity_ids: np.ndarray  # (N,) int64, all from the batch's split


def render_pairs(n: int, split: str = "train", seed: int = 0, resolution: int = 64) -> PairBatch:
    """``n`` rendered pairs of people from one split, the same for the same arguments.

    Item i depends only on (seed, split, i), so a longer batch starts with the shorter one.
    """
    ids = identities(split)
    resolution = _check_resolution(resolution)
    for name, value in (("n", n), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise DataError(f"{name} must be a non-negative integer, not {value!r}")
    if n < 1:
        raise DataError("n must be at least 1")
    split_index = list(SPLITS).index(split)
    images = np.empty((2, n, resolution, resolution, 3), np.uint8)
    points = np.empty((2, n, 18, 2), np.float32)
    visible = np.empty((2, n, 18), bool)
    views = np.empty((2, n), np.int64)
    id_list = np.empty(n, np.int64)
    for i in range(n):
        rng = np.random.default_rng([int(seed), split_index, i])
        chosen = pair(ids[int(rng.integers(len(ids)))], rng, split)
        id_list[i] = chosen.identity_id
        for j, pose in enumerate((chosen.source, chosen.target)):
            images[j, i], points[j, i], visible[j, i] = render(chosen.identity, pose, resolution)
            views[j, i] = pose.view_id
    return PairBatch(*images, *points, *visible, *views, id_list)


def _check_frames(frames: int) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 2:
        raise DataError(f"frames must be an integer of at least 2, not {frames!r}")
    return int(frames)


def sequence(name: str, frames: int = 30) -> list[Pose]:
    """A looping animation of ``frames`` poses: the frame after the last is the first again.

    walk: a side-view walk cycle; wave: the right hand waves, facing the camera; jump: crouch,
    spring up with the arms swinging overhead, land; turn: a full turn on the spot through
    every view.
    """
    if name not in SEQUENCES:
        raise DataError(f"unknown sequence {name!r}; choose one of {', '.join(SEQUENCES)}")
    frames = _check_frames(frames)
    poses = []
    for i in range(frames):
        t = 2 * math.pi * i / frames
        s, c = math.sin(t), math.cos(t)
        if name == "walk":
            # Each knee bends most mid-swing, as the hip passes upright going forwards.
            pose = Pose(
                yaw=90.0,
                torso_lean=5.0,
                r_hip_flex=24 * s,
                l_hip_flex=-24 * s,
                r_knee=5 + 45 * (0.5 + 0.5 * c) ** 2,
                l_knee=5 + 45 * (0.5 - 0.5 * c) ** 2,
                r_shoulder_flex=-22 * s,
                l_shoulder_flex=22 * s,
                r_elbow=15 + 15 * (0.5 - 0.5 * s),
                l_elbow=15 + 15 * (0.5 + 0.5 * s),
                y=-0.006 * math.cos(2 * t),
            )
        elif name == "wave":
            pose = Pose(
                head_tilt=6 * s,
                r_shoulder_abd=78.0,
                r_shoulder_flex=12.0,
                r_shoulder_twist=85.0,
                r_elbow=70 + 35 * s,  # the forearm swings between outwards and upright
                torso_lean=2 * c,
            )
        elif name == "jump":
            up = 0.5 - 0.5 * c  # 0: crouched at take-off and landing, 1: top of the jump
            pose = Pose(
                torso_lean=22 * (1 - up),
                r_hip_flex=40 * (1 - up),
                l_hip_flex=40 * (1 - up),
                r_knee=70 * (1 - up),
                l_knee=70 * (1 - up),
                r_shoulder_flex=-35 + 175 * up,
                l_shoulder_flex=-35 + 175 * up,
                r_shoulder_abd=8 + 22 * up,
                l_shoulder_abd=8 + 22 * up,
                r_elbow=20.0,
                l_elbow=20.0,
                y=-0.06 * up**2,
            )
        else:  # turn
            pose = Pose(yaw=_wrap(360.0 * i / frames), r_shoulder_abd=12.0, l_shoulder_abd=12.0)
        poses.append(clip_pose(pose))
    return poses
