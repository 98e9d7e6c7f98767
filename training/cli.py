"""Command line: list, train, evaluate, sample, publish (the contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any

from hub_models import hub, registry, runfiles
from hub_models.base import CheckpointError, HubBundle
from hub_models.family import org
from hub_models.registry import FAMILIES, AuxiliaryModel, Family, family

EXAMPLES = """\
examples:
  python -m training list
  python -m training train toy2d --preset tiny --out runs/toy2d-tiny
  python -m training train toy2d --preset demo --target=grid --objective=hinge --out runs/grid
  python -m training train toy2d --preset demo --out runs/ring --resume   # after a kill
  python -m training evaluate toy2d --from runs/grid --json
  python -m training sample toy2d --from gan-gallery/toy2d-ring-hinge --n 1000 --out ring.csv
  python -m training publish runs/grid --repo-id my-org/toy2d-grid-hinge --dry-run
  python -m training publish-all --org my-org --dry-run   # every bundled snapshot

Hub access honours HF_ENDPOINT (mirrors, self-hosted hubs), HF_HUB_OFFLINE and HF_TOKEN.
"""


class UsageError(ValueError):
    """A bad command line: the message says what to type instead (exit code 2)."""


def parse_value(name: str, kind: Any, raw: str) -> Any:
    """``raw`` as the config field's declared type (bool, int, float, str, tuple[X, ...], or
    X | None: a recipe switch whose None means "the kind's default", given as X)."""
    origin = typing.get_origin(kind)
    options = typing.get_args(kind)
    if origin in (types.UnionType, typing.Union) and len(options) == 2 and type(None) in options:
        return parse_value(name, next(o for o in options if o is not type(None)), raw)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        return tuple(parse_value(name, item, part) for part in parts)
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise UsageError(f"--{name} expects true or false, got {raw!r}")
        return raw.lower() in ("true", "1", "yes")
    if kind in (int, float, str):
        try:
            return kind(raw)
        except ValueError:
            raise UsageError(f"--{name} expects {kind.__name__}, got {raw!r}") from None
    raise UsageError(f"--{name} cannot be set from the command line (type {kind})")


def parse_overrides(config_class: type, items: list[str]) -> dict[str, Any]:
    """Turn ['--lr_d=1e-4', '--d_widths=1,2,3'] into values of the config's field types."""
    fields = [f.name for f in dataclasses.fields(config_class)]
    hints = typing.get_type_hints(config_class)
    values: dict[str, Any] = {}
    for item in items:
        if not item.startswith("--") or "=" not in item:
            raise UsageError(
                f"unrecognised argument {item!r}; config fields are given as --field=value"
            )
        name, raw = item[2:].split("=", 1)
        name = name.replace("-", "_")
        if name not in fields:
            raise UsageError(
                f"{config_class.__name__} has no field {name!r}; fields: " + ", ".join(fields)
            )
        values[name] = parse_value(name, hints[name], raw)
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
        "--time-limit",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="end the run after the first step past SECONDS of training and publish it with "
        "the steps it took (for a device lent for a while, whose speed is not known ahead); "
        "its record gives the --steps that reproduce it (default: none)",
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

    auxiliary = [m.name for f in FAMILIES.values() for m in f.auxiliary]
    p = sub.add_parser(
        "auxiliary",
        help="train a model a family needs besides its own (e.g. the image metrics' feature nets)",
        description="Train one of the families' auxiliary models (" + ", ".join(auxiliary) + ") "
        "into its bundled snapshot under hub_models/snapshots, or --out.",
    )
    p.add_argument("name", choices=auxiliary, help="which auxiliary model")
    # Models with a config (the pose keypoint regressor) take its fields as --field=value.
    p.add_argument("--out", type=Path, help="output folder (default: the bundled snapshot)")

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
        description="Validate DIR (its training.json, config.json, safetensors weights and "
        "card; a strict load and one smoke sample), print what will be uploaded, then upload "
        "it with huggingface_hub to HF_ENDPOINT and print the repo's URL. A folder that fails "
        "a check gets one message per problem and nothing is uploaded. The token is taken "
        "from HF_TOKEN or `hf auth login` and never printed.",
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="a folder written by `train`")
    p.add_argument("--repo-id", required=True, help="ORG/NAME of the Hub repo (created if needed)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the files only")

    p = sub.add_parser(
        "publish-all",
        help="publish every bundled snapshot (and the auxiliary models) under an organisation",
        description="Validate every snapshot under hub_models/snapshots, then upload each to "
        "ORG/NAME with its card rewritten to name that repo (the bundled copies stay as they "
        "are). Nothing is uploaded if any snapshot fails a check. Afterwards "
        "GAN_GALLERY_ORG=ORG makes the gallery, `hub_models.load` and `from_pretrained` load "
        "from ORG.",
    )
    p.add_argument("--org", required=True, help="the Hub organisation (or user) to publish to")
    p.add_argument("--dry-run", action="store_true", help="validate and list repos and files only")
    p.add_argument(
        "--only", nargs="*", default=None, metavar="NAME", help="publish only these models"
    )
    return parser


def config_help() -> str:
    """Every family's config fields with their defaults and each preset's values."""
    lines = ["config fields (--field=value), by family:"]
    for spec in FAMILIES.values():
        presets = spec.make_trainer().presets
        lines.append(f"  {spec.name} ({spec.bundle.config_class.__name__}):")
        for field in dataclasses.fields(spec.bundle.config_class):
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


def _load(family: Family, source: str | None) -> tuple[HubBundle, hub.Resolved]:
    if source is None:
        published = family.featured_model
        return hub.load(family.bundle, published.repo_id, published.snapshot)
    for published in family.models:
        if published.repo_id == source:
            return hub.load(family.bundle, source, published.snapshot)
    return hub.load(family.bundle, source)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("train", "auxiliary"):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    try:
        return COMMANDS[args.command](args, extra)
    except (CheckpointError, runfiles.RunFolderError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def list_command(args: argparse.Namespace, extra: list[str]) -> int:
    rows = [
        {
            "family": f.name,
            "title": f.title,
            "presets": list(f.make_trainer().presets),
            "models": [m.repo_id for m in f.models],
            "auxiliary": [m.repo_id for m in f.auxiliary],
            "config_fields": [x.name for x in dataclasses.fields(f.bundle.config_class)],
        }
        for f in FAMILIES.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['family']:10} {row['title']} — presets: {', '.join(row['presets'])}")
        print(f"{'':10} config fields: {', '.join(row['config_fields'])}")
        for repo in row["models"]:
            print(f"{'':10} {repo}")
        for repo in row["auxiliary"]:
            print(f"{'':10} {repo} (auxiliary)")
    return 0


def train_command(args: argparse.Namespace, extra: list[str]) -> int:
    from training.loop import RunOptions, TrainingDiverged, train

    trainer = family(args.family).make_trainer()
    if args.preset not in trainer.presets:
        raise UsageError(
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
        time_limit=args.time_limit,
        overrides=overrides,
    )
    try:
        train(trainer, config, options)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    print(f"trained {args.family} into {out}")
    return 0


def _model_and_data(args: argparse.Namespace):
    """The model --from names (default: the featured one), its trainer and its data."""
    spec = family(args.family)
    trainer = spec.make_trainer()
    model, where = _load(spec, args.source)
    hub.fetch_file(where, runfiles.TRAINING)  # the user data a run recorded, if any
    data = trainer.prepare_data(model.config, runfiles.training_data(where.path))
    return spec, trainer, model, where, data


def evaluate_command(args: argparse.Namespace, extra: list[str]) -> int:
    spec, trainer, model, where, data = _model_and_data(args)
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
        return 0
    print(f"{where.label}")
    for key, value in metrics.items():
        shown = "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.4g}"
        print(f"  {spec.metric_names.get(key, key)}: {shown}")
    return 0


def sample_command(args: argparse.Namespace, extra: list[str]) -> int:
    _, trainer, model, where, data = _model_and_data(args)
    trainer.save_samples(model, data, args.n, args.seed, args.out)
    print(f"wrote {args.n} samples from {where.label} to {args.out}")
    return 0


def auxiliary_command(args: argparse.Namespace, extra: list[str]) -> int:
    spec, published = _auxiliary(args.name)
    out = args.out or published.snapshot
    trainer = spec.make_trainer()
    overrides = {}
    if extra:
        config_class = trainer.auxiliary_config_class(published.name)
        if config_class is None:
            raise UsageError(f"{published.name} takes no --field=value options")
        overrides = parse_overrides(config_class, extra)
    metrics = trainer.train_auxiliary(published.name, out, overrides)
    print(f"trained {published.name} into {out}: {metrics}")
    return 0


def _auxiliary(name: str) -> tuple[Family, AuxiliaryModel]:
    """The family that declares the auxiliary model ``name``, and its entry."""
    try:
        spec, model = registry.published(f"{org()}/{name}")
    except KeyError:
        model = None
    if not isinstance(model, AuxiliaryModel):
        raise UsageError(f"no family declares an auxiliary model named {name!r}")
    return spec, model


def publish_command(args: argparse.Namespace, extra: list[str]) -> int:
    check = hub.check_publishable(args.folder)
    if not check.ok:
        return _refuse(check)
    url = hub.repo_url(args.repo_id)
    if args.dry_run:
        _list_files(f"would upload to {url}:", check.files)
        print(f"dry run: nothing uploaded; without --dry-run the model will be at {url}")
        return 0
    from training.cards import refresh_card

    refresh_card(args.folder, args.repo_id)  # the card names the repo it now lives in
    _list_files(f"uploading to {url}:", hub.check_publishable(args.folder).files)
    hub.publish(args.folder, args.repo_id)
    print(f"published: {url}")
    return 0


def publish_all_command(args: argparse.Namespace, extra: list[str]) -> int:
    models = [m for spec in FAMILIES.values() for m in (*spec.models, *spec.auxiliary)]
    unknown = sorted(set(args.only or ()) - {m.name for m in models})
    if unknown:
        raise UsageError(f"the gallery publishes no model named {', '.join(unknown)}")
    models = [m for m in models if args.only is None or m.name in args.only]
    checks = [hub.check_publishable(m.snapshot) for m in models]
    refused = [check for check in checks if not check.ok]
    for check in refused:
        for problem in check.problems:
            print(f"error: {problem}", file=sys.stderr)
    if refused:
        print(f"nothing uploaded: {len(refused)} snapshot(s) failed their checks", file=sys.stderr)
        return 2
    for model, check in zip(models, checks, strict=True):
        repo_id = f"{args.org}/{model.name}"
        if args.dry_run:
            _list_files(f"would upload to {hub.repo_url(repo_id)}:", check.files)
        else:
            _publish_copy(check, repo_id)
    verb = "would publish" if args.dry_run else "published"
    print(
        f"{verb} {len(models)} repos under {hub.repo_url(args.org)}; load them with "
        f"GAN_GALLERY_ORG={args.org}"
    )
    return 0


def _publish_copy(check: hub.PublishCheck, repo_id: str) -> None:
    """Upload a bundled snapshot from a copy whose card names ``repo_id`` (the bundled card
    keeps naming the gallery's own repo)."""
    import shutil
    import tempfile

    from training.cards import refresh_card

    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / repo_id.split("/")[-1]
        for item in check.files:
            (stage / item.name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.path, stage / item.name)
        refresh_card(stage, repo_id)
        url = hub.repo_url(repo_id)
        _list_files(f"uploading to {url}:", hub.check_publishable(stage).files)
        hub.publish(stage, repo_id)
        print(f"published: {url}", flush=True)


def _refuse(check: hub.PublishCheck) -> int:
    for problem in check.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"nothing uploaded: fix {check.folder} and publish again", file=sys.stderr)
    return 2


def _list_files(heading: str, files) -> None:
    print(heading)
    for item in files:
        print(f"  {item.name}")
    print(f"  ({len(files)} files, {sum(item.size for item in files) / 1e6:.2f} MB)")


def retrain_published_command(args: argparse.Namespace, extra: list[str]) -> int:
    return retrain_published(family(args.family), args.preset, args.jobs, args.only)


COMMANDS = {
    "list": list_command,
    "train": train_command,
    "evaluate": evaluate_command,
    "sample": sample_command,
    "auxiliary": auxiliary_command,
    "retrain-published": retrain_published_command,
    "publish": publish_command,
    "publish-all": publish_all_command,
}


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
