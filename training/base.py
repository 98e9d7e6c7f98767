"""What a family gives the shared loop: a ``Trainer`` subclass that writes only what differs.

The defaults: ``build`` makes the family's bundle from the config, ``record`` keeps no replay,
``finalize`` does nothing, ``save_samples`` picks a writer by the output's suffix
(``save_png``, ``save_csv``, ``save_txt``; ``save_folder`` for a path without one), and a
family without user data refuses ``--data``. A family must give ``presets``, ``prepare_data``
(when it takes data), ``optimizers``, ``train_step``, ``evaluate`` and ``sample_image``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from accelerate import Accelerator
from PIL import Image

from hub_models.base import HubBundle
from hub_models.registry import FAMILIES, Family


@dataclass
class StepContext:
    """What a family's step may use: the accelerator, this rank's data RNG, the schedule."""

    accelerator: Accelerator
    generator: torch.Generator
    step: int
    total_steps: int

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Backward, average gradients over processes, then step."""
        optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.accelerator.num_processes > 1:
            params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            flat = self.accelerator.reduce(flat, reduction="mean")
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
                offset += p.numel()
        optimizer.step()


@torch.no_grad()
def update_average(average: torch.nn.Module, live: torch.nn.Module, decay: float, step: int):
    """Move the average towards the live weights; early on the average forgets faster (its
    decay ramps up as (1 + step) / (10 + step)), so it does not hold the random init for long.
    Buffers (batch-norm statistics) are copied, not averaged."""
    decay = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(average.parameters()), list(live.parameters()), 1 - decay)
    for mine, theirs in zip(average.buffers(), live.buffers(), strict=True):
        mine.copy_(theirs)


def donor_folder(family: Family, name_or_folder: str, option: str = "init_from") -> Path:
    """The folder a run copies weights from (``option`` names the config field): a run
    folder itself, or one of ``family``'s published models' bundled snapshot."""
    if Path(name_or_folder).is_dir():
        return Path(name_or_folder)
    names = [m.name for m in family.models]
    if name_or_folder not in names:
        raise ValueError(
            f"{option}: {name_or_folder!r} is neither a folder nor one of {', '.join(names)}"
        )
    return family.model(name_or_folder).snapshot


def copy_weights(model: torch.nn.Module, donor: torch.nn.Module, may_lack: tuple = ()) -> list:
    """Every weight of ``donor`` into ``model``, which must have the same networks; keys that
    start with one of ``may_lack`` may be missing from the donor (parts the run adds, which
    start as built). Returns those missing keys."""
    try:
        missing, unexpected = model.load_state_dict(donor.state_dict(), strict=False)
    except RuntimeError as error:
        raise ValueError(
            "init_from is another architecture: " + str(error).splitlines()[-1].strip()
        ) from error
    wrong = [*unexpected, *(key for key in missing if not key.startswith(may_lack))]
    if wrong:
        raise ValueError(f"init_from is another architecture: {', '.join(wrong[:4])}")
    return missing


class Trainer:
    """The base of every family's trainer (see the module docstring for what to override)."""

    family_name: ClassVar[str]
    # preset name -> config field values; "tiny" (seconds, for tests) and "demo" (what is
    # published) at least.
    presets: ClassVar[dict[str, dict[str, Any]]]
    # Set by training.loop.train before prepare_data: the run's folder and whether it resumes,
    # for a family that writes part of its data into the run (StackGAN's own text encoder).
    # None when the CLI's evaluate or sample prepares data for a model that is already trained.
    run_options: Any = None

    @property
    def family(self) -> Family:
        return FAMILIES[self.family_name]

    def prepare_data(self, config: Any, data_path: Path | None) -> Any:
        if data_path is not None:
            raise ValueError(f"{self.family_name} makes its own data: leave out --data")
        return None

    def build(self, config: Any, data: Any) -> HubBundle:
        return self.family.bundle(config)

    def optimizers(self, model: HubBundle) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(
        self, model: HubBundle, optimizers: dict, data: Any, ctx: StepContext
    ) -> dict[str, float]:
        raise NotImplementedError

    def record(self, model: HubBundle, data: Any) -> dict[str, torch.Tensor]:
        """One replay frame (tensors); none by default: OUT/samples shows the progress."""
        return {}

    def state(self, model: HubBundle, data: Any) -> dict[str, torch.Tensor]:
        """What the trainer keeps beside the model that a resumed run needs (checkpointed)."""
        return {}

    def load_state(self, model: HubBundle, data: Any, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``state`` returned, after the model's weights are loaded."""

    def finalize(self, model: HubBundle, data: Any) -> None:
        """Runs once on the final, rounded weights before anything is saved (for what
        depends on them, such as GANomaly's score calibration)."""

    def evaluate(self, model: HubBundle, data: Any) -> dict[str, float]:
        raise NotImplementedError

    def sample_image(self, model: HubBundle, data: Any) -> Image.Image:
        raise NotImplementedError

    def sample_formats(self) -> list[str]:
        """The suffixes ``save_samples`` writes ("folder" for a path without a suffix)."""
        return sorted(
            ("folder" if name == "save_folder" else "." + name[len("save_") :])
            for name in dir(self)
            if name.startswith("save_") and name != "save_samples"
        )

    def save_samples(self, model: HubBundle, data: Any, n: int, seed: int, path: Path) -> None:
        """Write ``n`` samples of ``seed`` to ``path``, in the format its suffix names."""
        path = Path(path)
        suffix = path.suffix.lower()
        writer = getattr(self, f"save_{suffix[1:]}" if suffix else "save_folder", None)
        if writer is None:
            raise ValueError(
                f"{path}: {self.family_name} samples are written as "
                + ", ".join(self.sample_formats())
            )
        if suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            path.mkdir(parents=True, exist_ok=True)
        writer(model, data, n, seed, path)

    def donors(self, config: Any) -> list[Path]:
        """The trained folders this config copies weights from (a fine-tune's start, a second
        phase's first): their records go into this run's, so that its card tells the whole
        training and its time."""
        return []

    def auxiliary_config_class(self, name: str) -> type | None:
        """The config dataclass whose fields the auxiliary model ``name`` takes from the
        command line as --field=value, or None where it takes none."""
        return None

    def train_auxiliary(
        self, name: str, out: Path, overrides: dict[str, Any] | None = None
    ) -> dict[str, float]:
        """Train one of the family's auxiliary models into ``out`` (``overrides``: fields of
        its ``auxiliary_config_class``); returns its metrics."""
        raise ValueError(f"{self.family_name} has no auxiliary model named {name!r}")
