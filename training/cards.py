"""Model cards written from the registry, the training record and the evaluation results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hub_models import runfiles
from hub_models.registry import Family


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
        # model-index cannot say "undefined" (huggingface_hub refuses to parse a result without
        # a value), so a NaN metric appears only in the table below, as n/a.
        eval_results=[
            EvalResult(
                task_type="other",
                task_name=family.title,
                dataset_type="synthetic",
                dataset_name=str(dataset_name),
                metric_type=key,
                metric_name=family.metric_names.get(key, key),
                metric_value=v,
            )
            for key, v in metrics.items()
            if not (isinstance(v, float) and math.isnan(v))
        ]
        or None,
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

- Command: `{record["command"]}`
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
    record = runfiles.read_json(folder, runfiles.TRAINING)
    metrics = runfiles.read_json(folder, runfiles.EVALUATION)
    if record is None or metrics is None:
        raise runfiles.RunFolderError(
            f"{folder} needs {runfiles.TRAINING} and {runfiles.EVALUATION} to write its card"
        )
    write_card(folder, family, config, record, metrics, repo_id)


def write_benchmark(family: Family, text: str) -> None:
    """Put a benchmark's table into every published card of a family (benchmark.md + card)."""
    from hub_models.base import read_config

    for published in family.models:
        folder = published.snapshot
        if not (folder / runfiles.TRAINING).is_file():
            continue
        (folder / runfiles.BENCHMARK).write_text(text + "\n", encoding="utf-8")
        config = read_config(folder, family.bundle.config_class)
        rewrite_card(folder, family, config, published.repo_id)
