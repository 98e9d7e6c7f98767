"""The pose-transfer page: what it computes (gallery/pose.py), the page through AppTest with bad
input, and the benchmark's table, verdicts and speed.

Until the published pose models are bundled, the page and the benchmark run on tiny untrained
stand-ins put in a copy of the snapshots folder (``published_pose``); once they are, on the
bundled snapshots themselves, like every other page.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from apptest import APP, cold_offline_app, open_page
from PIL import Image
from streamlit.testing.v1 import AppTest

from gallery import pose as gp
from hub_models import family as family_module
from hub_models import figuredata as fd
from hub_models import runfiles
from hub_models.imagedata import DataError
from hub_models.pose import (
    FAMILY,
    REGRESSOR,
    KeypointConfig,
    KeypointRegressor,
    PoseConfig,
    PosePG2,
    images_from_renders,
)
from training.pose import REGRESSOR_PRESETS, Trainer

PUBLISHED = FAMILY.featured_model
IMAGE_TITLES = (
    "target pose (what the model is told)",
    "Stage I (coarse)",
    "PG2 final (Stage II)",
    "limb warp (baseline)",
    "the renderer's picture (the answer)",
)


def tiny_model(seed: int = 0) -> PosePG2:
    torch.manual_seed(seed)
    return PosePG2(PoseConfig(**Trainer.presets["tiny"])).eval()


def bundled(published) -> bool:
    """A finished snapshot: training writes training.json after the weights."""
    return (published.snapshot / runfiles.TRAINING).is_file()


@pytest.fixture(scope="module")
def stand_in_snapshots(tmp_path_factory) -> Path | None:
    """None when both pose models are bundled; else a copy of the snapshots folder (links to
    what is bundled) with a tiny untrained model for each pose model that is not."""
    missing = [m for m in (PUBLISHED, REGRESSOR) if not bundled(m)]
    if not missing:
        return None
    root = tmp_path_factory.mktemp("snapshots")
    for entry in family_module.SNAPSHOTS.iterdir():
        if entry.name not in {m.name for m in missing}:
            (root / entry.name).symlink_to(entry)
    if PUBLISHED in missing:
        tiny_model().save_pretrained(root / PUBLISHED.name)
    if REGRESSOR in missing:
        torch.manual_seed(0)
        regressor = KeypointRegressor(KeypointConfig(**REGRESSOR_PRESETS["tiny"]))
        regressor.save_pretrained(root / REGRESSOR.name)
    return root


@pytest.fixture
def published_pose(stand_in_snapshots, monkeypatch) -> None:
    """The published pose models resolve to the bundled snapshots or their stand-ins."""
    if stand_in_snapshots is not None:
        monkeypatch.setattr(family_module, "SNAPSHOTS", stand_in_snapshots)


@pytest.fixture
def offline_app(published_pose, monkeypatch, tmp_path):
    """Cold and offline, as every AppTest."""
    yield from cold_offline_app(monkeypatch, tmp_path)


@pytest.fixture
def page(offline_app) -> AppTest:
    return open_page(FAMILY.page)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def image_captions(at: AppTest) -> list[str]:
    return [image.proto.imgs[0].caption for image in at.get("image")]


def pictures(at: AppTest) -> dict[str, str]:
    """caption -> the picture's media URL, which names its content: another picture, another
    URL."""
    return {image.proto.imgs[0].caption: image.proto.imgs[0].url for image in at.get("image")}


def told_and_answer(at: AppTest) -> tuple[str, str]:
    """The target skeleton and the renderer's picture of the person in the target pose."""
    shown = pictures(at)
    return shown[IMAGE_TITLES[0]], shown[IMAGE_TITLES[-1]]


def mask_ssims(at: AppTest) -> dict[str, float]:
    return {m.label: float(m.value) for m in at.metric if m.label.startswith("mask-SSIM")}


# -- people and poses --------------------------------------------------------------------------


def test_every_joint_has_a_slider_within_the_renderers_limits():
    assert set(gp.slider_names()) == {"yaw", *fd.JOINT_LIMITS}
    for name in fd.JOINT_LIMITS:
        assert gp.angle_limits(name) == fd.JOINT_LIMITS[name]
    assert gp.angle_limits("yaw") == (-180.0, 180.0)
    with pytest.raises(DataError, match="not a joint"):
        gp.angle_limits("tail")


@pytest.mark.parametrize("name", list(gp.PRESETS))
def test_presets_are_poses_the_sliders_can_show(name):
    preset = gp.PRESETS[name]
    fd.check_pose(preset)
    angles = gp.angles_of(preset)
    for joint, value in angles.items():
        lo, hi = gp.angle_limits(joint)
        assert lo <= value <= hi, joint
    assert gp.pose_from_angles(angles) == preset  # the sliders reproduce it exactly


def test_angles_outside_the_limits_are_refused_by_name():
    angles = gp.angles_of(fd.Pose())
    with pytest.raises(DataError, match=r"r_elbow=170 \(limits 0\.\.145\)"):
        gp.pose_from_angles({**angles, "r_elbow": 170.0})
    with pytest.raises(DataError, match="yaw=200"):
        gp.pose_from_angles({**angles, "yaw": 200.0})
    with pytest.raises(DataError, match="not joints of a pose: wing"):
        gp.pose_from_angles({**angles, "wing": 1.0})


def test_people_are_the_renderers_and_the_same_every_time():
    first = gp.held_out_person(0)
    assert first.identity == fd.identity(fd.identities("test")[0])
    assert fd.split_of(fd.identities("test")[0]) == "test"  # never seen in training
    assert gp.new_person(7) == gp.new_person(7)
    assert gp.new_person(7).identity != gp.new_person(8).identity
    assert gp.person(gp.NEW_PERSON, 7) == gp.new_person(7)
    assert "/" not in first.slug and " " not in gp.new_person(7).slug
    donor, pose = gp.donor_pose(12, 4)
    assert donor == gp.held_out_person(12) and gp.donor_pose(12, 4)[1] == pose


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gp.held_out_person(1000), "numbered 0 to 999"),
        (lambda: gp.held_out_person(-1), "numbered 0 to 999"),
        (lambda: gp.new_person(-3), "a new person's seed is a whole number from 0"),
        (lambda: gp.donor_pose(0, "4"), "a pose's seed is a whole number from 0"),
        (lambda: gp.person("a cat", 0), "unknown kind of person"),
        (lambda: gp.source_pose("above"), "unknown view 'above'"),
        (lambda: gp.check_frames(2), "8 to 60 frames"),
        (lambda: gp.check_frames(61), "8 to 60 frames"),
    ],
)
def test_bad_choices_get_a_clear_message(call, message):
    with pytest.raises(DataError, match=message):
        call()


# -- one transfer and the animation ------------------------------------------------------------


def test_a_transfer_shows_every_picture_and_scores_against_the_renderer():
    model = tiny_model()
    who = gp.held_out_person(3)
    shown = gp.transfer_view(model, who, gp.source_pose("front"), gp.PRESETS["Both arms up"])
    for name in ("source", "skeleton", "stage1", "final", "warp", "truth"):
        image = getattr(shown, name)
        assert image.shape == (3, 64, 64) and image.min() >= -1 and image.max() <= 1, name
    assert set(shown.scores) == {"final", "stage1", "warp", "copy"}
    truth = gp.render_picture(who, gp.PRESETS["Both arms up"], 64)
    torch.testing.assert_close(shown.truth, truth)
    # The target equal to the source: a copy of the source is the renderer's answer exactly.
    same = gp.transfer_view(model, who, fd.Pose(), fd.Pose())
    assert same.scores["copy"]["ssim"] == pytest.approx(1.0)
    assert same.scores["copy"]["mask_ssim"] == pytest.approx(1.0)
    assert shown.scores["copy"]["mask_ssim"] < 1


def test_a_pose_copied_from_another_person_keeps_their_proportions():
    model = tiny_model()
    who, target = gp.held_out_person(3), gp.PRESETS["Arms out (T)"]
    donor = gp.held_out_person(12)
    own = gp.transfer_view(model, who, fd.Pose(), target)
    copied = gp.transfer_view(model, who, fd.Pose(), target, donor)
    assert copied.scores is None  # the renderer's answer is this body, not the donor's
    assert not torch.equal(own.skeleton, copied.skeleton)
    points, visible = fd.keypoints(donor.identity, target)
    torch.testing.assert_close(
        copied.skeleton, images_from_renders(fd.skeleton_image(points, visible)[None])[0]
    )
    picture = Image.open(io.BytesIO(gp.row_png(copied)))
    assert picture.size == (2 * (6 * 66 + 2), 2 * 68)


def test_an_animation_is_one_forward_pass_and_a_looping_gif():
    model = tiny_model()
    passes = []
    model.stage1.register_forward_hook(lambda *_: passes.append(1))
    who = gp.new_person(5)
    generated, skeletons = gp.animation(model, who, gp.source_pose("side"), "jump", 12)
    assert generated.shape == skeletons.shape == (12, 3, 64, 64) and len(passes) == 1
    gif = gp.looping_gif(gp.animation_pictures(generated, skeletons))
    with Image.open(io.BytesIO(gif)) as picture:
        assert picture.format == "GIF" and picture.n_frames == 12  # forwards only: it loops
        assert picture.info["loop"] == 0 and picture.info["duration"] == 80
    with pytest.raises(DataError, match="unknown sequence 'dance'"):
        gp.animation(model, who, fd.Pose(), "dance", 12)


def test_the_gif_is_made_once_per_choice():
    model = tiny_model()
    passes = []
    model.stage1.register_forward_hook(lambda *_: passes.append(1))
    gp.animation_gif.clear()
    choice = ("tiny", model, gp.TEST_PERSON, 2, "front", "wave", 8)
    first = gp.animation_gif(*choice)
    assert gp.animation_gif(*choice) == first and len(passes) == 1
    other = gp.animation_gif("tiny", model, gp.TEST_PERSON, 2, "front", "turn", 8)
    assert other != first and len(passes) == 2
    gp.animation_gif.clear()


# -- the page ----------------------------------------------------------------------------------


def test_the_page_shows_source_pose_both_stages_baseline_and_answer(page):
    at = page
    assert at.title[0].value == FAMILY.title
    assert not errors(at), errors(at)
    captions = image_captions(at)
    assert captions[0].startswith("source: test person")
    assert all(title in captions for title in IMAGE_TITLES), captions
    assert set(mask_ssims(at)) == {f"mask-SSIM, {t}" for t in gp.METHOD_TITLES.values()}
    assert any("through one walk loop, 30 frames" in c for c in captions)  # the animation tab
    assert "pose-figures" in " ".join(c.value for c in at.caption)  # where the weights are from
    assert len(at.get("download_button")) == 2  # the row's PNG and the GIF


def test_the_target_pose_controls_change_the_result(page):
    at = page
    before, scores = told_and_answer(at), mask_ssims(at)
    at.selectbox(key="pose_preset").set_value("Kick").run()
    kicked = told_and_answer(at)
    assert kicked[0] != before[0] and kicked[1] != before[1] and mask_ssims(at) != scores
    at.radio(key="pose_target_kind").set_value(gp.ANGLES).run()
    assert not at.exception and not errors(at), errors(at)
    sliders = {s.key: s for s in at.slider if s.key.startswith("pose_angle_")}
    assert set(sliders) == {f"pose_angle_{name}" for name in gp.slider_names()}
    for name in gp.slider_names():
        assert (sliders[f"pose_angle_{name}"].min, sliders[f"pose_angle_{name}"].max) == (
            gp.angle_limits(name)
        )
    first = told_and_answer(at)  # the sliders start at the first preset
    at.slider(key="pose_angle_r_shoulder_abd").set_value(45.0).run()
    moved = told_and_answer(at)
    assert moved[0] != first[0] and moved[1] != first[1]
    arms_out = gp.angles_of(gp.PRESETS["Arms out (T)"])
    at.selectbox(key="pose_angles_start").set_value("Arms out (T)").run()
    assert {name: at.slider(key=f"pose_angle_{name}").value for name in arms_out} == arms_out
    at.slider(key="pose_angle_l_elbow").set_value(120.0).run()
    at.button(key="pose_angles_reset").click().run()
    assert {name: at.slider(key=f"pose_angle_{name}").value for name in arms_out} == arms_out
    assert not at.exception and not errors(at)


def test_a_new_person_in_another_persons_pose(page):
    at = page
    next(b for b in at.button if b.label == "A new person in another's pose").click().run()
    assert not at.exception and not errors(at), errors(at)
    assert at.radio(key="pose_person_kind").value == gp.NEW_PERSON
    assert at.number_input(key="pose_new_seed").value == 7
    captions = image_captions(at)
    assert "source: new person 7" in captions
    assert "test person 12 (id 100012): the pose to copy" in captions
    assert not mask_ssims(at)  # another body's keypoints: shown, not scored
    assert "shown, not scored" in " ".join(c.value for c in at.caption)
    donor = "test person 12 (id 100012): the pose to copy"
    before = told_and_answer(at), pictures(at)[donor]
    at.number_input(key="pose_donor_seed").set_value(5).run()
    after = told_and_answer(at), pictures(at)[donor]
    assert after[0][0] != before[0][0] and after[0][1] != before[0][1] and after[1] != before[1]
    at.number_input(key="pose_new_seed").set_value(8).run()
    assert "source: new person 8" in image_captions(at)


@pytest.mark.parametrize("sequence", fd.SEQUENCES)
def test_every_sequence_animates(page, sequence):
    at = page
    at.selectbox(key="pose_sequence").set_value(sequence).run()
    at.slider(key="pose_frames").set_value(8).run()
    assert not at.exception and not errors(at), errors(at)
    assert any(f"through one {sequence} loop, 8 frames" in c for c in image_captions(at))


def test_the_source_view_and_person_reach_the_pictures(page):
    at = page
    at.number_input(key="pose_person").set_value(999).run()
    source = "source: test person 999 (id 100999)"
    front = pictures(at)[source]
    at.selectbox(key="pose_view").set_value("back").run()
    assert not at.exception and not errors(at)
    assert pictures(at)[source] != front


@pytest.mark.usefixtures("offline_app")
def test_a_hand_edited_link_is_pulled_into_range():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(
        {"pose_person": "5000", "pose_frames": "1000", "pose_preset": "Moonwalk", "pose_view": "x"}
    )
    at.run()
    at.switch_page(f"pages/{FAMILY.page}").run()
    assert not at.exception, at.exception
    assert not errors(at), errors(at)
    assert at.number_input(key="pose_person").value == 999
    assert at.slider(key="pose_frames").value == gp.MAX_FRAMES
    assert at.selectbox(key="pose_preset").value == next(iter(gp.PRESETS))  # unknown: the first


@pytest.mark.parametrize(
    ("folder", "message"),
    [("", "Enter the folder"), ("/no/such/folder", "is not a folder")],
    ids=["empty", "missing"],
)
def test_a_bad_user_folder_gets_a_message(page, folder, message):
    at = page
    at.radio(key="pose_source").set_value("A folder I trained").run()
    at.text_input(key="pose_folder").input(folder).run()
    assert not at.exception
    assert message in " ".join(m.value for m in [*at.info, *at.error])


def test_a_folder_of_another_family_is_refused_and_a_pose_run_is_drawn(page, tmp_path):
    from hub_models.toy2d import Toy2DConfig, Toy2DGAN

    at = page
    other = tmp_path / "toy"
    Toy2DGAN(Toy2DConfig(g_width=8, d_width=8)).save_pretrained(other)
    at.radio(key="pose_source").set_value("A folder I trained").run()
    at.text_input(key="pose_folder").input(str(other)).run()
    assert not at.exception and errors(at)
    mine = tmp_path / "pose-run"
    tiny_model(seed=1).save_pretrained(mine)
    at.text_input(key="pose_folder").input(str(mine)).run()
    assert not at.exception and not errors(at), errors(at)
    assert all(title in image_captions(at) for title in IMAGE_TITLES)


@pytest.mark.usefixtures("offline_app")
def test_a_visit_leaves_process_wide_state_alone(monkeypatch):
    """The server is shared: no thread count or global seed may change for one visitor."""
    at = open_page(FAMILY.page)  # loading a model draws its initial weights: before this
    calls = []
    for name in ("set_num_threads", "manual_seed", "seed"):
        monkeypatch.setattr(torch, name, lambda *a, name=name: calls.append(name))
    monkeypatch.setattr(np.random, "seed", lambda *a: calls.append("np.random.seed"))
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    at.number_input(key="pose_person").set_value(5).run()
    at.radio(key="pose_target_kind").set_value(gp.ANGLES).run()
    at.radio(key="pose_person_kind").set_value(gp.NEW_PERSON).run()
    at.radio(key="pose_target_kind").set_value(gp.DONOR).run()
    at.selectbox(key="pose_sequence").set_value("turn").run()
    assert not at.exception and not errors(at)
    assert calls == []
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])


# -- the benchmark -----------------------------------------------------------------------------


def fake_measured(final_mask: float, final_pck: float) -> dict[str, dict[str, float]]:
    """evaluate()'s keys for every split, with the final image's numbers given."""
    base = {"stage1": 0.93, "copy": 0.92, "warp": 0.94}
    metrics = {"pck_real": 0.97, "pck_stage1": 0.8, "pck_copy": 0.2, "pck_warp": 0.7}
    metrics["pck_final"] = final_pck
    for method, value in {**base, "final": final_mask}.items():
        metrics[f"mask_ssim_{method}"] = value
        metrics[f"ssim_{method}"] = value - 0.2
    return {"all": metrics, "same_view": metrics, "turned": metrics}


def test_benchmark_verdicts_and_table():
    from benchmarks.pose import markdown, rows, verdicts

    good = rows(fake_measured(0.95, 0.93))
    checks = verdicts(good)
    assert checks["final_beats_all_baselines_on_mask_ssim"] and checks["pck_final_at_least_0.9"]
    bad = verdicts(rows(fake_measured(0.935, 0.85)))
    assert bad["final_beats_stage1_on_mask_ssim"] and bad["final_beats_copy_on_mask_ssim"]
    assert not bad["final_beats_warp_on_mask_ssim"]
    assert not bad["final_beats_all_baselines_on_mask_ssim"] and not bad["pck_final_at_least_0.9"]
    counts = {"all": 10, "same_view": 3, "turned": 7}
    text = markdown(good, counts, checks, 64, quick=True)
    assert "| **PG2 final (Stage II)** | 0.9500 | 0.9500 | 0.9500 | 0.7500 |" in text
    assert "| real target renders (the regressor's ceiling) | – | – | – | – | – | – | 97.0% |" in (
        text
    )
    assert "3 in the same view, 7 with the figure turned" in text and "--quick" in text
    assert (
        "all three baselines on mask-SSIM over all pairs: **yes** (0.9500; the best baseline, "
        "piecewise-affine limb warp: 0.9400)" in text
    )
    assert "at least 90%: **yes** (93.0%" in text


def test_benchmark_view_table():
    from benchmarks.pose import view_markdown

    views = {
        "three_quarter": {"pairs": 4, "final": 0.5, "stage1": 0.25, "real": 1.0},
        "side": {"pairs": 2, "final": 0.75, "stage1": 0.5, "real": 0.875},
    }
    text = view_markdown(views)
    assert "| | three-quarter (4) | side (2) |" in text
    assert "| PG2 final (Stage II) | 50.0% | 75.0% |" in text
    assert "| real targets | 100.0% | 87.5% |" in text


def test_benchmark_table_and_speed_run_on_the_published_models(published_pose):
    from benchmarks.pose import speed, table

    result = table(quick=True, verbose=False, write_cards=False, pairs=12)
    assert result["pairs"]["all"] == 12
    assert result["pairs"]["same_view"] + result["pairs"]["turned"] == 12
    for method in ("final", "stage1", "copy", "warp"):
        cell = result["table"][method]["all"]
        assert 0 <= cell["pck"] <= 1 and -1 <= cell["mask_ssim"] <= 1, method
    views = result["by_view"]
    assert sum(v["pairs"] for v in views.values()) == 12
    assert all(0 <= v[m] <= 1 for v in views.values() for m in ("final", "stage1", "real"))
    assert "by the target's view" in result["markdown"]
    # The same numbers as the card's evaluation over all pairs.
    assert math.isfinite(result["table"]["real"]["all"]["pck"])
    assert set(result["verdicts"]) >= {
        "final_beats_all_baselines_on_mask_ssim",
        "pck_final_at_least_0.9",
    }
    fast = speed(quick=True, verbose=False)
    assert fast["one_transfer_ms"] > 0 and fast["sequence_30_ms"] > 0
    assert fast["verdicts"]["one transfer < 50 ms"] == (fast["one_transfer_ms"] < 50)
    assert fast["verdicts"]["30-frame sequence < 1 s"] == (fast["sequence_30_ms"] < 1000)
