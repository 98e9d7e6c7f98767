"""GAN objectives and penalties, one home for every family.

Each loss takes the discriminator's raw outputs (logits, or critic values for the Wasserstein
objectives) and returns a scalar to *minimise*. The maths of each objective stands over its
code. Papers: GAN (arXiv:1406.2661), WGAN (arXiv:1701.07875), WGAN-GP (arXiv:1704.00028),
LSGAN (arXiv:1611.04076), hinge (arXiv:1705.02894), R1 (arXiv:1801.04406).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

OBJECTIVES = ("minimax", "nonsaturating", "wgan", "wgan-gp", "lsgan", "hinge")


def check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")


def discriminator_loss(objective: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss from its outputs on real and generated samples (penalties are separate)."""
    if objective in ("minimax", "nonsaturating"):
        # max log D(x) + log(1 - D(G(z)))  ==  min softplus(-d(x)) + softplus(d(G(z)))
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if objective in ("wgan", "wgan-gp"):
        # max E[d(x)] - E[d(G(z))]
        return fake.mean() - real.mean()
    if objective == "lsgan":
        # min 1/2 (d(x) - 1)^2 + 1/2 d(G(z))^2
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    if objective == "hinge":
        # min relu(1 - d(x)) + relu(1 + d(G(z)))
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown objective {objective!r}")


def generator_loss(objective: str, fake: torch.Tensor) -> torch.Tensor:
    """G's loss from D's outputs on generated samples."""
    if objective == "minimax":
        # min log(1 - D(G(z))) = -softplus(d(G(z))): saturates when D wins, the collapse story
        return -F.softplus(fake).mean()
    if objective == "nonsaturating":
        # max log D(G(z))  ==  min softplus(-d(G(z)))
        return F.softplus(-fake).mean()
    if objective in ("wgan", "wgan-gp", "hinge"):
        # max E[d(G(z))]
        return -fake.mean()
    if objective == "lsgan":
        # min 1/2 (d(G(z)) - 1)^2
        return 0.5 * ((fake - 1) ** 2).mean()
    raise ValueError(f"unknown objective {objective!r}")


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
    pack: int = 1,
) -> torch.Tensor:
    """WGAN-GP: E[(||grad d(x_hat)|| - 1)^2] at random interpolates x_hat of real and fake.

    With ``pack`` > 1 (PacGAN), ``pack`` consecutive samples form one input of the critic:
    they share one interpolation weight and one gradient norm.
    """
    n = real.shape[0]
    # Drawn on the CPU generator, then moved: a CPU generator cannot fill a CUDA tensor.
    alpha = torch.rand(n // pack, generator=generator).repeat_interleave(pack).to(real.device)
    alpha = alpha.reshape(n, *([1] * (real.dim() - 1)))
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.reshape(n // pack, -1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al.): E[||grad d(x)||^2] on real samples; weigh it by gamma / 2."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
    return grad.reshape(len(real), -1).pow(2).sum(1).mean()
