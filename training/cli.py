"""Command line: list, train, evaluate, sample, publish (the contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

from hub_models import hub
from hub_models.base import CheckpointError, HubBundle
from hub_models.registry import FAMILIES, Family
from training import trainers

EXAMPLES = """\
examples:
  python -m training list
  python -m training train toy2d --preset tiny --out runs/toy2d-tiny
  python -m training train toy2d --preset demo --target=grid --objective=hinge --out runs/grid
  python -m training train toy2d --preset demo --out runs/ring --resume   # after a kill
  python -m training evaluate toy2d --from runs/grid --json
  python -m training sample toy2d --from gan-gallery/toy2d-ring-hinge --n 1000 --out ring.csv
  python -m training publish runs/grid --repo-id my-org/toy2d-grid-hinge --dry-run

Hub access honours HF_ENDPOINT (mirrors, self-hosted hubs), HF_HUB_OFFLINE and HF_TOKEN.
"""


def parse_overrides(config_class: type, items: list[str]) -> dict[str, Any]:
    """Turn ['--lr_d=1e-4', '--spectral_norm=true'] into typed config values."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    values: dict[str, Any] = {}
    for item in items:
        if not item.startswith("--") or "=" not in item:
            raise SystemExit(
                f"error: unrecognised argument {item!r}; config fields are given as --field=value"
            )
        name, raw = item[2:].split("=", 1)
        name = name.replace("-", "_")
        if name not in fields:
            raise SystemExit(
                f"error: {config_class.__name__} has no field {name!r}; fields: "
                + ", ".join(fields)
            )
        kind = type(getattr(config_class(), name))
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                values[name] = raw.lower() in ("true", "1", "yes")
            else:
                values[name] = kind(raw)
        except ValueError:
            raise SystemExit(f"error: --{name} expects a {kind.__name__}, got {raw!r}") from None
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="families, their presets and published models")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")

    p = sub.add_parser(
        "train",
        help="train a family (CPU, one GPU, or many through accelerate launch/torchrun)",
        description="Train FAMILY. Any config field below can be set with --field=value "
        "(presets set some of them first); checkpoints are written atomically to "
        "OUT/checkpoint and --resume continues from there after a kill.",
        epilog=config_help() + "\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("family", choices=FAMILIES, help="which family to train")
    p.add_argument(
        "--preset",
        default="demo",
        help="tiny: seconds, for tests; demo: what is published (default: demo)",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="your own data instead of the bundled data (toy2d: a CSV of x,y points)",
    )
    p.add_argument("--out", type=Path, help="output folder (default: runs/FAMILY-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT's last checkpoint")
    p.add_argument(
        "--log-every",
        type=int,
        default=50,
        metavar="N",
        help="log losses to OUT/metrics.jsonl every N steps (default 50)",
    )
    p.add_argument(
        "--sample-every",
        type=int,
        default=0,
        metavar="N",
        help="save a sample image to OUT/samples every N steps (default: 5 per run)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="write OUT/checkpoint every N steps (default: 10 per run)",
    )
    p.add_argument(
        "--record-every",
        type=int,
        default=0,
        metavar="N",
        help="save a replay frame every N steps (default: 30 per run)",
    )

    for name, text in (
        ("evaluate", "evaluate a trained or published model"),
        ("sample", "write samples from a trained or published model"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("family", choices=FAMILIES, help="which family the model belongs to")
        p.add_argument(
            "--from",
            dest="source",
            help="a training output folder or a Hub repo id "
            "(default: the family's featured published model)",
        )
        if name == "evaluate":
            p.add_argument("--json", action="store_true", help="print machine-readable JSON")
        else:
            p.add_argument("--n", type=int, default=16, help="how many samples (default 16)")
            p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
            p.add_argument(
                "--out",
                type=Path,
                required=True,
                help="output file: .png for a picture, .csv for the values",
            )

    p = sub.add_parser(
        "features",
        help="train the classifier whose features the image metrics use",
        description="Train the feature extractor of a built-in image dataset (a small "
        "classifier) into hub_models/snapshots/images-DATASET-features, or --out. The image "
        "family's evaluate and benchmarks score samples in its feature space.",
    )
    p.add_argument("dataset", choices=("mnist", "emoji"), help="which built-in dataset")
    p.add_argument("--out", type=Path, help="output folder (default: the bundled snapshot)")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")

    p = sub.add_parser(
        "retrain-published",
        help="retrain every model a family publishes into its snapshots",
        description="Train each of FAMILY's published models with the preset and the "
        "overrides the registry gives it, into hub_models/snapshots/NAME (the "
        "bundled copies), N at a time. Then `publish` each folder.",
    )
    p.add_argument("family", choices=FAMILIES, help="which family to retrain")
    p.add_argument("--preset", default="demo", help="preset for every model (default: demo)")
    p.add_argument("--jobs", type=int, default=1, help="models trained at once (default 1)")
    p.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="NAME",
        help="retrain only these published models",
    )

    p = sub.add_parser(
        "publish",
        help="validate a trained folder and upload it to a Hub repo",
        description="Validate DIR (strict load + one smoke sample) and upload it "
        "with huggingface_hub to HF_ENDPOINT. The token is taken from HF_TOKEN "
        "or `hf auth login` and never printed.",
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="a folder written by `train`")
    p.add_argument("--repo-id", required=True, help="ORG/NAME of the Hub repo (created if needed)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the files only")
    return parser


def config_help() -> str:
    """Every family's config fields with their defaults and each preset's values."""
    lines = ["config fields (--field=value), by family:"]
    for family in FAMILIES.values():
        presets = trainers()[family.name].presets
        lines.append(f"  {family.name} ({family.bundle.config_class.__name__}):")
        for field in dataclasses.fields(family.bundle.config_class):
            preset_values = ", ".join(
                f"{name}: {values[field.name]}"
                for name, values in presets.items()
                if field.name in values
            )
            lines.append(
                f"    --{field.name}={field.default}"
                + (f"   ({preset_values})" if preset_values else "")
            )
    return "\n".join(lines) + "\n"


def _training_data(folder: Path) -> Path | None:
    """The user data a folder was trained on (from its training.json), if any."""
    record = Path(folder) / "training.json"
    if record.is_file():
        data = json.loads(record.read_text()).get("data")
        return Path(data) if data else None
    return None


def _family_of(folder: Path) -> Family:
    record = folder / "training.json"
    if not record.is_file():
        raise CheckpointError(
            f"{folder} has no training.json: publish folders written by `python -m training train`"
        )
    return FAMILIES[json.loads(record.read_text())["family"]]


def _load(family: Family, source: str | None) -> tuple[HubBundle, hub.Resolved]:
    if source is None:
        published = family.featured_model
        return hub.load(family.bundle, published.repo_id, published.snapshot)
    for published in family.models:
        if published.repo_id == source:
            return hub.load(family.bundle, source, published.snapshot)
    return hub.load(family.bundle, source)


def smoke_check(family: Family, model: HubBundle) -> None:
    out = family.sample(model, 4, 0)
    if not torch.isfinite(out.float()).all():
        raise CheckpointError("the model's smoke sample is not finite; it cannot be published")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    try:
        return run(args, extra)
    except (CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from training.loop import RunOptions, TrainingDiverged, train

    registry = trainers()
    if args.command == "list":
        rows = [
            {
                "family": f.name,
                "title": f.title,
                "presets": list(registry[f.name].presets),
                "models": [m.repo_id for m in f.models],
                "config_fields": [x.name for x in dataclasses.fields(f.bundle.config_class)],
            }
            for f in FAMILIES.values()
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(f"{row['family']:10} {row['title']} — presets: {', '.join(row['presets'])}")
                print(f"{'':10} config fields: {', '.join(row['config_fields'])}")
                for repo in row["models"]:
                    print(f"{'':10} {repo}")
        return 0

    family = FAMILIES[args.family] if hasattr(args, "family") else None
    if args.command == "train":
        trainer = registry[args.family]
        if args.preset not in trainer.presets:
            raise ValueError(
                f"unknown preset {args.preset!r}; {args.family} has " + ", ".join(trainer.presets)
            )
        overrides = parse_overrides(trainer.family.bundle.config_class, extra)
        config = trainer.family.bundle.config_class(**{**trainer.presets[args.preset], **overrides})
        out = args.out or Path("runs") / f"{args.family}-{args.preset}"
        options = RunOptions(
            out=out,
            preset=args.preset,
            resume=args.resume,
            data=args.data,
            log_every=args.log_every,
            record_every=args.record_every,
            checkpoint_every=args.checkpoint_every,
            sample_every=args.sample_every,
            overrides=overrides,
        )
        try:
            train(trainer, config, options)
        except TrainingDiverged as error:
            print(f"error: {error}", file=sys.stderr)
            return 3
        print(f"trained {args.family} into {out}")
        return 0

    if args.command == "evaluate":
        trainer = registry[args.family]
        model, where = _load(family, args.source)
        data = trainer.prepare_data(model.config, _training_data(where.path))
        metrics = trainer.evaluate(model, data)
        if args.json:
            print(
                json.dumps(
                    {
                        "model": where.repo_id,
                        "source": where.source,
                        "revision": where.revision,
                        "metrics": metrics,
                    },
                    indent=2,
                )
            )
        else:
            print(f"{where.label}")
            for key, value in metrics.items():
                shown = "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.4g}"
                print(f"  {family.metric_names.get(key, key)}: {shown}")
        return 0

    if args.command == "sample":
        trainer = registry[args.family]
        model, where = _load(family, args.source)
        data = trainer.prepare_data(model.config, _training_data(where.path))
        trainer.save_samples(model, data, args.n, args.seed, args.out)
        print(f"wrote {args.n} samples from {where.label} to {args.out}")
        return 0

    if args.command == "features":
        from hub_models.registry import feature_model
        from training.images import train_features

        out = args.out or feature_model(args.dataset).snapshot
        metrics = train_features(args.dataset, out, epochs=args.epochs)
        print(f"trained the {args.dataset} feature net into {out}: {metrics}")
        return 0

    if args.command == "retrain-published":
        return retrain_published(FAMILIES[args.family], args.preset, args.jobs, args.only)

    if args.command == "publish":
        family = _family_of(args.folder)
        record = json.loads((args.folder / "training.json").read_text())
        feature_net = record.get("bundle") == "FeatureNet"
        if feature_net:
            from hub_models.images import FeatureNet  # the image metrics' feature extractor

            net = FeatureNet.load_folder(args.folder)
            size = (2, net.config.channels, net.config.resolution, net.config.resolution)
            if not torch.isfinite(net.features(torch.zeros(size))).all():
                raise CheckpointError("the feature net's smoke output is not finite")
        else:
            model = family.bundle.load_folder(args.folder)
            smoke_check(family, model)
        if not args.dry_run and not feature_net:  # the card names the repo it now lives in
            from training.cards import rewrite_card

            rewrite_card(args.folder, family, model.config, args.repo_id)
        files = hub.publish(args.folder, args.repo_id, dry_run=args.dry_run)
        verb = "would upload" if args.dry_run else "uploaded"
        print(f"{verb} to {hub.endpoint()}/{args.repo_id}:")
        for name in files:
            print(f"  {name}")
        return 0
    raise AssertionError(args.command)


def retrain_published(family: Family, preset: str, jobs: int, only: list[str] | None) -> int:
    """One `train` subprocess per published model, ``jobs`` at a time, one thread each."""
    import os
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    models = [m for m in family.models if only is None or m.name in only]
    unknown = set(only or ()) - {m.name for m in family.models}
    if unknown:
        raise ValueError(f"{family.name} publishes no model named {', '.join(sorted(unknown))}")

    def train_one(published) -> int:
        command = [
            sys.executable,
            "-m",
            "training",
            "train",
            family.name,
            "--preset",
            preset,
            "--out",
            str(published.snapshot),
            *(f"--{k}={v}" for k, v in published.overrides),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
        log = published.snapshot.parent / f".{published.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as handle:
            code = subprocess.run(
                command, stdout=handle, stderr=subprocess.STDOUT, env=env
            ).returncode
        print(f"{'ok ' if code == 0 else 'FAILED'} {published.name} (log: {log})", flush=True)
        return code

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        codes = list(pool.map(train_one, models))
    return 0 if all(code == 0 for code in codes) else 1
