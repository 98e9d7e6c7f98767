"""The shared GAN objectives and penalties (hub_models/objectives.py), on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hub_models.objectives import (
    OBJECTIVES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# ----------------------------------------------------------------------------- objectives

REAL, FAKE = [1.0, -2.0], [0.5]
D_LOSS = {
    # -[mean log D(x) + mean log(1 - D(G(z)))], D = sigmoid(logit)
    "minimax": -(math.log(sigmoid(1)) + math.log(sigmoid(-2))) / 2 - math.log(1 - sigmoid(0.5)),
    "nonsaturating": -(math.log(sigmoid(1)) + math.log(sigmoid(-2))) / 2
    - math.log(1 - sigmoid(0.5)),
    "wgan": 0.5 - (1 - 2) / 2,
    "wgan-gp": 0.5 - (1 - 2) / 2,
    "lsgan": 0.5 * ((1 - 1) ** 2 + (-2 - 1) ** 2) / 2 + 0.5 * 0.5**2,
    "hinge": (max(0, 1 - 1) + max(0, 1 + 2)) / 2 + max(0, 1 + 0.5),
}
G_LOSS = {
    "minimax": math.log(1 - sigmoid(0.5)),  # min log(1 - D(G(z)))
    "nonsaturating": -math.log(sigmoid(0.5)),  # min -log D(G(z))
    "wgan": -0.5,
    "wgan-gp": -0.5,
    "hinge": -0.5,
    "lsgan": 0.5 * (0.5 - 1) ** 2,
}


def test_every_objective_has_a_hand_computed_case():
    assert set(D_LOSS) == set(G_LOSS) == set(OBJECTIVES)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_discriminator_loss_by_hand(objective):
    loss = discriminator_loss(objective, torch.tensor(REAL), torch.tensor(FAKE))
    assert loss.item() == pytest.approx(D_LOSS[objective], rel=1e-6)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_generator_loss_by_hand(objective):
    loss = generator_loss(objective, torch.tensor(FAKE))
    assert loss.item() == pytest.approx(G_LOSS[objective], rel=1e-6)


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError):
        discriminator_loss("vanilla", torch.zeros(2), torch.zeros(1))
    with pytest.raises(ValueError):
        generator_loss("vanilla", torch.zeros(1))


class LinearCritic(nn.Module):
    """d(pack) = w . pack + b over packs of ``pack`` points: its gradient is w everywhere."""

    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.pack = len(weights) // 2
        self.linear = nn.Linear(len(weights), 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([weights]))
            self.linear.bias.fill_(0.7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.reshape(-1, 2 * self.pack)).squeeze(-1)


@pytest.mark.parametrize(
    ("weights", "norm"), [([3.0, 4.0], 5.0), ([1.0, 2.0, 2.0, 0.0], 3.0), ([0.6, 0.8], 1.0)]
)
def test_gradient_penalty_of_a_linear_critic(weights, norm):
    critic = LinearCritic(weights)
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(8, 2, generator=gen), torch.randn(8, 2, generator=gen) * 5
    penalty = gradient_penalty(critic, real, fake, gen, pack=critic.pack)
    assert penalty.item() == pytest.approx((norm - 1) ** 2, abs=1e-5)
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|: the penalty must be differentiable in D's weights.
    penalty.backward()
    expected = [2 * (norm - 1) * w / norm for w in weights]
    assert critic.linear.weight.grad[0].tolist() == pytest.approx(expected, abs=1e-5)


def test_gradient_penalty_on_images_uses_one_norm_per_image():
    """A critic d(x) = sum(w * x) over (B, C, H, W) images has gradient w for every image."""
    w = torch.full((1, 3, 4, 4), 0.5)  # |w| = 0.5 * sqrt(48)

    def critic(x: torch.Tensor) -> torch.Tensor:
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    penalty = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((0.5 * math.sqrt(48) - 1) ** 2, rel=1e-5)


def test_r1_penalty_is_the_squared_gradient_norm_on_real_data():
    """d(x) = sum(x^2) / 2 has gradient x: R1 = mean ||x||^2, and it flows into D's weights."""
    scale = nn.Parameter(torch.tensor(2.0))

    def critic(x: torch.Tensor) -> torch.Tensor:
        return scale * (x**2).flatten(1).sum(1) / 2

    real = torch.randn(6, 1, 3, 3)
    penalty = r1_penalty(critic, real)
    expected = (4 * real.flatten(1).pow(2).sum(1)).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    penalty.backward()
    assert scale.grad is not None and scale.grad.item() > 0
    assert not real.requires_grad  # the caller's batch is left alone


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    def slope(x: torch.Tensor) -> torch.Tensor:  # d(x) = sum(x) / sqrt(dim): gradient norm 1
        return x.flatten(1).sum(1, keepdim=True) / math.sqrt(x[0].numel())

    x = torch.randn(4, 1, 4, 4)
    penalty = gradient_penalty(slope, x, -x, torch.Generator().manual_seed(0))
    assert float(penalty) == pytest.approx(0.0, abs=1e-10)
