"""The files of a run folder: what `python -m training train` writes, what is published.

One definition, read by the training loop, the cards, the CLI, the Hub layer and the pages.
A run folder is also a published model once it holds ``PUBLISHED``; the rest of ``SHIPPED``
travels with it to the Hub (pages read them), ``LOCAL`` never leaves the machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
TRAINING = "training.json"  # how it was trained: family, preset, overrides, command, hardware
EVALUATION = "eval.json"  # the card's metrics
SAMPLE = "sample.png"  # the card's picture
REPLAY = "replay.safetensors"  # frames recorded while training (the lab replays them)
BENCHMARK = "benchmark.md"  # a benchmark's table, kept beside the model and put in its card

METRICS_LOG = "metrics.jsonl"  # losses every --log-every steps
SAMPLES = "samples"  # a picture every --sample-every steps
CHECKPOINT = "checkpoint"  # the latest atomic checkpoint (--resume)
PREVIOUS_CHECKPOINT = "checkpoint.old"  # only between the two renames of a checkpoint write

PUBLISHED = (WEIGHTS, CONFIG, CARD)  # a folder without these cannot be published
SHIPPED = (*PUBLISHED, TRAINING, EVALUATION, SAMPLE, REPLAY, BENCHMARK)
LOCAL = (METRICS_LOG, SAMPLES, CHECKPOINT, PREVIOUS_CHECKPOINT)


class RunFolderError(ValueError):
    """A run folder's record cannot be read; the message says which file and why."""


def read_json(folder: Path, name: str) -> dict[str, Any] | None:
    """One of the folder's JSON records, or None when it does not exist."""
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} must hold a JSON object")
    return data


def write_json(folder: Path, name: str, data: dict[str, Any]) -> None:
    (Path(folder) / name).write_text(json.dumps(data, indent=2) + "\n")


def training_data(folder: Path) -> Path | None:
    """The user data a run was trained on (its --data), if it recorded any."""
    record = read_json(folder, TRAINING) or {}
    return Path(record["data"]) if record.get("data") else None
