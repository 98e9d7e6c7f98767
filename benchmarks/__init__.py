"""Benchmarks: every function takes (quick, verbose) and returns a JSON-able dict.

The frame's own benchmarks are listed here; each family's come from its registry entry
(``Family.benchmarks``, named by import path), so a new family adds its benchmarks there.
"""

from __future__ import annotations

from collections.abc import Callable

from hub_models.family import import_object
from hub_models.registry import FAMILIES

FRAME: dict[str, str] = {
    "startup": "benchmarks.app:startup",  # app cold start: process start -> home page served
    "loading": "benchmarks.app:loading",  # resolve + load per family: bundled, cache, Hub
    "concurrency": "benchmarks.concurrency:run",  # 8 visitors on a cold server, idle and loaded
    "gpu": "benchmarks.gpu:run",  # every family on CUDA against the CPU (skips without CUDA)
    "walk": "benchmarks.walk:run",  # every page and tab in chromium: screenshots, any error
}
FRAME_LONG = ("concurrency", "walk")


def _lazy(path: str) -> Callable[..., dict]:
    def run(**kw) -> dict:
        return import_object(path)(**kw)

    run.__name__ = path
    return run


BENCHMARKS: dict[str, Callable[..., dict]] = {name: _lazy(path) for name, path in FRAME.items()}
for _family in FAMILIES.values():
    BENCHMARKS.update({name: _lazy(path) for name, path in _family.benchmarks.items()})

# Run only when named: they train many models (the toy2d table about a hundred GANs, an hour
# on 2 cores) or start many browsers.
LONG = {*FRAME_LONG, *(name for f in FAMILIES.values() for name in f.long_benchmarks)}
