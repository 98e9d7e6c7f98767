"""What every published model shares: the Hub bundle base class and safe, strict loading.

A published model is a folder (or Hub repo) holding ``model.safetensors``, ``config.json`` and
``README.md``. Loading is strict and safetensors-only: a pickle checkpoint is refused without
being opened, and a config/weights mismatch names the key and both shapes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from hub_models import runfiles

WEIGHTS_NAME, CONFIG_NAME, CARD_NAME = runfiles.WEIGHTS, runfiles.CONFIG, runfiles.CARD
# File names that hold pickled tensors. They can run arbitrary code when unpickled, so they are
# never opened, only recognised in order to say why they are refused.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


_logger = logging.getLogger("hub_models")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says what to do."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle checkpoint, refused without being unpickled."""


def config_from_dict(config_class: type, data: dict[str, Any]) -> Any:
    """Build a frozen config dataclass, refusing fields the class does not know."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(
            f"config.json has fields {unknown} that {config_class.__name__} does not define: "
            "the checkpoint was written by another version of this model; retrain it or use "
            "the matching code"
        )
    values = {}
    for field in dataclasses.fields(config_class):
        if field.name in data:
            value = data[field.name]
            # JSON has no tuples; configs use tuples so that they stay hashable.
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return config_class(**values)


def require_positive(config: Any, *names: str) -> None:
    """Refuse a config whose counts or sizes ``names`` are below 1."""
    for name in names:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1")


def read_config(folder: Path, config_class: type) -> Any:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: a published model needs its config.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return config_from_dict(config_class, data)


def refuse_pickles(folder: Path) -> None:
    """Raise if the folder offers only pickled weights (never unpickle them)."""
    folder = Path(folder)
    if (folder / WEIGHTS_NAME).is_file():
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeCheckpointError(
            f"{folder} holds only pickle checkpoints ({', '.join(pickles)}). Pickle files can run "
            "arbitrary code when loaded, so they are refused and were not opened. Convert them "
            "with a tool you trust to model.safetensors, or retrain with `python -m training`."
        )
    raise CheckpointError(f"{folder / WEIGHTS_NAME} is missing")


def load_state_strict(module: nn.Module, weights_path: Path) -> None:
    """Load safetensors weights into ``module``, naming every mismatch before touching it."""
    expected = module.state_dict()
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            found = {key: handle.get_slice(key).get_shape() for key in handle.keys()}  # noqa: SIM118
            problems = []
            for key in sorted(set(expected) | set(found)):
                if key not in found:
                    problems.append(
                        f"missing key '{key}' (expected shape {tuple(expected[key].shape)})"
                    )
                elif key not in expected:
                    problems.append(f"unexpected key '{key}' of shape {tuple(found[key])}")
                elif tuple(found[key]) != tuple(expected[key].shape):
                    problems.append(
                        f"key '{key}' has shape {tuple(found[key])} in the checkpoint but the "
                        f"config expects {tuple(expected[key].shape)}"
                    )
            if problems:
                raise CheckpointError(
                    f"{weights_path} does not match its config: "
                    + "; ".join(problems[:5])
                    + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
                    + ". Retrain, or pick the config that wrote these weights."
                )
            state = {key: handle.get_tensor(key) for key in found}
    except CheckpointError:
        raise
    except Exception as error:  # safetensors raises its own types for truncated or foreign files
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file ({error})"
        ) from error
    module.load_state_dict(state, strict=True)


def _resolved_here(model_id: str, explicit_client_options: bool) -> tuple[bool, Path | None]:
    """Whether this package resolves ``model_id`` itself (a folder, or a repo this gallery
    publishes, unless the caller gave huggingface_hub options), and the snapshot bundled for it."""
    if Path(model_id).is_dir():
        return True, None
    if explicit_client_options:
        return False, None
    from hub_models.registry import published  # the registry imports every family's bundle

    try:
        _, model = published(model_id)
    except KeyError:
        return False, None
    return True, model.snapshot


class HubBundle(nn.Module, PyTorchModelHubMixin):
    """Base of every published model: ``nn.Module`` + the Hub mixin + a frozen config dataclass.

    Subclasses set ``config_class`` and take ``config`` as their only constructor argument, so
    ``save_pretrained`` writes that dataclass to config.json and ``from_pretrained`` rebuilds it.
    Loading overrides the mixin's to be strict and safetensors-only.
    """

    config_class: ClassVar[type]
    # Dtype of floating weights on disk. float16 halves a bundle. Saving writes a rounded copy
    # and leaves the model in memory alone; call round_to_storage() first (training does before
    # publishing) for the model in memory to give the saved one's outputs exactly.
    storage_dtype: ClassVar[torch.dtype] = torch.float32

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        self.config = config

    @classmethod
    def load_folder(cls, folder: str | Path, device: str | torch.device = "cpu") -> Self:
        """Strictly load a published folder (model.safetensors + config.json)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise CheckpointError(f"{folder} is not a folder with a published model")
        refuse_pickles(folder)
        model = cls(read_config(folder, cls.config_class))
        load_state_strict(model, folder / WEIGHTS_NAME)
        return model.to(device).eval()

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs,
    ) -> Self:
        """Load a published model; a repo of this gallery resolves as ``hub_models.load`` does.

        Such a repo (or a folder) goes straight to ``_from_pretrained``: the mixin's own first
        step downloads config.json with huggingface_hub, which fails offline (and waits in its
        retry loop when the endpoint is down) before any fallback could run. Other repos, or
        explicit client options, take the mixin's path.
        """
        model_id = str(pretrained_model_name_or_path)
        explicit = bool(force_download or local_files_only or token is not None or cache_dir)
        if _resolved_here(model_id, explicit)[0]:
            return cls._from_pretrained(
                model_id=model_id,
                revision=revision,
                cache_dir=None,
                force_download=False,
                local_files_only=False,
                token=None,
                **model_kwargs,
            )
        return super().from_pretrained(
            model_id,
            force_download=force_download,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            revision=revision,
            **model_kwargs,
        )

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision,
        cache_dir,
        force_download,
        local_files_only,
        token,
        map_location: str = "cpu",
        **_ignored,
    ) -> Self:
        # A folder, or a repo this gallery publishes, resolves like hub_models.load: the Hub
        # (after one bounded reachability probe), then the HF cache, then the snapshot bundled
        # with the package; ``model.resolved`` says which and the log names it. Other repos (or
        # explicit client options) are fetched with huggingface_hub. Either way the mixin's
        # fallback to pytorch_model.bin and its non-strict load are bypassed: only safetensors
        # is read, every key must match, and only the weights and the config are downloaded.
        from hub_models import hub

        explicit = bool(force_download or local_files_only or token is not None or cache_dir)
        here, bundled = _resolved_here(model_id, explicit)
        if here:
            where = hub.resolve(model_id, bundled, revision)
            model = cls.load_folder(where.path, map_location)
            model.resolved = where
            log = _logger.warning if where.source == "bundled" else _logger.info
            log(
                "%s: weights from %s%s",
                model_id,
                where.label,
                f" ({where.notice})" * bool(where.notice),
            )
            return model
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import RemoteEntryNotFoundError

        def download(filename: str, at: str | None) -> Path:
            return Path(
                hf_hub_download(
                    model_id,
                    filename,
                    revision=at,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    local_files_only=local_files_only,
                    token=token,
                )
            )

        try:
            folder = download(WEIGHTS_NAME, revision).parent  # the cache's snapshots/<commit>
        except RemoteEntryNotFoundError as error:
            raise CheckpointError(
                f"{model_id} has no {WEIGHTS_NAME} at revision {revision or 'main'}. Only "
                "safetensors weights are loaded; pickle checkpoints (.bin, .pt, ...) are refused "
                "without being downloaded. Publish safetensors weights or retrain with "
                "`python -m training`."
            ) from error
        # The config from the same commit as the weights, even if a push landed in between.
        download(CONFIG_NAME, folder.name)
        model = cls.load_folder(folder, map_location)
        source = "cache" if local_files_only or hub.offline() else "hub"
        model.resolved = hub.Resolved(model_id, folder, source, folder.name)
        _logger.info("%s: weights from %s", model_id, model.resolved.label)
        return model

    @torch.no_grad()
    def round_to_storage(self) -> None:
        """Round floating weights and buffers to what ``storage_dtype`` can represent."""
        for tensor in self.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(self.storage_dtype))

    def _save_pretrained(self, save_directory: Path) -> None:
        # A rounded copy: saving must not change the model in memory (training may go on).
        state = {
            k: (v.to(self.storage_dtype) if v.is_floating_point() else v)
            .detach()
            .cpu()
            .contiguous()
            for k, v in self.state_dict().items()
        }
        save_file(state, str(Path(save_directory) / WEIGHTS_NAME), metadata={"format": "pt"})

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The card ``save_pretrained``/``push_to_hub`` write when none exists yet.

        The mixin's default has "[More Information Needed]" placeholders; this one says what
        is known from the model alone. `python -m training train` writes the full card
        (evaluation, data, the training command) over it.
        """
        info = self._hub_mixin_info.model_card_data
        name = type(self).__name__
        module = type(self).__module__
        rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in dataclasses.asdict(self.config).items())
        summary = (
            (type(self).__doc__ or sys.modules[module].__doc__ or name).strip().splitlines()[0]
        )
        data = ModelCardData(license=info.license, library_name="pytorch", tags=info.tags)
        return ModelCard(
            f"---\n{data.to_yaml()}\n---\n\n# {name}\n\n{summary}\n\n"
            f"```python\nfrom {module} import {name}\n\n"
            f"model = {name}.from_pretrained(...)\n```\n\n"
            "Weights are safetensors and load strictly. This card was written from the model "
            "alone: it has no evaluation. Cards written by `python -m training train` add the "
            "metrics, the data and the command that trained the model.\n\n"
            f"| config field | value |\n| --- | --- |\n{rows}\n"
        )

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> str | None:  # type: ignore[override]
        return super().save_pretrained(save_directory, config=self.config, **kwargs)
