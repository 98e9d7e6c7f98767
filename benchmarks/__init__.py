"""Benchmarks: every function takes (quick, verbose) and returns a JSON-able dict."""

from __future__ import annotations

from collections.abc import Callable


def _startup(**kw):
    from benchmarks.app import startup

    return startup(**kw)


def _loading(**kw):
    from benchmarks.app import loading

    return loading(**kw)


def _toy2d(**kw):
    from benchmarks.toy2d import table

    return table(**kw)


def _toy2d_live(**kw):
    from benchmarks.toy2d import live_speed

    return live_speed(**kw)


def _images(**kw):
    from benchmarks.images import table

    return table(**kw)


def _images_speed(**kw):
    from benchmarks.images import speed

    return speed(**kw)


def _ganomaly(**kw):
    from benchmarks.ganomaly import table

    return table(**kw)


def _ganomaly_speed(**kw):
    from benchmarks.ganomaly import speed

    return speed(**kw)


def _seqgan(**kw):
    from benchmarks.seqgan import table

    return table(**kw)


# Run only when named: the full toy2d table trains about a hundred GANs (an hour on 2 cores),
# the GANomaly table 78 models (about half an hour), the SeqGAN oracle table and roll-out
# timings a few minutes.
LONG = {"toy2d", "ganomaly", "seqgan"}

BENCHMARKS: dict[str, Callable[..., dict]] = {
    "startup": _startup,  # app cold start: process start -> home page served
    "loading": _loading,  # resolve + load per family: bundled vs HF cache vs loopback Hub
    "toy2d-live": _toy2d_live,  # lab training speed while the view refreshes
    "toy2d": _toy2d,  # the PacGAN/VEEGAN mode table over every objective (long)
    "images": _images,  # FID/KID/PRDC of every image model beside the floor and a baseline
    "images-speed": _images_speed,  # a 64-sample grid; FLOP/s against the matmul peak
    "ganomaly": _ganomaly,  # per-digit and per-texture AUROC with two baselines (long)
    "ganomaly-speed": _ganomaly_speed,  # scoring one image, and a batch
    "seqgan": _seqgan,  # oracle NLL / held-out NLL table; sampling and roll-out speed (long)
}
