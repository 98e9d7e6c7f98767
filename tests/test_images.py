"""The image family: data and folders, sampling controls, metrics on hand cases, training."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image

from hub_models import imagedata
from hub_models.imagedata import DataError
from hub_models.images import (
    KINDS,
    ImageConfig,
    ImageModel,
    interpolate,
    latents,
    sample,
    slerp,
)
from hub_models.metrics import frechet_distance, kernel_inception_distance, pixel_gaussian, prdc
from hub_models.registry import FAMILIES
from training import cli
from training.base import StepContext

TINY = FAMILIES["images"].make_trainer().presets["tiny"]


def tiny_config(**changes) -> ImageConfig:
    return ImageConfig(**{**TINY, **changes})


# -- data ------------------------------------------------------------------------------------


def test_builtin_datasets_have_the_documented_size_range_and_split():
    digits = imagedata.load_images("mnist", 32, 1)
    assert digits.images.shape == (5000, 1, 32, 32)
    assert digits.labels.bincount().tolist() == [500] * 10
    assert float(digits.images.min()) >= -1 and float(digits.images.max()) <= 1
    emoji = imagedata.load_images("emoji", 16, 3)
    assert emoji.images.shape == (4009, 3, 16, 16)
    assert len(emoji.class_names) == 9 and int(emoji.labels.max()) == 8
    train, held = set(digits.train_index.tolist()), set(digits.held_out_index.tolist())
    assert not train & held and len(train | held) == 5000 and len(held) == 500
    assert torch.equal(imagedata.split(5000)[1], digits.held_out_index)  # fixed, not random


@pytest.mark.parametrize(
    ("stem", "group"),
    [
        ("1f600", "Smileys & Emotion"),
        ("1f44b-1f3fd", "People & Body"),  # skin tone folded into its base emoji
        ("1f436", "Animals & Nature"),
        ("1f1e6", "Symbols"),  # a lone regional-indicator letter
        ("1f9d1-1f3fb-200d-1f91d-200d-1f9d1-1f3fc", "People & Body"),
        ("1f3fb", "Symbols"),  # the skin-tone swatch ("Component")
    ],
)
def test_emoji_groups(stem, group):
    categories = imagedata.emoji_categories()
    assert imagedata.emoji_group(stem, categories) == group


def write_png(path, size=(20, 30), colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_user_folder_with_class_subfolders(tmp_path):
    for i in range(3):
        write_png(tmp_path / "cats" / f"{i}.png")
        write_png(tmp_path / "dogs" / f"{i}.jpg", colour=(0, 0, 250))
    (tmp_path / "notes.txt").write_text("not an image, and ignored")
    data = imagedata.load_images("mine", 16, 3, tmp_path)
    assert data.images.shape == (6, 3, 16, 16)
    assert data.class_names == ("cats", "dogs")
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "holds no images"),
        (lambda p: (p / "a.txt").write_text("hello"), "1 other files"),
        (lambda p: (p / "broken.png").write_bytes(b"\x89PNG not really"), "broken.png"),
        (lambda p: (p / "empty.jpg").write_bytes(b""), "empty"),
        (lambda p: write_png(p / "one.png"), "at least 4"),
    ],
    ids=["empty", "no-images", "corrupt", "zero-bytes", "single"],
)
def test_bad_user_folders_get_a_clear_message(tmp_path, make, message):
    folder = tmp_path / "data"
    folder.mkdir()
    make(folder)
    if message == "broken.png" or message == "empty":
        write_png(folder / "fine.png")
    with pytest.raises(DataError, match=message):
        imagedata.load_images("mine", 16, 3, folder)


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        imagedata.load_images("x", 16, 3, tmp_path / "nope")
    write_png(tmp_path / "a.png")
    with pytest.raises(DataError, match="not a folder"):
        imagedata.load_images("x", 16, 3, tmp_path / "a.png")


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(imagedata, "MAX_PIXELS", 100)
    write_png(tmp_path / "big.png", size=(20, 20))
    with pytest.raises(DataError, match="megapixels"):
        imagedata.decode_image((tmp_path / "big.png").read_bytes(), "big.png")


def test_grid_and_gif_are_real_pictures():
    images = torch.linspace(-1, 1, 5 * 3 * 8 * 8).reshape(5, 3, 8, 8)
    picture = imagedata.grid(images, columns=3, pad=2, scale=2)
    assert picture.size == (2 * (3 * 10 + 2), 2 * (2 * 10 + 2))
    frames = [imagedata.to_pil(a) for a in imagedata.to_uint8(images)]
    gif = Image.open(__import__("io").BytesIO(imagedata.gif_bytes(frames)))
    assert gif.n_frames == 8  # forward, then back without repeating the ends


# -- sampling controls -----------------------------------------------------------------------


def test_truncation_bounds_codes_and_keeps_identity():
    config = tiny_config()
    free = latents(config, 200, seed=5)
    cut = latents(config, 200, seed=5, truncation=0.5)
    assert float(cut.abs().max()) <= 0.5 + 1e-6
    assert float(free.abs().max()) > 2
    # each coordinate maps the same uniform draw: signs agree
    assert torch.equal(torch.sign(free), torch.sign(cut))
    assert torch.equal(latents(config, 3, 1), latents(config, 3, 1))


def test_slerp_ends_on_both_codes():
    a, b = torch.randn(1, 8), torch.randn(1, 8)
    path = slerp(a, b, 5)
    assert torch.allclose(path[0], a[0], atol=1e-5) and torch.allclose(path[-1], b[0], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_samples_images_in_range(kind):
    torch.manual_seed(0)
    model = ImageModel(tiny_config(kind=kind, dataset="emoji")).eval()
    images = sample(model, 5, seed=1)
    assert images.shape == (5, 3, 16, 16)
    assert float(images.abs().max()) <= 1
    assert torch.equal(images, sample(model, 5, seed=1))
    strip = interpolate(model, 1, 2, 4)
    assert strip.shape == (4, 3, 16, 16)
    assert torch.allclose(strip[0], images[0], atol=1e-5)  # starts at seed 1's first image


def test_conditional_class_input_changes_the_output():
    torch.manual_seed(0)
    model = ImageModel(tiny_config(kind="cgan", dataset="mnist")).eval()
    assert model.config.num_classes == 10 and model.config.class_names[3] == "3"
    zeros = sample(model, 4, 0, labels=torch.zeros(4, dtype=torch.long))
    sevens = sample(model, 4, 0, labels=torch.full((4,), 7))
    assert not torch.allclose(zeros, sevens)
    with pytest.raises(ValueError, match="unconditional"):
        tiny_config(kind="dcgan", num_classes=3)


# -- metrics on hand-checkable cases ---------------------------------------------------------


def test_frechet_distance_of_gaussians_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0, 0])
    # |mu|^2 + tr(I + 4I - 2*2I) = 1 + 3 * (1 + 4 - 4) = 4
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(800, 4, generator=g), torch.randn(800, 4, generator=g)
    assert abs(kernel_inception_distance(a, b)) < 0.02
    assert kernel_inception_distance(a, b + 1) > 0.5


def test_prdc_hand_case():
    real = torch.tensor([[0.0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5], [2, 2]])
    far = torch.full((6, 2), 50.0) + torch.arange(6.0)[:, None]
    same = prdc(real, real.clone(), k=2)
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1
    apart = prdc(real, far, k=2)
    assert apart == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_pixel_gaussian_baseline_matches_mean_and_shape():
    data = imagedata.load_images("mnist", 16, 1).train[:500]
    fake = pixel_gaussian(data, 2000, seed=0, rank=16)
    assert fake.shape == (2000, 1, 16, 16)
    # clamping to the pixel range lifts the all-black background a little, nothing more
    assert (fake.mean(0) - data.mean(0)).abs().mean() < 0.1
    assert (
        torch.corrcoef(torch.stack([fake.mean(0).flatten(), data.mean(0).flatten()]))[0, 1] > 0.95
    )


# -- training --------------------------------------------------------------------------------


def step_once(kind: str, dataset: str = "mnist"):
    trainer = FAMILIES["images"].make_trainer()
    config = tiny_config(kind=kind, dataset=dataset)
    data = trainer.prepare_data(config, None)
    torch.manual_seed(0)
    model = trainer.build(config, data).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = trainer.optimizers(model)
    ctx = StepContext(Accelerator(cpu=True), torch.Generator().manual_seed(0), 0, 1)
    losses = trainer.train_step(model, optimizers, data, ctx)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    return losses, changed


@pytest.mark.parametrize("kind", KINDS)
def test_one_training_step_per_kind_updates_the_networks(kind):
    losses, changed = step_once(kind)
    assert losses and all(math.isfinite(v) for v in losses.values())
    assert any(k.startswith("generator.") for k in changed)
    other = "encoder." if kind == "vae" else "discriminator."
    assert any(k.startswith(other) for k in changed)


def test_train_on_a_user_folder_then_evaluate_and_sample(tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(
            tmp_path / "data" / f"{i}.png"
        )
    out = tmp_path / "run"
    args = ["train", "images", "--preset", "tiny", "--data", str(tmp_path / "data")]
    assert cli.main([*args, "--out", str(out), "--dataset=mine"]) == 0
    for name in ("model.safetensors", "config.json", "README.md", "sample.png", "eval.json"):
        assert (out / name).is_file(), name
    assert "not comparable to Inception FID" in (out / "README.md").read_text()
    assert cli.main(["evaluate", "images", "--from", str(out), "--json"]) == 0
    assert '"fid"' in capsys.readouterr().out
    assert (
        cli.main(["sample", "images", "--from", str(out), "--n", "3", "--out", str(tmp_path / "s")])
        == 0
    )
    assert len(list((tmp_path / "s").glob("*.png"))) == 3


def test_training_on_an_empty_folder_fails_with_a_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = cli.main(
        [
            "train",
            "images",
            "--preset",
            "tiny",
            "--data",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    assert "holds no images" in capsys.readouterr().err


def test_cgan_on_a_user_folder_needs_its_class_count():
    with pytest.raises(ValueError, match="num_classes"):
        tiny_config(kind="cgan", dataset="mine")
    config = tiny_config(kind="cgan", dataset="mine", num_classes=2)
    assert dataclasses.asdict(config)["num_classes"] == 2


def test_feature_nets_load_by_repo_id_and_validate_for_publishing(capsys):
    from hub_models import load
    from hub_models.features import FeatureNet, feature_model

    net, where = load("gan-gallery/images-mnist-features")
    assert isinstance(net, FeatureNet) and where.source == "bundled"
    folder = feature_model("emoji").snapshot
    assert cli.main(["publish", str(folder), "--repo-id", "me/feat", "--dry-run"]) == 0
    assert "model.safetensors" in capsys.readouterr().out


def test_the_64x64_preset_builds_and_samples_at_64():
    config = ImageConfig(**FAMILIES["images"].make_trainer().presets["gpu64"], dataset="emoji")
    images = sample(ImageModel(config).eval(), 2, seed=0)
    assert images.shape == (2, 3, 64, 64)
