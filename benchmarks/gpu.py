"""Every family on a CUDA device against the CPU: same samples, latency, and the training loop.

`python -m benchmarks gpu` returns at once without CUDA. On a CUDA machine, for each family of
the registry:

1. its featured published model is loaded on the CPU and on the GPU, and both draw the same
   seeded samples; the verdict is taken in full fp32 (no TF32 in CUDA matmuls, cuDNN
   convolutions or RNNs), and the difference under torch's default settings is reported beside;
2. one sample and a batch are timed on both (median of repeats, synchronised);
3. the family's ``tiny`` preset trains through ``training.loop.train``, which Accelerate puts
   on the GPU; its losses must be finite and its output folder must load and sample there.

``check_family`` takes the device as an argument, so the tests run the whole path with
device="cpu" (agreement then holds trivially; the timings and the training are real).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from benchmarks.timing import median_seconds
from hub_models import hub, runfiles
from hub_models.base import HubBundle
from hub_models.family import Family
from hub_models.registry import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
SEED = 0
# The weights are stored in fp16 but both devices compute in fp32: only the order of the
# floating-point operations differs, which moves outputs by ~1e-6 of their scale. A bound a
# thousand times wider still catches a wrong kernel, a lost layer or noise drawn differently.
FLOAT_ATOL = 1e-3
FLOAT_RTOL = 1e-3
# Sampled token ids: a uniform draw that lands within ~1e-6 of a cumulative-probability
# boundary picks the neighbouring token on one device, and every later token of that sequence
# follows from it. Sequences are compared whole, and a few may legitimately differ.
MIN_IDENTICAL_SHARE = 0.95
# The CUDA backends whose fp32 precision may be TF32 (torch >= 2.9 names them this way).
PRECISION_KNOBS = (("cuda", "matmul"), ("cudnn", "conv"), ("cudnn", "rnn"))

NOTES = {
    "agreement": (
        "The featured published model of each family draws the same seeded samples on the CPU "
        "and on the device. The verdict is taken in full fp32 (TF32 off for CUDA matmuls, cuDNN "
        "convolutions and RNNs): float outputs must satisfy |cpu - device| <= "
        f"{FLOAT_ATOL:g} + {FLOAT_RTOL:g} * |cpu| everywhere. 'default_precision' repeats the "
        "comparison with torch's settings as found (cuDNN uses TF32 by default, ~1e-3 "
        "relative per operation): for information, no verdict."
    ),
    "tokens": (
        "Sampled token ids are compared as whole sequences: a uniform draw within ~1e-6 of a "
        "cumulative-probability boundary picks the neighbouring token on one device and the "
        "rest of that sequence follows it, so 'identical_share' (sequences identical on both "
        f"devices) must be at least {MIN_IDENTICAL_SHARE:.0%}; 'token_agreement' is the share "
        "of equal tokens."
    ),
    "latency": (
        "Median of the repeats after one untimed warm-up call, torch.cuda.synchronize after "
        "each call; 'one' is one sample, 'batch' the compared batch; CPU threads as found."
    ),
    "training": (
        "The family's tiny preset through training.loop.train (Accelerate places it on the GPU "
        "when one is present): finite logged losses, the hardware training.json records, and "
        "the output folder loaded and sampled on the device."
    ),
}


def run(quick: bool = False, verbose: bool = True) -> dict:
    """The benchmark on the first CUDA device, or {"skipped": why} at once without one."""
    if not torch.cuda.is_available():
        build = (
            "a build without CUDA"
            if torch.version.cuda is None
            else f"CUDA {torch.version.cuda}, no GPU visible"
        )
        return {
            "skipped": f"no CUDA device: torch {torch.__version__} ({build}); run "
            "`python -m benchmarks gpu` on a machine with an NVIDIA GPU"
        }
    return benchmark("cuda", quick=quick, verbose=verbose)


def benchmark(device: str, quick: bool = False, verbose: bool = True) -> dict:
    """Every family of the registry on ``device`` against the CPU (``check_family``)."""
    n, repeats = (16, 5) if quick else (64, 20)
    families = {}
    for name, family in FAMILIES.items():
        if verbose:
            print(f"gpu: {name} on {device} against the CPU …", file=sys.stderr)
        families[name] = guarded(
            lambda family=family: check_family(family, device, n=n, repeats=repeats)
        )
        if verbose:
            print(f"gpu: {name}: {'ok' if families[name]['ok'] else 'FAILED'}", file=sys.stderr)
    return {
        **environment(device),
        "quick": quick,
        "notes": NOTES,
        "families": families,
        "all_ok": all(result["ok"] for result in families.values()),
    }


def environment(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "gpu": torch.cuda.get_device_name(device),
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "default_precision": precision_settings(),
        }
    return info


def check_family(
    family: Family, device: str, *, n: int = 64, repeats: int = 20, train_tiny: bool = True
) -> dict[str, Any]:
    """One family on ``device`` against the CPU. Each stage reports {"ok": ...}; a stage that
    raises reports its error (and where in the project it was raised) and the others still run.
    """
    published = family.featured_model
    result: dict[str, Any] = {"model": published.repo_id}
    models: dict[str, HubBundle] = {}
    result["load"] = guarded(lambda: load_pair(family, device, models))
    if result["load"]["ok"]:
        cpu_model, device_model = models["cpu"], models["device"]
        result["agreement"] = guarded(lambda: agreement(family, cpu_model, device_model, n))
        result["latency"] = guarded(
            lambda: latency(family, cpu_model, device_model, device, n, repeats)
        )
    if train_tiny:
        result["training"] = guarded(lambda: train_tiny_preset(family, device))
    result["ok"] = all(stage["ok"] for stage in result.values() if isinstance(stage, dict))
    return result


def guarded(stage: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The stage's report, or {"ok": False, "error", "at"} if it raised."""
    try:
        return stage()
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        return {"ok": False, "error": message[:1000], "at": raised_at(error)}


def raised_at(error: BaseException) -> str:
    """file:line of the innermost project frame of the traceback (else the innermost one)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    ours = [f for f in frames if _in_project(f.filename)]
    frame = (ours or frames)[-1]
    shown = Path(frame.filename).resolve().relative_to(ROOT) if ours else frame.filename
    return f"{shown}:{frame.lineno}"


def _in_project(filename: str) -> bool:
    path = Path(filename)  # "<string>" and frozen modules are not absolute paths
    return path.is_absolute() and path.resolve().is_relative_to(ROOT)


# -- the stages --------------------------------------------------------------------------------


def load_pair(family: Family, device: str, models: dict[str, HubBundle]) -> dict[str, Any]:
    """The featured published model, once on the CPU and once on ``device`` (into ``models``)."""
    published = family.featured_model
    models["cpu"], where = hub.load(
        family.bundle, published.repo_id, published.snapshot, device="cpu"
    )
    models["device"], _ = hub.load(
        family.bundle, published.repo_id, published.snapshot, device=device
    )
    return {"ok": True, "source": where.label}


def agreement(
    family: Family, cpu_model: HubBundle, device_model: HubBundle, n: int
) -> dict[str, Any]:
    """``n`` samples of seed SEED from both models, compared (verdict in full fp32)."""
    with full_fp32():
        expected = family.sample(cpu_model, n, SEED)
        strict = compare(expected, family.sample(device_model, n, SEED))
    default = compare(expected, family.sample(device_model, n, SEED))
    shown = ("max_abs_diff", "identical_share", "within_tolerance")
    return {
        "ok": strict["within_tolerance"],
        "n": n,
        "seed": SEED,
        **strict,
        "default_precision": {key: default[key] for key in shown if key in default},
    }


def compare(reference: torch.Tensor, candidate: torch.Tensor) -> dict[str, Any]:
    """How far ``candidate`` (from the device) is from ``reference`` (from the CPU)."""
    reference, candidate = reference.detach().cpu(), candidate.detach().cpu()
    out: dict[str, Any] = {
        "shape": list(reference.shape),
        "dtype": str(reference.dtype).removeprefix("torch."),
    }
    if reference.shape != candidate.shape or reference.dtype != candidate.dtype:
        return out | {
            "within_tolerance": False,
            "mismatch": f"the device gave {list(candidate.shape)} {candidate.dtype}",
        }
    if reference.is_floating_point():
        diff = (reference.double() - candidate.double()).abs()
        bound = FLOAT_ATOL + FLOAT_RTOL * reference.double().abs()
        return out | {
            "kind": "float",
            "max_abs_diff": float(diff.max()) if diff.numel() else 0.0,
            "tolerance": f"|cpu - device| <= {FLOAT_ATOL:g} + {FLOAT_RTOL:g} * |cpu|",
            "within_tolerance": bool((diff <= bound).all()),  # NaN is never within
        }
    equal = reference == candidate
    identical = equal.reshape(len(reference), -1).all(1) if len(reference) else equal
    share = float(identical.float().mean()) if identical.numel() else 1.0
    return out | {
        "kind": "tokens",
        "identical_share": share,
        "token_agreement": float(equal.float().mean()) if equal.numel() else 1.0,
        "tolerance": f"at least {MIN_IDENTICAL_SHARE:.0%} of the sequences identical",
        "within_tolerance": share >= MIN_IDENTICAL_SHARE,
    }


def latency(
    family: Family,
    cpu_model: HubBundle,
    device_model: HubBundle,
    device: str,
    n: int,
    repeats: int,
) -> dict[str, Any]:
    """Median milliseconds of one sample and of ``n`` samples on the CPU and on ``device``."""
    out: dict[str, Any] = {"ok": True, "repeats": repeats, "batch": n}
    for label, size in (("one", 1), ("batch", n)):
        cpu_ms = milliseconds(family, cpu_model, "cpu", size, repeats)
        device_ms = milliseconds(family, device_model, device, size, repeats)
        out[f"{label}_ms"] = {
            "cpu": round(cpu_ms, 3),
            "device": round(device_ms, 3),
            "cpu_over_device": round(cpu_ms / device_ms, 2),
        }
    return out


def milliseconds(family: Family, model: HubBundle, device: str, n: int, repeats: int) -> float:
    def call() -> None:
        family.sample(model, n, SEED)
        synchronize(device)

    return 1000 * median_seconds(call, repeats)


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def train_tiny_preset(family: Family, device: str) -> dict[str, Any]:
    """The family's tiny preset through the shared loop; its output loaded on ``device``."""
    from training.loop import RunOptions, train

    trainer = family.make_trainer()
    config = family.bundle.config_class(**trainer.presets["tiny"])
    with tempfile.TemporaryDirectory(prefix=f"gpu-benchmark-{family.name}-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        train(trainer, config, RunOptions(out=folder, preset="tiny", log_every=1))
        seconds = time.perf_counter() - began
        losses = logged_losses(folder)
        record = runfiles.read_json(folder, runfiles.TRAINING) or {}
        trained = family.bundle.load_folder(folder, device)
        samples = family.sample(trained, 2, SEED)
    finite = bool(losses) and all(math.isfinite(v) for row in losses for v in row.values())
    hardware = str(record.get("hardware", ""))
    on_device = trained_on(hardware, device)
    samples_finite = not samples.is_floating_point() or bool(torch.isfinite(samples).all())
    return {
        "ok": finite and on_device and samples_finite,
        "preset": "tiny",
        "steps": config.steps,
        "losses_finite": finite,
        "last_losses": losses[-1] if losses else {},
        "hardware": hardware,
        "on_device": on_device,
        "wall_seconds": record.get("wall_seconds"),
        "seconds_with_data_and_evaluation": round(seconds, 1),
        "output_loads": True,
        "output_sample_shape": list(samples.shape),
        "output_sample_finite": samples_finite,
    }


def logged_losses(folder: Path) -> list[dict[str, float]]:
    """The losses of every logged step (metrics.jsonl without its step and time columns)."""
    lines = (folder / runfiles.METRICS_LOG).read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in ("step", "seconds")}
        for line in lines
        if line.strip()
    ]


def trained_on(hardware: str, device: str) -> bool:
    """Whether training.json's hardware string ("1 x NVIDIA H200", "1 x CPU (...)") names
    the kind of device asked for."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.get_device_name(device) in hardware
    return kind.upper() in hardware.upper()


# -- precision ---------------------------------------------------------------------------------


def precision_settings() -> dict[str, str]:
    """The fp32 precision of each CUDA backend as set now ("none" inherits torch's default)."""
    if not hasattr(torch.backends.cudnn, "conv"):  # torch before 2.9: the legacy flags
        return {
            "cuda.matmul.allow_tf32": str(torch.backends.cuda.matmul.allow_tf32),
            "cudnn.allow_tf32": str(torch.backends.cudnn.allow_tf32),
        }
    return {
        f"{backend}.{op}": getattr(getattr(torch.backends, backend), op).fp32_precision
        for backend, op in PRECISION_KNOBS
    }


@contextmanager
def full_fp32() -> Iterator[None]:
    """No TF32 in CUDA matmuls, cuDNN convolutions or RNNs inside the block (restored after)."""
    if not hasattr(torch.backends.cudnn, "conv"):  # torch before 2.9: the legacy flags
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        return
    knobs = [getattr(getattr(torch.backends, backend), op) for backend, op in PRECISION_KNOBS]
    saved_precision = [knob.fp32_precision for knob in knobs]
    for knob in knobs:
        knob.fp32_precision = "ieee"
    try:
        yield
    finally:
        for knob, value in zip(knobs, saved_precision, strict=True):
            knob.fp32_precision = value
