"""Captioned shape scenes for text-to-image models (StackGAN): pictures whose text is exact.

Real caption datasets (birds, flowers) cannot be shipped and never say exactly what is in a
picture, so a generator's faithfulness to its text cannot be measured on them. Here every scene
is drawn from known attributes: one to three objects, each a colour, a shape and a size, on a
pale plain, striped or blotchy background, with spatial relations between pairs. Captions come
from a small grammar with synonyms and varied word order ("a small red circle above a large
blue square", "a big blue box under a little red circle", "there is a green triangle to the
left of a yellow diamond"), and ``parse_caption`` recovers the attributes from any of them. That
parser is how the tests check the grammar round-trips, and how a page can mark the words of a
user's prompt that the model never saw.

Choices that make the pictures and their captions agree:

- Colours are distinct within a scene, so an object is named by its colour and shape without
  ambiguity ("the blue square" in a second clause), and a colour mask finds it in the pixels.
- Objects sit in disjoint bounding boxes with a gap, so they never overlap, and every stated
  relation holds with a margin along its axis, which also dominates the other axis: "A left of
  B" means A's centre is at least ``RELATION_MARGIN`` of the width left of B's and no more than
  ``RELATION_DOMINANCE`` times that above or below it. Relations are read off the sampled
  positions, so they are true by construction. Positions are fractions of the side, y
  downwards (so "above" is a smaller y).
- A large object is ``LARGE / SMALL`` = 1.8 times as wide as a small one of the same shape
  (3.2 times the area), so sizes are told apart even at 32x32.
- A size word may be left out of a caption ("a red circle"): the parser then reports the size
  as unknown (None), not wrong. ``ParsedCaption.mismatches`` checks what a caption states.

Compositional generalisation is measured with ``HELD_OUT_PAIRS``: five (colour, shape) pairs
that no training or test scene contains, chosen so that every colour and every shape still
occurs in training with other partners (each held-out pair takes a different shape and colour).
``split="held_out"`` scenes contain at least one of them. Each split draws from its own random
stream (the split's name is part of the seed), so no training seed can reproduce the fixed
``test_set`` or ``held_out_set``.

Scenes are drawn with Pillow at ``SUPERSAMPLE`` times the resolution, many scenes tiled on one
canvas, and reduced with a box filter (antialiasing by exact coverage). Objects are drawn on
black beside a coverage mask and composited over a background computed with numpy for the whole
batch: the background's texture is value noise hashed from the scene's ``texture_seed``, so it
looks the same at every resolution and a scene's pixels do not depend on the batch it is in.
Measured rate (``render_many`` on one core, under ``nice -n 19`` while both of the machine's two
cores were busy with a training run, so slower than an idle core): about 7,000 scenes a second
at 32x32, 2,200 at 64x64 and 600 at 128x128; ``scenes`` draws about 9,500 scenes a second.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

from hub_models.imagedata import DataError

# -- what a scene can hold -------------------------------------------------------------------

# Saturated and far apart in RGB (and from the pale backgrounds), so that each stays
# recognisable at 32x32 and a colour mask at a tolerance of ~50 levels finds exactly one object.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "orange": (245, 140, 20),
    "yellow": (240, 210, 25),
    "green": (35, 160, 60),
    "blue": (35, 80, 225),
    "purple": (140, 45, 190),
}
# Shapes with distinct silhouettes even when small (a star's points vanish at 6 pixels).
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
# Half the side of an object's bounding box, as a fraction of the image side.
SMALL = 0.10
LARGE = 0.18
SIZES: dict[str, float] = {"small": SMALL, "large": LARGE}
RELATIONS = ("above", "below", "left of", "right of")
INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
BACKGROUNDS = ("plain", "stripes", "noise")
# Pale and nearly grey: every channel stays above 200 with the texture, far from any colour.
TINTS: dict[str, tuple[int, int, int]] = {
    "grey": (228, 228, 228),
    "cream": (242, 236, 218),
    "sky": (220, 230, 244),
    "mint": (222, 238, 228),
}

# Never in a training or test scene; each takes a different colour and shape, so that every
# colour keeps at least four shapes and every shape five colours in training.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "triangle"),
        ("orange", "cross"),
        ("yellow", "circle"),
        ("green", "diamond"),
        ("blue", "square"),
    }
)
ALL_PAIRS = tuple(itertools.product(COLOURS, SHAPES))
SEEN_PAIRS = tuple(p for p in ALL_PAIRS if p not in HELD_OUT_PAIRS)

SPLITS = ("train", "test", "held_out")
# Mixed into each split's seed: the same seed gives unrelated scenes in different splits.
SPLIT_STREAMS = {"train": 0x7261696E, "test": 0x74657374, "held_out": 0x68656C64}
TEST_SEED = 20240501
HELD_OUT_SEED = 20240502
OBJECT_COUNT_WEIGHTS = (0.2, 0.4, 0.4)  # one, two or three objects

EDGE = 0.03  # free border between an object's box and the image edge
GAP = 0.04  # free space between two objects' boxes (over a pixel at 32x32)
RELATION_MARGIN = 0.2  # a relation's axis offset, at least (bounding boxes alone force 0.24)
RELATION_DOMINANCE = 0.5  # the other axis's offset, at most this share of the relation's
CANDIDATES = {1: 1, 2: 32, 3: 256}  # placements tried per round, drawn at once
MAX_ROUNDS = 200

MIN_RESOLUTION = 8
MAX_RESOLUTION = 512
SUPERSAMPLE = 4
CANVAS_SIDE = 2048  # scenes are tiled on canvases about this wide (memory versus call count)
STRIPE_AMPLITUDE = 9.0  # grey levels either side of the tint
NOISE_AMPLITUDE = 12.0
NOISE_CELLS = 6  # value-noise lattice cells across the image: soft blotches, not grain

# -- the caption grammar ---------------------------------------------------------------------

# Synonyms: the first word of each is the canonical one. No word belongs to two meanings.
COLOUR_WORDS: dict[str, tuple[str, ...]] = {c: (c,) for c in COLOURS} | {
    "purple": ("purple", "violet")
}
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "cross": ("cross",),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "large": ("large", "big"),
}
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "left of": ("left of", "to the left of"),
    "right of": ("right of", "to the right of"),
}
# (opening, whether each clause says "is"): "is" only reads well without an opening.
OPENINGS = (("", False), ("", True), ("there is", False), ("a picture of", False))
SEPARATORS = (" and ", ", and ")
SIZE_STATED = 0.8  # chance that a random caption names an object's size
ARTICLES = ("a", "an", "the")
SYNONYMS: dict[str, tuple[str, ...]] = {
    **COLOUR_WORDS,
    **SHAPE_WORDS,
    **SIZE_WORDS,
    **RELATION_WORDS,
}


def tokenize(text: str) -> list[str]:
    """Lower-case words of ``text``: letters only, split at anything else (spaces, hyphens,
    punctuation, digits)."""
    return re.findall(r"[^\W\d_]+", text.lower())


def _phrase_table() -> dict[tuple[str, ...], tuple[str, str]]:
    """Word sequences of the grammar -> (kind, canonical value)."""
    table: dict[tuple[str, ...], tuple[str, str]] = {}
    for kind, words in (
        ("colour", COLOUR_WORDS),
        ("shape", SHAPE_WORDS),
        ("size", SIZE_WORDS),
        ("relation", RELATION_WORDS),
    ):
        for value, synonyms in words.items():
            for phrase in synonyms:
                table[tuple(phrase.split())] = (kind, value)
    for article in ARTICLES:
        table[(article,)] = ("article", article)
    # Fillers: openings as wholes (so that their "a" starts no object), and their words alone,
    # with "is" and "and", which the structure of NP-relation-NP makes unnecessary to read.
    for opening, _ in OPENINGS:
        if opening:
            table[tuple(opening.split())] = ("filler", opening)
    for word in ("there", "is", "picture", "of", "and", "to"):
        table.setdefault((word,), ("filler", word))
    # "left" or "right" alone are read as the relation: a tolerance, never produced.
    table[("left",)] = ("relation", "left of")
    table[("right",)] = ("relation", "right of")
    return table


PHRASES = _phrase_table()
LONGEST_PHRASE = max(len(p) for p in PHRASES)
VOCABULARY: tuple[str, ...] = tuple(sorted({w for phrase in PHRASES for w in phrase}))


# -- scenes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneObject:
    colour: str  # a key of COLOURS
    shape: str  # one of SHAPES
    size: str  # "small" or "large"
    x: float  # centre, as a fraction of the width from the left edge
    y: float  # centre, as a fraction of the height from the top edge

    @property
    def radius(self) -> float:
        """Half the side of the object's bounding box, as a fraction of the image side."""
        return SIZES[self.size]

    @property
    def pair(self) -> tuple[str, str]:
        return (self.colour, self.shape)


@dataclass(frozen=True)
class Relation:
    """``subject`` is ``relation`` ``reference``: indices into a scene's or caption's objects."""

    subject: int
    relation: str  # one of RELATIONS
    reference: int


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    # Two objects: object 0 relative to 1; three: also object 2 relative to 0 or 1.
    relations: tuple[Relation, ...]
    background: str  # one of BACKGROUNDS
    tint: str  # a key of TINTS
    texture_seed: int  # the stripes' angle, period and phase, or the noise

    @property
    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(o.pair for o in self.objects)


NEAR_MISS_CHANGES = ("colour", "shape", "size", "relation")


def near_miss(scene: Scene, rng: np.random.Generator) -> Scene:
    """``scene`` with one thing changed so that a caption of it is wrong about ``scene`` in
    one word: an object's colour, shape or size, or a relation turned around. New pairs stay
    training pairs and colours stay distinct, so the caption reads like any training caption.
    A discriminator shown such captions as mismatches must check each word, not only the
    colours that a random other caption almost always gets wrong."""
    _check_scene(scene)
    objects = list(scene.objects)
    changes = [c for c in NEAR_MISS_CHANGES if c != "relation" or scene.relations]
    for change in rng.permutation(changes):
        i = int(rng.integers(len(objects)))
        o = objects[i]
        if change == "relation":
            k = int(rng.integers(len(scene.relations)))
            rel = scene.relations[k]
            turned = Relation(rel.subject, INVERSE[rel.relation], rel.reference)
            relations = (*scene.relations[:k], turned, *scene.relations[k + 1 :])
            return replace(scene, relations=relations)
        if change == "size":
            objects[i] = replace(o, size="large" if o.size == "small" else "small")
            return replace(scene, objects=tuple(objects))
        used = {p.colour for p in objects}
        if change == "colour":
            options = [c for c, s in SEEN_PAIRS if s == o.shape and c not in used]
            attribute = "colour"
        else:
            options = [s for c, s in SEEN_PAIRS if c == o.colour and s != o.shape]
            attribute = "shape"
        if options:
            value = options[int(rng.integers(len(options)))]
            objects[i] = replace(o, **{attribute: value})
            return replace(scene, objects=tuple(objects))
    raise DataError("this scene has nothing a near miss could change")  # sizes always can


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")


def _pick_pairs(rng: np.random.Generator, count: int, split: str) -> list[tuple[str, str]]:
    """``count`` (colour, shape) pairs of distinct colours, allowed by the split."""
    chosen: list[tuple[str, str]] = []
    if split == "held_out":  # one held-out pair for sure; the others may be any pair
        pool = sorted(HELD_OUT_PAIRS)
        chosen.append(pool[rng.integers(len(pool))])
        allowed: Sequence[tuple[str, str]] = ALL_PAIRS
    else:
        allowed = SEEN_PAIRS
    while len(chosen) < count:
        used = {c for c, _ in chosen}
        options = [p for p in allowed if p[0] not in used]
        chosen.append(options[rng.integers(len(options))])
    order = rng.permutation(count)  # the held-out pair is not always the first object
    return [chosen[i] for i in order]


def _relation(dx: float, dy: float) -> str:
    """The relation of an object to another, from its centre minus the other's."""
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _place(rng: np.random.Generator, radii: np.ndarray, links: list[tuple[int, int]]) -> np.ndarray:
    """Centres (n, 2) with disjoint boxes and a clear relation along every link.

    Rejection sampling, a round of candidates at a time in numpy: three large objects accept
    about one placement in a hundred.
    """
    n = len(radii)
    low = radii + EDGE
    span = 1 - 2 * low
    for _ in range(MAX_ROUNDS):
        xy = low[None, :, None] + rng.random((CANDIDATES[n], n, 2)) * span[None, :, None]
        ok = np.ones(len(xy), bool)
        for i, j in itertools.combinations(range(n), 2):
            apart = np.abs(xy[:, i] - xy[:, j]) >= radii[i] + radii[j] + GAP
            ok &= apart.any(axis=1)
        for i, j in links:
            offset = np.sort(np.abs(xy[:, i] - xy[:, j]), axis=1)  # (minor, major) axis
            ok &= (offset[:, 1] >= RELATION_MARGIN) & (
                offset[:, 0] <= RELATION_DOMINANCE * offset[:, 1]
            )
        hits = np.flatnonzero(ok)
        if hits.size:
            return xy[hits[0]]
    raise RuntimeError(f"no placement of {n} objects found in {MAX_ROUNDS} rounds")


def random_scene(rng: np.random.Generator, split: str = "train") -> Scene:
    """One random scene from ``rng``. Train and test scenes hold only ``SEEN_PAIRS``;
    held-out scenes hold at least one of ``HELD_OUT_PAIRS``."""
    _check_split(split)
    count = int(rng.choice(len(OBJECT_COUNT_WEIGHTS), p=OBJECT_COUNT_WEIGHTS)) + 1
    pairs = _pick_pairs(rng, count, split)
    sizes = [("small", "large")[i] for i in rng.integers(2, size=count)]
    links = [(0, 1)] if count >= 2 else []
    if count == 3:
        links.append((2, int(rng.integers(2))))
    xy = _place(rng, np.array([SIZES[s] for s in sizes]), links)
    objects = tuple(
        SceneObject(c, s, size, float(x), float(y))
        for (c, s), size, (x, y) in zip(pairs, sizes, xy, strict=True)
    )
    relations = tuple(Relation(i, _relation(*(xy[i] - xy[j])), j) for i, j in links)
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    tint = tuple(TINTS)[rng.integers(len(TINTS))]
    return Scene(objects, relations, background, tint, int(rng.integers(2**31)))


def _check_count(n: int, what: str = "n") -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise DataError(f"{what} must be a whole number of scenes, 0 or more (got {n!r})")


def scenes(n: int, seed: int = 0, split: str = "train") -> list[Scene]:
    """``n`` scenes of a split, the same for the same seed (and a prefix of a longer list)."""
    _check_count(n)
    _check_split(split)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a whole number, 0 or more (got {seed!r})")
    rng = np.random.default_rng([SPLIT_STREAMS[split], int(seed)])
    return [random_scene(rng, split) for _ in range(n)]


@functools.lru_cache(maxsize=8)
def _fixed(n: int, seed: int, split: str) -> tuple[Scene, ...]:
    return tuple(scenes(n, seed, split))


def test_set(n: int = 1000) -> list[Scene]:
    """The fixed test scenes: seen pairs only, from a stream no training seed reaches."""
    _check_count(n)
    return list(_fixed(int(n), TEST_SEED, "test"))


test_set.__test__ = False  # type: ignore[attr-defined]  # a data set, not a pytest test


def held_out_set(n: int = 1000) -> list[Scene]:
    """The fixed held-out scenes: each holds at least one of ``HELD_OUT_PAIRS``."""
    _check_count(n)
    return list(_fixed(int(n), HELD_OUT_SEED, "held_out"))


# -- rendering -------------------------------------------------------------------------------


def _check_resolution(resolution: int) -> None:
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | np.integer)
        or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
    ):
        raise DataError(
            f"resolution must be a whole number of pixels from {MIN_RESOLUTION} to "
            f"{MAX_RESOLUTION}, such as 32, 64 or 128 (got {resolution!r})"
        )


def _check_scene(scene: Scene) -> None:
    if not isinstance(scene, Scene):
        raise DataError(f"expected a Scene, got {type(scene).__name__}")
    for o in scene.objects:
        if o.colour not in COLOURS or o.shape not in SHAPES or o.size not in SIZES:
            raise DataError(
                f"cannot draw a {o.size} {o.colour} {o.shape}: colours are "
                f"{', '.join(COLOURS)}; shapes {', '.join(SHAPES)}; sizes {', '.join(SIZES)}"
            )
    for r in scene.relations:
        if r.relation not in RELATIONS or not (
            0 <= r.subject < len(scene.objects) and 0 <= r.reference < len(scene.objects)
        ):
            raise DataError(
                f"bad relation {r}: relations are {', '.join(RELATIONS)}, between objects 0 "
                f"to {len(scene.objects) - 1}"
            )
    if scene.background not in BACKGROUNDS or scene.tint not in TINTS:
        raise DataError(
            f"unknown background {scene.background!r} or tint {scene.tint!r}: backgrounds "
            f"are {', '.join(BACKGROUNDS)}; tints {', '.join(TINTS)}"
        )


def _draw(draw: ImageDraw.ImageDraw, mask: ImageDraw.ImageDraw, shape, cx, cy, r, colour):
    """One object on the colour canvas and the coverage mask (supersampled pixels)."""
    # Pillow fills rectangles and ellipses up to and including x1, y1: one pixel less keeps
    # the drawn extent [cx - r, cx + r), centred on the object.
    box = [cx - r, cy - r, cx + r - 1, cy + r - 1]
    if shape == "circle":
        parts = [("ellipse", box)]
    elif shape == "square":
        parts = [("rectangle", box)]
    elif shape == "triangle":
        parts = [("polygon", [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)])]
    elif shape == "diamond":
        parts = [("polygon", [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)])]
    else:  # cross: arms a third of the box wide, so that a small one keeps two-pixel arms
        w = r / 3
        parts = [
            ("rectangle", [cx - r, cy - w, cx + r - 1, cy + w - 1]),
            ("rectangle", [cx - w, cy - r, cx + w - 1, cy + r - 1]),
        ]
    for method, xy in parts:
        getattr(draw, method)(xy, fill=colour)
        getattr(mask, method)(xy, fill=255)


def _hash(*keys: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1) from integer keys (splitmix64 finaliser), vectorised: the
    texture is a function of the scene, whatever batch it is drawn in."""
    with np.errstate(over="ignore"):
        h = np.zeros(np.broadcast(*keys).shape, np.uint64)
        for key in keys:
            h = (h ^ np.asarray(key, np.uint64)) + np.uint64(0x9E3779B97F4A7C15)
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _backgrounds(batch: Sequence[Scene], resolution: int) -> np.ndarray:
    """(N, R, R, 3) float backgrounds: tint plus a grey texture, all scenes at once."""
    seeds = np.array([s.texture_seed for s in batch], np.uint64)[:, None, None]
    kinds = np.array([BACKGROUNDS.index(s.background) for s in batch])[:, None, None]
    tints = np.array([TINTS[s.tint] for s in batch], np.float64)[:, None, None, :]
    centres = (np.arange(resolution) + 0.5) / resolution
    y, x = centres[None, :, None], centres[None, None, :]

    # Stripes: a sine wave at 0, 45, 90 or 135 degrees, 4 to 9 stripes across.
    angle = np.floor(_hash(seeds, 1) * 4) * (math.pi / 4)
    period = 0.11 + 0.14 * _hash(seeds, 2)
    phase = 2 * math.pi * _hash(seeds, 3)
    along = x * np.cos(angle) + y * np.sin(angle)
    stripes = STRIPE_AMPLITUDE * np.sin(2 * math.pi * along / period + phase)

    # Noise: values on a coarse lattice, smoothly interpolated (the same look at any size).
    gx, gy = x * NOISE_CELLS, y * NOISE_CELLS
    ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    fx, fy = gx - ix, gy - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)  # smoothstep: no lattice creases

    def lattice(dy: int, dx: int) -> np.ndarray:
        return _hash(seeds, 4, (iy + dy) * (NOISE_CELLS + 1) + ix + dx) * 2 - 1

    top = lattice(0, 0) * (1 - fx) + lattice(0, 1) * fx
    bottom = lattice(1, 0) * (1 - fx) + lattice(1, 1) * fx
    noise = NOISE_AMPLITUDE * (top * (1 - fy) + bottom * fy)

    texture = np.where(kinds == 1, stripes, 0.0) + np.where(kinds == 2, noise, 0.0)
    return np.clip(tints + texture[..., None], 0, 255)


def _untile(canvas: np.ndarray, r: int, count: int) -> np.ndarray:
    """(rows * R, columns * R, C) tiles -> (count, R, R, C), row by row."""
    rows, columns = canvas.shape[0] // r, canvas.shape[1] // r
    tiles = canvas.reshape(rows, r, columns, r, canvas.shape[2]).transpose(0, 2, 1, 3, 4)
    return tiles.reshape(-1, r, r, canvas.shape[2])[:count]


def render_many(batch: Sequence[Scene], resolution: int = 32) -> np.ndarray:
    """Scenes as (N, R, R, 3) uint8 RGB images."""
    _check_resolution(resolution)
    batch = list(batch)
    for scene in batch:
        _check_scene(scene)
    r = int(resolution)
    out = np.empty((len(batch), r, r, 3), np.uint8)
    if not batch:
        return out
    side = r * SUPERSAMPLE
    columns = max(1, CANVAS_SIDE // side)
    per_canvas = columns * columns
    for start in range(0, len(batch), per_canvas):
        chunk = batch[start : start + per_canvas]
        rows = -(-len(chunk) // columns)
        # Colours on black and coverage beside them: reduced, the colour canvas holds colour
        # times coverage, the over-operator's premultiplied form (exact where edges blend).
        canvas = Image.new("RGB", (columns * side, rows * side))
        coverage = Image.new("L", canvas.size)
        draw, mask = ImageDraw.Draw(canvas), ImageDraw.Draw(coverage)
        for k, scene in enumerate(chunk):
            top, left = (k // columns) * side, (k % columns) * side
            for o in scene.objects:
                cx, cy, radius = left + o.x * side, top + o.y * side, o.radius * side
                _draw(draw, mask, o.shape, cx, cy, radius, COLOURS[o.colour])
        colour = np.asarray(canvas.reduce(SUPERSAMPLE), np.float64)
        alpha = np.asarray(coverage.reduce(SUPERSAMPLE), np.float64)[..., None] / 255
        colour, alpha = _untile(colour, r, len(chunk)), _untile(alpha, r, len(chunk))
        pixels = colour + (1 - alpha) * _backgrounds(chunk, r)
        out[start : start + len(chunk)] = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return out


def render(scene: Scene, resolution: int = 32) -> np.ndarray:
    """One scene as an (R, R, 3) uint8 RGB image."""
    return render_many([scene], resolution)[0]


# -- captions --------------------------------------------------------------------------------


def _check_captionable(scene: Scene) -> None:
    _check_scene(scene)
    if not scene.objects:
        raise DataError("a scene without objects has no caption")


def _realise(
    scene: Scene,
    opening: str,
    with_is: bool,
    flipped: Sequence[bool],
    order: Sequence[int],
    separator: str,
    stated: Sequence[bool],
    word: Callable[[tuple[str, ...]], str],
) -> str:
    """One caption of ``scene`` in the given structure; ``word`` picks each synonym."""
    mentioned: set[int] = set()

    def noun_phrase(i: int) -> str:
        o = scene.objects[i]
        if i in mentioned:  # later mentions point back, without the size
            return f"the {word(COLOUR_WORDS[o.colour])} {word(SHAPE_WORDS[o.shape])}"
        mentioned.add(i)
        words = [word(SIZE_WORDS[o.size])] if stated[i] else []
        words += [word(COLOUR_WORDS[o.colour]), word(SHAPE_WORDS[o.shape])]
        return " ".join(["an" if words[0][0] in "aeiou" else "a", *words])

    if not scene.relations:
        clauses = [noun_phrase(0)]
    else:
        clauses = []
        for k in order:
            rel = scene.relations[k]
            first, name, second = (
                (rel.reference, INVERSE[rel.relation], rel.subject)
                if flipped[k]
                else (rel.subject, rel.relation, rel.reference)
            )
            subject = noun_phrase(first)
            verb = " is" if with_is else ""
            clauses.append(f"{subject}{verb} {word(RELATION_WORDS[name])} {noun_phrase(second)}")
    text = separator.join(clauses)
    return f"{opening} {text}" if opening else text


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One caption of ``scene``: structure, synonyms and stated sizes drawn from ``rng``."""
    _check_captionable(scene)
    n, links = len(scene.objects), len(scene.relations)
    opening, with_is = OPENINGS[rng.integers(len(OPENINGS))]
    flipped = [bool(f) for f in rng.integers(2, size=links)]
    order = [int(i) for i in rng.permutation(links)]
    separator = SEPARATORS[rng.integers(len(SEPARATORS))]
    stated = [bool(s) for s in rng.random(n) < SIZE_STATED]

    def word(options: tuple[str, ...]) -> str:
        return options[rng.integers(len(options))]

    return _realise(scene, opening, with_is, flipped, order, separator, stated, word)


def captions(scene: Scene) -> list[str]:
    """Every phrasing of ``scene`` (openings, word orders, relation directions, sizes stated or
    not), each in canonical words; ``caption`` varies the words with their synonyms too."""
    _check_captionable(scene)
    n, links = len(scene.objects), len(scene.relations)
    out: dict[str, None] = {}  # insertion-ordered, without duplicates
    for (opening, with_is), flipped, order, separator, stated in itertools.product(
        OPENINGS,
        itertools.product((False, True), repeat=links),
        itertools.permutations(range(links)),
        SEPARATORS,
        itertools.product((True, False), repeat=n),
    ):
        text = _realise(scene, opening, with_is, flipped, order, separator, stated, lambda w: w[0])
        out[text] = None
    return list(out)


# -- parsing ---------------------------------------------------------------------------------


@dataclass
class ParsedObject:
    colour: str | None  # None: the caption does not say
    shape: str | None
    size: str | None

    @property
    def pair(self) -> tuple[str | None, str | None]:
        return (self.colour, self.shape)


@dataclass
class ParsedCaption:
    """What a caption says: objects in order of first mention, relations between them (indices
    into ``objects``), words outside ``VOCABULARY``, and problems of structure."""

    text: str
    objects: list[ParsedObject] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # each once, in order of appearance
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every object has a colour, a shape and a size, and nothing is malformed."""
        return not self.problems and all(o.colour and o.shape and o.size for o in self.objects)

    def mismatches(self, scene: Scene) -> list[str]:
        """How this caption disagrees with ``scene`` (empty when it describes it). A size the
        caption leaves out is no disagreement; unknown words are none either."""
        out = list(self.problems)
        truth = {o.pair: o for o in scene.objects}
        said = [o.pair for o in self.objects]
        if Counter(said) != Counter(list(truth)):
            out.append(f"objects {said} are not the scene's {sorted(truth)}")
        for o in self.objects:
            actual = truth.get(o.pair)
            if o.size and actual is not None and actual.size != o.size:
                out.append(f"the {o.colour} {o.shape} is {actual.size}, not {o.size}")
        parsed = {_canonical(r, [o.pair for o in self.objects]) for r in self.relations}
        real = {_canonical(r, [o.pair for o in scene.objects]) for r in scene.relations}
        if parsed != real:
            out.append(f"relations {sorted(map(str, parsed))} are not {sorted(map(str, real))}")
        return out

    def describes(self, scene: Scene) -> bool:
        return not self.mismatches(scene)


def _canonical(relation: Relation, pairs: Sequence) -> tuple:
    """A relation as (pair, "above" or "left of", pair): "B below A" is "A above B"."""
    a, name, b = pairs[relation.subject], relation.relation, pairs[relation.reference]
    if name in ("below", "right of"):
        a, name, b = b, INVERSE[name], a
    return (a, name, b)


def parse_caption(text: str) -> ParsedCaption:
    """Recover the objects and relations of a caption the grammar produces, from any of its
    phrasings, in any case, with any spacing and punctuation. Words outside the vocabulary are
    listed in ``unknown`` and skipped; a malformed structure is described in ``problems``.
    Nothing here raises for text, whatever it holds."""
    if not isinstance(text, str):
        raise DataError(f"a caption must be text, not {type(text).__name__}")
    result = ParsedCaption(text)
    tokens = tokenize(text)

    # Words to phrases, longest first ("to the left of" before the article "the"); each phrase
    # keeps its words as written, for messages.
    items: list[tuple[str, str, str]] = []
    i = 0
    while i < len(tokens):
        for length in range(min(LONGEST_PHRASE, len(tokens) - i), 0, -1):
            found = PHRASES.get(tuple(tokens[i : i + length]))
            if found:
                items.append((*found, " ".join(tokens[i : i + length])))
                i += length
                break
        else:
            if tokens[i] not in result.unknown:
                result.unknown.append(tokens[i])
            i += 1

    # Phrases to a sequence of noun phrases (object indices) and relations.
    sequence: list[tuple[str, int | str, str]] = []
    current: dict[str, str] = {}  # the open noun phrase: kind -> canonical value
    written: list[str] = []  # its size, colour and shape words as the caption has them

    def close() -> None:
        words = " ".join(written)
        missing = " or ".join(k for k in ("colour", "shape") if k not in current)
        if missing and words:  # a lone article ("the" in "on the left") is no object
            result.problems.append(f"{words!r} has no {missing}")
        key = (current.get("colour"), current.get("shape"))
        index = next(
            (n for n, o in enumerate(result.objects) if o.pair == key and None not in key),
            None,
        )
        size = current.get("size")
        if index is None and words:
            result.objects.append(ParsedObject(key[0], key[1], size))
            index = len(result.objects) - 1
        elif index is not None:  # a second mention of an object: it may add its size
            known = result.objects[index]
            if size and known.size and size != known.size:
                result.problems.append(f"{words!r} was said to be {known.size} before")
            known.size = known.size or size
        if index is not None:
            sequence.append(("object", index, words))
        current.clear()
        written.clear()

    for kind, value, words in items:
        if kind in ("size", "colour", "shape"):
            if kind in current:  # "a red blue square": a second colour starts an object
                close()
            current[kind] = value
            written.append(words)
            if kind == "shape":  # a shape ends its noun phrase
                close()
        else:  # an article starts a noun phrase; relations and fillers end one
            close()
            if kind == "relation":
                sequence.append(("relation", value, words))
    close()

    # A relation binds the noun phrases right before and after it.
    for k, (kind, value, words) in enumerate(sequence):
        if kind != "relation":
            continue
        before = sequence[k - 1] if k > 0 else None
        after = sequence[k + 1] if k + 1 < len(sequence) else None
        if before and after and before[0] == after[0] == "object":
            result.relations.append(Relation(int(before[1]), str(value), int(after[1])))
        else:
            result.problems.append(f"{words!r} needs an object on each side")
    return result
