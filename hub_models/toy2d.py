"""2D toy GANs: the mode-collapse lab's model, objectives, targets and metrics.

Papers: GAN (Goodfellow et al. 2014, arXiv:1406.2661), WGAN (arXiv:1701.07875), WGAN-GP
(arXiv:1704.00028), LSGAN (arXiv:1611.04076), hinge loss (arXiv:1705.02894), unrolled GAN
(arXiv:1611.02163), PacGAN (arXiv:1712.04086), spectral normalisation (arXiv:1802.05957);
mode metrics as in PacGAN and VEEGAN (arXiv:1705.07761).

The training step lives here, not only in training/, because the lab page trains these models
live in the app; `training.toy2d` adapts the same step to the shared training loop. The
objectives and the gradient penalty are hub_models/objectives.py, shared by every family.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from hub_models.base import HubBundle, require_positive
from hub_models.family import Dataset, Family, PublishedModel
from hub_models.objectives import (
    check_objective,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)

BUILTIN_TARGETS = ("ring", "grid", "spiral", "moons", "unequal")


# ----------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """A 2D distribution to learn: a Gaussian mixture (has modes) or a fixed point cloud."""

    name: str
    means: tuple[tuple[float, float], ...] = ()
    stds: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    points: np.ndarray | None = field(default=None, compare=False, hash=False)
    # Content hash of ``points``: two clouds with the same name but other points differ.
    digest: str = ""

    @property
    def has_modes(self) -> bool:
        return bool(self.means)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 2) float32 samples."""
        if self.points is not None:
            pts = torch.as_tensor(self.points, dtype=torch.float32)
            idx = torch.randint(len(pts), (n,), generator=generator)
            return pts[idx]
        means = torch.tensor(self.means, dtype=torch.float32)  # (K, 2)
        stds = torch.tensor(self.stds, dtype=torch.float32)  # (K,)
        weights = torch.tensor(self.weights, dtype=torch.float64)
        # Inverse-CDF mode choice: cheaper than torch.multinomial on small K and reproducible.
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        k = torch.searchsorted(torch.cumsum(weights / weights.sum(), 0), u).clamp_max(
            len(means) - 1
        )
        noise = torch.randn(n, 2, generator=generator)
        return means[k] + noise * stds[k, None]

    def extent(self, margin: float = 0.25) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) of the view that shows this target."""
        if self.points is not None:
            pts = np.asarray(self.points)
            lo, hi = pts.min(0), pts.max(0)
        else:
            m = np.asarray(self.means)
            s = 3 * max(self.stds)
            lo, hi = m.min(0) - s, m.max(0) + s
        pad = margin * float(max(hi - lo))
        return float(lo[0] - pad), float(hi[0] + pad), float(lo[1] - pad), float(hi[1] + pad)


def mixture(name: str, means, stds, weights=None) -> Target:
    means = tuple((float(x), float(y)) for x, y in means)
    if isinstance(stds, (int, float)):
        stds = (float(stds),) * len(means)
    weights = tuple(float(w) for w in (weights or [1.0] * len(means)))
    if not means or len(stds) != len(means) or len(weights) != len(means):
        raise ValueError("a mixture needs one mean, std and weight per mode")
    if min(stds) <= 0 or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("stds must be > 0 and weights >= 0 with a positive sum")
    total = sum(weights)
    return Target(name, means, tuple(float(s) for s in stds), tuple(w / total for w in weights))


def point_cloud(name: str, points: np.ndarray) -> Target:
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
        raise ValueError("a point cloud needs at least two rows of (x, y)")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite numbers")
    return Target(name, points=pts, digest=hashlib.sha256(pts.tobytes()).hexdigest()[:16])


def parse_points_csv(raw: bytes, name: str = "the CSV", max_rows: int = 200_000) -> np.ndarray:
    """Parse uploaded CSV bytes into an (N, 2) float array, with a message for each bad case."""
    if not raw.strip():
        raise ValueError(f"{name} is empty: give two columns x,y with one point per row")
    if b"\0" in raw[:4096]:
        raise ValueError(f"{name} looks binary, not a CSV of x,y points")
    lines = raw.decode("utf-8", errors="replace").strip().splitlines()
    if len(lines) > max_rows + 1:
        raise ValueError(f"{name} has {len(lines)} rows; at most {max_rows} points are accepted")
    rows = []
    for number, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.replace(";", ",").replace("\t", ",").split(",")]
        cells = [c for c in cells if c]
        if not cells:
            continue
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if number == 1 and not rows:  # a header row
                continue
            raise ValueError(f"{name}, row {number}: {line[:60]!r} is not two numbers") from None
        if len(values) != 2:
            raise ValueError(
                f"{name}, row {number}: expected 2 columns (x, y), found {len(values)}"
            )
        rows.append(values)
    if len(rows) < 2:
        raise ValueError(f"{name} has {len(rows)} point(s); at least 2 are needed")
    points = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(points).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    if np.abs(points).max() > 1e6:
        raise ValueError(f"{name} has coordinates beyond ±1e6; rescale the points")
    return points.astype(np.float32)


def builtin_target(name: str) -> Target:
    """The standard benchmarks (PacGAN/VEEGAN protocol) and a few shapes for the lab."""
    if name == "ring":  # 8 Gaussians on the unit circle, sigma 0.01
        angles = [2 * math.pi * i / 8 for i in range(8)]
        return mixture("ring", [(math.cos(a), math.sin(a)) for a in angles], 0.01)
    if name == "grid":  # 25 Gaussians at {-4,-2,0,2,4}^2, sigma 0.05
        return mixture("grid", [(x, y) for x in range(-4, 5, 2) for y in range(-4, 5, 2)], 0.05)
    if name == "unequal":  # 6 modes whose weights differ by 8x: does G keep the rare ones?
        angles = [2 * math.pi * i / 6 for i in range(6)]
        means = [(1.5 * math.cos(a), 1.5 * math.sin(a)) for a in angles]
        return mixture("unequal", means, 0.05, [8, 4, 2, 2, 1, 1])
    rng = np.random.default_rng(0)  # fixed clouds: the same target in every run
    if name == "spiral":
        t = np.sqrt(rng.uniform(0, 1, 4000)) * 3 * math.pi
        pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (3 * math.pi) * 2
        return point_cloud("spiral", pts + rng.normal(0, 0.03, pts.shape))
    if name == "moons":
        t = rng.uniform(0, math.pi, 4000)
        upper = rng.uniform(size=4000) < 0.5
        x = np.where(upper, np.cos(t), 1 - np.cos(t))
        y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
        return point_cloud("moons", np.stack([x, y], 1) + rng.normal(0, 0.05, (4000, 2)))
    raise ValueError(f"unknown target {name!r}; choose one of {', '.join(BUILTIN_TARGETS)}")


# ----------------------------------------------------------------------------- metrics


def mode_counts(samples: torch.Tensor | np.ndarray, target: Target) -> torch.Tensor:
    """(K,) number of high-quality samples nearest to each mode (within 3σ of it)."""
    if not target.has_modes:
        raise ValueError(f"target {target.name!r} has no modes to count")
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    means = torch.tensor(target.means, dtype=torch.float64)
    stds = torch.tensor(target.stds, dtype=torch.float64)
    nearest_dist, nearest = torch.cdist(x, means).min(1)  # (N,)
    high_quality = nearest_dist <= 3 * stds[nearest]
    return torch.bincount(nearest[high_quality], minlength=len(means))


def mode_metrics(samples: torch.Tensor | np.ndarray, target: Target) -> dict[str, float]:
    """PacGAN/VEEGAN mode metrics of (N, 2) samples against a mixture target.

    A sample is high quality if it lies within 3 standard deviations of its nearest mode; a
    mode is covered if at least one high-quality sample is nearest to it; reverse KL is
    KL(generated mode histogram || true mode weights), the histogram over high-quality samples
    (uniform weights for the ring and grid). With no high-quality sample it is undefined (nan).
    """
    counts = mode_counts(samples, target).double()
    n_hq = int(counts.sum())
    means = target.means
    if n_hq:
        p = counts / n_hq
        q = torch.tensor(target.weights, dtype=torch.float64)
        hit = p > 0  # 0 log 0 = 0: modes without samples add nothing
        reverse_kl = float((p[hit] * (p[hit] / q[hit]).log()).sum())
    else:
        reverse_kl = float("nan")
    return {
        "modes_covered": int((counts > 0).sum()),
        "modes_total": len(means),
        "high_quality": n_hq / max(len(samples), 1),
        "reverse_kl": reverse_kl,
    }


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance between two point sets: 0 iff the distributions match (for clouds)."""
    a, b = a.double(), b.double()
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Toy2DConfig:
    """Everything that defines one run: target, objective, remedies, architecture, optimiser."""

    target: str = "ring"
    objective: str = "nonsaturating"
    unrolled_steps: int = 0  # Metz et al.: G sees D after k differentiable Adam steps
    pack: int = 1  # PacGAN: D judges m samples jointly
    spectral_norm: bool = False
    noise_dim: int = 2
    g_width: int = 128
    g_depth: int = 3
    d_width: int = 128
    d_depth: int = 3
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    lr_final_fraction: float = 1.0  # linear decay of both LRs to this fraction by the last step
    d_steps: int = 1
    batch_size: int = 256
    steps: int = 5000
    gp_weight: float = 0.1  # as the WGAN-GP authors' toy code: a smaller lambda suits 2D tasks
    clip_value: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        check_objective(self.objective)
        if self.pack < 1 or self.batch_size % self.pack:
            raise ValueError("pack must be >= 1 and divide batch_size")
        require_positive(
            self, "g_width", "g_depth", "d_width", "d_depth", "noise_dim", "d_steps", "batch_size"
        )
        if self.unrolled_steps < 0:
            raise ValueError("unrolled_steps must be >= 0")

    @property
    def label(self) -> str:
        """Short human name: objective plus remedies, e.g. 'nonsaturating + pack 4'."""
        parts = [self.objective]
        if self.unrolled_steps:
            parts.append(f"unrolled {self.unrolled_steps}")
        if self.pack > 1:
            parts.append(f"pack {self.pack}")
        if self.spectral_norm:
            parts.append("SN")
        return " + ".join(parts)


def mlp(
    in_dim: int,
    width: int,
    depth: int,
    out_dim: int,
    activation: Callable[[], nn.Module],
    spectral: bool = False,
) -> nn.Sequential:
    wrap = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [wrap(nn.Linear(in_dim if i == 0 else width, width)), activation()]
    layers.append(wrap(nn.Linear(width if depth else in_dim, out_dim)))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    def __init__(self, config: Toy2DConfig) -> None:
        super().__init__()
        self.net = mlp(config.noise_dim, config.g_width, config.g_depth, 2, nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, noise_dim) -> (B, 2)
        return self.net(z)


class Discriminator(nn.Module):
    """A critic over packs of ``pack`` points; pack 1 is the ordinary discriminator."""

    def __init__(self, config: Toy2DConfig) -> None:
        super().__init__()
        self.pack = config.pack
        self.net = mlp(
            2 * config.pack,
            config.d_width,
            config.d_depth,
            1,
            lambda: nn.LeakyReLU(0.2),
            spectral=config.spectral_norm,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2) -> (B // pack,) logits
        return self.net(x.reshape(-1, 2 * self.pack)).squeeze(-1)


class Toy2DGAN(
    HubBundle,
    paper_url="https://arxiv.org/abs/1712.04086",
    license="mit",
    tags=["gan", "toy", "mode-collapse"],
):
    config_class = Toy2DConfig
    storage_dtype = torch.float16  # 2D points need no more; keeps the 20 bundles small

    def __init__(self, config: Toy2DConfig) -> None:
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


# ----------------------------------------------------------------------------- training


def unrolled_critic(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    objective: str,
    real_batches: list[torch.Tensor],
    fakes: list[torch.Tensor],
):
    """D's parameters after len(real_batches) differentiable Adam steps (unrolled GAN).

    The fakes keep their graph to G, so G's gradient includes how D would react to G's move;
    that second-order term is what distinguishes unrolling from a look-ahead D.
    """
    params = dict(discriminator.named_parameters())
    group = optimizer.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    moments = {}
    for name, p in params.items():
        state = optimizer.state.get(p, {})
        moments[name] = (
            state.get("exp_avg", torch.zeros_like(p)).detach(),
            state.get("exp_avg_sq", torch.zeros_like(p)).detach(),
            float(state.get("step", 0)),
        )
    for real, fake in zip(real_batches, fakes, strict=True):
        loss = discriminator_loss(
            objective,
            functional_call(discriminator, params, (real,)),
            functional_call(discriminator, params, (fake,)),
        )
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        new_params = {}
        for (name, p), g in zip(params.items(), grads, strict=True):
            m, v, t = moments[name]
            m, v, t = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g, t + 1
            moments[name] = (m, v, t)
            step = lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
            new_params[name] = p - step
        params = new_params
    return params


Update = Callable[[torch.optim.Optimizer, torch.Tensor], None]


def plain_update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def make_optimizers(model: Toy2DGAN) -> dict[str, torch.optim.Optimizer]:
    c = model.config
    betas = (c.beta1, c.beta2)
    return {
        "d": torch.optim.Adam(model.discriminator.parameters(), lr=c.lr_d, betas=betas),
        "g": torch.optim.Adam(model.generator.parameters(), lr=c.lr_g, betas=betas),
    }


def set_lr_fraction(
    model: Toy2DGAN, optimizers: dict[str, torch.optim.Optimizer], fraction: float
) -> None:
    for key, base in (("d", model.config.lr_d), ("g", model.config.lr_g)):
        for group in optimizers[key].param_groups:
            group["lr"] = base * fraction


def lr_fraction(config: Toy2DConfig, step: int) -> float:
    """Linear decay from 1 to lr_final_fraction over the run."""
    progress = min(step / max(config.steps - 1, 1), 1.0)
    return 1.0 + (config.lr_final_fraction - 1.0) * progress


def d_step(
    model: Toy2DGAN,
    optimizers,
    target: Target,
    generator: torch.Generator,
    update: Update = plain_update,
) -> float:
    """One discriminator/critic update."""
    c, device = model.config, next(model.parameters()).device
    real = target.sample(c.batch_size, generator).to(device)
    z = torch.randn(c.batch_size, c.noise_dim, generator=generator).to(device)
    fake = model.generator(z).detach()
    loss = discriminator_loss(c.objective, model.discriminator(real), model.discriminator(fake))
    if c.objective == "wgan-gp":
        loss = loss + c.gp_weight * gradient_penalty(
            model.discriminator, real, fake, generator, pack=c.pack
        )
    update(optimizers["d"], loss)
    if c.objective == "wgan":  # keep the critic (roughly) Lipschitz by clipping its weights
        with torch.no_grad():
            for p in model.discriminator.parameters():
                p.clamp_(-c.clip_value, c.clip_value)
    return loss.item()


def g_step(
    model: Toy2DGAN,
    optimizers,
    target: Target,
    generator: torch.Generator,
    update: Update = plain_update,
) -> float:
    """One generator update (through an unrolled critic when configured)."""
    c, device = model.config, next(model.parameters()).device
    z = torch.randn(c.batch_size, c.noise_dim, generator=generator).to(device)
    fake = model.generator(z)
    if c.unrolled_steps:
        reals = [target.sample(c.batch_size, generator).to(device) for _ in range(c.unrolled_steps)]
        fakes = [
            model.generator(torch.randn(c.batch_size, c.noise_dim, generator=generator).to(device))
            for _ in range(c.unrolled_steps)
        ]
        params = unrolled_critic(model.discriminator, optimizers["d"], c.objective, reals, fakes)
        d_fake = functional_call(model.discriminator, params, (fake,))
    else:
        d_fake = model.discriminator(fake)
    loss = generator_loss(c.objective, d_fake)
    update(optimizers["g"], loss)
    return loss.item()


def train_step(
    model: Toy2DGAN,
    optimizers,
    target: Target,
    generator: torch.Generator,
    update: Update = plain_update,
) -> dict[str, float]:
    """d_steps critic updates, then one generator update."""
    d_losses = [
        d_step(model, optimizers, target, generator, update) for _ in range(model.config.d_steps)
    ]
    g_loss = g_step(model, optimizers, target, generator, update)
    return {"loss_d": d_losses[-1], "loss_g": g_loss}


# ----------------------------------------------------------------------------- inference


@torch.no_grad()
def sample(model: Toy2DGAN, n: int, seed: int = 0) -> torch.Tensor:
    """(n, 2) generated points, deterministic in ``seed``."""
    device = next(model.parameters()).device
    z = torch.randn(n, model.config.noise_dim, generator=torch.Generator().manual_seed(seed))
    return model.generator(z.to(device)).cpu()


def fixed_noise(config: Toy2DConfig, n: int, seed: int = 1234) -> torch.Tensor:
    return torch.randn(n, config.noise_dim, generator=torch.Generator().manual_seed(seed))


def grid_points(extent, resolution: int) -> torch.Tensor:
    """(R*R, 2) centres of a resolution x resolution grid over (xmin, xmax, ymin, ymax)."""
    xs = torch.linspace(extent[0], extent[1], resolution)
    ys = torch.linspace(extent[2], extent[3], resolution)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)


@torch.no_grad()
def critic_field(model: Toy2DGAN, extent, resolution: int = 48) -> torch.Tensor:
    """(R, R) discriminator output over the view; rows are y, columns x.

    Probabilities (sigmoid) for the log-loss objectives, raw critic values otherwise. A packed
    D judges m copies of the same point, the natural single-point reading of a pack critic.
    """
    device = next(model.parameters()).device
    pts = grid_points(extent, resolution).to(device)
    values = model.discriminator(pts.repeat_interleave(model.config.pack, 0))
    if model.config.objective in ("minimax", "nonsaturating"):
        values = torch.sigmoid(values)
    return values.reshape(resolution, resolution).cpu()


def generator_directions(model: Toy2DGAN, points: torch.Tensor) -> torch.Tensor:
    """(N, 2) direction each generated point is pushed by G's loss (minus its gradient)."""
    device = next(model.parameters()).device
    x = points.detach().to(device).requires_grad_(True)
    pack = model.config.pack
    n = (len(x) // pack) * pack
    loss = generator_loss(model.config.objective, model.discriminator(x[:n]))
    (grad,) = torch.autograd.grad(loss * n, x)
    return (-grad).cpu()


@torch.no_grad()
def manifold(model: Toy2DGAN, resolution: int = 16, spread: float = 2.0) -> torch.Tensor:
    """(R, R, 2) image of a regular grid in the first two noise dimensions (others at 0).

    Drawing its rows and columns shows how G folds and stretches the latent plane.
    """
    device = next(model.parameters()).device
    lin = torch.linspace(-spread, spread, resolution)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    z = torch.zeros(resolution * resolution, model.config.noise_dim)
    z[:, 0] = gx.reshape(-1)
    if model.config.noise_dim > 1:
        z[:, 1] = gy.reshape(-1)
    return model.generator(z.to(device)).reshape(resolution, resolution, 2).cpu()


def frame(
    model: Toy2DGAN,
    target: Target,
    points: int = 256,
    field_resolution: int = 40,
    manifold_resolution: int = 12,
) -> dict[str, torch.Tensor]:
    """What the lab draws at one moment of training, as CPU float32 tensors.

    ``points``: (P, 2) generated from fixed noise; ``directions``: (P, 2) G's push on them;
    ``field``: (R, R) critic over the target's view; ``manifold``: (L, L, 2) warped latent grid.
    """
    device = next(model.parameters()).device
    with torch.no_grad():
        generated = model.generator(fixed_noise(model.config, points).to(device)).cpu()
    return {
        "points": generated,
        "directions": generator_directions(model, generated),
        "field": critic_field(model, target.extent(), field_resolution),
        "manifold": manifold(model, manifold_resolution),
    }


def evaluate(model: Toy2DGAN, target: Target, n: int = 2500, seed: int = 0) -> dict[str, float]:
    """Mode metrics on ``n`` samples (2,500 in the PacGAN protocol) or energy distance."""
    points = sample(model, n, seed)
    if target.has_modes:
        return mode_metrics(points, target)
    real = target.sample(n, torch.Generator().manual_seed(seed + 1))
    return {"energy_distance": energy_distance(points, real)}


# ----------------------------------------------------------------------------- card text

METRIC_NAMES = {
    "modes_covered": "Modes covered",
    "modes_total": "Modes in the target",
    "high_quality": "High-quality samples (fraction)",
    "reverse_kl": "Reverse KL (mode histogram || true weights)",
    "energy_distance": "Energy distance to the target",
}

PROTOCOL = """\
PacGAN / VEEGAN protocol. Ring: 8 Gaussians on the unit circle, σ = 0.01. Grid: 25 Gaussians
at {−4, −2, 0, 2, 4}², σ = 0.05. 2,500 generated samples per evaluation. A sample is *high
quality* if it lies within 3σ of its nearest mode; a mode is *covered* if at least one
high-quality sample lands on it; *reverse KL* is KL(generated mode histogram ‖ true mode
weights) over the high-quality samples (uniform weights for ring and grid). Point-cloud targets
(spiral, moons, user CSV) report the energy distance to 2,500 target samples instead."""

INTENDED_USE = """\
Teaching and research on GAN training dynamics: replaying how an objective covers or drops the
modes of a 2D mixture, and as a reference point for mode-collapse metrics."""

LIMITATIONS = """\
A toy: 2D points, not images. One seed's checkpoint is published per configuration; mode
metrics vary between seeds, so compare configurations with the multi-seed benchmark
(`python -m benchmarks toy2d`), not with a single card."""


# -- the published models ------------------------------------------------------------------

# The toy2d repos: every objective on both benchmark targets, plus the remedies for collapse.
VARIANTS: tuple[tuple[str, str, tuple[tuple[str, object], ...]], ...] = (
    # The textbook GAN on the classic mixture-of-Gaussians setup of the unrolled-GAN paper
    # (G 2x128, D 1x128, G learning rate 10x D's, batch 512, constant learning rate; noise
    # 16-d instead of 256-d): the collapse the lab is about. Every other row uses the lab's
    # recipe (3x128 MLPs on both sides, equal learning rates decayed 50x, batch 256).
    (
        "vanilla",
        "vanilla GAN (classic setup)",
        (
            ("objective", "minimax"),
            ("g_depth", 2),
            ("d_depth", 1),
            ("noise_dim", 16),
            ("lr_g", 1e-3),
            ("lr_d", 1e-4),
            ("batch_size", 512),
            ("lr_final_fraction", 1.0),
        ),
    ),
    ("minimax", "minimax (saturating)", (("objective", "minimax"),)),
    ("nonsaturating", "non-saturating", (("objective", "nonsaturating"),)),
    ("wgan", "WGAN (weight clipping)", (("objective", "wgan"),)),
    ("wgan-gp", "WGAN-GP", (("objective", "wgan-gp"),)),
    ("lsgan", "LSGAN", (("objective", "lsgan"),)),
    ("hinge", "hinge", (("objective", "hinge"),)),
    # Each unrolled step costs a differentiable D update: 5,000 steps cost about what the
    # others' 20,000 do.
    (
        "unrolled",
        "unrolled GAN (5 steps)",
        (("objective", "nonsaturating"), ("unrolled_steps", 5), ("steps", 5000)),
    ),
    ("pacgan4", "PacGAN4", (("objective", "nonsaturating"), ("pack", 4))),
    ("hinge-sn", "hinge + spectral norm", (("objective", "hinge"), ("spectral_norm", True))),
)


def _toy2d_models() -> tuple[PublishedModel, ...]:
    return tuple(
        PublishedModel(
            f"toy2d-{target}-{slug}", f"{title} on the {target}", (("target", target), *overrides)
        )
        for target in ("ring", "grid")
        for slug, title, overrides in VARIANTS
    )


FAMILY = Family(
    name="toy2d",
    title="2D mode-collapse lab",
    tagline="Train GANs live on 2D mixtures and watch modes collapse or survive.",
    page="toy2d_lab.py",
    icon=":material/scatter_plot:",
    bundle=Toy2DGAN,
    sample=sample,
    models=_toy2d_models(),
    datasets=(
        Dataset(
            "synthetic 2D Gaussian mixtures (ring, grid)",
            "generated by hub_models/toy2d.py",
            "MIT",
        ),
    ),
    papers=(
        "https://arxiv.org/abs/1406.2661",
        "https://arxiv.org/abs/1712.04086",
        "https://arxiv.org/abs/1705.07761",
        "https://arxiv.org/abs/1611.02163",
    ),
    metric_names=METRIC_NAMES,
    protocol=PROTOCOL,
    intended_use=INTENDED_USE,
    limitations=LIMITATIONS,
    tags=("gan", "mode-collapse", "toy"),
    featured="toy2d-grid-minimax",
    sample_caption="Generated points in orange over target samples in grey.",
    trainer="training.toy2d:Toy2DTrainer",
    benchmarks={
        "toy2d-live": "benchmarks.toy2d:live_speed",  # lab training speed while the view refreshes
        "toy2d": "benchmarks.toy2d:table",  # the PacGAN/VEEGAN mode table over every objective
    },
    long_benchmarks=("toy2d",),
)
