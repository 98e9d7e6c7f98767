"""Model cards written from the registry, the training record and the evaluation results.

Every card carries its metrics as ``model-index`` metadata (the Hub's convention; the numbers
are eval.json's), the command that trained it, its data with their licences, intended use and
limitations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hub_models import runfiles
from hub_models.registry import FAMILIES, AuxiliaryModel, Family


def _value(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def card_text(
    folder: Path,
    family: Family,
    config: Any,
    record: dict[str, Any],
    metrics: dict[str, float],
    repo_id: str | None = None,
) -> str:
    """The card of a trained folder; ``repo_id`` is known once the folder is published."""
    name = repo_id.split("/")[-1] if repo_id else folder.name
    where = repo_id or f"<your-org>/{name}"
    if record.get("data"):  # trained on the user's own data
        dataset_name = Path(record["data"]).name
    else:
        dataset_name = (
            getattr(config, "target", None)
            or getattr(config, "dataset", None)
            or family.datasets[0].name
        )
    data = ModelCardData(
        license=family.license,
        library_name="pytorch",
        tags=[*family.tags, "gan-gallery", "pytorch_model_hub_mixin"],
        model_name=name,
        eval_results=_eval_results(family.title, dataset_name, metrics, family.metric_names),
    )
    config_rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in vars(config).items())
    metric_rows = "\n".join(
        f"| {family.metric_names.get(k, k)} | {_value(v)} |" for k, v in metrics.items()
    )
    datasets = "\n".join(
        f"- **{d.name}** — {d.source}; license {d.license}."
        + (f" {d.attribution}" if d.attribution else "")
        for d in family.datasets
    )
    benchmark = folder / runfiles.BENCHMARK
    benchmark_section = (
        f"\n## Benchmark (all configurations, several seeds)\n\n"
        f"{benchmark.read_text(encoding='utf-8').strip()}\n"
        if benchmark.is_file()
        else ""
    )
    papers = ", ".join(family.papers)
    hours = record["wall_seconds"] / 3600
    earlier = record.get("started_from", [])
    lineage = "".join(
        f"- Before it, from whose weights it starts: `{run['command']}` ({run['steps']:,} "
        f"steps, {run['wall_seconds']:.0f} s on {run['hardware']}).\n"
        for run in earlier
    )
    if earlier:
        total = record["wall_seconds"] + sum(run["wall_seconds"] for run in earlier)
        lineage += f"- In all: {total:.0f} s ({total / 3600:.2f} h) of training.\n"
        # A donor named in a command is often the published folder this run then replaced.
        lineage += (
            "- To train it anew: each command in turn, each with `--out` a new folder that "
            "the next one's `--init_from` (or `--stage1_from`) names instead of the published "
            "model.\n"
        )
    body = f"""
# {name}

{family.tagline} This checkpoint: **{getattr(config, "label", family.title)}**.

![samples](sample.png)

*{family.sample_caption}*

## Use it

```python
from hub_models.{family.bundle.__module__.split(".")[-1]} import {family.bundle.__name__}

model = {family.bundle.__name__}.from_pretrained("{where}")
```

`hub_models` is this gallery's package (`pip install -r requirements.txt` in its repository);
`from hub_models import load` also falls back to the HF cache and the bundled snapshot when the
Hub cannot be reached. Weights are safetensors; loading is strict and never unpickles anything.

## Training

{lineage}- Command: `{record["command"]}`
- Preset: `{record["preset"]}`, {record["steps"]:,} steps, {record["wall_seconds"]:.0f} s
  ({hours:.2f} h) on {record["hardware"]}, torch {record["torch"]}.
- Papers: {papers}

| config field | value |
| --- | --- |
{config_rows}

## Evaluation

| metric | value |
| --- | --- |
{metric_rows}

Protocol: {family.protocol}

Reproduce: `python -m training evaluate {family.name} --from <this folder or repo id> --json`.
{benchmark_section}
## Data

{datasets}

## Intended use

{family.intended_use}

## Limitations

{family.limitations}
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"


def write_card(
    folder: Path,
    family: Family,
    config: Any,
    record: dict[str, Any],
    metrics: dict[str, float],
    repo_id: str | None = None,
) -> None:
    text = card_text(Path(folder), family, config, record, metrics, repo_id)
    ModelCard(text).save(Path(folder) / runfiles.CARD)


def rewrite_card(folder: Path, family: Family, config: Any, repo_id: str | None = None) -> None:
    """Regenerate a folder's card from its training.json and eval.json (after a benchmark, or
    when publishing names its repo)."""
    folder = Path(folder)
    record, metrics = _record_and_metrics(folder)
    if record.get("auxiliary"):
        write_auxiliary_card(folder, family, _auxiliary(family, record), repo_id)
        return
    write_card(folder, family, config, record, metrics, repo_id)


def refresh_card(folder: Path, repo_id: str | None = None) -> None:
    """Regenerate the card of any run folder (a family's model or an auxiliary model), naming
    ``repo_id`` as where it is published."""
    from hub_models.base import read_config

    folder = Path(folder)
    record, _ = _record_and_metrics(folder)
    family = FAMILIES[record["family"]]
    if record.get("auxiliary"):
        write_auxiliary_card(folder, family, _auxiliary(family, record), repo_id)
    else:
        rewrite_card(folder, family, read_config(folder, family.bundle.config_class), repo_id)


def _record_and_metrics(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    record = runfiles.read_json(folder, runfiles.TRAINING)
    metrics = runfiles.read_json(folder, runfiles.EVALUATION)
    if record is None or metrics is None:
        raise runfiles.RunFolderError(
            f"{folder} needs {runfiles.TRAINING} and {runfiles.EVALUATION} to write its card"
        )
    return record, metrics


def _auxiliary(family: Family, record: dict[str, Any]) -> AuxiliaryModel:
    for model in family.auxiliary:
        if model.name == record["auxiliary"]:
            return model
    raise runfiles.RunFolderError(
        f"{runfiles.TRAINING} names auxiliary model {record['auxiliary']!r}, which "
        f"{family.name} does not declare"
    )


def _eval_results(task: str, dataset: str, metrics: dict[str, Any], names: dict[str, str]):
    # model-index cannot say "undefined" (huggingface_hub refuses to parse a result without a
    # value), so a NaN metric appears only in the card's table, as n/a.
    return [
        EvalResult(
            task_type="other",
            task_name=task,
            dataset_type="synthetic",
            dataset_name=str(dataset),
            metric_type=key,
            metric_name=names.get(key, key),
            metric_value=v,
        )
        for key, v in metrics.items()
        if not (isinstance(v, float) and math.isnan(v))
    ] or None


# What the auxiliary card writer adds below the trainer's own description; a rewrite replaces
# everything from here down, so rewriting a card twice gives the same card.
AUXILIARY_SECTIONS = "<!-- sections below are written from the registry by training/cards.py -->"


def write_auxiliary_run(
    out: Path,
    family: Family,
    auxiliary: AuxiliaryModel,
    model: Any,
    metrics: dict[str, float],
    began: float,
    card: Callable[[dict[str, Any]], str],
    options: Sequence[str] = (),
    donor: Path | None = None,
) -> dict[str, Any]:
    """An auxiliary model's publishable folder: its weights and config, eval.json,
    training.json (the command with its --field=value ``options``, the wall time since
    ``began``, the config; for a fine-tune the runs of the ``donor`` folder it started from,
    and the time of them all), the trainer's card text (``card`` gets the record), then the
    sections every card has. Returns the record."""
    import time
    from dataclasses import asdict

    import torch

    out = Path(out)
    model.save_pretrained(out)
    wall_seconds = round(time.time() - began, 1)
    record = {
        "family": family.name,
        "auxiliary": auxiliary.name,
        "command": " ".join(["python -m training auxiliary", auxiliary.name, *options]),
        "wall_seconds": wall_seconds,
        "torch": torch.__version__,
        "config": asdict(model.config),
    }
    if donor is not None:  # a fine-tune: its donor's training counts too
        earlier = runfiles.read_json(donor, runfiles.TRAINING) or {}
        record["started_from"] = [
            *earlier.get("started_from", []),
            {k: earlier.get(k) for k in ("command", "wall_seconds")},
        ]
        done = sum(run["wall_seconds"] or 0.0 for run in record["started_from"])
        record["total_wall_seconds"] = round(done + wall_seconds, 1)
    runfiles.write_json(out, runfiles.EVALUATION, metrics)
    runfiles.write_json(out, runfiles.TRAINING, record)
    (out / runfiles.CARD).write_text(card(record), encoding="utf-8")
    write_auxiliary_card(out, family, auxiliary, auxiliary.repo_id)
    return record


def write_auxiliary_card(
    folder: Path, family: Family, auxiliary: AuxiliaryModel, repo_id: str | None = None
) -> None:
    """The card of an auxiliary model: its trainer's description (the card the trainer wrote,
    with its metric table, kept as it is apart from the repo it names), model-index metadata
    from eval.json, and the sections every card has: the command, the data and their licences,
    intended use and limitations."""
    folder = Path(folder)
    record, metrics = _record_and_metrics(folder)
    card_path = folder / runfiles.CARD
    if card_path.is_file():
        previous = ModelCard.load(card_path)
        body = previous.text.split(AUXILIARY_SECTIONS)[0].strip()
        tags = list(previous.data.tags or [])
    else:
        body, tags = f"# {auxiliary.name}\n\n{auxiliary.title}.", []
    if repo_id:  # the repo the description's snippet loads from
        body = re.sub(r'"[\w.-]+/' + re.escape(auxiliary.name) + '"', f'"{repo_id}"', body)
    dataset = (record.get("config") or {}).get("dataset") or family.datasets[0].name
    names = {key: key.replace("_", " ") for key in metrics}
    data = ModelCardData(
        license=family.license,
        library_name="pytorch",
        tags=list(dict.fromkeys([*tags, "gan-gallery", "pytorch_model_hub_mixin"])),
        model_name=auxiliary.name,
        eval_results=_eval_results(auxiliary.title, dataset, metrics, names),
    )
    used = [d for d in family.datasets if str(dataset).lower() in d.name.lower()]
    datasets = "\n".join(
        f"- **{d.name}** — {d.source}; license {d.license}."
        + (f" {d.attribution}" if d.attribution else "")
        for d in used or family.datasets
    )
    sections = f"""
{AUXILIARY_SECTIONS}

## Training

- Command: `{record["command"]}`
- {record["wall_seconds"]:.0f} s on a CPU, torch {record["torch"]}.

## Data

{datasets}

## Intended use

Used by this gallery's *{family.title}* models ({family.name}): the {auxiliary.title}.
Load it to reproduce their numbers; it is not meant for other uses.

## Limitations

Trained by this project for its own models, on the data above, in minutes on a CPU: not a
general-purpose model. Numbers computed with it compare only with numbers computed with it.
"""
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n{sections}").save(card_path)


def write_benchmark(family: Family, text: str, models: tuple[str, ...] | None = None) -> None:
    """Put a benchmark's table into every published card of a family (or of ``models``):
    benchmark.md + card."""
    from hub_models.base import read_config

    for published in family.models:
        if models is not None and published.name not in models:
            continue
        folder = published.snapshot
        if not (folder / runfiles.TRAINING).is_file():
            continue
        (folder / runfiles.BENCHMARK).write_text(text + "\n", encoding="utf-8")
        config = read_config(folder, family.bundle.config_class)
        rewrite_card(folder, family, config, published.repo_id)
