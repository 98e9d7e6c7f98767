"""The 2D lab's logic, free of Streamlit so it can be tested and benchmarked without a browser.

A ``LabRun`` is one training run (model, optimizers, data RNG, history). A ``LiveRun`` trains
one in a worker of its own (a process by default) at the speed the page asks for, and hands the
page a ``Snapshot`` of its latest state whenever the page draws: training never waits for
drawing, and drawing never waits for training. A ``View`` is what one frame draws: generated
and real points, the critic's field, the generator's push on its points, the warped latent grid;
views come either from a live run or from a published run's replay frames, and one figure
function draws both.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import io
import math
import multiprocessing
import os
import threading
import time
import traceback
import weakref
from collections import deque
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from safetensors.torch import load_file

from hub_models import toy2d

VIEW_POINTS = 512  # generated points drawn per frame
FIELD_RESOLUTION = 40
MANIFOLD_RESOLUTION = 12
METRIC_SAMPLES = 1000  # live metrics; the benchmark and cards use the protocol's 2,500
HISTORY_POINTS = 400  # a run's curves keep at most this many points: older ones are thinned
REAL_COLOUR, FAKE_COLOUR = "#7f7f7f", "#e8710a"


@dataclass
class LabRun:
    config: toy2d.Toy2DConfig
    target: toy2d.Target
    model: toy2d.Toy2DGAN
    optimizers: dict[str, torch.optim.Optimizer]
    generator: torch.Generator
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)


def new_run(config: toy2d.Toy2DConfig, target: toy2d.Target, device: str = "cpu") -> LabRun:
    """A fresh run; the same config, target and seed always start from the same weights."""
    model = toy2d.Toy2DGAN(config)
    _initialise(model, config.seed)
    model = model.to(device).train()
    return LabRun(
        config,
        target,
        model,
        toy2d.make_optimizers(model),
        torch.Generator().manual_seed(config.seed),
    )


def _initialise(model: toy2d.Toy2DGAN, seed: int) -> None:
    """PyTorch's default initialisation of every linear layer, drawn from a generator of its
    own: the same seed gives the same weights, and the process-wide RNG is never reseeded (the
    server is shared by every visitor)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if not isinstance(layer, torch.nn.Linear):
                continue
            parametrized = torch.nn.utils.parametrize.is_parametrized(layer, "weight")
            weight = layer.parametrizations.weight.original if parametrized else layer.weight
            torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(weight.shape[1])
            torch.nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    if model.config.spectral_norm:
        # Spectral norm estimated σ for the weights drawn at construction; a few power
        # iterations (one per training-mode forward) re-estimate it for these weights.
        with torch.no_grad():
            for _ in range(15):
                model.discriminator(torch.zeros(model.config.pack, 2))


def advance(run: LabRun, iterations: int) -> None:
    """``iterations`` full D+G iterations, then one history entry."""
    for _ in range(iterations):
        run.last_losses = toy2d.train_step(run.model, run.optimizers, run.target, run.generator)
        run.step += 1
    _log(run)


def single_update(run: LabRun, which: str) -> None:
    """One discriminator ('d') or generator ('g') update, to watch each half of the game."""
    update = toy2d.d_step if which == "d" else toy2d.g_step
    run.last_losses = {
        **run.last_losses,
        f"loss_{which}": update(run.model, run.optimizers, run.target, run.generator),
    }
    run.step += which == "g"
    _log(run)


def _log(run: LabRun) -> None:
    """Append the metrics at this step; past HISTORY_POINTS, keep every other entry (the newest
    always stays), so a long run's curves stay cheap to draw."""
    entry = {"step": run.step, **run.last_losses}
    run.model.eval()
    entry.update(toy2d.evaluate(run.model, run.target, n=METRIC_SAMPLES, seed=0))
    run.model.train()
    run.history.append(entry)
    if len(run.history) > HISTORY_POINTS:
        run.history[:] = run.history[::2]


# ----------------------------------------------------------------------------- live settings

# Settings a run takes while it trains; every other field of the config (and the target, the
# seed, the device) defines the run: changing one needs a new run from step 0.
LIVE_FIELDS = ("lr_g", "lr_d", "d_steps", "batch_size")
RESTART_LABELS = {
    "objective": "objective",
    "unrolled_steps": "unroll k",
    "pack": "pack m",
    "spectral_norm": "spectral norm",
    "g_width": "width",
    "d_width": "width",
    "g_depth": "depth",
    "d_depth": "depth",
    "noise_dim": "noise dimension",
    "seed": "seed",
}


@dataclass(frozen=True)
class Settings:
    """What the page asks of a live run; all of it applies without restarting the run."""

    playing: bool = False
    steps_per_second: float | None = None  # a speed cap; None: as fast as the machine allows
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    d_steps: int = 1
    batch_size: int = 256

    @classmethod
    def of(
        cls, config: toy2d.Toy2DConfig, playing: bool, steps_per_second: float | None = None
    ) -> Settings:
        live = {name: getattr(config, name) for name in LIVE_FIELDS}
        return cls(playing=playing, steps_per_second=steps_per_second, **live)


def restart_reasons(
    running: toy2d.Toy2DConfig,
    running_target: toy2d.Target,
    wanted: toy2d.Toy2DConfig,
    wanted_target: toy2d.Target | None,
) -> list[str]:
    """Names of the changed settings that need a new run (empty: the run can go on).

    ``wanted_target`` None means the page has no usable target yet: the run keeps its own.
    """
    reasons = []
    if wanted_target is not None and wanted_target != running_target:
        reasons.append("target")
    for f in fields(toy2d.Toy2DConfig):
        if f.name in LIVE_FIELDS or getattr(running, f.name) == getattr(wanted, f.name):
            continue
        label = RESTART_LABELS.get(f.name, f.name.replace("_", " "))
        if label not in reasons:
            reasons.append(label)
    return reasons


# ----------------------------------------------------------------------------- live training


@dataclass(frozen=True)
class Snapshot:
    """A live run's state at one step, taken between two steps: everything in it agrees."""

    answers: int  # the number of the page's request it answers
    step: int
    updates: int  # D and G updates so far: 0 means nothing would be lost by a restart
    playing: bool
    steps_per_second: float  # measured over the last steps
    config: toy2d.Toy2DConfig  # with the live settings in force
    view: View
    history: tuple[dict[str, float], ...]
    picture: bytes | None = None  # a JPEG of the view, histogram and curves, when asked for


@dataclass(frozen=True)
class PictureSpec:
    """What a picture of a run shows, and how wide it is in pixels."""

    field: bool = True
    arrows: bool = True
    manifold: bool = True
    width: int = 620

    @classmethod
    def of(cls, show: dict[str, bool], width: int) -> PictureSpec:
        return cls(
            show.get("field", True), show.get("arrows", True), show.get("manifold", True), width
        )

    def show(self) -> dict[str, bool]:
        return {"field": self.field, "arrows": self.arrows, "manifold": self.manifold}


FRAME_SECONDS = 0.15  # a playing run is drawn about 6 times a second
METRIC_SECONDS = 0.5  # a playing run logs metrics (a point of its curves) twice a second
RATE_WINDOW = 64  # steps over which steps/s is measured


class Trainer:
    """The training side of a live run: steps at the speed asked, takes settings between steps.

    It runs inside the run's worker and knows nothing of how requests reach it; ``clock`` is
    injectable so that tests can drive the speed cap without waiting.
    """

    def __init__(
        self, config: toy2d.Toy2DConfig, target: toy2d.Target, device: str = "cpu", clock=None
    ) -> None:
        self.run = new_run(config, target, device)
        self.clock = clock or time.monotonic
        self.settings = Settings.of(config, playing=False)
        self._pace = (self.clock(), 0)  # (time, step) the speed cap counts from
        self._rate: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW)
        self._logged_at = -math.inf
        self.updates = 0
        self._snapshot: Snapshot | None = None  # reused while nothing changes
        self._pictures: dict[PictureSpec, bytes] = {}

    def apply(self, settings: Settings) -> None:
        old = self.settings
        if settings == old:
            return
        live = {name: getattr(settings, name) for name in LIVE_FIELDS}
        if any(getattr(self.run.config, name) != value for name, value in live.items()):
            self.run.config = replace(self.run.config, **live)
            self.run.model.config = self.run.config  # train_step reads batch and D steps here
            toy2d.set_lr_fraction(self.run.model, self.run.optimizers, 1.0)
        if (settings.playing, settings.steps_per_second) != (old.playing, old.steps_per_second):
            self._pace = (self.clock(), self.run.step)
            self._rate.clear()
        self.settings = settings
        if old.playing and not settings.playing and self._unlogged():
            _log(self.run)  # the curves end where the run paused
        self._snapshot = None

    def seconds_until_due(self) -> float | None:
        """0 when a step is due now; the wait for the next one under the speed cap; None while
        paused."""
        if not self.settings.playing:
            return None
        cap = self.settings.steps_per_second
        if not cap:
            return 0.0
        began, first = self._pace
        return max(0.0, began + (self.run.step - first) / cap - self.clock())

    def step(self) -> None:
        run = self.run
        run.last_losses = toy2d.train_step(run.model, run.optimizers, run.target, run.generator)
        run.step += 1
        self.updates += run.config.d_steps + 1
        now = self.clock()
        self._rate.append((now, run.step))
        cap = self.settings.steps_per_second
        if cap and now - (self._pace[0] + (run.step - self._pace[1]) / cap) > 1.0:
            self._pace = (now, run.step)  # fell behind the cap: do not catch up in a burst
        if now - self._logged_at >= METRIC_SECONDS:
            _log(run)
            self._logged_at = now
        self._snapshot = None

    def update(self, which: str) -> None:
        """One D or G update on its own (the page offers it while paused)."""
        single_update(self.run, which)
        self.updates += 1
        self._snapshot = None

    def steps_per_second(self) -> float:
        if not self.settings.playing or len(self._rate) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        return (s1 - s0) / max(t1 - t0, 1e-9)

    def snapshot(self, answers: int = 0, picture: PictureSpec | None = None) -> Snapshot:
        """The state now (the same object while nothing changes); ``picture``: with a picture."""
        if self._snapshot is None:
            run = self.run
            if self._unlogged() and not self.settings.playing:
                _log(run)
            self._snapshot = Snapshot(
                answers,
                run.step,
                self.updates,
                self.settings.playing,
                self.steps_per_second(),
                run.config,
                live_view(run),
                tuple(dict(entry) for entry in run.history),
            )
            self._pictures = {}
        if picture is not None and picture not in self._pictures:
            snapshot = self._snapshot
            self._pictures[picture] = render_picture(
                snapshot.view, list(snapshot.history), picture.show(), picture.width
            )
        drawn = self._pictures.get(picture) if picture is not None else None
        return replace(self._snapshot, answers=answers, picture=drawn)

    def _unlogged(self) -> bool:
        return not self.run.history or self.run.history[-1]["step"] != self.run.step


PAUSE_AFTER_SECONDS = 15.0  # no word from the page this long (tab closed or hidden): pause
CLOSE_AFTER_SECONDS = 1800.0  # ... and this long: end the worker and free its memory
IDLE_POLL_SECONDS = 1.0


def _serve(
    connection,
    config: toy2d.Toy2DConfig,
    target: toy2d.Target,
    device: str,
    own_process: bool,
    pause_after: float,
    close_after: float,
) -> None:
    """A live run's worker: train when due, answer the page between steps.

    Messages in: ("settings", Settings), ("update", "d" | "g"), ("snapshot", (number,
    PictureSpec | None)), ("stop", None). Out: a Snapshot per snapshot request, or ("failed",
    traceback) once.
    """
    # The app server's thread policy, in this process of its own. No lower priority (nice):
    # the scheduler already lets the briefly-running server and browser go first, and a niced
    # worker loses most of any core it shares with another busy process.
    if own_process and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    try:
        trainer = Trainer(config, target, device)
        heard = time.monotonic()
        asked = None
        while True:
            due = trainer.seconds_until_due()
            wait = (
                0.0
                if asked is not None
                else min(IDLE_POLL_SECONDS, due if due is not None else math.inf)
            )
            spoken = connection.poll(wait)
            silent = time.monotonic() - heard  # before this message, if any
            if silent > pause_after and trainer.settings.playing:
                trainer.apply(replace(trainer.settings, playing=False))
            if spoken:
                heard = time.monotonic()
                while connection.poll():
                    kind, value = connection.recv()
                    if kind == "stop":
                        return
                    if kind == "snapshot":
                        asked = value
                    elif kind == "settings":
                        trainer.apply(value)
                    elif kind == "update":
                        trainer.update(value)
            elif silent > close_after:
                return
            if asked is not None:
                connection.send(trainer.snapshot(*asked))
                asked = None
            elif trainer.seconds_until_due() == 0:
                trainer.step()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the page is gone
    except Exception:
        with contextlib.suppress(OSError):
            connection.send(("failed", traceback.format_exc()))


class LiveRunError(RuntimeError):
    """A live run's worker failed or went away; the message says what to do."""


@functools.cache
def _process_context():
    """Workers fork from one small server process that has imported this module (and torch)
    once, so a new run starts in milliseconds; spawn where there is no forkserver."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # "__main__": imported once there, so that each worker does not run the main script
        # again (multiprocessing re-imports a script main in every child). torch._dynamo: the
        # first optimizer imports it (800 modules, a second of CPU), once per worker otherwise.
        context.set_forkserver_preload(["__main__", "torch._dynamo", __name__])
        return context
    return multiprocessing.get_context("spawn")


def start_worker_server() -> None:
    """Start, in the background, the process that live runs fork from (it imports torch once,
    seconds), so that a visitor's first run starts at once."""
    if default_isolation() == "process":
        context = _process_context()
        if context.get_start_method() == "forkserver":
            from multiprocessing import forkserver

            threading.Thread(target=forkserver.ensure_running, daemon=True).start()


def default_isolation() -> str:
    """ "process" (default): a worker process per run, so that training never waits for the GIL
    while the server draws; "thread" (GAN_GALLERY_LAB_WORKER=thread): a thread of the server."""
    isolation = os.environ.get("GAN_GALLERY_LAB_WORKER", "process")
    if isolation not in ("process", "thread"):
        raise ValueError(f"GAN_GALLERY_LAB_WORKER={isolation!r}: use 'process' or 'thread'")
    return isolation


_OPEN_RUNS: weakref.WeakSet[LiveRun] = weakref.WeakSet()


class LiveRun:
    """One visitor's live run: a worker (process or thread) owns the model and trains it; the page
    sends settings and reads snapshots. Closing it, or dropping the last reference to it (the
    session ended), stops the worker; so does a page that stays silent for ``close_after``."""

    def __init__(
        self,
        config: toy2d.Toy2DConfig,
        target: toy2d.Target,
        device: str = "cpu",
        *,
        isolation: str | None = None,
        pause_after: float = PAUSE_AFTER_SECONDS,
        close_after: float = CLOSE_AFTER_SECONDS,
    ) -> None:
        self.config, self.target, self.device = config, target, device
        self.isolation = isolation or default_isolation()
        self._connection, worker_end = multiprocessing.Pipe()
        args = (worker_end, config, target, device, self.isolation == "process")
        args += (pause_after, close_after)
        if self.isolation == "process":
            worker = _process_context().Process(
                target=_serve, args=args, daemon=True, name="toy2d-live"
            )
        else:
            worker = threading.Thread(target=_serve, args=args, daemon=True, name="toy2d-live")
        worker.start()
        if self.isolation == "process":
            worker_end.close()
        self._worker = worker
        self._lock = threading.Lock()
        self._asked = 0  # snapshot requests sent
        self._latest: Snapshot | None = None
        self._settings: Settings | None = None  # the last settings sent
        self._finalizer = weakref.finalize(self, _shut_down, self._connection, worker)
        _OPEN_RUNS.add(self)

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self._worker.is_alive()

    @property
    def step(self) -> int:
        """The step of the newest snapshot received (0 before the first)."""
        return self._latest.step if self._latest else 0

    @property
    def untouched(self) -> bool:
        """No D or G update yet (as far as the snapshots received say): nothing to lose."""
        return self._latest is None or self._latest.updates == 0

    def configure(self, settings: Settings) -> None:
        """Play, pause, the speed cap and the live settings; the page sends them on every draw,
        which also tells the worker that someone still watches."""
        self._settings = settings
        self._send(("settings", settings))

    def pause(self) -> None:
        if self._settings is not None and self._settings.playing:
            self.configure(replace(self._settings, playing=False))

    def update(self, which: str) -> None:
        """One D ('d') or G ('g') update on its own; meant for a paused run."""
        self._send(("update", which))

    def latest(
        self, fresh: bool = False, picture: PictureSpec | None = None, timeout: float = 60.0
    ) -> Snapshot:
        """The newest snapshot that has arrived, without waiting, and a request for the next one.

        ``fresh``: wait for a snapshot taken after everything sent so far (a paused page after
        a D or G step). The first call always waits for the run's first snapshot. ``picture``:
        ask for snapshots with a picture drawn by the worker (the one returned may still have
        none, or an older kind, if it was asked for before).
        """
        with self._lock:
            self._receive(0.0)
            latest = self._latest
            if fresh or latest is None:
                wanted = self._ask(picture)
                deadline = time.monotonic() + timeout
                while self._latest is None or self._latest.answers < wanted:
                    if not self._receive(max(deadline - time.monotonic(), 0.0)):
                        raise LiveRunError(
                            f"the live run did not answer within {timeout:.0f} s; restart it"
                        )
            elif latest.answers == self._asked:  # nothing on its way: ask for the next frame
                self._ask(picture)
            return self._latest

    def close(self) -> None:
        self._finalizer()

    def _ask(self, picture: PictureSpec | None) -> int:
        self._asked += 1
        self._send(("snapshot", (self._asked, picture)))
        return self._asked

    def _send(self, message) -> None:
        try:
            self._connection.send(message)
        except OSError:
            raise LiveRunError("the live run has stopped; restart it") from None

    def _receive(self, timeout: float) -> bool:
        """Take in what the worker sent; waits up to ``timeout`` for the first message."""
        got = False
        try:
            while self._connection.poll(0 if got else timeout):
                message = self._connection.recv()
                got = True
                if isinstance(message, tuple) and message[0] == "failed":
                    raise LiveRunError(f"the live run failed:\n{message[1]}")
                self._latest = message
        except (EOFError, OSError):
            raise LiveRunError("the live run has stopped; restart it") from None
        return got


def _shut_down(connection, worker) -> None:
    with contextlib.suppress(OSError):
        connection.send(("stop", None))
    connection.close()
    worker.join(timeout=2.0)
    if worker.is_alive() and isinstance(worker, multiprocessing.process.BaseProcess):
        worker.terminate()


def close_all() -> None:
    """Stop every live run of this process (tests, benchmarks, shutdown)."""
    for run in list(_OPEN_RUNS):
        run.close()


# ----------------------------------------------------------------------------- views


@dataclass
class View:
    """Everything one frame draws, as numpy arrays."""

    target: toy2d.Target
    extent: tuple[float, float, float, float]
    real: np.ndarray  # (N, 2)
    points: np.ndarray  # (M, 2) generated
    directions: np.ndarray  # (M, 2) where G's loss pushes each generated point
    field: np.ndarray  # (R, R) critic over the extent, rows = y
    manifold: np.ndarray  # (L, L, 2) image of a latent grid
    field_is_probability: bool
    step: int
    metrics: dict[str, float]


@functools.lru_cache(maxsize=32)
def real_points(target: toy2d.Target, n: int = VIEW_POINTS) -> np.ndarray:
    points = target.sample(n, torch.Generator().manual_seed(7)).numpy()
    points.flags.writeable = False  # shared by every frame of this target
    return points


ZOOMS = (1.0, 1.5, 2.0, 3.0)  # how far the live view zooms out to follow straying points


def square_extent(target: toy2d.Target, zoom: float = 1.0) -> tuple[float, float, float, float]:
    """A square around the target's view, ``zoom`` times as wide."""
    xmin, xmax, ymin, ymax = target.extent()
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    half = zoom * max(xmax - xmin, ymax - ymin) / 2
    return cx - half, cx + half, cy - half, cy + half


def view_extent(
    target: toy2d.Target, points: np.ndarray, keep: float = 0.98
) -> tuple[float, float, float, float]:
    """The target's square, zoomed out in steps (ZOOMS) until it holds ``keep`` of the points:
    steps rather than a tight fit, so that the view does not jitter from frame to frame."""
    for zoom in ZOOMS:
        extent = square_extent(target, zoom)
        inside = (
            (points[:, 0] >= extent[0])
            & (points[:, 0] <= extent[1])
            & (points[:, 1] >= extent[2])
            & (points[:, 1] <= extent[3])
        )
        if inside.mean() >= keep:
            break
    return extent


def live_view(run: LabRun) -> View:
    """What a live run looks like now; the critic's field covers the whole (zoomed) view."""
    model, config = run.model, run.config
    device = next(model.parameters()).device
    model.eval()  # spectral norm: no power iteration while drawing
    try:
        with torch.no_grad():
            points = model.generator(toy2d.fixed_noise(config, VIEW_POINTS).to(device)).cpu()
        extent = view_extent(run.target, points.numpy())
        field_values = toy2d.critic_field(model, extent, FIELD_RESOLUTION)
        directions = toy2d.generator_directions(model, points)
        manifold = toy2d.manifold(model, MANIFOLD_RESOLUTION)
    finally:
        model.train()
    return View(
        target=run.target,
        extent=extent,
        real=real_points(run.target),
        points=points.numpy(),
        directions=directions.numpy(),
        field=field_values.numpy(),
        manifold=manifold.numpy(),
        field_is_probability=config.objective in ("minimax", "nonsaturating"),
        step=run.step,
        metrics={k: v for k, v in (run.history[-1] if run.history else {}).items() if k != "step"},
    )


# ----------------------------------------------------------------------------- replay

MODE_METRIC_KEYS = ("modes_covered", "modes_total", "high_quality", "reverse_kl")


@dataclass(frozen=True)
class Replay:
    """Frames saved along a published run (replay.safetensors), drawn without any training."""

    config: toy2d.Toy2DConfig
    target: toy2d.Target
    frames: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.frames["step"])

    def metrics(self, index: int) -> dict[str, float]:
        keys = MODE_METRIC_KEYS if self.target.has_modes else ("energy_distance",)
        return dict(zip(keys, self.frames["metrics"][index].tolist(), strict=True))

    def view(self, index: int) -> View:
        f = self.frames
        return View(
            target=self.target,
            extent=self.target.extent(),  # the field was saved over the target's view
            real=real_points(self.target),
            points=f["points"][index].float().numpy(),
            directions=f["directions"][index].float().numpy(),
            field=f["field"][index].float().numpy(),
            manifold=f["manifold"][index].float().numpy(),
            field_is_probability=self.config.objective in ("minimax", "nonsaturating"),
            step=int(f["step"][index]),
            metrics=self.metrics(index),
        )

    def curves(self) -> list[dict[str, float]]:
        return [self.metrics(i) | {"step": int(self.frames["step"][i])} for i in range(len(self))]


def load_replay(replay: Path, config: toy2d.Toy2DConfig) -> Replay:
    """A published run's replay frames (its replay.safetensors)."""
    frames = load_file(str(replay))
    return Replay(config, toy2d.builtin_target(config.target), frames)


# ----------------------------------------------------------------------------- targets


def _blank(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def incomplete_rows(rows: list[dict]) -> list[int]:
    """Numbers of the table rows with an empty cell: a row just added is being filled in, so it
    waits (left out of the mixture) rather than counting as an error."""
    return [
        number
        for number, row in enumerate(rows, 1)
        if any(_blank(row.get(key)) for key in ("x", "y", "std", "weight"))
    ]


def target_from_table(rows: list[dict], skip: tuple[int, ...] = ()) -> toy2d.Target:
    """A mixture from editable-table rows with x, y, std, weight, leaving out the row numbers
    in ``skip`` (bad rows raise ValueError)."""
    means, stds, weights = [], [], []
    for number, row in enumerate(rows, 1):
        if number in skip:
            continue
        try:
            x, y = float(row["x"]), float(row["y"])
            std, weight = float(row["std"]), float(row["weight"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"row {number} needs numbers in x, y, std and weight") from None
        if not all(math.isfinite(v) for v in (x, y, std, weight)):
            raise ValueError(f"row {number} holds a value that is not finite")
        means.append((x, y))
        stds.append(std)
        weights.append(weight)
    if not means:
        raise ValueError("the mixture needs at least one mode")
    return toy2d.mixture("custom mixture", means, stds, weights)


def target_from_csv(raw: bytes, name: str) -> toy2d.Target:
    return toy2d.point_cloud(name, toy2d.parse_points_csv(raw, name))


# ----------------------------------------------------------------------------- figures

JARGON = (
    "**HQ** (high quality): the share of generated points that lie within 3 standard deviations "
    "of a mode's centre. **rev-KL** (reverse KL divergence): how far the way those points split "
    "between the modes is from the true weights; 0 means every mode gets its fair share."
)

# One figure per run, stacked in pixels: title, the square view (and its tick labels), the mode
# histogram (targets with modes), the curves (losses | metrics) under one line naming them,
# then the step axis and, for a replay, its play buttons and slider.
TITLE_PX, MAIN_AXIS_PX, PANEL_TITLE_PX, HIST_PX, CURVES_PX, AXIS_PX, SLIDER_PX = (
    58,
    24,
    28,
    100,
    120,
    34,
    86,
)
MAIN_PX, MAIN_PX_COMPACT = 470, 280  # compact: half the page (side by side, replay)
TITLE_PX_COMPACT = 74  # three title lines
LOSS_SERIES = (("loss_d", "D loss", "#1f77b4"), ("loss_g", "G loss", FAKE_COLOUR))
METRIC_SERIES = (
    ("modes_covered", "modes covered (share)", "#2ca02c"),
    ("high_quality", "high quality (share)", "#9467bd"),
    ("reverse_kl", "reverse KL", "#d62728"),
    ("energy_distance", "energy distance", "#8c564b"),
)
SHORT_NAMES = {  # the curves' names in the line over their panel (hover gives the long ones)
    "loss_d": "D loss",
    "loss_g": "G loss",
    "modes_covered": "modes",
    "high_quality": "HQ",
    "reverse_kl": "rev-KL",
    "energy_distance": "energy distance",
}


def _segments(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y arrays drawing one line per (start, end) pair, separated by NaN (a gap)."""
    gaps = np.full(len(starts), np.nan)
    xs = np.stack([starts[:, 0], ends[:, 0], gaps], 1).reshape(-1)
    ys = np.stack([starts[:, 1], ends[:, 1], gaps], 1).reshape(-1)
    return xs, ys


def _arrow_ends(points: np.ndarray, directions: np.ndarray, extent, share: float = 0.06):
    """Arrow tips, scaled so that the longest arrow spans ``share`` of the view."""
    span = max(extent[1] - extent[0], extent[3] - extent[2])
    norms = np.linalg.norm(directions, axis=1)
    finite = norms[np.isfinite(norms)]
    scale = share * span / max(float(finite.max()) if len(finite) else 0.0, 1e-12)
    return points + directions * scale


def _inside(points: np.ndarray, extent) -> np.ndarray:
    xmin, xmax, ymin, ymax = extent
    x, y = points[:, 0], points[:, 1]
    return (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)


def _on_edge(points: np.ndarray, extent) -> np.ndarray:
    """Points moved onto the view's edge: where a point outside the view is shown."""
    xmin, xmax, ymin, ymax = extent
    finite = np.nan_to_num(points, nan=0.0, posinf=1e30, neginf=-1e30)
    return np.stack([finite[:, 0].clip(xmin, xmax), finite[:, 1].clip(ymin, ymax)], 1)


def view_traces(view: View, show: dict[str, bool], arrows: int = 128) -> list[dict]:
    """The square view's traces: heatmap, real, latent grid, arrows, generated, and generated
    points outside the view drawn on its edge. Always the same traces in the same order (the
    replay animates them by position)."""
    xmin, xmax, ymin, ymax = view.extent
    res = view.field.shape[0]
    traces: list[dict] = []
    if show.get("field", True):
        traces.append(
            {
                "type": "heatmap",
                "z": view.field,
                "x": np.linspace(xmin, xmax, res),
                "y": np.linspace(ymin, ymax, res),
                "colorscale": "RdBu",
                "opacity": 0.55,
                "showscale": False,
                "zmin": 0 if view.field_is_probability else None,
                "zmax": 1 if view.field_is_probability else None,
                "hovertemplate": "D = %{z:.3f}<extra></extra>",
                "name": "discriminator",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "x": view.real[:, 0],
            "y": view.real[:, 1],
            "mode": "markers",
            "marker": {"size": 3, "color": REAL_COLOUR},
            "name": "real",
        }
    )
    if show.get("manifold", True):
        grid = view.manifold  # (L, L, 2): rows, then columns, each line ended by a NaN gap
        lines = np.concatenate([grid, grid.transpose(1, 0, 2)], 0)  # (2L, L, 2)
        gaps = np.full((len(lines), 1, 2), np.nan)
        xy = np.concatenate([lines, gaps], 1).reshape(-1, 2)
        traces.append(
            {
                "type": "scatter",
                "x": xy[:, 0],
                "y": xy[:, 1],
                "mode": "lines",
                "name": "latent grid",
                "line": {"width": 0.6, "color": "rgba(60,60,160,0.45)"},
                "hoverinfo": "skip",
            }
        )
    if show.get("arrows", True):
        points, directions = view.points[:arrows], view.directions[:arrows]
        xs, ys = _segments(points, _arrow_ends(points, directions, view.extent))
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "mode": "lines",
                "name": "G gradient",
                "line": {"width": 1, "color": "#2a7a2a"},
                "hoverinfo": "skip",
            }
        )
    inside = _inside(view.points, view.extent)
    traces.append(
        {
            "type": "scatter",
            "x": view.points[inside, 0],
            "y": view.points[inside, 1],
            "mode": "markers",
            "marker": {"size": 4, "color": FAKE_COLOUR},
            "name": "generated",
        }
    )
    outside = _on_edge(view.points[~inside], view.extent)
    traces.append(
        {
            "type": "scatter",
            "x": outside[:, 0],
            "y": outside[:, 1],
            "mode": "markers",
            "marker": {"size": 6, "color": FAKE_COLOUR, "symbol": "diamond-open"},
            "name": "generated, outside the view (drawn on its edge)",
        }
    )
    for trace in traces:
        trace["showlegend"] = False  # the page's text says what each colour is
    return traces


def histogram_traces(view: View) -> list[dict]:
    """High-quality generated points per mode (bars) and the ideal count (black ticks)."""
    counts = toy2d.mode_counts(view.points, view.target).numpy()
    expected = np.asarray(view.target.weights) * len(view.points)
    # round, then add 0.0 so that -1e-16 reads "0.0", not "-0.0"
    labels = [f"mode at ({round(x, 1) + 0.0}, {round(y, 1) + 0.0})" for x, y in view.target.means]
    axes = {"xaxis": "x2", "yaxis": "y2", "showlegend": False}
    return [
        {
            "type": "bar",
            "x": labels,
            "y": counts,
            "name": "HQ points",
            "marker": {"color": FAKE_COLOUR},
            **axes,
        },
        {
            "type": "scatter",
            "x": labels,
            "y": expected,
            "mode": "markers",
            "name": "ideal",
            "marker": {"color": "black", "symbol": "line-ew-open", "size": 12},
            **axes,
        },
    ]


def curve_series(history: list[dict[str, float]]) -> list[tuple[str, str, str, bool]]:
    """(key, name, colour, is_loss) of every curve this history has data for."""
    present = {key for entry in history for key in entry}
    series = [(k, n, c, True) for k, n, c in LOSS_SERIES if k in present]
    return series + [(k, n, c, False) for k, n, c in METRIC_SERIES if k in present]


def _series_values(history: list[dict[str, float]], key: str) -> list[float | None]:
    if key == "modes_covered":  # a share, so that it fits the axis of the other metrics
        return [
            e["modes_covered"] / e["modes_total"] if "modes_covered" in e else None for e in history
        ]
    return [e.get(key) for e in history]


def curve_traces(
    history: list[dict[str, float]], series: list[tuple[str, str, str, bool]]
) -> list[dict]:
    steps = [entry["step"] for entry in history]
    return [
        {
            "type": "scatter",
            "x": steps,
            "y": _series_values(history, key),
            "mode": "lines",
            "name": name,
            "line": {"color": colour, "width": 1.5},
            "xaxis": "x3" if is_loss else "x4",
            "yaxis": "y3" if is_loss else "y4",
        }
        for key, name, colour, is_loss in series
    ]


def _title(view: View, title: str, compact: bool) -> str:
    """The run's name over its step and metrics; on two short lines in half a page."""
    lines = title_lines(view)
    details = "<br>".join(lines) if compact else " · ".join(lines)
    return f"<b>{title}</b><br><span style='font-size:12px'>{details}</span>"


def title_lines(view: View) -> list[str]:
    """['step 1,234 · 8/8 modes', '98.6% HQ · rev-KL 0.01'] (or the energy distance)."""
    m = view.metrics
    step = f"step {view.step:,}"
    if "modes_covered" in m:
        rkl = m.get("reverse_kl", float("nan"))
        return [
            f"{step} · {m['modes_covered']:.0f}/{m['modes_total']:.0f} modes",
            f"{100 * m['high_quality']:.1f}% HQ · rev-KL "
            + ("n/a" if math.isnan(rkl) else f"{rkl:.2f}"),
        ]
    if "energy_distance" in m:
        return [step, f"energy distance {m['energy_distance']:.4f}"]
    return [step]


def _panel_title(text: str, x: float, y: float) -> dict:
    return {
        "text": text,
        "x": x,
        "xanchor": "left",
        "xref": "paper",
        "y": y,
        "yanchor": "bottom",
        "yref": "paper",
        "showarrow": False,
        "font": {"size": 11},
    }


def _names(series: list[tuple[str, str, str, bool]], losses: bool) -> str:
    """'D loss · G loss', each name in its curve's colour."""
    return " · ".join(
        f"<span style='color:{colour}'>{SHORT_NAMES[key]}</span>"
        for key, _, colour, is_loss in series
        if is_loss == losses
    )


def _layout(
    view: View,
    series: list[tuple[str, str, str, bool]],
    compact: bool,
    replay: bool,
    step_range: list[float] | None = None,
) -> dict:
    """Axes and pixel-exact panel positions for one run's figure."""
    main_px, title_px = (MAIN_PX_COMPACT, TITLE_PX_COMPACT) if compact else (MAIN_PX, TITLE_PX)
    bands = {"main": (0, main_px)}
    y = main_px + MAIN_AXIS_PX
    if view.target.has_modes:
        bands["hist"] = (y + PANEL_TITLE_PX, y + PANEL_TITLE_PX + HIST_PX)
        y += PANEL_TITLE_PX + HIST_PX
    if series:
        bands["curves"] = (y + PANEL_TITLE_PX, y + PANEL_TITLE_PX + CURVES_PX)
        y += PANEL_TITLE_PX + CURVES_PX
    bottom = AXIS_PX + (SLIDER_PX if replay else 0)
    plot = y  # the plotting area's height in pixels

    def domain(band: str) -> list[float]:
        start, end = bands[band]
        return [max(0.0, 1 - end / plot), min(1.0, 1 - start / plot)]

    def title_y(band: str) -> float:  # paper y of a panel title's baseline
        return 1 - (bands[band][0] - 4) / plot

    xmin, xmax, ymin, ymax = view.extent
    plain = {"showgrid": False, "zeroline": False, "tickfont": {"size": 10}}
    layout: dict = {
        "height": title_px + plot + bottom,
        "margin": {"l": 36, "r": 10, "t": title_px, "b": bottom},
        "title": {
            "text": "",
            "x": 0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1,
            "yanchor": "top",
            "yref": "container",
            "pad": {"t": 10},
            "font": {"size": 14},
        },
        "uirevision": "keep",  # keep the user's zoom while frames replace each other
        "hovermode": "closest",
        "showlegend": False,  # the page's text names the view's colours; panel titles the rest
        "xaxis": {**plain, "range": [xmin, xmax], "domain": [0, 1], "constrain": "domain"},
        "yaxis": {
            **plain,
            "range": [ymin, ymax],
            "domain": domain("main"),
            "scaleanchor": "x",
            "scaleratio": 1,
            "constrain": "domain",
        },
        "annotations": [],
    }
    if "hist" in bands:
        layout["xaxis2"] = {"anchor": "y2", "type": "category", "showticklabels": False}
        layout["yaxis2"] = {
            "anchor": "x2",
            "domain": domain("hist"),
            "rangemode": "tozero",
            "tickfont": {"size": 9},
        }
        layout["annotations"].append(
            _panel_title("HQ points per mode (black ticks: an even share)", 0, title_y("hist"))
        )
    if series:
        has_losses = any(is_loss for *_, is_loss in series)
        metrics_domain = [0.55, 1.0] if has_losses else [0.0, 1.0]
        axis = {"tickfont": {"size": 9}, "title": {"text": "step", "font": {"size": 10}}}
        if step_range is not None:
            axis["range"] = step_range
        curves = domain("curves")
        layout["xaxis4"] = {**axis, "anchor": "y4", "domain": metrics_domain}
        layout["yaxis4"] = {"anchor": "x4", "domain": curves, "tickfont": {"size": 9}}
        layout["annotations"].append(
            _panel_title(_names(series, losses=False), metrics_domain[0], title_y("curves"))
        )
        if has_losses:
            layout["xaxis3"] = {**axis, "anchor": "y3", "domain": [0.0, 0.45]}
            layout["yaxis3"] = {"anchor": "x3", "domain": curves, "tickfont": {"size": 9}}
            layout["annotations"].append(
                _panel_title(_names(series, losses=True), 0, title_y("curves"))
            )
    return layout


def run_figure(
    view: View,
    history: list[dict[str, float]],
    title: str,
    show: dict[str, bool] | None = None,
    compact: bool = False,
    validate: bool = True,
) -> go.Figure:
    """One run at one moment: the view, its mode histogram and its curves, in one figure.

    ``compact``: sized for half the page (side by side, replay). ``validate=False`` skips
    plotly's property checks, 90 % of the cost of a figure: the live page draws several a
    second, always of this same tested shape (the tests build it with checks on)."""
    series = curve_series(history)
    data = view_traces(view, show or {})
    if view.target.has_modes:
        data += histogram_traces(view)
    data += curve_traces(history, series)
    layout = _layout(view, series, compact, replay=False)
    layout["title"]["text"] = _title(view, title, compact)
    return go.Figure(data, layout, _validate=validate)


def replay_animation(
    replay: Replay, title: str, show: dict[str, bool] | None = None, compact: bool = True
) -> go.Figure:
    """All replay frames in one figure with play buttons and a slider, animated in the browser:
    the view, the histogram and the curves (up to each frame's step) move together."""
    show = show or {}
    views = [replay.view(i) for i in range(len(replay))]
    curves = replay.curves()
    series = curve_series(curves)
    last = views[-1]

    def traces(index: int) -> list[dict]:
        view = views[index]
        data = view_traces(view, show)
        if view.target.has_modes:
            data += histogram_traces(view)
        return data + curve_traces(curves[: index + 1], series)

    final = traces(len(views) - 1)
    static = {i for i, t in enumerate(final) if t.get("name") in ("real", "ideal")}
    changing = [i for i in range(len(final)) if i not in static]
    fig = go.Figure(final)
    fig.frames = [
        go.Frame(
            data=[trace for i, trace in enumerate(traces(index)) if i in changing],
            traces=changing,
            name=str(view.step),
            layout={"title": {"text": _title(view, title, compact)}},
        )
        for index, view in enumerate(views)
    ]
    last_step = curves[-1]["step"]
    layout = _layout(last, series, compact, replay=True, step_range=[0, last_step * 1.02])
    layout["title"]["text"] = _title(last, title, compact)
    plot = layout["height"] - layout["margin"]["t"] - layout["margin"]["b"]
    below = -(AXIS_PX + 6) / plot  # paper y just under the step axis
    layout["updatemenus"] = [
        {
            "type": "buttons",
            "showactive": False,
            "direction": "left",
            "x": 0.0,
            "xanchor": "left",
            "y": below,
            "yanchor": "top",
            "pad": {"t": 0, "r": 4},
            "buttons": [
                {
                    "label": "Play",
                    "method": "animate",
                    "args": [
                        None,
                        {
                            "frame": {"duration": 150, "redraw": True},
                            "fromcurrent": True,
                            "transition": {"duration": 0},
                        },
                    ],
                },
                {
                    "label": "Pause",
                    "method": "animate",
                    "args": [[None], {"mode": "immediate", "frame": {"duration": 0}}],
                },
            ],
        }
    ]
    layout["sliders"] = [
        {
            "active": len(views) - 1,
            # the step shows at the slider's right end, clear of the buttons on the left
            "currentvalue": {"prefix": "step ", "xanchor": "right", "font": {"size": 12}},
            "x": 0.0,
            "len": 1.0,
            "y": below - 30 / plot,
            "yanchor": "top",
            "pad": {"t": 0, "b": 0},
            "font": {"size": 9},
            "steps": [
                {
                    "label": f"{v.step:,}",
                    "method": "animate",
                    "args": [
                        [str(v.step)],
                        {"mode": "immediate", "frame": {"duration": 0, "redraw": True}},
                    ],
                }
                for v in views
            ],
        }
    ]
    fig.update_layout(layout)
    return fig


# ----------------------------------------------------------------------------- pictures

# A playing run is drawn as one picture per frame, made by its worker: a browser redraws an
# image in a few milliseconds, where replacing a plotly chart costs it far more (README).
# Paused, the page draws the interactive plotly figure instead (hover, zoom).
PICTURE_WIDTH, PICTURE_WIDTH_COMPACT = 560, 380
_RDBU = (  # plotly's "RdBu": (position, r, g, b)
    (0.0, 5, 10, 172),
    (0.35, 106, 137, 247),
    (0.5, 190, 190, 190),
    (0.6, 220, 170, 132),
    (0.7, 230, 145, 90),
    (1.0, 178, 10, 28),
)
_INK, _FAINT = (40, 40, 40), (150, 150, 150)


@functools.cache
def _font(size: int = 11):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def _field_image(view: View, size: int):
    """A size x size image of the critic's field in plotly's RdBu at 55 % over white."""
    field_values = np.nan_to_num(view.field.astype(np.float64))
    if view.field_is_probability:
        low, high = 0.0, 1.0
    else:
        low, high = float(field_values.min()), float(field_values.max())
    share = np.clip((field_values - low) / max(high - low, 1e-12), 0, 1)[::-1]  # rows: top = ymax
    stops = np.array(_RDBU, dtype=np.float64)
    rgb = np.stack([np.interp(share, stops[:, 0], stops[:, c]) for c in (1, 2, 3)], -1)
    from PIL import Image

    small = Image.fromarray((255 * 0.45 + rgb * 0.55).astype(np.uint8))
    return small.resize((size, size), Image.Resampling.BILINEAR)


def _dots(draw, xs: np.ndarray, ys: np.ndarray, colour, radius: int) -> None:
    """Filled discs, drawn as shifted point sets (far faster than one ellipse per point)."""
    xs, ys = np.round(xs).astype(int), np.round(ys).astype(int)
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius + radius:
                draw.point(list(zip((xs + dx).tolist(), (ys + dy).tolist(), strict=True)), colour)


def _polyline(draw, xs, ys, colour, width: int = 1) -> None:
    """A line through finite points; a NaN or None starts a new piece."""
    piece: list[tuple[float, float]] = []
    for x, y in zip(xs, ys, strict=True):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            if len(piece) > 1:
                draw.line(piece, colour, width)
            piece = []
        else:
            piece.append((float(x), float(y)))
    if len(piece) > 1:
        draw.line(piece, colour, width)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2g}"


def _draw_view(image, draw, view: View, show: dict[str, bool], box) -> None:
    left, top, size = box
    xmin, xmax, ymin, ymax = view.extent

    def to_px(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs = left + (points[:, 0] - xmin) / (xmax - xmin) * (size - 1)
        ys = top + (ymax - points[:, 1]) / (ymax - ymin) * (size - 1)
        return xs, ys

    if show.get("field", True):
        image.paste(_field_image(view, size), (left, top))
    _dots(draw, *to_px(view.real), _rgb(REAL_COLOUR), 1)
    clip = (left, top, left + size - 1, top + size - 1)
    if show.get("manifold", True):
        grid = view.manifold
        for line in [*grid, *grid.transpose(1, 0, 2)]:
            xs, ys = to_px(line)
            _polyline(
                draw, np.clip(xs, clip[0], clip[2]), np.clip(ys, clip[1], clip[3]), (110, 110, 190)
            )
    if show.get("arrows", True):
        points, directions = view.points[:128], view.directions[:128]
        (x0, y0), (x1, y1) = to_px(points), to_px(_arrow_ends(points, directions, view.extent))
        for segment in zip(x0, y0, x1, y1, strict=True):
            if all(math.isfinite(v) for v in segment):
                draw.line(segment, (42, 122, 42), 1)
    inside = _inside(view.points, view.extent)
    _dots(draw, *to_px(view.points[inside]), _rgb(FAKE_COLOUR), 2)
    if (~inside).any():
        xs, ys = to_px(_on_edge(view.points[~inside], view.extent))
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            draw.polygon(
                [(x, y - 4), (x + 4, y), (x, y + 4), (x - 4, y)], outline=_rgb(FAKE_COLOUR)
            )
    draw.rectangle(clip, outline=_FAINT)
    font = _font(12)
    for value, x in ((xmin, left), (xmax, left + size)):
        draw.text((x, top + size + 2), f"{value:.2g}", _FAINT, font, anchor="mt")
    for value, y in ((ymax, top), (ymin, top + size)):
        draw.text((left - 3, y), f"{value:.2g}", _FAINT, font, anchor="rm")


def _draw_histogram(draw, view: View, box) -> None:
    left, top, width, height = box
    counts = toy2d.mode_counts(view.points, view.target).numpy()
    expected = np.asarray(view.target.weights) * len(view.points)
    high = max(float(counts.max()), float(expected.max()), 1.0) * 1.1
    slot = width / len(counts)
    for i, (count, ideal) in enumerate(zip(counts, expected, strict=True)):
        x0, x1 = left + i * slot + 0.15 * slot, left + (i + 1) * slot - 0.15 * slot
        bar = top + height - count / high * height
        if count:
            draw.rectangle((x0, bar, x1, top + height), fill=_rgb(FAKE_COLOUR))
        tick = top + height - ideal / high * height
        draw.line((x0 - 0.1 * slot, tick, x1 + 0.1 * slot, tick), _INK, 2)
    draw.line((left, top + height, left + width, top + height), _FAINT)
    font = _font(12)
    draw.text((left - 3, top), _number(high / 1.1), _FAINT, font, anchor="rm")
    draw.text(
        (left, top - 4),
        "HQ points per mode (black ticks: an even share)",
        _INK,
        _font(13),
        anchor="ld",
    )


def _draw_curves(draw, history, series, losses: bool, box) -> None:
    left, top, width, height = box
    chosen = [s for s in series if s[3] == losses]
    steps = [entry["step"] for entry in history]
    values = {key: _series_values(history, key) for key, *_ in chosen}
    finite = [v for vs in values.values() for v in vs if v is not None and math.isfinite(v)]
    if not finite or not steps:
        return
    low, high = min(finite), max(finite)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    first, last = steps[0], max(steps[-1], steps[0] + 1)
    xs = [left + (s - first) / (last - first) * width for s in steps]
    for key, _, colour, _ in chosen:
        ys = [
            None if v is None or not math.isfinite(v) else top + (high - v) / (high - low) * height
            for v in values[key]
        ]
        _polyline(draw, xs, ys, _rgb(colour), 2)
    draw.rectangle((left, top, left + width, top + height), outline=_FAINT)
    font = _font(12)
    draw.text((left - 3, top), _number(high), _FAINT, font, anchor="rm")
    draw.text((left - 3, top + height), _number(low), _FAINT, font, anchor="rm")
    draw.text((left, top + height + 2), f"{first:,}", _FAINT, font, anchor="lt")
    draw.text((left + width, top + height + 2), f"step {last:,}", _FAINT, font, anchor="rt")
    x = left
    for key, _, colour, _ in chosen:  # the curves' names, each in its colour
        draw.text((x, top - 4), SHORT_NAMES[key], _rgb(colour), _font(13), anchor="ld")
        x += draw.textlength(SHORT_NAMES[key], font=_font(13)) + 10


def picture_html(snapshot: Snapshot, frame: int, alt: str = "") -> str:
    """The snapshot's picture as an inline <img>; its data attributes say which step and which
    frame it shows (read by the browser benchmark)."""
    encoded = base64.b64encode(snapshot.picture or b"").decode("ascii")
    return (
        f'<img src="data:image/jpeg;base64,{encoded}" alt="{html.escape(alt)}" '
        f'data-lab-step="{snapshot.step}" data-lab-frame="{frame}" style="max-width: 100%">'
    )


def render_picture(
    view: View, history: list[dict[str, float]], show: dict[str, bool], width: int
) -> bytes:
    """One run at one moment as a JPEG: the view, its mode histogram and its curves, laid out
    as the interactive figure is. JPEG: a tenth of PNG's encoding time, at a quality where
    points and lines stay sharp (no chroma subsampling)."""
    from PIL import Image, ImageDraw

    margin_left, margin = 38, 8
    size = width - margin_left - margin
    series = curve_series(history)
    height = margin + size + 20
    hist_box = curves_box = None
    if view.target.has_modes:
        hist_box = (margin_left, height + 20, size, 70)
        height += 20 + 70 + 8
    if series:
        curves_box = (margin_left, height + 20, size, 90)
        height += 20 + 90 + 18
    image = Image.new("RGB", (width, height + margin), "white")
    draw = ImageDraw.Draw(image)
    _draw_view(image, draw, view, show, (margin_left, margin, size))
    if hist_box:
        _draw_histogram(draw, view, hist_box)
    if curves_box:
        left, top, panel, tall = curves_box
        has_losses = any(is_loss for *_, is_loss in series)
        half = int(panel * 0.45)
        if has_losses:
            _draw_curves(draw, history, series, True, (left, top, half, tall))
            _draw_curves(draw, history, series, False, (left + panel - half, top, half, tall))
        else:
            _draw_curves(draw, history, series, False, (left, top, panel, tall))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, subsampling=0)
    return buffer.getvalue()
