"""Pictures with captions, for text-to-image models: emoji named by CLDR, or the user's folder.

A ``CaptionSet`` holds groups: one caption with every picture of it. Emoji group by name, so
that each caption has one drawing per vendor (several pictures, one text); a user's folder
groups by file (each picture with every caption given for it). A caption may be phrased
several ways (``phrasings``): the first is the caption itself, the one the fixed test set
reads; training draws any of them.

The test set is a fixed share of the groups, picked by a hash of the caption (not by position
or a seeded shuffle), so that it stays the same when vendors are installed or removed or a
folder gains pictures; the pictures of a test caption are held out of training, and so are its
words from the vocabulary (``vocabulary("train")``): a test-only word reads as <unk>.

Emoji keywords: the CLDR name, then its CLDR group and subgroup ("smileys emotion", "face
smiling") and its short names (the ``emoji`` package's aliases, ":grinning:"). CLDR's own
keyword annotations are not in any installed package.

A user's folder (``--data FOLDER``) holds pictures and either an index, ``captions.csv`` or
``captions.jsonl`` (``metadata.csv`` / ``metadata.jsonl``, as Hugging Face's imagefolder names
them, work too), or one ``.txt`` beside each picture (``cat.png`` + ``cat.txt``, one caption per
line). A CSV has two columns, file then caption, with or without a header; a JSONL line is an
object with "file" (or "file_name", "image") and "caption" (or "text"). ``--data`` may also
name the index file itself. Every pair that cannot be used (a missing or damaged picture, an
empty or over-long caption, a malformed row) is one message in ``problems``; the rest still
load, and loading fails only when no pair is usable.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hub_models import imagedata, shapesdata, textenc
from hub_models.imagedata import DataError

TEST_SHARE = 0.1  # of the caption groups, held out as the fixed test set
SPLIT_SALT = "captiondata-test-v1"  # changing it changes every test set: keep it
MAX_CAPTION_CHARS = 500
MAX_CAPTION_WORDS = textenc.MAX_WORDS  # the text encoder reads no more words than this
MIN_GROUPS = 2  # one to train on and one to test on
INDEX_FILES = ("captions.csv", "captions.jsonl", "metadata.csv", "metadata.jsonl")
FILE_KEYS = ("file", "file_name", "image", "path")
CAPTION_KEYS = ("caption", "text")
# Emoji are drawn at no less than this and reduced: the renders are cached per size (see
# emojidata), and one cached set then serves every smaller model.
EMOJI_MIN_RENDER = 32
SHOWN_PROBLEMS = 5  # in an error message; the rest are counted


@dataclass(frozen=True)
class CaptionSet:
    """Captioned pictures at one resolution, split once into training and test groups."""

    name: str
    pixels: torch.Tensor  # (N, 3, R, R) uint8: a quarter of float32's memory (15,000 emoji)
    image_group: torch.Tensor  # (N,) int64 index into captions
    captions: tuple[str, ...]  # (G,) one caption per group: what the test set reads
    phrasings: tuple[tuple[str, ...], ...]  # (G,) ways of saying it; [0] is the caption
    test_groups: torch.Tensor  # (T,) int64, sorted: the fixed test set
    problems: tuple[str, ...] = ()  # what could not be loaded, one message each

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def resolution(self) -> int:
        return self.pixels.shape[-1]

    def images(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """(n, 3, R, R) float32 in [-1, 1]: the pictures at ``index`` (default: all)."""
        chosen = self.pixels if index is None else self.pixels[index]
        return chosen.float() / 127.5 - 1

    @functools.cached_property
    def train_groups(self) -> torch.Tensor:
        test = torch.zeros(len(self.captions), dtype=torch.bool)
        test[self.test_groups] = True
        return torch.nonzero(~test).flatten()

    def image_index(self, split: str) -> torch.Tensor:
        """(n,) indices of the pictures of the "train" or "test" groups, or of "all"."""
        if split == "all":
            return torch.arange(len(self.pixels))
        groups = {"train": self.train_groups, "test": self.test_groups}[split]
        return torch.nonzero(torch.isin(self.image_group, groups)).flatten()

    def first_index(self, groups: torch.Tensor) -> torch.Tensor:
        """(len(groups),) index of each group's first picture."""
        first = {}
        for i, g in enumerate(self.image_group.tolist()):
            first.setdefault(g, i)
        return torch.tensor([first[g] for g in groups.tolist()], dtype=torch.long)

    def first_images(self, groups: torch.Tensor) -> torch.Tensor:
        """One picture per group (its first), e.g. the real picture of each test caption."""
        return self.images(self.first_index(groups))

    def test_captions(self, n: int | None = None) -> list[str]:
        """The fixed test captions (a prefix, when ``n`` is given)."""
        return [self.captions[g] for g in self.test_groups[:n].tolist()]

    def vocabulary(self, split: str = "train", min_count: int = 1) -> tuple[str, ...]:
        """The text encoder's rows: the words of the phrasings of ``split``'s groups."""
        groups = range(len(self.captions)) if split == "all" else self.train_groups.tolist()
        return textenc.word_vocabulary(
            (p for g in groups for p in self.phrasings[g]), min_count=min_count
        )

    def draw(
        self, n: int, generator: torch.Generator, split: str = "train"
    ) -> tuple[torch.Tensor, list[str]]:
        """``n`` random (picture, phrasing) pairs of ``split``, drawn with replacement."""
        pool = self.image_index(split)
        pick = pool[torch.randint(len(pool), (n,), generator=generator)]
        groups = self.image_group[pick].tolist()
        choice = torch.rand(n, generator=generator).tolist()
        texts = []
        for g, u in zip(groups, choice, strict=True):
            options = self.phrasings[g]
            texts.append(options[min(int(u * len(options)), len(options) - 1)])
        return self.images(pick), texts


def split_key(caption: str) -> int:
    """A stable number per caption: it decides the test set, whatever else the data hold."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{caption.casefold()}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def split_groups(captions: Sequence[str], share: float = TEST_SHARE) -> torch.Tensor:
    """Sorted indices of the test groups: those whose key falls in the lowest ``share`` of the
    key space, at least one, and never every group."""
    if len(captions) < MIN_GROUPS:
        raise DataError(
            f"{len(captions)} caption group(s); at least {MIN_GROUPS} are needed (one is held "
            "out as the test set)"
        )
    keys = [split_key(c) for c in captions]
    bound = share * 2**64
    chosen = [i for i, k in enumerate(keys) if k < bound]
    if not chosen:
        chosen = [min(range(len(keys)), key=keys.__getitem__)]
    if len(chosen) == len(captions):
        chosen.remove(max(chosen, key=keys.__getitem__))
    return torch.tensor(sorted(chosen), dtype=torch.long)


def _assemble(
    name: str,
    pictures: list[np.ndarray],
    image_group: list[int],
    phrasings: list[tuple[str, ...]],
    problems: Sequence[str] = (),
) -> CaptionSet:
    captions = tuple(p[0] for p in phrasings)
    return CaptionSet(
        name,
        torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).contiguous(),
        torch.tensor(image_group, dtype=torch.long),
        captions,
        tuple(phrasings),
        split_groups(captions),
        tuple(problems),
    )


# -- emoji: every vendor's drawing, captioned by its CLDR name ---------------------------------


def _words(text: str) -> str:
    return " ".join(shapesdata.tokenize(text))


def emoji_keywords(key: str) -> tuple[str, ...]:
    """Words about an emoji beside its name: group, subgroup, short names; each once."""
    import emoji

    from hub_models import emojidata

    entry = emojidata.cldr_emoji()[key]
    aliases = emoji.EMOJI_DATA.get(entry.text, {}).get("alias", [])
    seen = set(shapesdata.tokenize(entry.name))
    out = []
    for phrase in (entry.group, entry.subgroup, *aliases):
        words = [w for w in shapesdata.tokenize(phrase) if w not in seen]
        seen.update(words)
        if words:
            out.append(" ".join(words))
    return tuple(out)


def emoji_phrasings(key: str) -> tuple[str, ...]:
    """The name alone, and the name followed by its keywords ("grinning face: smileys emotion,
    face smiling, grinning")."""
    from hub_models import emojidata

    name = emojidata.cldr_emoji()[key].name
    keywords = emoji_keywords(key)
    return (name, f"{name}: {', '.join(keywords)}") if keywords else (name,)


@functools.cache
def _emoji(resolution: int, vendors: tuple[str, ...] | None) -> CaptionSet:
    from hub_models import emojidata

    source = max(resolution, EMOJI_MIN_RENDER)
    drawn = emojidata.load_emoji(vendors, source, "all", aligned=False)
    pictures = imagedata.resize(np.asarray(drawn.images), resolution)
    # Group by name, not by code point: the caption is what the model reads.
    group_of: dict[str, int] = {}
    phrasings: list[tuple[str, ...]] = []
    image_group = []
    for name, key in zip(drawn.names, drawn.codepoints, strict=True):
        if name not in group_of:
            group_of[name] = len(phrasings)
            phrasings.append(emoji_phrasings(key))
        image_group.append(group_of[name])
    title = "emoji (" + ", ".join(drawn.vendor_names) + ")"
    return _assemble(title, list(pictures), image_group, phrasings)


def emoji_captions(resolution: int, vendors: Sequence[str] | None = None) -> CaptionSet:
    """Every vendor's drawing of every CLDR emoji (default: the installed vendors), each
    captioned by its name; several pictures (one per vendor) share a caption."""
    textenc.check_resolution(resolution, least=4)
    return _emoji(int(resolution), tuple(vendors) if vendors is not None else None)


# -- the user's folder -------------------------------------------------------------------------


@dataclass
class _Pairs:
    """Pairs read so far: file -> its captions in order, and the problems met."""

    root: Path
    captions: dict[Path, list[str]]
    problems: list[str]

    def add(self, where: str, file: str, caption: object) -> None:
        if not isinstance(caption, str):
            self.problems.append(f"{where}: the caption of {file} is not text")
            return
        text = " ".join(caption.split())
        if not text:
            self.problems.append(f"{where}: the caption of {file} is empty")
        elif len(text) > MAX_CAPTION_CHARS:
            self.problems.append(
                f"{where}: the caption of {file} has {len(text)} characters; at most "
                f"{MAX_CAPTION_CHARS} are allowed: shorten it"
            )
        elif len(words := shapesdata.tokenize(text)) > MAX_CAPTION_WORDS:
            self.problems.append(
                f"{where}: the caption of {file} has {len(words)} words; the text encoder reads "
                f"at most {MAX_CAPTION_WORDS}: shorten it"
            )
        else:
            path = Path(file).expanduser()
            self.captions.setdefault(path if path.is_absolute() else self.root / path, []).append(
                text
            )


def _read_csv(path: Path, pairs: _Pairs) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    start = 0
    if rows and [c.strip().lower() for c in rows[0][:2]] in (
        [f, c] for f in FILE_KEYS for c in CAPTION_KEYS
    ):
        start = 1
    for number, row in enumerate(rows[start:], start + 1):
        where = f"{path.name} line {number}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip():
            pairs.problems.append(f"{where}: expected two columns, file then caption")
            continue
        # A caption with unquoted commas spreads over several cells: join them back.
        pairs.add(where, row[0].strip(), ",".join(row[1:]))


def _read_jsonl(path: Path, pairs: _Pairs) -> None:
    for number, line in enumerate(path.read_text("utf-8-sig").splitlines(), 1):
        where = f"{path.name} line {number}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            pairs.problems.append(f"{where}: not valid JSON ({error.msg})")
            continue
        file = next((row[k] for k in FILE_KEYS if isinstance(row, dict) and k in row), None)
        caption = next((row[k] for k in CAPTION_KEYS if isinstance(row, dict) and k in row), None)
        if not isinstance(file, str) or caption is None:
            pairs.problems.append(
                f"{where}: expected an object with {' or '.join(map(repr, FILE_KEYS))} and "
                f"{' or '.join(map(repr, CAPTION_KEYS))}"
            )
            continue
        pairs.add(where, file, caption)


def _read_sidecars(folder: Path, pairs: _Pairs) -> None:
    """One .txt beside each picture; pictures without one and .txt without a picture are
    problems."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    )
    texts = {p.with_suffix(""): p for p in files if p.suffix.lower() == ".txt"}
    pictures = [p for p in files if p.suffix.lower() in imagedata.IMAGE_SUFFIXES]
    for picture in pictures:
        rel = picture.relative_to(folder).as_posix()
        sidecar = texts.pop(picture.with_suffix(""), None)
        if sidecar is None:
            pairs.problems.append(f"{rel}: no caption (expected {picture.stem}.txt beside it)")
            continue
        where = sidecar.relative_to(folder).as_posix()
        lines = [line for line in sidecar.read_text("utf-8-sig").splitlines() if line.strip()]
        for line in lines or [""]:
            pairs.add(where, rel, line)
    for stem, sidecar in texts.items():
        pairs.problems.append(
            f"{sidecar.relative_to(folder).as_posix()}: a caption with no picture "
            f"(expected {stem.name}.png or another image beside it)"
        )


def _index_file(path: Path) -> Path | None:
    if path.is_file():
        if path.suffix.lower() not in (".csv", ".jsonl"):
            raise DataError(f"{path} is neither a folder nor a .csv or .jsonl index of captions")
        return path
    found = [path / name for name in INDEX_FILES if (path / name).is_file()]
    if len(found) > 1:
        raise DataError(
            f"{path} holds {' and '.join(p.name for p in found)}: keep one index of captions"
        )
    return found[0] if found else None


def folder_captions(path: Path | str, resolution: int) -> CaptionSet:
    """The captioned pictures of a user's folder (or of an index file); see the module
    docstring for the layouts. Problems are collected in ``problems``; a ``DataError`` lists
    them when no pair at all can be used."""
    textenc.check_resolution(resolution, least=4)
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist")
    index = _index_file(path)
    folder = index.parent if index is not None else path
    pairs = _Pairs(folder, {}, [])
    if index is not None:
        (_read_jsonl if index.suffix.lower() == ".jsonl" else _read_csv)(index, pairs)
    else:
        _read_sidecars(folder, pairs)
    if len(pairs.captions) > imagedata.MAX_FOLDER_IMAGES:
        raise DataError(
            f"{path} captions {len(pairs.captions):,} pictures; at most "
            f"{imagedata.MAX_FOLDER_IMAGES:,}"
        )
    pictures, image_group, phrasings = [], [], []
    for file, texts in pairs.captions.items():
        shown = file.relative_to(folder).as_posix() if file.is_relative_to(folder) else str(file)
        if not file.is_file():
            pairs.problems.append(f"{shown}: the picture does not exist")
            continue
        try:
            image = imagedata.decode_image(file.read_bytes(), shown)
            pictures.append(imagedata.square(image, resolution, 3))
        except DataError as error:
            pairs.problems.append(str(error))
            continue
        image_group.append(len(phrasings))
        phrasings.append(tuple(dict.fromkeys(texts)))
    if len(phrasings) < MIN_GROUPS:
        how = f"index {index.name}" if index is not None else "one .txt caption beside each picture"
        raise DataError(
            f"{path}: {len(phrasings)} captioned picture(s) could be used, at least "
            f"{MIN_GROUPS} are needed (read as {how}). "
            + (problem_summary(pairs.problems) if pairs.problems else "Nothing was found.")
        )
    return _assemble(folder.name, pictures, image_group, phrasings, pairs.problems)


def problem_summary(problems: Sequence[str], shown: int = SHOWN_PROBLEMS) -> str:
    """The first few problems and a count of the rest, on one line."""
    head = "; ".join(problems[:shown])
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return f"{len(problems)} problem(s): {head}{more}."
