"""The small-data recipe of the multi-vendor emoji models: DiffAugment, the projection
discriminator with minibatch std, the EMA sampler, the recipe's config switches, the
multi-vendor datasets, the real-emoji classifiers and the EfficientNet scorer."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from hub_models import diffaugment, imagedata
from hub_models.blocks import MinibatchStd, ProjectionDiscriminator
from hub_models.images import RECIPE, ImageConfig, ImageModel, sample
from hub_models.registry import FAMILIES
from training.base import update_average

TINY = FAMILIES["images"].make_trainer().presets["tiny"]


def tiny(**changes) -> ImageConfig:
    return ImageConfig(**{**TINY, **changes})


# -- DiffAugment -----------------------------------------------------------------------------


def test_diffaugment_keeps_shape_passes_gradients_and_is_seeded():
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(True)
    policy = diffaugment.check_policy("color,translation,cutout")
    a = diffaugment.diff_augment(x, policy, torch.Generator().manual_seed(1))
    b = diffaugment.diff_augment(x, policy, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert diffaugment.check_policy("") == ()
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        diffaugment.check_policy("color,flip")


def test_translation_moves_content_and_cutout_blanks_a_square():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    moved = diffaugment.translation(x, torch.Generator().manual_seed(0))
    where = moved[:, 0].flatten(1).argmax(1)
    rows, cols = where // 16, where % 16
    assert ((rows - 8).abs() <= 2).all() and ((cols - 8).abs() <= 2).all()  # 1/8 of 16
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # it does move
    ones = torch.ones(64, 1, 16, 16)
    cut = diffaugment.cutout(ones, torch.Generator().manual_seed(0))
    blanked = (cut == 0).flatten(1).sum(1)
    assert (blanked <= 64).all() and (blanked > 0).all()  # at most an 8x8 square, never none


# -- the discriminator's pieces --------------------------------------------------------------


def test_graders_see_half_of_each_batch_softened():
    flat = torch.full((2, 3, 8, 8), 0.25)
    assert torch.allclose(imagedata.halve_resolution(flat), flat)  # nothing to soften
    edges = torch.zeros(64, 1, 8, 8)
    edges[..., ::2] = 1.0  # one-pixel stripes: halving averages them to grey
    softened = imagedata.blur_half(edges, torch.Generator().manual_seed(0))
    assert softened.shape == edges.shape
    grey = (softened - 0.5).abs().amax((1, 2, 3)) < 0.2
    assert 20 < int(grey.sum()) < 44  # about half of the batch
    again = imagedata.blur_half(edges, torch.Generator().manual_seed(0))
    assert torch.equal(softened, again)


def test_minibatch_std_adds_one_channel_that_sees_the_spread_of_the_batch():
    layer = MinibatchStd(group=4)
    same = torch.ones(8, 5, 4, 4)
    varied = torch.randn(8, 5, 4, 4)
    assert layer(same).shape == (8, 6, 4, 4)
    assert float(layer(same)[:, -1].abs().max()) < 1e-3
    assert float(layer(varied)[:, -1].min()) > 0.1
    assert layer(torch.randn(6, 5, 4, 4)).shape == (6, 6, 4, 4)  # group shrinks to divide 6


def test_projection_discriminator_needs_labels_and_uses_them():
    torch.manual_seed(0)
    d = ProjectionDiscriminator(width=8, resolution=16, channels=3, num_classes=4)
    x = torch.randn(4, 3, 16, 16)
    with pytest.raises(ValueError, match="give labels"):
        d(x)
    assert not torch.allclose(d(x, torch.zeros(4, dtype=torch.long)), d(x, torch.full((4,), 3)))
    names = [name for name, _ in d.named_parameters()]
    assert any("parametrizations.weight.original" in name for name in names)  # spectral norm
    plain = ProjectionDiscriminator(width=8, resolution=16, channels=3, spectral_norm=False)
    assert not any("parametrizations" in name for name, _ in plain.named_parameters())


def test_the_projected_discriminator_judges_in_frozen_imagenet_features():
    from hub_models.effnet import load_effnet
    from hub_models.projected import SCALES, ProjectedDiscriminator, feature_maps

    torch.manual_seed(0)
    d = ProjectedDiscriminator(width=8, resolution=32, num_classes=4)
    x = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_(True)
    maps = feature_maps(x)
    assert [m.shape[1:] for m in maps] == [(16, 32, 32), (24, 16, 16), (40, 8, 8), (80, 4, 4)]
    assert [m.shape[1] for m in maps] == [channels for _, channels, _ in SCALES]
    with pytest.raises(ValueError, match="give labels"):
        d(x)
    logit = d(x, torch.zeros(4, dtype=torch.long))
    assert logit.shape == (4, 1)
    assert not torch.allclose(logit, d(x, torch.full((4,), 3)))
    logit.sum().backward()
    assert float(x.grad.abs().sum()) > 0  # G learns through the frozen network
    assert all(p.grad is None for p in load_effnet().parameters())  # which stays frozen
    # The network is shared, never part of a model's weights: only the heads are saved.
    assert all(key.startswith(("heads.", "logits.", "embeds.")) for key in d.state_dict())
    small = ProjectedDiscriminator(width=8, resolution=16)  # the tests' 16x16: 2x2 at the end
    assert small(torch.zeros(2, 3, 16, 16)).shape == (2, 1)


def test_the_feature_discriminator_joins_at_its_step_and_trains_its_heads_not_the_network():
    from accelerate import Accelerator

    from hub_models.effnet import load_effnet
    from training.base import StepContext

    with pytest.raises(ValueError, match="w_projected needs kind=diffaugment"):
        tiny(kind="dcgan", dataset="emoji", w_projected=0.3)
    with pytest.raises(ValueError, match="projected_start must be at least 0"):
        tiny(kind="diffaugment", w_projected=0.3, projected_start=-1)
    assert not hasattr(ImageModel(tiny(kind="diffaugment")), "feature_discriminator")
    trainer = FAMILIES["images"].make_trainer()
    config = tiny(kind="diffaugment", dataset="emoji-faces", w_projected=0.3, projected_start=1)
    data = trainer.prepare_data(config, None)
    torch.manual_seed(0)
    model = trainer.build(config, data).train()
    optimizers = trainer.optimizers(model)
    network = {k: v.clone() for k, v in load_effnet().state_dict().items()}

    def step(number: int) -> tuple[dict, set]:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        ctx = StepContext(Accelerator(cpu=True), torch.Generator().manual_seed(0), number, 2)
        losses = trainer.train_step(model, optimizers, data, ctx)
        changed = {
            k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])
        }
        return losses, changed

    losses, changed = step(0)  # before projected_start: the pixel discriminator alone
    assert "projected_d" not in losses and "feature_discriminator" not in changed
    losses, changed = step(1)
    assert {"loss_d", "projected_d", "loss_g", "projected_g"} <= set(losses)
    assert {"generator", "discriminator", "feature_discriminator", "generator_ema"} <= changed
    after = load_effnet().state_dict()
    assert all(torch.equal(v, after[k]) for k, v in network.items())  # batch-norm stats too


# -- the recipe's switches -------------------------------------------------------------------


def test_the_recipe_is_on_for_diffaugment_and_off_for_the_first_kinds():
    recipe = tiny(kind="diffaugment", dataset="emoji-faces")
    assert {name: getattr(recipe, name) for name in RECIPE} == RECIPE
    assert recipe.num_classes == 4 and recipe.class_names[1] == "OpenMoji"
    first = tiny(kind="dcgan", dataset="emoji")
    assert (first.augment, first.objective, first.spectral_norm, first.ema_decay) == (
        "",
        "nonsaturating",
        False,
        0.0,
    )
    assert tiny(kind="wgan-gp").objective == "wgan-gp"
    assert tiny(kind="diffaugment", augment="").augment == ""  # one switch off alone
    with pytest.raises(ValueError, match="objective"):
        tiny(kind="diffaugment", objective="squared")
    with pytest.raises(ValueError, match="ema_decay"):
        tiny(kind="diffaugment", ema_decay=1.0)
    with pytest.raises(ValueError, match="unknown augmentation"):
        tiny(kind="diffaugment", augment="rotate")


def test_samples_come_from_the_average_and_the_average_follows_the_generator():
    torch.manual_seed(0)
    model = ImageModel(tiny(kind="diffaugment", dataset="emoji-faces")).eval()
    assert model.sampler is model.generator_ema
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.generator_ema.parameters()]
    update_average(model.generator_ema, model.generator, 0.999, step=10_000)
    moved = [
        float((p - q).detach().abs().max())
        for p, q in zip(model.generator_ema.parameters(), before, strict=True)
    ]
    assert all(math.isclose(m, 0.001, rel_tol=1e-2) for m in moved)  # 1 - decay of the gap
    update_average(model.generator_ema, model.generator, 0.999, step=0)  # early: forgets fast
    gap = [
        float((p - q).detach().abs().max())
        for p, q in zip(model.generator_ema.parameters(), model.generator.parameters(), strict=True)
    ]
    assert max(gap) < 0.95
    no_average = ImageModel(tiny(kind="diffaugment", ema_decay=0.0))
    assert no_average.sampler is no_average.generator and not hasattr(no_average, "generator_ema")


def test_a_diffaugment_step_updates_g_d_and_the_average():
    from accelerate import Accelerator

    from training.base import StepContext

    trainer = FAMILIES["images"].make_trainer()
    config = tiny(kind="diffaugment", dataset="emoji-faces")
    data = trainer.prepare_data(config, None)
    torch.manual_seed(0)
    model = trainer.build(config, data).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = StepContext(Accelerator(cpu=True), torch.Generator().manual_seed(0), 0, 1)
    losses = trainer.train_step(model, trainer.optimizers(model), data, ctx)
    assert {"loss_d", "loss_g", "r1"} <= set(losses)  # step 0 takes the lazy R1
    changed = {
        k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])
    }
    assert {"generator", "discriminator", "generator_ema"} <= changed


def test_the_class_head_reads_real_classes_and_pushes_g_towards_the_asked_class():
    from accelerate import Accelerator

    from training.base import StepContext

    with pytest.raises(ValueError, match="w_class needs a conditional"):
        tiny(kind="dcgan", dataset="emoji", w_class=1.0)
    with pytest.raises(ValueError, match="w_class must be at least 0"):
        tiny(kind="diffaugment", dataset="emoji-faces", w_class=-1.0)
    assert not hasattr(
        ImageModel(tiny(kind="diffaugment", dataset="emoji-faces")).discriminator, "classify"
    )

    trainer = FAMILIES["images"].make_trainer()
    config = tiny(kind="diffaugment", dataset="emoji-faces", w_class=1.0)
    data = trainer.prepare_data(config, None)
    torch.manual_seed(0)
    model = trainer.build(config, data).train()
    d = model.discriminator.eval()  # no power iteration: two passes see the same weights
    logit, classes = d.judge(data.train[:4], data.labels[:4])
    assert classes.shape == (4, 4) and torch.equal(logit, d(data.train[:4], data.labels[:4]))
    d.train()
    head = d.classify.parametrizations.weight.original.clone()
    ctx = StepContext(Accelerator(cpu=True), torch.Generator().manual_seed(0), 1, 1)
    losses = trainer.train_step(model, trainer.optimizers(model), data, ctx)
    assert {"class_d", "class_g"} <= set(losses)
    assert math.isclose(losses["class_d"], math.log(4), rel_tol=0.3)  # 4 vendors, untrained
    assert not torch.equal(head, d.classify.parametrizations.weight.original)


# -- the multi-vendor data and the page's style row ------------------------------------------


def test_the_faces_set_is_labelled_by_vendor_and_names_each_emoji():
    faces = imagedata.load_images("emoji-faces", 16, 3)
    assert faces.class_names == ("Twemoji", "OpenMoji", "Noto Color Emoji", "EmojiOne 2")
    assert faces.labels.bincount().min() >= 90  # every vendor draws about a hundred faces
    assert len(faces.item_names) == len(faces.images)
    assert "grinning face" in faces.item_names
    assert imagedata.builtin_classes("emoji-all")[5] == "People & Body / OpenMoji"
    assert imagedata.builtin_classes("my-folder") is None


def test_style_row_draws_the_chosen_emoji_in_every_vendor():
    from gallery.images import style_row

    vendors = imagedata.builtin_classes("emoji-faces")
    assert style_row(vendors, 2) == [0, 1, 2, 3]
    every = imagedata.builtin_classes("emoji-all")
    row = style_row(every, every.index("Animals & Nature / Noto Color Emoji"))
    assert every[row[0]] == "Animals & Nature / Twemoji" and len(row) == 4
    assert style_row(imagedata.EMOJI_GROUPS, 0) == []


# -- the real-emoji classifiers and the EfficientNet scorer ----------------------------------


def test_a_linear_probe_learns_separable_features_and_round_trips(tmp_path):
    from hub_models.probes import LinearProbe, ProbeConfig, fit_probe

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 32, generator=g) * 4
    labels = torch.arange(300) % 3
    features = centres[labels] + torch.randn(300, 32, generator=g) + 50  # offset: not centred
    config = ProbeConfig(class_names=("a", "b", "c"), feature_dim=32, steps=100)
    probe = fit_probe(config, features, labels)
    accuracy = (probe.logits_of_features(features).argmax(1) == labels).float().mean()
    assert float(accuracy) > 0.97
    probe.save_pretrained(tmp_path / "probe")
    again = LinearProbe.load_folder(tmp_path / "probe")
    assert torch.allclose(again.logits_of_features(features), probe.logits_of_features(features))
    with pytest.raises(ValueError, match="task"):
        ProbeConfig(task="colour", class_names=("a", "b"))


def test_real_features_are_cached_on_disk_by_their_pixels(tmp_path, monkeypatch):
    from hub_models import effnet, emojiscore

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def fake_features(images):
        calls.append(len(images))
        return images.flatten(1)[:, :4].clone()

    monkeypatch.setattr(effnet, "features", fake_features)
    images = torch.rand(5, 3, 8, 8)
    first = emojiscore.cached_features("set", images)
    second = emojiscore.cached_features("set", images)
    assert torch.equal(first, second) and calls == [5]
    emojiscore.cached_features("set", images + 0.5)  # other pixels: computed again
    assert calls == [5, 5]


def test_sampling_a_conditional_recipe_model_in_every_style():
    torch.manual_seed(0)
    model = ImageModel(tiny(kind="diffaugment", dataset="emoji-faces")).eval()
    images = sample(model, 4, seed=0, labels=torch.arange(4))
    assert images.shape == (4, 3, 16, 16) and float(images.abs().max()) <= 1


def test_the_whole_set_is_searched_within_the_class_a_sample_was_drawn_for(tmp_path, monkeypatch):
    from gallery import images as gi
    from hub_models import effnet, emojiscore

    monkeypatch.setattr(emojiscore, "cache_root", lambda: tmp_path)  # the renders stay cached
    monkeypatch.setattr(effnet, "features", lambda images: images.flatten(1).clone())
    data = imagedata.load_images("emoji-all", 32, 3)
    label = data.class_names.index("Animals & Nature / OpenMoji")
    ref = gi.reference.__wrapped__("emoji-all", 32, 3, None, label)
    assert (data.train_labels[ref.train_rows] == label).all()
    assert len(ref.train_rows) == int((data.train_labels == label).sum()) > 100
    query = ref.train[5:6]
    found = gi.neighbours(ref, query, k=1)
    assert int(found.indices[0, 0]) == 5 and float(found.pixel_rms[0, 0]) == 0
    assert gi.neighbour_caption(ref, 5).endswith("(OpenMoji)")
    assert gi.novelty_verdict(ref, 0.0).startswith("**Possibly a copy")


def test_frechet_distance_survives_a_degenerate_set():
    from hub_models.metrics import frechet_distance

    same = torch.ones(48, 1280)  # one picture 48 times: a rank-0 covariance
    spread = torch.randn(400, 1280, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(frechet_distance(same, spread))


def test_a_tiny_faces_run_is_scored_in_efficientnet_features_on_its_card(tmp_path):
    from training import cli

    out = tmp_path / "faces"
    args = ["train", "images", "--preset", "tiny", "--out", str(out)]
    assert cli.main([*args, "--kind=diffaugment", "--dataset=emoji-faces"]) == 0
    card = (out / "README.md").read_text()
    for shown in (
        "FD-EffNet",
        "called a face, on 512 samples",
        "spectral_norm",
        "OpenMoji",
        "CC BY-SA",
    ):
        assert shown in card, shown


def test_a_fine_tune_starts_from_the_donors_weights_and_refuses_another_architecture(tmp_path):
    trainer = FAMILIES["images"].make_trainer()
    torch.manual_seed(1)
    donor = tmp_path / "donor"
    ImageModel(tiny(kind="diffaugment", dataset="emoji-faces")).save_pretrained(donor)
    config = tiny(kind="diffaugment", dataset="emoji-faces", init_from=str(donor), w_projected=0.3)
    data = trainer.prepare_data(config, None)
    model = trainer.build(config, data)
    start = ImageModel.load_folder(donor).state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("feature_discriminator."):  # new: it starts fresh
            assert torch.equal(value.double(), start[key].double()), key
    assert trainer.donors(config) == [donor]
    with pytest.raises(ValueError, match="init_from is another architecture"):
        trainer.build(replace(config, g_width=TINY["g_width"] * 2), data)
    with pytest.raises(ValueError, match="neither a folder nor one of"):
        trainer.build(replace(config, init_from="no-such-model"), data)
