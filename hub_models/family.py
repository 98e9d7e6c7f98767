"""What a family declares about itself: its published models, data, card text, page, trainer
and benchmarks. Each family module builds one ``Family``; hub_models/registry.py lists them.

Trainers and benchmarks are named by import path ("module:attribute") and imported only when
asked for: the app never imports training code, and the registry stays light.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub_models.base import HubBundle

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
DEFAULT_ORG = "gan-gallery"


def org() -> str:
    """The Hub organisation the gallery's repos live under (GAN_GALLERY_ORG for a fork)."""
    return os.environ.get("GAN_GALLERY_ORG", DEFAULT_ORG)


def import_object(path: str) -> Any:
    """The object named by "package.module:attribute"."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    license: str
    attribution: str = ""


@dataclass(frozen=True)
class PublishedModel:
    """One Hub repo of a family, trained with its family's CLI and the given overrides."""

    name: str  # repo name without the org, e.g. "toy2d-ring-nonsaturating"
    title: str
    overrides: tuple[tuple[str, object], ...] = ()

    @property
    def repo_id(self) -> str:
        return f"{org()}/{self.name}"

    @property
    def snapshot(self) -> Path:
        """The bundled copy of the published repo that ships with the app."""
        return SNAPSHOTS / self.name


@dataclass(frozen=True)
class AuxiliaryModel(PublishedModel):
    """A published model a family needs besides its own (a metric's feature net, a text
    encoder, a keypoint regressor): its bundle, and how to smoke-test it like a family model.
    The family's trainer trains it (``train_auxiliary``)."""

    bundle: type[HubBundle] | None = None
    sample: Callable | None = None  # (model, n, seed) -> tensor


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    tagline: str
    page: str  # file under pages/
    icon: str
    bundle: type[HubBundle]
    sample: Callable  # (model, n, seed) -> tensor; the smoke test every published model must pass
    models: tuple[PublishedModel, ...]
    datasets: tuple[Dataset, ...]
    papers: tuple[str, ...]
    metric_names: dict[str, str]  # metric key -> human name, for cards and tables
    protocol: str  # how the metrics are measured, stated in every card
    intended_use: str
    limitations: str
    trainer: str  # "module:Class" of the family's training.base.Trainer subclass
    benchmarks: dict[str, str] = field(default_factory=dict)  # name -> "module:function"
    long_benchmarks: tuple[str, ...] = ()  # run only when named (they train many models)
    auxiliary: tuple[AuxiliaryModel, ...] = ()
    license: str = "mit"
    tags: tuple[str, ...] = ()
    featured: str = ""  # the model the home page shows and commands default to (else the first)
    sample_caption: str = ""  # what the card's sample picture shows

    @property
    def featured_model(self) -> PublishedModel:
        return self.model(self.featured) if self.featured else self.models[0]

    def model(self, name: str) -> PublishedModel:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} publishes no model named {name!r}")

    def make_trainer(self):
        """The family's trainer (imports training code: never called by the app)."""
        return import_object(self.trainer)()
