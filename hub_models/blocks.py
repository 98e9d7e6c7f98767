"""Image network blocks shared by the image families: the DCGAN generator and discriminator.

Radford et al., DCGAN (arXiv:1511.06434). The networks take their shapes as keyword
arguments, not a family's config, so that every family builds them from its own config.
The module names (``net``, ``trunk``, ``head``) are part of every published checkpoint's keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_image_shape(resolution: int, channels: int) -> None:
    """The DCGAN-style networks double or halve the size at each stage from 4x4."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError("resolution must be a power of two, at least 8")
    if channels not in (1, 3):
        raise ValueError("channels must be 1 (grey) or 3 (RGB)")


def levels(resolution: int) -> int:
    """Number of 2x up- (or down-) sampling stages between 4x4 and the image."""
    return int(math.log2(resolution)) - 2


class DCGANGenerator(nn.Module):
    """Project the code to 4x4, then strided transposed convs with batch norm and ReLU,
    halving the channels at each doubling, and tanh at the output. With ``num_classes`` the
    class enters as a one-hot vector beside the code (Mirza & Osindero)."""

    def __init__(
        self, *, z_dim: int, width: int, resolution: int, channels: int, num_classes: int = 0
    ) -> None:
        super().__init__()
        stages = levels(resolution)
        width = width * 2 ** (stages - 1)
        self.num_classes = num_classes
        layers: list[nn.Module] = [
            # (z_dim + classes) x 1 x 1 -> width x 4 x 4
            nn.ConvTranspose2d(z_dim + num_classes, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):  # width x s x s -> width/2 x 2s x 2s
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        # -> channels x resolution x resolution, in [-1, 1]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this generator is class-conditional: give labels")
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], 1)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """Strided convs with LeakyReLU(0.2), batch norm after the first layer unless ``norm`` is
    off, and ``outputs`` values per image from the last 4x4 map: one logit for a
    discriminator, a code for an encoder. With ``num_classes`` the class enters as one-hot
    planes beside the image, so D judges image and class jointly."""

    def __init__(
        self,
        *,
        width: int,
        resolution: int,
        channels: int,
        num_classes: int = 0,
        outputs: int = 1,
        norm: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = [
            # (channels + classes) x r x r -> width x r/2 x r/2
            nn.Conv2d(channels + num_classes, width, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
        ]
        for _ in range(levels(resolution) - 1):  # width x s x s -> 2 width x s/2 x s/2
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=not norm)]
            if norm:
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            width *= 2
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, outputs, 4, 1, 0)  # width x 4 x 4 -> outputs x 1 x 1

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: give labels")
            planes = F.one_hot(labels, self.num_classes).to(images.dtype)[:, :, None, None]
            images = torch.cat([images, planes.expand(-1, -1, *images.shape[2:])], 1)
        return self.head(self.trunk(images)).flatten(1)


def init_dcgan(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) weights, batch-norm gains N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class MinibatchStd(nn.Module):
    """Karras et al., ProGAN (arXiv:1710.10196): one more channel holding the standard
    deviation of the features across groups of ``group`` samples, so that D sees how varied a
    batch is and can punish a generator that draws the same picture again and again."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = math.gcd(self.group, n)  # a batch that the group size does not divide
        spread = x.reshape(group, -1, c, h, w)  # sample i is in group member i // (n / group)
        std = (spread.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
        return torch.cat([x, std.reshape(-1, 1, 1, 1).repeat(group, 1, h, w)], 1)


class ProjectionDiscriminator(nn.Module):
    """The small-data discriminator: strided convs with LeakyReLU(0.2) and no batch norm,
    spectral norm on every weight (Miyato et al., arXiv:1802.05957) so that hinge training
    stays stable, minibatch standard deviation before the head, and the class entering by
    projection (Miyato & Koyama, arXiv:1802.05637): the logit is ``linear(h) + <embed(y), h>``
    for the image's features ``h``, which judges image and class jointly without feeding D
    one-hot planes. With ``classifier`` it also reads the class from ``h`` (AC-GAN, Odena et
    al., arXiv:1610.09585; see ``judge``), a second way for the class to reach G."""

    def __init__(
        self,
        *,
        width: int,
        resolution: int,
        channels: int,
        num_classes: int = 0,
        mbstd: bool = True,
        spectral_norm: bool = True,
        classifier: bool = False,
    ) -> None:
        super().__init__()

        def sn(module: nn.Module) -> nn.Module:
            return nn.utils.parametrizations.spectral_norm(module) if spectral_norm else module

        self.num_classes = num_classes
        layers: list[nn.Module] = [
            # channels x r x r -> width x r/2 x r/2
            sn(nn.Conv2d(channels, width, 4, 2, 1)),
            nn.LeakyReLU(0.2, True),
        ]
        for _ in range(levels(resolution) - 1):  # width x s x s -> 2 width x s/2 x s/2
            layers += [sn(nn.Conv2d(width, width * 2, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            width *= 2
        if mbstd:
            layers.append(MinibatchStd())
        layers += [sn(nn.Conv2d(width + int(mbstd), width, 3, 1, 1)), nn.LeakyReLU(0.2, True)]
        self.trunk = nn.Sequential(*layers)
        self.head = sn(nn.Linear(width * 16, 1))
        if num_classes:
            self.embed = sn(nn.Embedding(num_classes, width * 16))
        if classifier:
            if not num_classes:
                raise ValueError("a class-reading head needs num_classes")
            self.classify = sn(nn.Linear(width * 16, num_classes))

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.judge(images, labels)[0]

    def judge(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The real/fake logit and, with the class-reading head, the class logits, from one
        pass through the trunk."""
        h = self.trunk(images).flatten(1)
        logit = self.head(h)
        if self.num_classes:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: give labels")
            logit = logit + (self.embed(labels) * h).sum(1, keepdim=True)
        classify = getattr(self, "classify", None)
        return logit, classify(h) if classify is not None else None
