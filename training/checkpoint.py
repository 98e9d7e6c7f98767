"""Atomic, pickle-free training checkpoints.

A checkpoint is a folder: ``model.safetensors``, ``optim.safetensors`` (optimizer tensors, the
CPU and CUDA RNG states, and what the trainer keeps beside the model, such as SeqGAN's
roll-out policy), ``frames.safetensors`` (replay frames so far) and ``state.json`` (step,
optimizer hyper-parameters, config). It is written to a temporary folder and renamed into
place, so a run killed at any instant leaves either the previous checkpoint or the new one,
never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from hub_models import runfiles

CURRENT, PREVIOUS = runfiles.CHECKPOINT, runfiles.PREVIOUS_CHECKPOINT


def _flatten_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    state = optimizer.state_dict()
    meta: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        meta["state"][str(index)] = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optim/{name}/{index}/{key}"] = value.detach().cpu().contiguous()
                meta["state"][str(index)][key] = None
            else:
                meta["state"][str(index)][key] = value
    return meta


def _restore_optimizer(
    name: str,
    optimizer: torch.optim.Optimizer,
    meta: dict[str, Any],
    tensors: dict[str, torch.Tensor],
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for index, values in meta["state"].items():
        state[int(index)] = {
            key: tensors[f"optim/{name}/{index}/{key}"] if value is None else value
            for key, value in values.items()
        }
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save(
    out_dir: Path,
    step: int,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    data_rng_states: torch.Tensor,
    frames: dict[str, list[torch.Tensor]],
    extra: dict[str, Any],
    trainer_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the checkpoint for ``step`` atomically; returns its folder.

    ``data_rng_states``: (processes, n) uint8, every process's data generator state, so that
    each rank resumes drawing its own batches.
    """
    out_dir = Path(out_dir)
    tmp = out_dir / f".{CURRENT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / runfiles.WEIGHTS))
    tensors = {"rng/torch": torch.get_rng_state(), "rng/data": data_rng_states.contiguous()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{index}"] = state
    for key, value in (trainer_state or {}).items():
        tensors[f"trainer/{key}"] = value.detach().cpu().contiguous()
    meta = {name: _flatten_optimizer(name, opt, tensors) for name, opt in optimizers.items()}
    save_file(tensors, str(tmp / "optim.safetensors"))
    if frames:
        save_file({k: torch.stack(v) for k, v in frames.items()}, str(tmp / "frames.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "optimizers": meta, **extra}))
    for path in tmp.iterdir():  # reach the disk before the rename makes it the checkpoint
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    current, previous = out_dir / CURRENT, out_dir / PREVIOUS
    shutil.rmtree(previous, ignore_errors=True)
    if current.exists():
        current.rename(previous)
    tmp.rename(current)
    shutil.rmtree(previous, ignore_errors=True)
    return current


def latest(out_dir: Path) -> Path | None:
    """The newest complete checkpoint (a kill between the two renames leaves only .old)."""
    for name in (CURRENT, PREVIOUS):
        folder = Path(out_dir) / name
        if (folder / "state.json").is_file():
            return folder
    return None


def read_state(folder: Path) -> dict[str, Any]:
    """The checkpoint's state.json (step, config, ...), read without touching any tensor."""
    return json.loads((Path(folder) / "state.json").read_text())


def load(
    folder: Path,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    generator: torch.Generator,
    rank: int = 0,
) -> tuple[int, dict[str, list[torch.Tensor]], dict[str, Any]]:
    """Restore model, optimizers and RNG states (``rank``'s data RNG); returns (step, frames,
    extra state). ``extra["trainer_state"]`` holds what the trainer kept beside the model."""
    state = read_state(folder)
    model.load_state_dict(load_file(str(folder / runfiles.WEIGHTS)), strict=True)
    tensors = load_file(str(folder / "optim.safetensors"))
    for name, optimizer in optimizers.items():
        _restore_optimizer(name, optimizer, state["optimizers"][name], tensors)
    torch.set_rng_state(tensors["rng/torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    states = tensors["rng/data"]
    if states.dim() == 1 or rank >= len(states):
        raise ValueError(
            f"{folder} holds data RNG states for {len(states)} process(es), not "
            f"for process {rank}: resume with the number of processes it ran on"
        )
    generator.set_state(states[rank].contiguous())
    frames: dict[str, list[torch.Tensor]] = {}
    if (folder / "frames.safetensors").is_file():
        frames = {
            k: list(v.unbind(0)) for k, v in load_file(str(folder / "frames.safetensors")).items()
        }
    extra = {k: v for k, v in state.items() if k not in ("step", "optimizers")}
    extra["trainer_state"] = {
        k[len("trainer/") :]: v for k, v in tensors.items() if k.startswith("trainer/")
    }
    return state["step"], frames, extra
