"""A second discriminator that judges images in the feature maps of a frozen ImageNet network,
EfficientNet-Lite0: the projected discriminator of Sauer et al. (Projected GANs Converge
Faster, NeurIPS 2021, arXiv:2111.01007; Lite0 is the network that paper found best), used
beside the pixel discriminator as Kumari et al. add off-the-shelf networks to a GAN's own
(Ensembling Off-the-shelf Models for GAN Training, CVPR 2022, arXiv:2112.09130).

A pixel discriminator trained on 437 emoji faces has to learn from them what an eye or a cat's
ear is. ImageNet features already tell such parts apart, so these heads only learn which
features real emoji have, and push the generator towards drawings an ImageNet network reads
as the real ones.

Each head reads one scale of EfficientNet-Lite0's early blocks, brings it to 4x4 with
spectrally normalised strided convolutions and gives a logit; the class enters by projection
(Miyato & Koyama), as in the pixel discriminator. The logits of the scales are summed. The
network is frozen and shared, never saved with a model: its weights come from
hub_models/effnet.py.

From the first step it made the generator collapse to one picture: every sample the same
within 300-400 steps, alone (D's learning rate 2e-4, 5e-5 or 2e-5) and beside the pixel
discriminator. The generator still draws grey noise, the heads tell it from emoji at once,
and their gradient pulls every sample the same way. So it joins a run that the pixel
discriminator has started (``projected_start``).

Caveat for the metrics: FD-EffNet and the face and class checks read the same network's last,
pooled layer. A generator trained against these heads is graded in a space whose early layers
it was trained to match; the cards say so, and the sample grids are the check.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from hub_models import effnet
from hub_models.blocks import MinibatchStd

UPSCALE = 2  # 32x32 images are enlarged to 64x64 before the network: its stem halves them
# Outputs of EfficientNet-Lite0's blocks that the heads read: (block index, channels, stride).
# Strides 2, 4, 8 and 16 of the enlarged image (32, 16, 8 and 4 pixels for a 32x32 image):
# four scales, as in the paper.
SCALES = ((0, 16, 2), (2, 24, 4), (4, 40, 8), (7, 80, 16))


@functools.cache
def _effnet_on(device: str) -> effnet.EfficientNetLite0:
    net = effnet.load_effnet()
    if device == "cpu":
        return net
    import copy

    return copy.deepcopy(net).to(device)


def feature_maps(images: torch.Tensor) -> list[torch.Tensor]:
    """(N, 3, r, r) images in [-1, 1] -> the maps of SCALES (gradients reach the images)."""
    images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    net = _effnet_on(str(images.device))
    maps = net.early(effnet.enlarged(images, UPSCALE), SCALES[-1][0] + 1)[1:]  # [0]: the stem
    return [maps[index] for index, _, _ in SCALES]


class ProjectedDiscriminator(nn.Module):
    """Heads on the frozen network's feature maps, one logit per image (their sum)."""

    def __init__(
        self,
        *,
        width: int,
        resolution: int,
        num_classes: int = 0,
        mbstd: bool = True,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()

        def sn(module: nn.Module) -> nn.Module:
            return nn.utils.parametrizations.spectral_norm(module) if spectral_norm else module

        self.num_classes = num_classes
        heads, sides, final = [], [], resolution * UPSCALE
        for _, channels, stride in SCALES:
            size = final // stride  # the map's side for a resolution x resolution image
            layers: list[nn.Module] = []
            cin = channels
            while size > 4:  # halve down to 4x4
                layers += [sn(nn.Conv2d(cin, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
                cin, size = width, size // 2
            if mbstd:
                layers.append(MinibatchStd())
            layers += [sn(nn.Conv2d(cin + int(mbstd), width, 3, 1, 1)), nn.LeakyReLU(0.2, True)]
            heads.append(nn.Sequential(*layers))
            sides.append(size)  # 4, or less for images under 32x32 (the tests' 16x16)
        self.heads = nn.ModuleList(heads)
        self.logits = nn.ModuleList(sn(nn.Linear(width * s * s, 1)) for s in sides)
        if num_classes:
            self.embeds = nn.ModuleList(sn(nn.Embedding(num_classes, width * s * s)) for s in sides)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 3, r, r) images in [-1, 1] -> (N, 1) real/fake logits."""
        if self.num_classes and labels is None:
            raise ValueError("this discriminator is class-conditional: give labels")
        total = 0
        for i, (head, features) in enumerate(zip(self.heads, feature_maps(images), strict=True)):
            h = head(features).flatten(1)
            logit = self.logits[i](h)
            if self.num_classes:
                logit = logit + (self.embeds[i](labels) * h).sum(1, keepdim=True)
            total = total + logit
        return total
