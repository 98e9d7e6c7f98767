"""Data for anomaly detection: normal images to train on, and a labelled test set to score.

Three sources, one shape (``AnomalySet``):

- **digits**, the GANomaly paper's protocol on the MNIST subset: one digit is the anomaly,
  the nine others are normal; train on 80 % of the normal images, test on the other 20 %
  plus every image of the anomalous digit.
- **textures** (scikit-image's brick, grass and gravel): normal = crops of the texture;
  anomalies = the same kind of crops with a synthetic defect (a scratch, a stain, or a patch
  of another texture), drawn reproducibly from a seed. Training, calibration and test crops
  come from separate tiles of the photograph, so no test pixel was seen in training.
- **your folder** of normal images; a subfolder named ``anomalous`` (if any) holds real
  anomalies for the test set, otherwise held-out images with synthetic defects are used.

A tenth of the normal training share is held out as the **calibration** set: the score of a
new image is expressed relative to the scores of these unseen normal images, never to the
test set (the original code min-max normalises scores over the test set, which a user
scoring one image cannot do).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hub_models import imagedata
from hub_models.imagedata import DataError

TEXTURES = ("brick", "grass", "gravel")
DEFECTS = ("scratch", "stain", "patch")
TEST_FRACTION = 0.2  # of the normal images (the paper's 80/20)
CALIBRATION_FRACTION = 0.1  # of the normal training share
TEXTURE_CROP = 64  # pixels of the 512x512 photograph per crop, before resizing
TEXTURE_TRAIN, TEXTURE_CALIBRATION, TEXTURE_TEST = 2000, 200, 300  # crops per split
# The photograph is cut into a 4x4 grid of 128-pixel tiles; each split crops inside its own
# tiles, spread over the photograph so that every split sees its lighting and pattern phases
# (with two calibration tiles, grass's uneven lighting put 47 % of normal test crops above the
# 5 % threshold).
TEXTURE_TILE = 128
# Calibration and test tiles each take one tile per row and per column of the grid.
TEXTURE_TILES = {
    "calibration": ((0, 1), (1, 3), (2, 0), (3, 2)),
    "test": ((0, 3), (1, 1), (2, 2), (3, 0)),
}
TEXTURE_TILES["train"] = tuple(
    (r, c)
    for r in range(4)
    for c in range(4)
    if (r, c) not in TEXTURE_TILES["calibration"] + TEXTURE_TILES["test"]
)
ANOMALOUS_FOLDER = "anomalous"
SPLIT_SEED = 1234
MIN_SIDE = 16  # smaller uploads carry too little to score


@dataclass
class AnomalySet:
    """Normal images to train on, unseen normal ones to calibrate with, and a test set."""

    name: str
    train: torch.Tensor  # (N, C, R, R) in [-1, 1], normal only
    calibration: torch.Tensor  # normal, held out of training
    test: torch.Tensor
    test_labels: torch.Tensor  # 1 = anomalous, 0 = normal
    test_kinds: tuple[str, ...]  # what each test image is: "normal", a digit, a defect kind

    @property
    def channels(self) -> int:
        return self.train.shape[1]

    @property
    def resolution(self) -> int:
        return self.train.shape[-1]


def _split_normals(n: int, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, ...]:
    """Fixed train / calibration / test indices of ``n`` normal images."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * TEST_FRACTION))
    n_cal = max(1, round((n - n_test) * CALIBRATION_FRACTION))
    return order[n_test + n_cal :], order[n_test : n_test + n_cal], order[:n_test]


@functools.cache
def digits(anomaly: int, size: int = 32) -> AnomalySet:
    """The paper's protocol: ``anomaly`` is the abnormal digit, the other nine are normal."""
    if not 0 <= anomaly <= 9:
        raise DataError(f"the anomalous digit must be 0-9, not {anomaly}")
    data = imagedata.load_images("mnist", size, 1)
    normal = data.images[data.labels != anomaly]
    abnormal = data.images[data.labels == anomaly]
    normal_digits = data.labels[data.labels != anomaly]
    train, calibration, test = _split_normals(len(normal))
    kinds = [str(int(d)) for d in normal_digits[test]] + [str(anomaly)] * len(abnormal)
    return AnomalySet(
        f"digits, {anomaly} anomalous",
        normal[train],
        normal[calibration],
        torch.cat([normal[test], abnormal]),
        torch.cat([torch.zeros(len(test)), torch.ones(len(abnormal))]).long(),
        tuple(kinds),
    )


@functools.cache
def texture_photo(name: str) -> torch.Tensor:
    """scikit-image's 512x512 grey photograph, as a (1, 1, 512, 512) tensor in [-1, 1]."""
    if name not in TEXTURES:
        raise DataError(f"unknown texture {name!r}; built in: {', '.join(TEXTURES)}")
    from skimage import data as skdata

    pixels = getattr(skdata, name)()
    return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0)[None, None]


def texture_crops(name: str, split: str, n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` random crops inside one split's tiles of the photograph, resized to ``size``
    (area filter), with random horizontal flips; the same seed gives the same crops."""
    photo = texture_photo(name)
    tiles = np.array(TEXTURE_TILES[split])
    rng = np.random.default_rng(seed)
    tile = tiles[rng.integers(0, len(tiles), n)]
    ys = tile[:, 0] * TEXTURE_TILE + rng.integers(0, TEXTURE_TILE - TEXTURE_CROP + 1, n)
    xs = tile[:, 1] * TEXTURE_TILE + rng.integers(0, TEXTURE_TILE - TEXTURE_CROP + 1, n)
    # All crops in one gather: (n, 64, 64) index grids into the photograph.
    offsets = torch.arange(TEXTURE_CROP)
    rows = torch.from_numpy(ys)[:, None, None] + offsets[None, :, None]
    cols = torch.from_numpy(xs)[:, None, None] + offsets[None, None, :]
    crops = photo[0, 0][rows, cols][:, None]
    flip = torch.from_numpy(rng.random(n) < 0.5)
    crops[flip] = crops[flip].flip(-1)
    if size != TEXTURE_CROP:
        crops = F.interpolate(crops, size=(size, size), mode="area")
    return crops.contiguous()


@functools.cache
def textures(name: str, size: int = 32) -> AnomalySet:
    """Normal crops of one texture, and a test set whose second half carries defects."""
    seed = SPLIT_SEED + TEXTURES.index(name)
    train = texture_crops(name, "train", TEXTURE_TRAIN, size, seed)
    calibration = texture_crops(name, "calibration", TEXTURE_CALIBRATION, size, seed + 1)
    test = texture_crops(name, "test", 2 * TEXTURE_TEST, size, seed + 2)
    return _with_defects(f"{name} texture", train, calibration, test, name, seed + 3)


def _with_defects(
    name: str,
    train: torch.Tensor,
    calibration: torch.Tensor,
    test: torch.Tensor,
    texture: str | None,
    seed: int,
) -> AnomalySet:
    """Half the test images stay normal; the other half get one defect each, kinds in turn."""
    half = len(test) // 2
    rng = np.random.default_rng(seed)
    kinds = [DEFECTS[i % len(DEFECTS)] for i in range(len(test) - half)]
    damaged = torch.stack(
        [
            random_defect(image, kind, rng, texture)
            for image, kind in zip(test[half:], kinds, strict=True)
        ]
    )
    return AnomalySet(
        name,
        train,
        calibration,
        torch.cat([test[:half], damaged]),
        torch.cat([torch.zeros(half), torch.ones(len(damaged))]).long(),
        ("normal",) * half + tuple(kinds),
    )


def folder(path: Path, size: int, channels: int) -> AnomalySet:
    """The user's normal images; real anomalies from an ``anomalous`` subfolder if present."""
    path = Path(path).expanduser()
    images, labels, classes = imagedata.folder_images(path, size, channels)
    tensor = imagedata.to_tensor(images, channels)
    abnormal_class = classes.index(ANOMALOUS_FOLDER) if ANOMALOUS_FOLDER in classes else -1
    normal = tensor[torch.from_numpy(labels != abnormal_class)]
    if len(normal) < 10:
        raise DataError(
            f"{path} holds {len(normal)} normal images; at least 10 are needed "
            "(a fifth is held out for testing and some for calibration)"
        )
    train, calibration, test = _split_normals(len(normal))
    if abnormal_class < 0:  # no real anomalies: score synthetic defects on held-out images
        return _with_defects(
            path.name, normal[train], normal[calibration], normal[test].repeat(2, 1, 1, 1),
            None, SPLIT_SEED,
        )  # fmt: skip
    abnormal = tensor[torch.from_numpy(labels == abnormal_class)]
    return AnomalySet(
        path.name,
        normal[train],
        normal[calibration],
        torch.cat([normal[test], abnormal]),
        torch.cat([torch.zeros(len(test)), torch.ones(len(abnormal))]).long(),
        ("normal",) * len(test) + (ANOMALOUS_FOLDER,) * len(abnormal),
    )


def load(dataset: str, anomaly: str, size: int, channels: int, path: Path | None) -> AnomalySet:
    """The set a model trains and is tested on, by its config's names."""
    if path is not None:
        return folder(path, size, channels)
    if dataset == "mnist":
        if not anomaly.isdigit():
            raise DataError(f"for digits, the anomaly is a digit 0-9, not {anomaly!r}")
        return digits(int(anomaly), size)
    if dataset in TEXTURES:
        return textures(dataset, size)
    raise DataError(
        f"unknown dataset {dataset!r}; built in: mnist, {', '.join(TEXTURES)} "
        "(or --data PATH for your own folder of normal images)"
    )


# -- defects ---------------------------------------------------------------------------------


def add_defect(
    image: torch.Tensor,
    kind: str,
    x: float,
    y: float,
    size: float,
    angle: float = 30.0,
    strength: float = 1.0,
    texture: str | None = None,
    source: torch.Tensor | None = None,
) -> torch.Tensor:
    """A copy of ``image`` (C, R, R) in [-1, 1] with one defect, placed in relative units.

    ``x``, ``y`` in [0, 1] are the defect's centre; ``size`` in (0, 1] its extent relative to
    the image side; ``strength`` in [-1, 1] its contrast (negative: darker). ``kind``:

    - ``scratch``: a thin anti-aliased line of length ``size`` at ``angle`` degrees;
    - ``stain``: a soft elliptical blob that shifts the brightness;
    - ``patch``: a square replaced by ``source`` (an image of another material; for a built-in
      texture, a crop of the next texture in the list).
    """
    if kind not in DEFECTS:
        raise ValueError(f"defect must be one of {DEFECTS}, not {kind!r}")
    out = image.clone()
    side = image.shape[-1]
    coords = (torch.arange(side, dtype=torch.float32) + 0.5) / side
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    if kind == "scratch":
        theta = math.radians(angle)
        dx, dy = math.cos(theta), math.sin(theta)
        # Distance from each pixel to the segment centred at (x, y) of length `size`.
        along = ((xx - x) * dx + (yy - y) * dy).clamp(-size / 2, size / 2)
        dist = torch.hypot(xx - x - along * dx, yy - y - along * dy) * side
        mask = (1.5 - dist).clamp(0, 1)  # about 2 px wide, anti-aliased
        value = torch.full_like(out, 1.0 if strength >= 0 else -1.0)
        mask = mask * abs(strength)
        return out * (1 - mask) + value * mask
    if kind == "stain":
        r = max(size / 2, 1.0 / side)
        d2 = ((xx - x) / r) ** 2 + ((yy - y) / (0.7 * r)) ** 2
        mask = torch.exp(-2.0 * d2)
        return (out + 1.2 * strength * mask).clamp(-1, 1)
    half = max(size / 2, 1.0 / side)
    inside = ((xx - x).abs() <= half) & ((yy - y).abs() <= half)
    if source is None:
        source = patch_source(texture, image)
    return torch.where(inside, source.to(out.dtype), out)


def patch_source(texture: str | None, image: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Foreign material for a patch: the next texture's crop, or the image upside down and
    inverted where no other texture applies (e.g. the user's own images)."""
    side = image.shape[-1]
    if texture in TEXTURES:
        other = TEXTURES[(TEXTURES.index(texture) + 1) % len(TEXTURES)]
        crop = texture_crops(other, "test", 1, side, seed)[0]
        return crop.expand_as(image)
    return -image.flip(-2)


def random_defect(
    image: torch.Tensor, kind: str, rng: np.random.Generator, texture: str | None = None
) -> torch.Tensor:
    """One defect of ``kind`` at a random place, size, angle and contrast."""
    x, y = rng.uniform(0.25, 0.75, 2)
    size = {"scratch": rng.uniform(0.4, 0.8), "stain": rng.uniform(0.2, 0.35)}.get(
        kind, rng.uniform(0.15, 0.3)
    )
    strength = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
    angle = rng.uniform(0, 180)
    source = patch_source(texture, image, int(rng.integers(2**31))) if kind == "patch" else None
    return add_defect(image, kind, x, y, size, angle, strength, texture, source)


# -- one image from the user -----------------------------------------------------------------


def prepare_upload(
    data: bytes, name: str, size: int, channels: int, dataset: str = ""
) -> torch.Tensor:
    """An uploaded file as the model's input (1, C, R, R), or a DataError that says why not.

    For a digits model the upload is made the way the training digits were (light ink on
    black, fitted and centred: ``imagedata.mnist_like``); other images are centre-cropped."""
    image = imagedata.decode_image(data, name)
    if min(image.size) < MIN_SIDE:
        raise DataError(
            f"{name} is {image.width}x{image.height} pixels; at least {MIN_SIDE}x{MIN_SIDE} "
            "is needed to score it"
        )
    if dataset == "mnist" and channels == 1:
        array = imagedata.mnist_like(image, size)
    else:
        array = imagedata.square(image, size, channels)
    return imagedata.to_tensor(array[None], channels)
