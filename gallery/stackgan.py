"""What the text-to-image page computes: how a caption is read, both stages' samples as
pictures, edits and interpolations that keep the noise, and the nearest training caption and
image with a copy check (for the captioned shapes and for emoji)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
import torch.nn.functional as F
from PIL import Image

from hub_models import captiondata, imagedata, shapesdata, textenc
from hub_models.metrics import COPY_RMS
from hub_models.registry import FAMILIES
from hub_models.stackgan import StackGAN, encode_captions, noise, synthesize

FAMILY = FAMILIES["stackgan"]
DISPLAY = 160  # pixels each picture is shown at, both stages (crisp enlarged pixels)
GAP = 8  # pixels between a sample's Stage-I and Stage-II pictures
MAX_CAPTION_CHARS = 400  # ten times the grammar's longest caption; longer text is refused
POOL_SIZE = 2000  # training scenes the nearest caption and the copy check search
POOL_SEED = 23  # the pool's scenes (a seed of the training stream, like any training batch)
REFERENCE_SIZE = 200  # unseen real pictures (test renders, test groups) calibrating the check
# Datasets whose training data the page can search. A folder model's pictures stay in the
# user's folder, which its bundle does not name.
POOL_DATASETS = ("shapes", "emoji")
SHAPES_POOL_NOTE = (
    "The generator draws fresh scenes at every training step, so these stand for its training data."
)
CAPTIONED_POOL_NOTE = (
    "These are all the pictures of its training captions; the pictures of the test captions, "
    "never trained on, calibrate the check."
)
EXAMPLE_CAPTIONS: dict[str, dict[str, str]] = {  # dataset -> button label -> caption
    "shapes": {
        "Two shapes": "a small red circle above a large green square",
        "Unseen pair": "a large blue square to the right of a small orange circle",
        "Three shapes": "a big purple diamond to the left of a small yellow cross and a blue "
        "circle below the purple diamond",
        "Synonyms": "there is a little violet disc over a big yellow box",
        "Unknown word": "a fluffy red circle under a green triangle",
    },
    "emoji": {
        "Grinning face": "grinning face",
        "Red heart": "red heart",
        "Cat face": "cat face",
        # A test caption: no picture of it was trained on, but both words were.
        "Held-out name": "blue square",
    },
}
# "red" -> "blue" and back: the edit the page suggests keeps everything but one colour.
COLOUR_SWAPS = {
    "red": "blue",
    "blue": "red",
    "green": "yellow",
    "yellow": "green",
    "orange": "purple",
    "purple": "orange",
    "violet": "orange",
}


def model_names() -> list[str]:
    return [m.name for m in FAMILY.models]


def model_title(name: str) -> str:
    return FAMILY.model(name).title


def examples(dataset: str) -> dict[str, str]:
    """The example captions of a dataset (none for one the page does not know)."""
    return EXAMPLE_CAPTIONS.get(dataset, {})


# -- reading a caption ------------------------------------------------------------------------


@dataclass
class CaptionReading:
    """A caption as the model's text encoder reads it."""

    text: str
    words: list[str]  # every word of the text (tokenised as the encoder does)
    known: set[str]  # those in the encoder's vocabulary
    problem: str = ""  # why the caption cannot be drawn; empty when it can

    @property
    def read(self) -> list[str]:
        """The words the encoder reads: the first MAX_WORDS."""
        return self.words[: textenc.MAX_WORDS]

    @property
    def unknown(self) -> list[str]:
        """Read words outside the vocabulary (each read as <unk>), once each, in order."""
        return list(dict.fromkeys(w for w in self.read if w not in self.known))

    @property
    def ignored(self) -> int:
        """Words past MAX_WORDS, which the encoder never reads."""
        return max(0, len(self.words) - textenc.MAX_WORDS)

    @property
    def all_unknown(self) -> bool:
        return bool(self.read) and not any(w in self.known for w in self.read)


def read_caption(model: StackGAN, text: str | None) -> CaptionReading:
    """Which words of ``text`` the model knows; a problem for an empty or enormous caption."""
    text = text or ""
    if len(text) > MAX_CAPTION_CHARS:
        return CaptionReading(
            text,
            [],
            set(),
            f"This caption is {len(text):,} characters long; the model reads at most "
            f"{textenc.MAX_WORDS} words. Shorten it to {MAX_CAPTION_CHARS} characters or fewer.",
        )
    words = shapesdata.tokenize(text)
    if not words:
        return CaptionReading(
            text,
            [],
            set(),
            "Type a caption (words, not only digits or punctuation), or pick an example above.",
        )
    index = model.text.index
    return CaptionReading(text, words, {w for w in words if w in index})


def marked_words(reading: CaptionReading) -> str:
    """Markdown of the words as the encoder reads them: unknown ones in red, words past the
    limit struck through. Tokens are letters only, so they need no escaping."""
    marked = [w if w in reading.known else f":red[**{w}**]" for w in reading.read]
    marked += [f":gray[~~{w}~~]" for w in reading.words[textenc.MAX_WORDS :]]
    return " ".join(marked)


def composition_notes(dataset: str, text: str) -> list[str]:
    """What the shapes grammar reads in a caption: its objects, and the colour-shape pairs
    that no training scene holds (the model must compose them)."""
    if dataset != "shapes":
        return []
    parsed = shapesdata.parse_caption(text)
    notes = []
    objects = [
        " ".join(part for part in (o.size, o.colour, o.shape) if part) for o in parsed.objects
    ]
    if objects:
        notes.append("Objects: " + "; ".join(objects) + ".")
    unseen = [
        f"{c} {s}"
        for c, s in dict.fromkeys(o.pair for o in parsed.objects)
        if (c, s) in shapesdata.HELD_OUT_PAIRS
    ]
    if unseen:
        notes.append(
            "Never in a training scene: "
            + ", ".join(unseen)
            + ". The model saw each colour and each shape, but never together."
        )
    notes += [f"Not understood: {problem}." for problem in parsed.problems]
    return notes


def suggest_edit(text: str) -> str:
    """``text`` with its first colour word swapped for another ("red" -> "blue"); unchanged
    when it names no colour."""
    pattern = r"\b(" + "|".join(COLOUR_SWAPS) + r")\b"
    found = re.search(pattern, text, flags=re.IGNORECASE)
    if found is None:
        return text
    swapped = COLOUR_SWAPS[found.group(1).lower()]
    if found.group(1)[0].isupper():
        swapped = swapped.capitalize()
    return text[: found.start()] + swapped + text[found.end() :]


# -- pictures ---------------------------------------------------------------------------------


def enlarge(image: torch.Tensor, side: int = DISPLAY) -> Image.Image:
    """One (3, R, R) image in [-1, 1] at ``side`` pixels, crisp (nearest neighbour)."""
    picture = imagedata.to_pil(imagedata.to_uint8(image[None])[0])
    return picture.resize((side, side), Image.NEAREST)


def pair_picture(stage1: torch.Tensor, stage2: torch.Tensor, side: int = DISPLAY) -> Image.Image:
    """A sample's Stage-I and Stage-II pictures side by side, both at ``side`` pixels."""
    canvas = Image.new("RGB", (2 * side + GAP, side), "white")
    canvas.paste(enlarge(stage1, side), (0, 0))
    canvas.paste(enlarge(stage2, side), (side + GAP, 0))
    return canvas


def samples_sheet(stage1: torch.Tensor, stage2: torch.Tensor, per_row: int = 4) -> Image.Image:
    """Every sample's Stage-I (enlarged to Stage-II's side) and Stage-II pictures in pairs, at
    least 256 pixels per picture: the PNG the page offers for download."""
    side = stage2.shape[-1]
    up = F.interpolate(stage1, size=(side, side), mode="nearest")
    pairs = torch.stack([up, stage2], 1).flatten(0, 1)  # s1, s2, s1, s2, ...
    columns = 2 * min(per_row, len(stage2))
    return imagedata.grid(pairs, columns=columns, scale=max(1, 256 // side))


def rows_sheet(rows: list[torch.Tensor]) -> Image.Image:
    """Rows of equally many images (each (N, 3, R, R)), one grid; smaller rows enlarged."""
    side = max(r.shape[-1] for r in rows)
    same = [F.interpolate(r, size=(side, side), mode="nearest") for r in rows]
    return imagedata.grid(torch.cat(same), columns=len(rows[0]), scale=max(1, 128 // side))


def frames(images: torch.Tensor) -> list[Image.Image]:
    return [enlarge(image) for image in images]


# -- interpolation ----------------------------------------------------------------------------


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, D) points on the great circle from unit vector ``a`` to ``b`` (the encoder's
    vectors have unit length: a straight line would pass through shorter, unseen ones)."""
    t = torch.linspace(0, 1, steps)[:, None]
    angle = torch.arccos((a @ b).clamp(-1, 1))
    if float(angle) < 1e-4:
        return F.normalize((1 - t) * a + t * b, dim=1)
    return (torch.sin((1 - t) * angle) * a + torch.sin(t * angle) * b) / torch.sin(angle)


def interpolate(
    model: StackGAN, start: str, end: str, steps: int, seed: int, noise_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage-I and Stage-II images of ``steps`` caption vectors from ``start`` to ``end``,
    every one with sample 0's noise of ``seed``."""
    text, _ = encode_captions(model, [start, end])
    path = slerp(text[0], text[1], steps)
    draw = noise(model.config, 1, seed)
    return synthesize(model, path, type(draw)(*(p.repeat(steps, 1) for p in draw)), noise_scale)


# -- the nearest training caption and the copy check -----------------------------------------


@dataclass
class TrainingPool:
    """Training pictures and captions standing for the training data: for the shapes, scenes
    of the training stream (the generator draws fresh scenes at every step and never sees one
    twice, so any seed is as good); for captioned pictures, the training groups themselves."""

    captions: list[str]
    images: torch.Tensor  # (N, 3, R, R) uint8 pictures
    caption_image: torch.Tensor  # (len(captions),) index into images: each caption's picture
    real_nearest: np.ndarray  # sorted RMS of unseen real pictures to their nearest pool image
    note: str  # one sentence for the page: what the pool stands for

    def percentile(self, rms: float) -> float:
        """Share of unseen real pictures closer to a training image than ``rms``."""
        return float(np.searchsorted(self.real_nearest, rms) / len(self.real_nearest))


def nearest_pixels(images: torch.Tensor, pool: torch.Tensor, chunk: int = 500):
    """(RMS in [0, 1] pixel units, index) of each image's nearest pool image (uint8)."""
    flat = ((images.float().clamp(-1, 1) + 1) / 2).flatten(1)
    best = torch.full((len(images),), math.inf)
    index = torch.zeros(len(images), dtype=torch.long)
    for start in range(0, len(pool), chunk):
        part = pool[start : start + chunk].float().div(255).flatten(1)
        distance, found = torch.cdist(flat, part).min(1)
        better = distance < best
        best = torch.where(better, distance, best)
        index = torch.where(better, found + start, index)
    # cdist finds the nearest by matrix products, whose rounding leaves an exact copy about
    # 1e-3 RMS away: the distance to the one found is measured again, pixel by pixel.
    nearest = pool[index].float().div(255).flatten(1)
    return (flat - nearest).pow(2).mean(1).sqrt(), index


def to_uint8_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(N, R, R, 3) uint8 renders -> (N, 3, R, R) uint8."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


@st.cache_resource(show_spinner="Rendering training scenes for the copy check…", max_entries=4)
def training_pool(resolution: int, size: int = POOL_SIZE) -> TrainingPool:
    """``size`` training scenes of the shapes grammar, captioned and rendered; and how close
    unseen real renders come to them."""
    scenes = shapesdata.scenes(size, POOL_SEED, "train")
    rng = np.random.default_rng(POOL_SEED)
    captions = [shapesdata.caption(s, rng) for s in scenes]
    images = to_uint8_tensor(shapesdata.render_many(scenes, resolution))
    real = shapesdata.render_many(shapesdata.test_set(REFERENCE_SIZE), resolution)
    real = to_uint8_tensor(real).float() / 127.5 - 1
    rms, _ = nearest_pixels(real, images)
    return TrainingPool(
        captions, images, torch.arange(len(captions)), np.sort(rms.numpy()), SHAPES_POOL_NOTE
    )


def caption_set_pool(pictures: captiondata.CaptionSet) -> TrainingPool:
    """The training groups of captioned pictures as a pool: one caption per group, shown with
    the group's first picture, and every picture of those groups for the copy check. The test
    groups' pictures calibrate the check: real pictures the model never trained on."""
    train = pictures.image_index("train")  # sorted, so a picture's place in it is a search
    groups = pictures.train_groups
    caption_image = torch.searchsorted(train, pictures.first_index(groups))
    images = pictures.pixels[train]
    # At most REFERENCE_SIZE test pictures, spread over the test set, as for the shapes: the
    # percentile needs no more, and emoji hold over a thousand.
    test = pictures.image_index("test")
    test = test[:: max(1, len(test) // REFERENCE_SIZE)][:REFERENCE_SIZE]
    rms, _ = nearest_pixels(pictures.images(test), images)
    return TrainingPool(
        [pictures.captions[group] for group in groups.tolist()],
        images,
        caption_image,
        np.sort(rms.numpy()),
        CAPTIONED_POOL_NOTE,
    )


@st.cache_resource(show_spinner="Loading the training pictures for the copy check…", max_entries=4)
def captioned_pool(dataset: str, resolution: int) -> TrainingPool:
    """The pool of a captioned-pictures dataset the page can load by name (emoji)."""
    if dataset != "emoji":
        raise ValueError(f"no training pictures to load for dataset {dataset!r}")
    return caption_set_pool(captiondata.emoji_captions(resolution))


def nearest_pool(dataset: str, resolution: int) -> TrainingPool:
    """The pool the nearest-training-image tab searches, for a dataset in POOL_DATASETS."""
    if dataset == "shapes":
        return training_pool(resolution)
    return captioned_pool(dataset, resolution)


@st.cache_resource(show_spinner=False, max_entries=4)
def pool_vectors(key: str, _model: StackGAN, _pool: TrainingPool) -> torch.Tensor:
    """The pool's captions through the model's text encoder (``key`` names the model)."""
    return encode_captions(_model, _pool.captions)[0]


@dataclass
class NearestCaption:
    caption: str
    image: torch.Tensor  # (3, R, R) in [-1, 1]
    similarity: float  # cosine of the two caption vectors


def nearest_caption(model: StackGAN, key: str, pool: TrainingPool, caption: str) -> NearestCaption:
    """The training caption nearest ``caption`` by the model's own text encoder, and its
    picture: what a lookup of the training data would show for this caption."""
    vectors = pool_vectors(key, model, pool)
    query, _ = encode_captions(model, [caption])
    similarity, index = (vectors @ query[0]).max(0)
    image = pool.images[int(pool.caption_image[int(index)])].float() / 127.5 - 1
    return NearestCaption(pool.captions[int(index)], image, float(similarity))


@dataclass
class CopyCheck:
    index: int  # of the nearest training picture in the pool's images
    rms: float  # its pixel distance, [0, 1] units
    closer_real: float  # share of unseen real pictures closer to a training image than this

    @property
    def copy(self) -> bool:
        return self.rms < COPY_RMS


def copy_checks(pool: TrainingPool, images: torch.Tensor) -> list[CopyCheck]:
    rms, index = nearest_pixels(images, pool.images)
    return [
        CopyCheck(int(i), float(d), pool.percentile(float(d)))
        for d, i in zip(rms, index, strict=True)
    ]


def copy_verdict(check: CopyCheck) -> str:
    if check.copy:
        return (
            f"**Possibly a copy:** within {COPY_RMS:.0%} RMS of a training image ({check.rms:.3f})."
        )
    return (
        f"**Not a copy:** pixel RMS {check.rms:.3f} to the nearest training image; "
        f"{check.closer_real:.0%} of unseen real renders sit closer to one."
    )
