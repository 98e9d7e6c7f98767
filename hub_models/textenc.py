"""Text and image encoders trained by this project for text-to-image models (StackGAN).

StackGAN's users could not get its char-CNN-RNN text embeddings (Lua Torch, dead links). Here
the text side is a word-level encoder trained by this project and published beside the
generator: words -> embeddings -> bidirectional GRU -> a unit sentence vector. It learns from
real (image, caption) pairs only, contrastively against a small image encoder (InfoNCE in both
directions, as CLIP does): a caption's vector must be nearer its own picture's vector than any
other picture of the batch.

The same ``TextImageModel`` serves twice, trained separately, with other seeds on other scenes:

- as the *conditioning* text encoder: its text tower is copied into the generator, which is
  trained on its vectors. It sees only training compositions, so that the held-out
  compositions stay unseen by everything the generator is made of;
- as the *matcher* that grades generated images (R-precision). It never takes part in
  training a generator, so a generator is not graded by its own teacher, and it sees every
  composition, so that it can grade held-out ones.

Words: ``shapesdata.tokenize`` (lower case, letters only). Each vocabulary row is one word or a
group of synonyms written "canonical|synonym|..." (the shapes grammar's synonyms share a row, so
"a big blue box" and "a large blue square" give the same vector by construction); row 0 is
``<pad>`` and row 1 ``<unk>``, which every word outside the vocabulary becomes. ``encode``
reports those words so that a page can mark them. A vocabulary of emoji names
(``emoji_vocabulary``) plugs into the same encoder: one row per word.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hub_models import shapesdata
from hub_models.base import HubBundle, require_positive

PAD, UNK = "<pad>", "<unk>"
SPECIALS = (PAD, UNK)
SYNONYM_SEPARATOR = "|"
MAX_WORDS = 32  # longer captions are cut: the grammar's longest has 31 words
DATASETS = ("shapes", "emoji", "folder")  # folder: a user's captioned pictures (captiondata)


def shapes_vocabulary() -> tuple[str, ...]:
    """The shapes grammar's words, synonyms sharing one row ("square|box")."""
    rows: list[str] = list(SPECIALS)
    grouped: set[str] = set()
    for synonyms in shapesdata.SYNONYMS.values():
        # Multi-word phrases ("to the left of") are read word by word: only one-word synonyms
        # can share a row.
        words = [phrase for phrase in synonyms if " " not in phrase]
        if len(words) > 1:
            rows.append(SYNONYM_SEPARATOR.join(words))
            grouped.update(words)
    rows += [word for word in shapesdata.VOCABULARY if word not in grouped]
    return tuple(rows)


def word_vocabulary(texts: Iterable[str], min_count: int = 1) -> tuple[str, ...]:
    """One row per word of ``texts`` seen at least ``min_count`` times, in a fixed (sorted)
    order: the vocabulary of captions that have no grammar (emoji names, a user's folder)."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in shapesdata.tokenize(text):
            counts[word] = counts.get(word, 0) + 1
    return (*SPECIALS, *sorted(w for w, c in counts.items() if c >= min_count))


def emoji_vocabulary(names: Iterable[str], min_count: int = 1) -> tuple[str, ...]:
    """One row per word of the emoji names (CLDR names, ``load_emoji(...).names``)."""
    return word_vocabulary(names, min_count)


def vocabulary_index(vocabulary: Sequence[str]) -> dict[str, int]:
    """Word -> row; every synonym of a row maps to that row."""
    if tuple(vocabulary[:2]) != SPECIALS:
        raise ValueError(f"a vocabulary starts with {PAD} and {UNK}")
    index: dict[str, int] = {}
    for row, entry in enumerate(vocabulary):
        for word in entry.split(SYNONYM_SEPARATOR):
            if word in index:
                raise ValueError(f"the word {word!r} is in two rows of the vocabulary")
            index[word] = row
    return index


@dataclass(frozen=True)
class TextEncoderShape:
    """The text tower's architecture, shared by every config that holds a copy of it."""

    vocabulary: tuple[str, ...]
    word_dim: int
    text_hidden: int
    text_dim: int


class TextEncoder(nn.Module):
    """Word ids -> (N, text_dim) unit vectors: embeddings, a bidirectional GRU over the words,
    the two directions' last states joined and projected."""

    def __init__(
        self, *, vocabulary: Sequence[str], word_dim: int, text_hidden: int, text_dim: int
    ) -> None:
        super().__init__()
        self.vocabulary = tuple(vocabulary)
        self.index = vocabulary_index(self.vocabulary)
        self.embed = nn.Embedding(len(self.vocabulary), word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, text_hidden, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * text_hidden, text_dim)

    def ids(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """(N, L) word ids padded with 0, (N,) lengths, and each caption's unknown words (once
        each, in order). An empty caption is one ``<unk>``: the GRU needs a word."""
        rows, unknown = [], []
        for text in captions:  # words are strings: tokenising is Python's work
            words = shapesdata.tokenize(text)[:MAX_WORDS] or [UNK]
            rows.append(torch.tensor([self.index.get(w, 1) for w in words]))
            unknown.append(list(dict.fromkeys(w for w in words if w not in self.index)))
        if not rows:
            return torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, dtype=torch.long), []
        ids = nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=0)
        return ids, torch.tensor([len(r) for r in rows]), unknown

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, last = self.gru(packed)  # (2, N, hidden): forward and backward final states
        return F.normalize(self.project(torch.cat([last[0], last[1]], 1)), dim=1)


def conv_trunk(width: int, resolution: int) -> tuple[nn.Sequential, int]:
    """Strided 4x4 convs with batch norm, doubling the channels from ``width``, down to 4x4,
    flattened; and its channels at 4x4."""
    layers: list[nn.Module] = []
    channels, size = 3, resolution
    while size > 4:
        layers += [
            nn.Conv2d(channels, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2, True),
        ]
        channels, width, size = width, width * 2, size // 2
    return nn.Sequential(*layers, nn.Flatten()), channels


class ImageEncoder(nn.Module):
    """(N, 3, R, R) images in [-1, 1] -> (N, out_dim) unit vectors: strided convs down to 4x4,
    then one linear layer over the whole 4x4 map (not pooled: where things are matters)."""

    def __init__(self, *, width: int, resolution: int, out_dim: int) -> None:
        super().__init__()
        self.trunk, channels = conv_trunk(width, resolution)
        self.head = nn.Linear(channels * 16, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.trunk(images)), dim=1)


def fit_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Pictures of any square size at ``size`` (area average down, bilinear up)."""
    if images.shape[-1] == size:
        return images
    mode = "area" if images.shape[-1] > size else "bilinear"
    return F.interpolate(images, size=(size, size), mode=mode)


def check_resolution(resolution: int, least: int = 8) -> None:
    if resolution < least or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two, at least {least}")


@dataclass(frozen=True)
class TextImageConfig:
    """A dual encoder trained on real pairs: what it reads, its sizes, how it was trained."""

    dataset: str = "shapes"
    vocabulary: tuple[str, ...] = shapes_vocabulary()
    word_dim: int = 64
    text_hidden: int = 64
    text_dim: int = 128
    resolution: int = 64  # of the pictures its image tower reads (others are resized)
    image_width: int = 16
    # Which scenes it learns from: "train" (the conditioning encoder: training compositions
    # only) or "all" (the matcher: held-out compositions too, from other seeds than the
    # fixed held-out set). For captioned pictures (emoji, a folder): the training captions
    # only, or the test captions too.
    compositions: str = "train"
    word_dropout: float = 0.1  # share of words replaced by <unk> in training
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, not {self.dataset!r}")
        if self.compositions not in ("train", "all"):
            raise ValueError(f"compositions must be 'train' or 'all', not {self.compositions!r}")
        check_resolution(self.resolution)
        require_positive(self, "word_dim", "text_hidden", "text_dim", "image_width", "steps")
        require_positive(self, "batch_size")
        vocabulary_index(self.vocabulary)

    @property
    def text_shape(self) -> TextEncoderShape:
        return TextEncoderShape(self.vocabulary, self.word_dim, self.text_hidden, self.text_dim)


class TextImageModel(HubBundle):
    """Text tower, image tower and a learnt temperature (CLIP's logit scale)."""

    config_class = TextImageConfig
    storage_dtype = torch.float16

    def __init__(self, config: TextImageConfig) -> None:
        super().__init__(config)
        self.text = TextEncoder(**vars(config.text_shape))
        self.image = ImageEncoder(
            width=config.image_width, resolution=config.resolution, out_dim=config.text_dim
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def fit_images(self, images: torch.Tensor) -> torch.Tensor:
        return fit_images(images, self.config.resolution)

    def logits(self, image_vectors: torch.Tensor, text_vectors: torch.Tensor) -> torch.Tensor:
        """(images, captions) similarities scaled by the temperature (capped as in CLIP)."""
        return self.logit_scale.clamp(max=math.log(100)).exp() * image_vectors @ text_vectors.T


def contrastive_loss(logits: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE in both directions: row i's positive is column i (image i, caption i).
    ``extra``: (images, more captions) logits that join each image's candidates (wrong ones
    only), not the captions' side."""
    target = torch.arange(len(logits), device=logits.device)
    to_text = logits if extra is None else torch.cat([logits, extra], 1)
    return (F.cross_entropy(to_text, target) + F.cross_entropy(logits.T, target)) / 2


def word_dropout(
    ids: torch.Tensor, lengths: torch.Tensor, rate: float, generator: torch.Generator
) -> torch.Tensor:
    """Replace a share ``rate`` of the real words by <unk>: the <unk> row gets trained, and
    the encoder learns to read a caption with a word it does not know."""
    real = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    drop = (torch.rand(ids.shape, generator=generator) < rate) & real
    return ids.masked_fill(drop, 1)


@torch.inference_mode()
def encode(encoder: TextEncoder, captions: Sequence[str], batch: int = 1024):
    """(N, text_dim) unit vectors of ``captions`` and each caption's unknown words."""
    device = next(encoder.parameters()).device
    ids, lengths, unknown = encoder.ids(list(captions))
    out = [
        encoder(ids[i : i + batch].to(device), lengths[i : i + batch]).float().cpu()
        for i in range(0, len(ids), batch)
    ]
    vectors = torch.cat(out) if out else torch.zeros(0, encoder.project.out_features)
    return vectors, unknown


@torch.inference_mode()
def encode_images(model: TextImageModel, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """(N, text_dim) unit vectors of images in [-1, 1] (any square size)."""
    device = next(model.parameters()).device
    out = [
        model.image(model.fit_images(images[i : i + batch].to(device))).float().cpu()
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out) if out else torch.zeros(0, model.config.text_dim)


def smoke_captions(vocabulary: Sequence[str], dataset: str, n: int) -> list[str]:
    """``n`` fixed captions a model of ``dataset`` can read: the shapes grammar's test
    captions, or (captions without a grammar) words of the vocabulary, two at a time."""
    if dataset == "shapes":
        rng = np.random.default_rng(0)
        return [shapesdata.caption(s, rng) for s in shapesdata.test_set(n)]
    words = [row.split(SYNONYM_SEPARATOR)[0] for row in vocabulary[len(SPECIALS) :]] or [UNK]
    return [f"{words[(2 * i) % len(words)]} {words[(2 * i + 1) % len(words)]}" for i in range(n)]


@torch.inference_mode()
def smoke(model: TextImageModel, n: int, seed: int) -> torch.Tensor:
    """Image-caption similarities of ``n`` fixed captions and ``n`` seeded noise images: the
    smoke run every published model passes."""
    captions = smoke_captions(model.config.vocabulary, model.config.dataset, n)
    text, _ = encode(model.text, captions)
    g = torch.Generator().manual_seed(seed)
    r = model.config.resolution
    images = torch.rand(n, 3, r, r, generator=g) * 2 - 1
    return encode_images(model, images) @ text.T
