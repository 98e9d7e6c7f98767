"""The one training loop, shared by every family, on Hugging Face Accelerate.

The loop knows nothing about GANs: a family's ``Trainer`` builds the model and optimizers and
performs one step; the loop owns devices, processes, gradient averaging, logging, checkpoints,
replay frames, divergence checks and the publishable output folder.

Data parallelism: every process holds the full model and draws its own data (the data RNG is
seeded per rank); gradients are averaged across processes before every optimizer step, so the
replicas stay identical. The averaging is explicit rather than DDP's, because GAN steps call
G and D separately (and WGAN-GP differentiates twice), which DDP's forward hooks do not cover.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import save_file
from tqdm.auto import tqdm

from hub_models import runfiles
from hub_models.base import HubBundle
from training import checkpoint
from training.base import StepContext, Trainer


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class RunOptions:
    out: Path
    preset: str
    resume: bool = False
    data: Path | None = None
    log_every: int = 50
    record_every: int = 0  # 0: about 30 replay frames per run
    checkpoint_every: int = 0  # 0: about 10 checkpoints per run
    sample_every: int = 0  # 0: about 5 sample snapshots per run
    # Seconds of training after which the run ends at the step in hand, as if that were its
    # last (0: none; -1 once it has ended a run). Its record names the steps taken, so the
    # command it gives reproduces it.
    time_limit: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)


def hardware(accelerator: Accelerator) -> str:
    if accelerator.device.type == "cuda":
        name = torch.cuda.get_device_name(accelerator.device)
    elif accelerator.device.type == "mps":
        name = "Apple MPS"
    else:
        name = (
            f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        )
    return f"{accelerator.num_processes} x {name}"


def _every(value: int, steps: int, count: int) -> int:
    return value if value > 0 else max(steps // count, 1)


def train(trainer: Trainer, config: Any, options: RunOptions) -> Path:
    """Train ``config`` into ``options.out``; returns the publishable folder."""
    # Accelerate takes its multi-process CPU path (gloo) only when told cpu=True: without it,
    # `torchrun --nproc_per_node 2` on a machine with no GPU starts two unrelated single-process
    # runs that both write the same folder.
    multi_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.accelerator.is_available()
    accelerator = Accelerator(cpu=multi_cpu)
    out = Path(options.out)
    steps = config.steps
    log_every = options.log_every
    record_every = _every(options.record_every, steps, 30)
    checkpoint_every = _every(options.checkpoint_every, steps, 10)
    sample_every = _every(options.sample_every, steps, 5)
    main = accelerator.is_main_process

    # Same seed on every rank: identical initial replicas. The data RNG differs per rank.
    torch.manual_seed(config.seed)
    trainer.run_options = options
    data = trainer.prepare_data(config, options.data)
    model = trainer.build(config, data).to(accelerator.device).train()
    optimizers = trainer.optimizers(model)
    generator = torch.Generator().manual_seed(config.seed * 1009 + accelerator.process_index)
    frames: dict[str, list[torch.Tensor]] = {}
    start, elapsed = 0, 0.0
    if options.resume and (found := checkpoint.latest(out)) is not None:
        check_same_config(found, checkpoint.read_state(found).get("config"), config)
        start, frames, extra = checkpoint.load(
            found, model, optimizers, generator, accelerator.process_index
        )
        trainer.load_state(model, data, extra["trainer_state"])
        elapsed = extra.get("elapsed_seconds", 0.0)
        if main:
            print(f"resuming from {found} at step {start}", file=sys.stderr)
    elif options.resume and main:
        print(f"no checkpoint in {out}; starting from step 0", file=sys.stderr)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / runfiles.SAMPLES).mkdir(exist_ok=True)
    if main and start:
        _drop_log_after(out / runfiles.METRICS_LOG, start)
    elif main:  # a fresh run into a used folder: nothing of the old run may leak into this one
        for stale in (runfiles.METRICS_LOG, runfiles.BENCHMARK):
            (out / stale).unlink(missing_ok=True)
        for snapshot in (out / runfiles.SAMPLES).glob("step_*.png"):
            snapshot.unlink()
    # Line-buffered, so that a kill loses no logged step before the checkpoint it resumes from.
    metrics_log = open(out / runfiles.METRICS_LOG, "a", buffering=1) if main else None  # noqa: SIM115

    def save_checkpoint(step: int) -> None:
        """Called on every process: the data RNG states are gathered to the main one."""
        states = generator.get_state()[None]
        if accelerator.num_processes > 1:  # gloo gathers integers, not bytes
            states = accelerator.gather(states.to(torch.int32)).to(torch.uint8)
        if main:
            checkpoint.save(
                out,
                step,
                model,
                optimizers,
                states,
                frames,
                {"config": asdict(config), "elapsed_seconds": elapsed + time.time() - began},
                trainer.state(model, data),
            )

    began = time.time()
    bar = tqdm(
        range(start, steps),
        initial=start,
        total=steps,
        disable=not main,
        desc=f"{trainer.family.name}",
        mininterval=1.0,
        dynamic_ncols=True,
    )
    last_good = start if start else None

    def diverged(what: str, step: int) -> TrainingDiverged:
        kept = (
            f"the last good checkpoint (step {last_good}) is kept in {out / runfiles.CHECKPOINT}"
            if last_good is not None
            else "no checkpoint had been written yet"
        )
        return TrainingDiverged(
            f"{what} at step {step}: training diverged; {kept}. Lower the learning rates "
            "(--lr_d=, --lr_g=) or change the objective, then train again into a fresh --out "
            "(--resume continues only a run whose options are unchanged)."
        )

    agreement: float | None = None
    try:
        for step in bar:
            ctx = StepContext(accelerator, generator, step, steps)
            losses = trainer.train_step(model, optimizers, data, ctx)
            bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
            if bad:
                raise diverged(", ".join(f"{k}={v}" for k, v in bad.items()), step)
            done = step + 1
            checks_time = options.time_limit and done < steps and done % log_every == 0
            if checks_time and out_of_time(
                accelerator, options.time_limit, elapsed + time.time() - began
            ):
                # This step is the last: the record and the card give the steps taken.
                steps = done
                config = replace(config, steps=done)
                model.config = config
                options = replace(
                    options, overrides={**options.overrides, "steps": done}, time_limit=-1.0
                )
            if main and (step % log_every == 0 or done == steps):
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
                metrics_log.write(
                    json.dumps({"step": done, **losses, "seconds": round(time.time() - began, 2)})
                    + "\n"
                )
            if done == steps:
                # Replicas must agree before rounding hides small differences; then publish
                # exactly what the last frame and sample show.
                agreement = replica_disagreement(accelerator, model)
                model.round_to_storage()
                model.eval()
                trainer.finalize(model, data)  # e.g. GANomaly's score calibration
                model.train()
            if done % record_every == 0 or done == steps:
                model.eval()
                frame = trainer.record(model, data)
                model.train()
                for key, value in frame.items():
                    frames.setdefault(key, []).append(value)
                frames.setdefault("step", []).append(torch.tensor(done))
            if main and (done % sample_every == 0 or done == steps):
                model.eval()
                trainer.sample_image(model, data).save(
                    out / runfiles.SAMPLES / f"step_{done:08d}.png"
                )
                model.train()
            if done % checkpoint_every == 0 or done == steps:
                # A finite loss can come with an update that leaves NaN/inf weights behind: such
                # weights must never replace the last good checkpoint, nor be published.
                if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                    raise diverged("non-finite weights after the update", step)
                if done != steps:
                    save_checkpoint(done)
                    last_good = done
            if done == steps:
                break
    finally:
        bar.close()
        if metrics_log:
            metrics_log.close()
    elapsed += time.time() - began
    model.eval()
    if agreement is None:  # resumed a run that had already finished
        agreement = replica_disagreement(accelerator, model)
    save_checkpoint(steps)
    if main:
        finish(
            trainer, model, data, config, options, frames, elapsed, hardware(accelerator), agreement
        )
    accelerator.wait_for_everyone()
    return out


def out_of_time(accelerator: Accelerator, limit: float, seconds: float) -> bool:
    """Whether a run has trained ``limit`` seconds or more, by the main process's clock (every
    process must stop at the same step)."""
    stop = torch.tensor([float(seconds >= limit)], device=accelerator.device)
    if accelerator.num_processes > 1:
        stop = accelerator.gather(stop)[:1]
    return bool(stop.item())


def check_same_config(found: Path, saved: dict | None, config: Any) -> None:
    """Refuse to resume a checkpoint written by another config, naming the fields that differ
    (before any weight is loaded: another shape would fail there with a raw error).

    One field may grow: more ``steps`` extends a run (a finished one too) from where it
    stopped, since nothing in the update depends on the total. Fewer steps than the run has
    already taken is refused."""
    # Compare as JSON: state.json turned the config's tuples into lists.
    current = json.loads(json.dumps(asdict(config)))
    saved = saved or {}
    extended = "steps" in saved and current.get("steps", 0) > saved["steps"]
    differ = [
        f"{name}: {saved.get(name, '(absent)')!r} in the checkpoint, {current.get(name)!r} now"
        for name in sorted(set(saved) | set(current))
        if saved.get(name) != current.get(name) and not (name == "steps" and extended)
    ]
    if differ:
        raise ValueError(
            f"{found} was written by a different config ({'; '.join(differ)}). Resume it with "
            "the same preset and --field=value options, or train into a fresh --out."
        )


def _drop_log_after(path: Path, step: int) -> None:
    """Keep the log lines up to ``step``: the steps after it are about to be trained again."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):  # a line torn by the kill
            continue
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept))
    tmp.replace(path)


def replica_disagreement(accelerator: Accelerator, model: torch.nn.Module) -> float:
    """Largest absolute difference between any process's weights and the main process's."""
    if accelerator.num_processes == 1:
        return 0.0
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    everyone = accelerator.gather(flat[None])  # (processes, n)
    return float((everyone - everyone[0]).abs().max())


def started_from(donors: list[Path]) -> list[dict[str, Any]]:
    """The runs whose weights a run starts from, oldest first, each donor's own earlier runs
    before it: command, steps, seconds and hardware from each folder's training record."""
    runs: list[dict[str, Any]] = []
    for folder in donors:
        record = runfiles.read_json(folder, runfiles.TRAINING) or {}
        runs += record.get("started_from", [])
        runs.append({k: record.get(k) for k in ("command", "steps", "wall_seconds", "hardware")})
    return runs


def command_line(family: str, options: RunOptions) -> str:
    parts = ["python", "-m", "training", "train", family, "--preset", options.preset]
    if options.data:
        parts += ["--data", str(options.data)]
    parts += [f"--{k}={v}" for k, v in options.overrides.items()]
    return shlex.join(parts)


def finish(
    trainer: Trainer,
    model: HubBundle,
    data: Any,
    config: Any,
    options: RunOptions,
    frames: dict[str, list[torch.Tensor]],
    elapsed: float,
    where: str,
    replica_diff: float,
) -> None:
    """Write the publishable folder: weights, config, replay, sample, evaluation, card."""
    from training.cards import write_card

    out = Path(options.out)
    model.save_pretrained(out)
    if set(frames) - {"step"}:  # a family may record no replay
        save_file(
            {k: torch.stack(v).contiguous() for k, v in frames.items()},
            str(out / runfiles.REPLAY),
        )
    trainer.sample_image(model, data).save(out / runfiles.SAMPLE)
    metrics = trainer.evaluate(model, data)
    record = {
        "family": trainer.family.name,
        "preset": options.preset,
        "overrides": options.overrides,
        "data": str(options.data) if options.data else None,
        "command": command_line(trainer.family.name, options),
        "steps": config.steps,
        "wall_seconds": round(elapsed, 1),
        "hardware": where,
        "torch": torch.__version__,
        "replica_max_abs_diff": replica_diff,
    }
    if options.time_limit < 0:  # see train: the run ended at its time limit
        record["stopped_at_time_limit"] = True
    earlier = started_from(trainer.donors(config))
    if earlier:
        record["started_from"] = earlier
    runfiles.write_json(out, runfiles.TRAINING, record)
    runfiles.write_json(out, runfiles.EVALUATION, metrics)
    write_card(out, trainer.family, config, record, metrics)
