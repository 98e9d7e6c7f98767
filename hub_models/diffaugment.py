"""Differentiable augmentation (Zhao et al., DiffAugment, arXiv:2006.10738).

With a few hundred images, D memorises the training set within a few thousand steps and G's
samples fall apart. Augmenting only the real images would teach G to draw augmented images;
DiffAugment applies the same random, differentiable transforms to real and generated images
every time D sees them (in D's step and in G's), so D cannot memorise and G still receives
gradients through the transform. The three transforms are the paper's choice for small data:

- ``color``: random brightness, saturation and contrast, per image;
- ``translation``: shift by up to 1/8 of the size, zero (grey) padding;
- ``cutout``: one grey square of half the size at a random place.

Everything is batched tensor work; the random draws come from the caller's generator, so a
resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def check_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> its transforms; "" is no augmentation."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(POLICIES)}")
    return names


def _uniform(x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    # Drawn on the CPU generator, then moved: a CPU generator cannot fill a CUDA tensor.
    return torch.rand(len(x), *shape, generator=generator).to(x.device, x.dtype)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    x = x + (_uniform(x, generator, 1, 1, 1) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, generator, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator, 1, 1, 1) + 0.5) + mean  # contrast


def translation(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125
) -> torch.Tensor:
    n, _, h, w = x.shape
    shift_y, shift_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (_uniform(x, generator, 1, 1) * (2 * shift_y + 1)).long().clamp(max=2 * shift_y)
    dx = (_uniform(x, generator, 1, 1) * (2 * shift_x + 1)).long().clamp(max=2 * shift_x)
    batch, rows, cols = torch.meshgrid(
        torch.arange(n, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    # Index into a copy padded by the largest shift on every side: one gather per batch.
    rows = rows + dy.view(n, 1, 1)
    cols = cols + dx.view(n, 1, 1)
    padded = F.pad(x, [shift_x, shift_x, shift_y, shift_y])
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5
) -> torch.Tensor:
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # The square's centre is anywhere in the image; the square may hang over the edge.
    top = (_uniform(x, generator, 1, 1) * h).long().view(n, 1, 1) - size_y // 2
    left = (_uniform(x, generator, 1, 1) * w).long().view(n, 1, 1) - size_x // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(
    x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply the policy's transforms in order; gradients flow through every one."""
    for name in policy:
        x = TRANSFORMS[name](x, generator)
    return x
