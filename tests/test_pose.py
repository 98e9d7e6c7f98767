"""Pose transfer (PG2): inputs, inference, losses and metrics on hand cases, the limb-warp
baseline, one training step, a tiny run through the shared loop, and the keypoint regressor.

The family is not in the registry until its models are trained, so these tests use
``hub_models.pose.FAMILY`` and ``training.pose.Trainer`` directly (the trainer's ``family``
property returns that FAMILY, which is what the registry will hold).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image
from skimage.metrics import structural_similarity

from hub_models import figuredata as fd
from hub_models import pose
from hub_models.family import import_object
from hub_models.imagedata import DataError, to_uint8
from hub_models.pose import (
    FAMILY,
    METRIC_NAMES,
    REGRESSOR,
    KeypointConfig,
    KeypointRegressor,
    PoseConfig,
    PosePG2,
)
from training.base import StepContext
from training.loop import RunOptions, train
from training.pose import (
    MIRRORED,
    REGRESSOR_PRESETS,
    Trainer,
    _single_renders,
    evaluate,
    find_keypoints,
    mirror,
    regressor_card,
    train_regressor,
    training_batch,
)

TINY = Trainer.presets["tiny"]
TINY_REGRESSOR = REGRESSOR_PRESETS["tiny"]


def tiny_model(seed: int = 0, **overrides) -> PosePG2:
    torch.manual_seed(seed)
    return PosePG2(PoseConfig(**{**TINY, **overrides})).eval()


def tiny_trainer() -> Trainer:
    trainer = Trainer()
    torch.manual_seed(0)
    trainer.regressor = KeypointRegressor(KeypointConfig(**TINY_REGRESSOR)).eval()
    return trainer


# -- inputs ------------------------------------------------------------------------------------


def test_heatmaps_are_figuredatas_for_a_whole_batch():
    batch = fd.render_pairs(3, "test", seed=2)
    maps = pose.heatmaps(batch.target_keypoints, batch.target_visible)
    assert maps.shape == (3, 18, 64, 64) and maps.dtype == torch.float32
    pairs = zip(batch.target_keypoints, batch.target_visible, strict=True)
    expected = np.stack([fd.pose_heatmaps(k, v) for k, v in pairs])
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-6)
    hidden = ~torch.from_numpy(batch.target_visible)
    assert hidden.any() and maps[hidden].abs().max() == 0
    with pytest.raises(DataError, match="18, 2"):
        pose.heatmaps(torch.zeros(2, 17, 2), torch.ones(2, 17, dtype=torch.bool))


def test_the_pool_holds_render_pairs_pictures_with_their_masks():
    pool = pose.render_pool(3, "test", 5)
    batch = fd.render_pairs(3, "test", seed=5)
    np.testing.assert_array_equal(pool.source.permute(0, 2, 3, 1).numpy(), batch.source)
    np.testing.assert_array_equal(pool.target.permute(0, 2, 3, 1).numpy(), batch.target)
    np.testing.assert_array_equal(pool.target_keypoints.numpy(), batch.target_keypoints)
    np.testing.assert_array_equal(pool.identity_ids.numpy(), batch.identity_ids)
    # The mask covers the figure: where it is empty, the picture is the bare background.
    bare = fd.background(fd.identity(int(batch.identity_ids[0])))
    empty = pool.target_mask[0, 0].numpy() == 0
    np.testing.assert_array_equal(batch.target[0][empty], bare[empty])
    assert 0.03 < float(pool.target_mask[0].float().mean() / 255) < 0.4


# -- inference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("warp_source", [True, False])
def test_transfer_gives_both_stages_in_range_and_stage2_starts_as_no_change(warp_source):
    model = tiny_model(warp_source=warp_source)
    batch = fd.render_pairs(5, "test", seed=1)
    source = pose.images_from_renders(batch.source)
    points = batch.target_keypoints, batch.target_visible
    stage1, final = pose.transfer(model, source, *points, batch.source_keypoints)
    assert stage1.shape == final.shape == (5, 3, 64, 64)
    for image in (stage1, final):
        assert torch.isfinite(image).all() and image.min() >= -1 and image.max() <= 1
    assert torch.equal(stage1, final)  # Stage II's difference map is zero until trained
    with pytest.raises(DataError, match="source images but"):
        pose.transfer(model, source[:2], *points, batch.source_keypoints[:2])
    if warp_source:  # the warp needs to know where the source's limbs are
        with pytest.raises(DataError, match="source's keypoints"):
            pose.transfer(model, source, *points)
        with pytest.raises(DataError, match="source poses"):
            pose.transfer(model, source, *points, batch.source_keypoints[:2])
    else:  # plain PG2 conditions on the target pose alone
        assert torch.equal(pose.transfer(model, source, *points)[0], stage1)


def test_the_warp_input_moves_the_source_into_the_target_pose():
    # Stage I of a warp model sees the warped source: a change in the source's keypoints
    # alone (same picture, same target) changes its output; plain PG2 never reads them.
    batch = fd.render_pairs(2, "test", seed=3)
    source = pose.images_from_renders(batch.source)
    points = batch.target_keypoints, batch.target_visible
    for warp_source in (True, False):
        model = tiny_model(warp_source=warp_source)
        moved = batch.source_keypoints + np.float32(5.0)
        first = pose.transfer(model, source, *points, batch.source_keypoints)[0]
        second = pose.transfer(model, source, *points, moved)[0]
        assert torch.equal(first, second) != warp_source


def test_same_seed_same_sample_other_seed_other_sample():
    model = tiny_model()
    first = pose.sample(model, 4, 7)
    torch.manual_seed(123)  # the global RNG must not matter
    assert torch.equal(first, pose.sample(model, 4, 7))
    assert not torch.equal(first, pose.sample(model, 4, 8))
    assert first.shape == (4, 3, 64, 64)


def test_animate_an_identity_or_a_picture_in_one_pass():
    model = tiny_model()
    calls = []
    model.stage1.register_forward_hook(lambda *_: calls.append(1))
    frames = pose.animate(model, fd.identities("test")[3], "walk", 6)
    assert frames.shape == (6, 3, 64, 64) and len(calls) == 1
    picture = pose.source_of(fd.identities("test")[4])[0]
    assert pose.animate(model, picture, "wave", 4).shape == (4, 3, 64, 64)


def test_save_and_load_give_the_same_outputs(tmp_path):
    model = tiny_model(w_adv=0.5)
    model.round_to_storage()
    model.save_pretrained(tmp_path)
    loaded = PosePG2.load_folder(tmp_path)
    assert loaded.config == model.config
    assert torch.equal(pose.sample(model, 3, 0), pose.sample(loaded, 3, 0))


def test_configs_refuse_what_the_networks_cannot_be():
    with pytest.raises(ValueError, match="resolution"):
        PoseConfig(resolution=32)
    with pytest.raises(ValueError, match="levels must be between"):
        PoseConfig(levels=5)  # 64 -> 2x2
    with pytest.raises(ValueError, match="objective"):
        PoseConfig(objective="nope")
    with pytest.raises(ValueError, match="width"):
        KeypointConfig(width=0)


# -- losses and metrics on hand cases ----------------------------------------------------------


def test_pose_mask_l1_weighs_the_person_twice():
    output = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[1.0, 0.5]]]])
    mask = torch.tensor([[[[1.0, 0.0]]]])
    # (|0 - 1| * (1 + 1) + |0 - 0.5| * (1 + 0)) / 2 pixels
    assert float(pose.pose_mask_l1(output, target, mask)) == pytest.approx(1.25)
    assert float(pose.pose_mask_l1(output, target, mask, mask_weight=0)) == pytest.approx(0.75)


def test_pose_mask_l1_adds_the_parts_weight_where_the_limbs_are():
    output = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[1.0, 0.5]]]])
    mask = torch.tensor([[[[1.0, 0.0]]]])
    parts = torch.tensor([[[[1.0, 1.0]]]])
    # (1 * (1 + 1 + 3) + 0.5 * (1 + 0 + 3)) / 2 pixels
    loss = pose.pose_mask_l1(output, target, mask, 1.0, parts, parts_weight=3.0)
    assert float(loss) == pytest.approx(3.5)
    assert float(pose.pose_mask_l1(output, target, mask, 1.0, parts, 0.0)) == pytest.approx(1.25)


def test_the_part_mask_covers_the_drawn_limbs_and_head_and_little_else():
    person = fd.identity(fd.identities("test")[0])
    raised = fd.Pose(r_shoulder_abd=90.0, r_elbow=0.0)
    points, _ = fd.keypoints(person, raised)
    parts = pose.part_mask(points[None])
    assert parts.shape == (1, 1, 64, 64) and set(parts.unique().tolist()) == {0.0, 1.0}
    for joint in (fd.NOSE, fd.R_ELBOW, fd.R_WRIST, fd.L_WRIST, fd.R_KNEE, fd.L_ANKLE):
        x, y = (int(v) for v in points[joint])
        assert parts[0, 0, y, x] == 1, fd.KEYPOINTS[joint]
    figure = torch.from_numpy(fd.figure_mask(person, raised))
    assert parts.mean() < 0.2  # the parts, not the picture
    assert (parts[0, 0] * figure).sum() > 0.5 * figure.sum()  # most of the figure is limbs/head
    assert parts[0, 0, :4, :4].sum() == 0  # a corner is background


def test_ssim_is_wang_et_al_one_on_itself_and_drops_with_noise():
    target = pose.images_from_renders(fd.render_pairs(2, "test", seed=0).target).double()
    g = torch.Generator().manual_seed(0)

    def with_noise(amount: float) -> torch.Tensor:
        noise = torch.randn(target.shape, generator=g, dtype=target.dtype)
        return (target + amount * noise).clamp(-1, 1)

    noisy = with_noise(0.2)
    assert pose.ssim(target, target).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    values = pose.ssim(noisy, target)
    assert (values < 0.9).all()
    louder = with_noise(0.5)
    assert (pose.ssim(louder, target) < values).all()
    # The same number as scikit-image's Gaussian-window SSIM (PG2's evaluation settings).
    a, b = (((x[0] + 1) / 2).permute(1, 2, 0).numpy() for x in (noisy, target))
    reference = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=2, data_range=1.0,
    )  # fmt: skip
    assert float(values[0]) == pytest.approx(reference, abs=1e-10)


def test_mask_ssim_ignores_the_background():
    pool = pose.render_pool(2, "test", 3)
    target = pose.to_float(pool.target)
    mask = pool.target_mask.float() / 255
    noise = torch.rand(target.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    other_background = torch.where(mask > 0, target, noise)
    assert (pose.ssim(other_background, target) < 0.5).all()
    assert pose.mask_ssim(other_background, target, mask).tolist() == pytest.approx([1.0, 1.0])
    assert (pose.mask_ssim(torch.zeros_like(target), target, mask) < 0.99).all()


def test_pck_on_a_hand_case():
    true = torch.zeros(2, 18, 2)
    true[0, 1] = torch.tensor([0.0, 20.0])  # image 0: visible points 20 px apart
    visible = torch.zeros(2, 18, dtype=torch.bool)
    visible[0, :2] = True  # image 1 has no visible keypoint and counts for nothing
    predicted = true.clone()
    predicted[0, 0] += torch.tensor([1.0, 0.0])  # within 0.1 x 20 = 2 px
    predicted[0, 1] += torch.tensor([0.0, 3.0])  # not
    predicted[0, 5:] = 99.0  # hidden: ignored
    predicted[1] = 99.0
    assert pose.pck(predicted, true, visible) == 0.5
    assert pose.pck(predicted, true, visible, size=64) == 1.0  # 6.4 px
    assert math.isnan(pose.pck(predicted, true, torch.zeros_like(visible)))


# -- the limb-warp baseline --------------------------------------------------------------------


def test_the_limb_warp_moves_the_arm_to_the_target_wrist():
    person = fd.identity(fd.identities("test")[0])
    down, raised = fd.Pose(), fd.Pose(r_shoulder_abd=90.0, r_elbow=0.0)
    source, source_points, _ = fd.render(person, down)
    target, target_points, _ = fd.render(person, raised)
    background = fd.background(person).astype(float)
    x, y = (int(v) for v in target_points[fd.R_WRIST])

    def off_background(image: np.ndarray) -> float:
        return float(np.linalg.norm(image[y - 1 : y + 2, x - 1 : x + 2] - background[
            y - 1 : y + 2, x - 1 : x + 2], axis=-1).max())  # fmt: skip

    assert off_background(source.astype(float)) < 1  # the source shows nothing there
    assert off_background(target.astype(float)) > 40  # the real target shows the hand
    warped = pose.warp_limbs(
        pose.images_from_renders(source[None]), source_points[None], target_points[None]
    )
    assert warped.shape == (1, 3, 64, 64)
    assert off_background(to_uint8(warped)[0].astype(float)) > 40  # the warp moved the arm
    # ... and the source's own arm, hanging down, is gone: background where it was.
    hx, hy = (int(v) for v in source_points[fd.R_WRIST])
    assert np.abs(to_uint8(warped)[0][hy, hx] - background[hy, hx]).max() <= 2


def test_facing_tells_front_from_back_and_leaves_side_views_alone():
    pairs = pose.render_pool(40, "test", 0)
    expected = {"front": 1, "three_quarter": 1, "side": 0, "back": -1}
    found = pose.facing(pairs.target_keypoints)
    for view, sign in zip(pairs.target_view.tolist(), found.tolist(), strict=True):
        assert sign == expected[fd.VIEWS[view]], fd.VIEWS[view]


def test_a_turned_figures_warp_leaves_out_its_torso_and_head_and_no_other_part():
    pairs = pose.render_pool(40, "test", 0)
    source = pose.to_float(pairs.source)
    flips = pose.facing(pairs.source_keypoints) * pose.facing(pairs.target_keypoints) < 0
    assert 0 < int(flips.sum()) < len(flips)
    plain = pose.warp_limbs(source, pairs.source_keypoints, pairs.target_keypoints)
    dropped = pose.warp_limbs(source, pairs.source_keypoints, pairs.target_keypoints, "drop")
    assert torch.equal(plain[~flips], dropped[~flips])  # nothing changes unless it turned
    background = pose.source_background(source)[flips]
    is_background = (dropped[flips] - background).abs().amax(1) < 1e-6
    points = pairs.target_keypoints[flips]
    belly = ((points[:, fd.NECK] + points[:, fd.R_HIP] + points[:, fd.L_HIP]) / 3).long()
    rows = torch.arange(int(flips.sum()))
    # The torso is left out; an arm may still cross it.
    assert is_background[rows, belly[:, 1], belly[:, 0]].float().mean() > 0.75
    plain_background = (plain[flips] - background).abs().amax(1) < 1e-6
    assert not plain_background[rows, belly[:, 1], belly[:, 0]].any()  # the plain warp fills it
    assert (dropped[flips] != plain[flips]).any()
    # ... and the limbs stay: each turned figure's warp still shows pixels off the background.
    assert (~is_background).flatten(1).any(1).all()


def test_stage2_reads_a_turned_figures_source_without_the_figure_and_others_unchanged():
    pairs = pose.render_pool(60, "test", 0)
    source = pose.to_float(pairs.source)
    turned, _ = pose.turns(pairs.source_keypoints, pairs.target_keypoints, from_side=True)
    assert 0 < int(turned.sum()) < len(turned)
    seen = pose.refine_source(source, pairs.source_keypoints, pairs.target_keypoints, True)
    assert torch.equal(seen[~turned], source[~turned])  # nothing changes unless it turned
    figure = torch.as_tensor(pairs.source_mask)[turned].reshape(-1, 64, 64) > 0  # as drawn
    background = pose.source_background(source)[turned]
    left = (seen[turned] - background).abs().amax(1) > 0.05
    assert float(left[figure].float().mean()) < 0.02  # the figure is gone ...
    kept = (seen[turned] - source[turned]).abs().amax(1) < 1e-6
    assert float(kept[:, :, :8].float().mean()) > 0.99  # ... its surroundings are not
    mask = pose.figure_mask(pairs.source_keypoints, 64)
    assert mask.shape == (60, 1, 64, 64) and float(mask.float().mean()) < 0.3
    with pytest.raises(ValueError, match="refine_hides_turn needs warp_source"):
        PoseConfig(**{**TINY, "warp_source": False, "refine_hides_turn": True})


def test_turn_colours_read_the_shirt_and_the_hair_of_most_sources():
    pairs = pose.render_pool(60, "train", 1)
    shirt, hair = pose.turn_colours(pose.to_float(pairs.source), pairs.source_keypoints)
    people = [fd.identity(int(i)) for i in pairs.identity_ids]

    def close(found: torch.Tensor, attribute: str) -> torch.Tensor:
        true = torch.tensor([getattr(p, attribute) for p in people]).float() / 127.5 - 1
        return (found - true).abs().amax(1) < 0.1

    # A turn away starts from a figure facing the camera, whose shirt shows its front pattern
    # (stripes, a two-tone front, a V-neck): the sleeves are the shirt's own colour all the same.
    facing = pose.facing(pairs.source_keypoints) > 0
    assert facing.sum() >= 15
    shirt_right = close(shirt, "shirt")
    assert float(shirt_right[facing].float().mean()) > 0.85
    assert float(shirt_right.float().mean()) > 0.7
    assert float(close(hair, "hair").float().mean()) > 0.6
    assert float(close(hair, "shirt").float().mean()) < 0.3  # not the same probe twice


def test_a_filled_warp_paints_a_figure_turned_away_and_drops_one_turned_to_the_camera():
    pairs = pose.render_pool(40, "test", 0)
    source = pose.to_float(pairs.source)
    turned = pose.facing(pairs.source_keypoints) * pose.facing(pairs.target_keypoints) < 0
    away = turned & (pose.facing(pairs.target_keypoints) < 0)
    assert 0 < int(away.sum()) < int(turned.sum())
    args = (source, pairs.source_keypoints, pairs.target_keypoints)
    plain, dropped, filled = (pose.warp_limbs(*args, mode) for mode in ("warp", "drop", "fill"))
    assert torch.equal(plain[~turned], filled[~turned])  # nothing changes unless it turned
    toward = turned & ~away
    assert torch.equal(dropped[toward], filled[toward])  # no face is guessed
    shirt, hair = pose.turn_colours(source, pairs.source_keypoints)
    points = pairs.target_keypoints.long()
    rows = torch.nonzero(away).flatten()

    def share_at(point: torch.Tensor, colour: torch.Tensor) -> float:
        x, y = point[rows, 0], point[rows, 1]
        return float(((filled[rows, :, y, x] - colour[rows]).abs().amax(1) < 1e-6).float().mean())

    belly = (points[:, fd.NECK] + points[:, fd.R_HIP] + points[:, fd.L_HIP]) // 3
    assert share_at(belly, shirt) > 0.75  # an arm may still cross it
    ears = (points[:, fd.R_EAR] + points[:, fd.L_EAR]) // 2
    assert share_at(ears, hair) > 0.75


def test_from_side_counts_a_side_view_that_comes_to_face_a_way_as_turned():
    pairs = pose.render_pool(60, "test", 0)
    source = pose.to_float(pairs.source)
    facing_source = pose.facing(pairs.source_keypoints)
    facing_target = pose.facing(pairs.target_keypoints)
    from_side = (facing_source == 0) & (facing_target != 0)
    assert from_side.any()
    args = (source, pairs.source_keypoints, pairs.target_keypoints, "fill")
    plain, wider = pose.warp_limbs(*args), pose.warp_limbs(*args, from_side=True)
    assert torch.equal(plain[~from_side], wider[~from_side])
    assert all((wider[i] != plain[i]).any() for i in torch.nonzero(from_side).flatten())


def test_an_unknown_turn_mode_and_a_fill_without_the_facing_warp_are_refused():
    pairs = pose.render_pool(2, "test", 0)
    with pytest.raises(ValueError, match="turned must be one of"):
        pose.warp_limbs(
            pose.to_float(pairs.source), pairs.source_keypoints, pairs.target_keypoints, "flip"
        )
    with pytest.raises(ValueError, match="turn_fill changes what warp_facing does"):
        PoseConfig(**{**TINY, "turn_fill": True})


# -- training ----------------------------------------------------------------------------------


def one_step(config: PoseConfig) -> set[str]:
    trainer = tiny_trainer()
    data = trainer.prepare_data(config, None)
    torch.manual_seed(0)
    model = trainer.build(config, data).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = StepContext(Accelerator(cpu=True), torch.Generator().manual_seed(0), 0, 1)
    losses = trainer.train_step(model, trainer.optimizers(model), data, ctx)
    assert set(losses) == {"l1_stage1", "l1_stage2", "adv", "loss_d"}
    assert all(math.isfinite(v) for v in losses.values())
    return {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


class OnMeta:
    """A step context whose device is "meta": tensors there have shapes but no data, so a
    tensor the batch leaves on the CPU shows as it would beside a GPU's (no GPU needed)."""

    def __init__(self) -> None:
        self.generator = torch.Generator().manual_seed(0)
        self.device = torch.device("meta")


def test_every_tensor_of_a_training_batch_is_on_the_step_device():
    config = PoseConfig(**{**TINY, "warp_facing": True, "turn_fill": True, "turn_from_side": True})
    config = dataclasses.replace(config, w_parts=8.0, refine_hides_turn=True)
    pairs = pose.render_pool(8, "train", 0, config.resolution)
    batch = training_batch(
        pairs, 4, OnMeta(), True, True, config.turned, True, config.refine_hides_turn
    )
    assert {part.device.type for part in batch} == {"meta"}


def test_one_step_updates_both_generators_and_d():
    assert one_step(PoseConfig(**TINY)) == {"stage1", "stage2", "discriminator"}


def test_a_parts_weighted_step_updates_both_generators_and_d():
    assert one_step(PoseConfig(**{**TINY, "w_parts": 3.0})) == {
        "stage1",
        "stage2",
        "discriminator",
    }


def test_a_perceptual_step_updates_both_generators_and_d():
    updated = one_step(PoseConfig(**{**TINY, "w_perceptual": 0.1}))
    assert updated == {"stage1", "stage2", "discriminator"}


def test_a_facing_aware_warp_step_updates_both_generators_and_d():
    updated = one_step(PoseConfig(**{**TINY, "warp_facing": True}))
    assert updated == {"stage1", "stage2", "discriminator"}


def test_a_turn_filled_warp_step_updates_both_generators_and_d():
    updated = one_step(PoseConfig(**{**TINY, "warp_facing": True, "turn_fill": True}))
    assert updated == {"stage1", "stage2", "discriminator"}


def test_a_step_with_side_views_turned_updates_both_generators_and_d():
    config = {**TINY, "warp_facing": True, "turn_fill": True, "turn_from_side": True}
    assert one_step(PoseConfig(**config)) == {"stage1", "stage2", "discriminator"}


def test_a_step_with_stage2_blind_to_turned_figures_updates_both_generators_and_d():
    config = {**TINY, "warp_facing": True, "turn_from_side": True, "refine_hides_turn": True}
    assert one_step(PoseConfig(**config)) == {"stage1", "stage2", "discriminator"}


def test_stage2_and_d_never_reach_stage1():
    """With Stage I's own loss off, nothing changes it: Stage II trains on a detached input."""
    assert one_step(PoseConfig(**{**TINY, "w_stage1": 0.0})) == {"stage2", "discriminator"}


def test_a_tiny_run_through_the_shared_loop(tmp_path):
    trainer = tiny_trainer()
    assert trainer.family is FAMILY and import_object(FAMILY.trainer) is Trainer
    config = PoseConfig(**TINY)
    out = train(trainer, config, RunOptions(out=tmp_path / "run", preset="tiny"))
    for name in ("model.safetensors", "config.json", "README.md", "eval.json", "sample.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "eval.json").read_text())
    assert set(metrics) == set(METRIC_NAMES)
    # The 4 test pairs of the tiny preset all turn: the same-view split is empty, so n/a.
    assert not pose.render_pool(4, "test", 0).same_view.any()
    undefined = {k for k, v in metrics.items() if not math.isfinite(v)}
    assert undefined == {k for k in METRIC_NAMES if k.endswith("_same_view")}
    assert "python -m training train pose --preset tiny" in (out / "README.md").read_text()
    with Image.open(out / "sample.png") as picture:  # 8 rows of 5 pictures (4 test pairs here)
        assert picture.size[0] == 2 * (5 * 66 + 2)

    model = PosePG2.load_folder(out)
    assert model.config == config
    data = trainer.prepare_data(config, None)
    trainer.save_samples(model, data, 3, 1, tmp_path / "grid.png")
    trainer.save_samples(model, data, 5, 1, tmp_path / "walk.gif")
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 5
    assert trainer.sample_formats() == [".gif", ".png"]


def test_a_second_phase_run_keeps_the_copied_stage1_and_trains_stage2(tmp_path):
    # PG2's second phase: Stage I copied from a trained run and frozen, Stage II and D train.
    first = train(tiny_trainer(), PoseConfig(**TINY), RunOptions(out=tmp_path / "a", preset="tiny"))
    donor = PosePG2.load_folder(first)
    config = PoseConfig(**{**TINY, "stage1_from": str(first), "discriminator": "spectral"})
    second = PosePG2.load_folder(
        train(tiny_trainer(), config, RunOptions(out=tmp_path / "b", preset="tiny"))
    )
    for name, weight in donor.stage1.state_dict().items():
        assert torch.equal(weight, second.stage1.state_dict()[name]), name
    changed = [
        name
        for name, weight in second.stage2.state_dict().items()
        if not torch.equal(weight, donor.stage2.state_dict()[name])
    ]
    assert changed  # Stage II was trained (it starts from its own init, then two steps)
    assert not any("BatchNorm" in type(m).__name__ for m in second.discriminator.modules())

    wider = PoseConfig(**{**TINY, "width": 8, "stage1_from": str(first)})
    with pytest.raises(ValueError, match="width 4 there, 8 here"):
        tiny_trainer().build(wider, None)
    with pytest.raises(ValueError, match="neither a folder nor one of"):
        tiny_trainer().build(PoseConfig(**{**TINY, "stage1_from": "pose-cats"}), None)
    with pytest.raises(ValueError, match="discriminator must be one of"):
        PoseConfig(**{**TINY, "discriminator": "patch"})


def test_a_fine_tune_starts_from_every_weight_of_its_donor(tmp_path):
    first = train(tiny_trainer(), PoseConfig(**TINY), RunOptions(out=tmp_path / "a", preset="tiny"))
    donor = PosePG2.load_folder(first)
    config = PoseConfig(**{**TINY, "init_from": str(first)})
    built = tiny_trainer().build(config, None)
    for name, weight in donor.state_dict().items():
        assert torch.equal(weight, built.state_dict()[name]), name
    second = train(tiny_trainer(), config, RunOptions(out=tmp_path / "b", preset="tiny"))
    record = json.loads((second / "training.json").read_text())
    first_record = json.loads((first / "training.json").read_text())
    assert record["started_from"] == [
        {k: first_record[k] for k in ("command", "steps", "wall_seconds", "hardware")}
    ]
    card = (second / "README.md").read_text()
    assert f"Before it, from whose weights it starts: `{first_record['command']}`" in card
    assert "- In all: " in card
    assert "- To train it anew: each command in turn" in card
    with pytest.raises(ValueError, match=r"init_from: .* is another architecture"):
        tiny_trainer().build(PoseConfig(**{**TINY, "init_from": str(first), "width": 8}), None)
    with pytest.raises(ValueError, match="init_from: 'pose-cats' is neither a folder"):
        tiny_trainer().build(PoseConfig(**{**TINY, "init_from": "pose-cats"}), None)


def test_a_tiny_regressor_training_writes_a_loadable_folder(tmp_path):
    config = KeypointConfig(**TINY_REGRESSOR)
    metrics = train_regressor(config, tmp_path)
    by_view = {f"pck_real_{view}" for view in fd.VIEWS}
    assert set(metrics) == {
        "pck_real", "pck_real_softened", "pck_mean_pose", "mean_error_px", *by_view
    }  # fmt: skip
    assert 0 <= metrics["pck_real"] <= 1 and metrics["mean_error_px"] > 0
    loaded = KeypointRegressor.load_folder(tmp_path)
    assert loaded.config == config
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["family"] == "pose" and record["auxiliary"] == REGRESSOR.name
    assert json.loads((tmp_path / "eval.json").read_text()) == metrics
    card = (tmp_path / "README.md").read_text()
    assert REGRESSOR.repo_id in card and "## Intended use" in card
    assert "half of each training batch was shown at half the resolution" in card.lower()
    points = REGRESSOR.sample(loaded, 3, 0)
    assert points.shape == (3, 18, 2) and torch.isfinite(points).all()
    assert (points >= 0).all() and (points <= 64).all()  # soft-argmax stays inside


def test_a_mirrored_render_keeps_each_keypoint_on_its_pixel_under_its_mirror_name():
    images, points, visible, _ = _single_renders(fd.render_pairs(6, "train", seed=4))
    chosen = torch.tensor([True, False] * 6)
    flipped, at, shown = mirror(images, points, visible, chosen)
    assert torch.equal(flipped[1], images[1]) and torch.equal(at[1], points[1])
    assert torch.equal(flipped[0], images[0].flip(-1))
    # The right wrist of a mirrored picture is where the left wrist's mirror image lies, and
    # the picture's colour there is the original's at the left wrist.
    right, left = fd.KEYPOINTS.index("r_wrist"), fd.KEYPOINTS.index("l_wrist")
    assert torch.allclose(at[0, right], torch.stack([64 - points[0, left, 0], points[0, left, 1]]))
    assert shown[0, right] == visible[0, left]
    for i in torch.nonzero(chosen)[:, 0].tolist():
        for k in torch.nonzero(visible[i])[:, 0].tolist():
            x, y = points[i, k].tolist()
            if abs(x - round(x)) < 1e-3:  # on a pixel boundary the mirror picks a neighbour
                continue
            mx, my = at[i, MIRRORED[k]].tolist()
            assert torch.equal(flipped[i, :, int(my), int(mx)], images[i, :, int(y), int(x)])
    twice = mirror(flipped, at, shown, chosen)
    assert torch.equal(twice[0], images) and torch.equal(twice[2], visible)
    assert torch.allclose(twice[1], points, atol=1e-5)


def test_side_weight_and_flip_train_and_are_refused_out_of_range(tmp_path):
    config = KeypointConfig(**{**TINY_REGRESSOR, "side_weight": 3.0, "flip": True})
    assert 0 <= train_regressor(config, tmp_path)["pck_real"] <= 1
    with pytest.raises(ValueError, match="side_weight must be >= 1"):
        KeypointConfig(**{**TINY_REGRESSOR, "side_weight": 0.5})


def test_a_regressor_fine_tune_starts_from_its_donor_and_counts_its_time(tmp_path):
    donor = tmp_path / "donor"
    train_regressor(KeypointConfig(**TINY_REGRESSOR), donor)
    donor_seconds = json.loads((donor / "training.json").read_text())["wall_seconds"]
    config = KeypointConfig(**{**TINY_REGRESSOR, "init_from": str(donor), "lr": 0.0})
    out = tmp_path / "tuned"
    train_regressor(config, out, ("--lr=0.0",))
    # At learning rate 0 the weights are the donor's: the fine-tune started from them.
    tuned, original = KeypointRegressor.load_folder(out), KeypointRegressor.load_folder(donor)
    weights = zip(tuned.state_dict().items(), original.state_dict().values(), strict=True)
    for (name, a), b in weights:
        assert torch.equal(a, b), name
    record = json.loads((out / "training.json").read_text())
    assert record["command"].endswith("auxiliary pose-figures-keypoints --lr=0.0")
    assert record["total_wall_seconds"] >= donor_seconds + record["wall_seconds"] - 0.2
    donor_command = json.loads((donor / "training.json").read_text())["command"]
    assert record["started_from"] == [{"command": donor_command, "wall_seconds": donor_seconds}]
    card = (out / "README.md").read_text()
    assert f"fine-tuned at learning rate 0 from `{donor_command}`" in card
    metrics = json.loads((out / "eval.json").read_text())
    record["command"] += " --init_from=x"  # as the published judge was made: from its own folder
    again = regressor_card(config, metrics, record)
    assert f"Reproduce: `{donor_command} --out DONOR1`, then `" in again
    assert "--lr=0.0 --init_from=DONOR1 --out DIR`" in again
    # A longer lineage: every command in turn, each starting from the folder before it.
    record["started_from"].append({"command": "run2 --init_from=y", "wall_seconds": 1.0})
    chain = regressor_card(config, metrics, record)
    assert (
        f"Reproduce: `{donor_command} --out DONOR1`, then `run2 --init_from=DONOR1 --out "
        "DONOR2`, then `"
    ) in chain
    assert "--init_from=DONOR2 --out DIR`" in chain
    with pytest.raises(ValueError, match="differs in width"):
        train_regressor(dataclasses.replace(config, width=8), tmp_path / "wider")


def test_the_peak_readout_commits_to_the_stronger_of_two_peaks():
    with pytest.raises(ValueError, match="readout"):
        KeypointConfig(**{**TINY_REGRESSOR, "readout": "argmax"})
    soft = KeypointRegressor(KeypointConfig(**TINY_REGRESSOR))
    peak = KeypointRegressor(KeypointConfig(**{**TINY_REGRESSOR, "readout": "peak"}))
    maps = torch.zeros(1, 18, 32, 32)
    maps[..., 10, 4] = 0.6  # a keypoint's two candidates: (9, 21) and (9, 49) in pixels
    maps[..., 10, 24] = 0.4
    between = soft.read(maps)[0, 0]
    assert torch.allclose(between, torch.tensor([25.0, 21.0]))  # on neither limb
    assert torch.allclose(peak.read(maps)[0, 0], torch.tensor([9.0, 21.0]))
    maps[..., 11, 5] = 0.6  # a spread peak still reads between its own cells
    assert torch.allclose(
        peak.read(maps / maps.sum((2, 3), keepdim=True))[0, 0], torch.tensor([10.0, 22.0])
    )


def test_the_heatmap_loss_is_least_where_the_map_peaks_on_the_truth(tmp_path):
    centres = (torch.arange(32) + 0.5) * 2
    truth = torch.full((2, 18, 2), 21.0)  # the centre of cell 10, on both axes
    weight = torch.ones(2, 18)

    def loss_peaking_at(cell: int) -> float:
        logits = torch.zeros(2, 18, 32, 32)
        logits[..., cell, cell] = 10.0
        return float(pose.heatmap_cross_entropy(logits, truth, weight, centres))

    assert loss_peaking_at(10) < loss_peaking_at(12) < loss_peaking_at(20)
    config = KeypointConfig(**{**TINY_REGRESSOR, "readout": "peak"})
    assert train_regressor(config, tmp_path)["mean_error_px"] > 0
    assert KeypointRegressor.load_folder(tmp_path).config.readout == "peak"


def test_a_128_model_is_judged_by_the_64_regressor_at_its_own_scale():
    regressor = tiny_trainer().regressor
    small = pose.images_from_renders(fd.render_pairs(2, "test", seed=0).target)
    large = small.repeat_interleave(2, 2).repeat_interleave(2, 3)  # the same picture at 128
    torch.testing.assert_close(
        find_keypoints(regressor, large), 2 * find_keypoints(regressor, small)
    )
    model = tiny_model(resolution=128)
    metrics = evaluate(model, pose.render_pool(2, "test", 0, 128), regressor)
    assert math.isfinite(metrics["pck_final"]) and math.isfinite(metrics["mask_ssim_warp"])


def test_the_family_declares_what_the_registry_needs():
    assert FAMILY.name == Trainer.family_name == "pose"
    assert {"tiny", "demo", "gpu128"} <= set(Trainer.presets)
    assert FAMILY.models[0].repo_id.endswith("/pose-figures")
    assert FAMILY.auxiliary == (REGRESSOR,) and REGRESSOR.bundle is KeypointRegressor
    assert FAMILY.benchmarks == {
        "pose": "benchmarks.pose:table",
        "pose-speed": "benchmarks.pose:speed",
    }
    for preset in Trainer.presets.values():
        PoseConfig(**preset)  # every preset is a valid config
    assert dataclasses.asdict(PoseConfig())["resolution"] == 64
