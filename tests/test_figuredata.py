"""Procedural people for pose transfer: determinism, keypoints on the drawn figure, joint limits,
identity splits, views and visibility, heatmaps, animation sequences, and clear refusals."""

import dataclasses
import math

import numpy as np
import pytest

from hub_models import figuredata as fd
from hub_models.figuredata import KEYPOINTS, Pose
from hub_models.imagedata import DataError

LIMITS = {**fd.JOINT_LIMITS, **fd.ROOT_LIMITS}
FACE = [KEYPOINTS.index(n) for n in ("nose", "r_eye", "l_eye")]


def samples(n: int, seed: int):
    """n (identity, pose) pairs from train identities, reproducibly."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield fd.identity(int(rng.integers(len(fd.SPLITS["train"])))), fd.random_pose(rng)


def within_limits(pose: Pose) -> bool:
    return all(lo <= getattr(pose, name) <= hi for name, (lo, hi) in LIMITS.items())


def test_renders_are_deterministic():
    person, pose = fd.identity(3), fd.random_pose(np.random.default_rng(5))
    first, again = fd.render(person, pose), fd.render(person, pose)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fd.identity(42) == fd.identity(42) != fd.identity(43)
    assert fd.random_pose(np.random.default_rng(9)) == fd.random_pose(np.random.default_rng(9))

    batch, same = fd.render_pairs(3, "train", seed=11), fd.render_pairs(3, "train", seed=11)
    for field in dataclasses.fields(batch):
        np.testing.assert_array_equal(getattr(batch, field.name), getattr(same, field.name))
    shorter = fd.render_pairs(2, "train", seed=11)  # item i depends on (seed, split, i) only
    np.testing.assert_array_equal(shorter.source, batch.source[:2])
    other = fd.render_pairs(3, "train", seed=12)
    assert not np.array_equal(other.source, batch.source)


@pytest.mark.parametrize("resolution", fd.RESOLUTIONS)
def test_shapes_types_and_frame_at_both_resolutions(resolution):
    for person, pose in samples(10, seed=resolution):
        image, points, visible = fd.render(person, pose, resolution)
        assert image.shape == (resolution, resolution, 3) and image.dtype == np.uint8
        assert points.shape == (18, 2) and points.dtype == np.float32
        assert visible.shape == (18,) and visible.dtype == bool
        assert ((points >= 0) & (points < resolution)).all()  # random poses stay in the picture
        only_points, only_visible = fd.keypoints(person, pose, resolution)
        np.testing.assert_array_equal(only_points, points)
        np.testing.assert_array_equal(only_visible, visible)
        assert fd.figure_mask(person, pose, resolution).shape == (resolution, resolution)
        assert fd.skeleton_image(points, visible, resolution).shape == image.shape
        assert fd.pose_heatmaps(points, visible, resolution).shape == (18, resolution, resolution)


def test_keypoints_scale_with_the_resolution():
    person, pose = fd.identity(8), fd.random_pose(np.random.default_rng(8))
    small, small_visible = fd.keypoints(person, pose, 64)
    large, large_visible = fd.keypoints(person, pose, 128)
    np.testing.assert_allclose(large, 2 * small, atol=1e-4)
    np.testing.assert_array_equal(large_visible, small_visible)


@pytest.mark.parametrize(("resolution", "count"), [(64, 40), (128, 12)])
def test_visible_keypoints_and_bone_midpoints_land_on_the_drawn_figure(resolution, count):
    for person, pose in samples(count, seed=100 + resolution):
        image, points, visible = fd.render(person, pose, resolution)
        empty = fd.background(person, resolution)
        mask = fd.figure_mask(person, pose, resolution)
        # Nothing is drawn outside the figure's mask.
        np.testing.assert_array_equal(image[mask == 0], empty[mask == 0])
        spots = [points[k] for k in np.flatnonzero(visible)]
        spots += [(points[a] + points[b]) / 2 for a, b in fd.LIMBS if visible[a] and visible[b]]
        assert len(spots) >= 10
        for x, y in spots:
            row, col = int(y), int(x)
            assert (image[row, col] != empty[row, col]).any(), (pose, x, y)
            # Antialiasing blends a limb's edge; the pixel must still be mostly the figure.
            assert mask[row, col] >= 0.4, (pose, x, y, mask[row, col])


def test_random_poses_respect_the_joint_limits_and_views():
    rng = np.random.default_rng(0)
    poses = [fd.random_pose(rng) for _ in range(500)]
    assert all(within_limits(p) for p in poses)
    assert all(-180 < p.yaw <= 180 for p in poses)
    assert {p.view for p in poses} == set(fd.VIEWS)
    for view in fd.VIEWS:
        assert all(fd.random_pose(rng, view).view == view for _ in range(25))
    for name, (lo, hi) in fd.JOINT_LIMITS.items():  # human ranges, in degrees
        assert -60 <= lo < hi <= 180, name
    assert fd.JOINT_LIMITS["r_elbow"] == fd.JOINT_LIMITS["l_elbow"] == (0.0, 145.0)
    assert fd.JOINT_LIMITS["r_knee"][0] == 0.0  # knees and elbows do not bend backwards


def test_clip_pose_brings_every_joint_inside_its_limits():
    wild = Pose(yaw=540.0, **{name: 1e3 for name in LIMITS})
    clipped = fd.clip_pose(wild)
    assert within_limits(clipped)
    assert all(getattr(clipped, name) == hi for name, (_, hi) in LIMITS.items())
    assert clipped.yaw == 180.0 and clipped.view == "back"
    low = fd.clip_pose(Pose(yaw=-400.0, **{name: -1e3 for name in LIMITS}))
    assert all(getattr(low, name) == lo for name, (lo, _) in LIMITS.items())
    assert math.isclose(low.yaw, -40.0)
    tame = fd.random_pose(np.random.default_rng(1))
    assert fd.clip_pose(tame) == tame
    # A pose outside the limits is refused by name, pointing at the fix.
    with pytest.raises(DataError, match=r"r_elbow=-30 \(limits 0\.\.145\).*clip_pose"):
        fd.render(fd.identity(0), Pose(r_elbow=-30.0))


def test_identity_splits_never_overlap_or_mix():
    names = list(fd.SPLITS)
    assert {"train", "test"} <= set(names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not set(fd.identities(a)) & set(fd.identities(b)), (a, b)
    test_id = fd.SPLITS["test"][0]
    assert fd.split_of(0) == "train" and fd.split_of(test_id) == "test"
    gap = fd.SPLITS["train"].stop  # between the ranges: no one
    for nobody in (gap, -1):
        with pytest.raises(DataError, match="in no split"):
            fd.identity(nobody)
    with pytest.raises(DataError, match="not in the train split"):
        fd.pair(test_id, np.random.default_rng(0), split="train")

    train = fd.render_pairs(8, "train", seed=1)
    test = fd.render_pairs(8, "test", seed=1)
    assert all(i in fd.SPLITS["train"] for i in train.identity_ids.tolist())
    assert all(i in fd.SPLITS["test"] for i in test.identity_ids.tolist())


def test_render_pairs_are_one_person_in_two_poses():
    batch = fd.render_pairs(6, "val", seed=3)
    n, r = 6, 64
    assert batch.source.shape == batch.target.shape == (n, r, r, 3)
    assert batch.source.dtype == np.uint8
    assert batch.source_keypoints.shape == (n, 18, 2) and batch.target_visible.shape == (n, 18)
    assert batch.source_view.dtype == np.int64
    assert set(batch.source_view.tolist()) | set(batch.target_view.tolist()) <= {0, 1, 2, 3}
    assert (batch.source_view != batch.target_view).any()
    assert not np.array_equal(batch.source_keypoints, batch.target_keypoints)
    for i, person_id in enumerate(batch.identity_ids.tolist()):
        corner = fd.background(fd.identity(person_id))[0, 0]  # the same person's backdrop
        np.testing.assert_array_equal(batch.source[i, 0, 0], corner)
        np.testing.assert_array_equal(batch.target[i, 0, 0], corner)

    chosen = fd.pair(7, np.random.default_rng(2))
    assert chosen.identity == fd.identity(7) and chosen.source != chosen.target


def test_views_change_what_is_visible():
    person = fd.identity(5)
    front = fd.keypoints(person, Pose(yaw=0))[1]
    assert front.all()
    for yaw in (180.0, 150.0, -140.0):  # from behind: no face
        visible = fd.keypoints(person, Pose(yaw=yaw))[1]
        assert not visible[FACE].any(), yaw
    rng = np.random.default_rng(4)
    for _ in range(30):
        assert not fd.keypoints(person, fd.random_pose(rng, "back"))[1][FACE].any()

    right = dict(zip(KEYPOINTS, fd.keypoints(person, Pose(yaw=90))[1], strict=True))
    assert right["r_eye"] and right["nose"] and right["r_elbow"] and right["r_wrist"]
    assert not (right["l_eye"] or right["l_ear"] or right["l_elbow"] or right["l_wrist"])
    left = dict(zip(KEYPOINTS, fd.keypoints(person, Pose(yaw=-90))[1], strict=True))
    assert left["l_eye"] and left["l_wrist"] and not (left["r_eye"] or left["r_wrist"])


def test_the_torso_narrows_in_profile_and_shows_its_back_from_behind():
    arms_up = {"r_shoulder_flex": 170.0, "l_shoulder_flex": 170.0}  # clear of the chest

    def chest_width(yaw: float) -> float:
        pose = Pose(yaw=yaw, **arms_up)
        points = fd.keypoints(fd.identity(5), pose, 128)[0]
        row = int((points[KEYPOINTS.index("neck"), 1] + points[KEYPOINTS.index("r_hip"), 1]) / 2)
        return float(fd.figure_mask(fd.identity(5), pose, 128)[row].sum())

    assert chest_width(90) < 0.8 * chest_width(0)
    assert chest_width(45) < chest_width(0)

    yellow = (250, 220, 0)
    person = dataclasses.replace(
        fd.identity(5),
        shirt=(30, 60, 160),
        shirt_accent=yellow,
        front_pattern="stripes",
        back_pattern="plain",
        background_top=(40, 40, 40),
        background_bottom=(40, 40, 40),
    )

    def yellow_pixels(yaw: float) -> int:
        image = fd.render(person, Pose(yaw=yaw), 128)[0].astype(int)
        return int((np.abs(image - yellow).max(-1) < 30).sum())

    assert yellow_pixels(0) > 20
    assert yellow_pixels(180) == 0


def test_heatmaps_peak_at_visible_keypoints_and_vanish_for_hidden_ones():
    person = fd.identity(1)
    for resolution in fd.RESOLUTIONS:
        _, points, visible = fd.render(person, Pose(yaw=90, r_elbow=60.0), resolution)
        assert not visible.all()  # the far side is hidden
        maps = fd.pose_heatmaps(points, visible, resolution)
        assert maps.dtype == np.float32 and maps.shape == (18, resolution, resolution)
        for k in range(18):
            if visible[k]:
                row, col = np.unravel_index(np.argmax(maps[k]), maps[k].shape)
                # The peak's pixel holds the keypoint (either one, on a boundary between two).
                centre = np.array([col + 0.5, row + 0.5])
                assert (np.abs(centre - points[k]) <= 0.5 + 1e-4).all(), (k, centre, points[k])
                assert 0.8 < maps[k].max() <= 1.0
            else:
                assert not maps[k].any()
    wide = fd.pose_heatmaps(points, visible, 128, sigma=6.0)
    assert wide.sum() > maps.sum()


def test_skeleton_image_draws_the_visible_limbs_in_colour():
    _, points, visible = fd.render(fd.identity(2), Pose(), 64)
    picture = fd.skeleton_image(points, visible, 64)
    assert picture.dtype == np.uint8 and picture[0, 0].tolist() == [0, 0, 0]
    for a, b in fd.LIMBS:
        x, y = (points[a] + points[b]) / 2
        assert picture[int(y), int(x)].any()
    assert not fd.skeleton_image(points, np.zeros(18, bool), 64).any()


@pytest.mark.parametrize("name", fd.SEQUENCES)
def test_sequences_loop_smoothly_within_the_limits(name):
    resolution = 64
    poses = fd.sequence(name)
    assert len(poses) == 30 and len(fd.sequence(name, frames=7)) == 7
    assert all(within_limits(p) for p in poses)
    person = fd.identity(12)
    track = np.stack([fd.keypoints(person, p, resolution)[0] for p in poses])
    steps = np.linalg.norm(np.diff(track, axis=0, append=track[:1]), axis=-1)
    assert steps.max() < 0.1 * resolution  # including the step from the last frame to the first
    assert np.ptp(track, axis=0).max() > 2  # and something moves
    views = {p.view for p in poses}
    expected = {"walk": {"side"}, "wave": {"front"}, "jump": {"front"}, "turn": set(fd.VIEWS)}
    assert views == expected[name]


def test_bad_arguments_raise_clear_errors():
    rng = np.random.default_rng(0)
    person, pose = fd.identity(0), Pose()
    points, visible = fd.keypoints(person, pose)
    with pytest.raises(DataError, match=r"unknown view 'top'; choose one of front, three_quarter"):
        fd.random_pose(rng, "top")
    with pytest.raises(DataError, match=r"unknown sequence 'dance'; choose one of walk"):
        fd.sequence("dance")
    with pytest.raises(DataError, match="frames must be an integer of at least 2"):
        fd.sequence("walk", frames=1)
    for call in (
        lambda: fd.render(person, pose, 100),
        lambda: fd.keypoints(person, pose, 32),
        lambda: fd.background(person, 256),
        lambda: fd.pose_heatmaps(points, visible, 96),
        lambda: fd.skeleton_image(points, visible, 0),
        lambda: fd.render_pairs(2, "train", 0, 63),
    ):
        with pytest.raises(DataError, match="resolution must be one of 64, 128"):
            call()
    for call in (lambda: fd.render_pairs(2, "dev"), lambda: fd.identities("dev")):
        with pytest.raises(DataError, match=r"unknown split 'dev'; choose one of train"):
            call()
    with pytest.raises(DataError, match="n must be"):
        fd.render_pairs(0, "train")
    with pytest.raises(DataError, match="sigma must be a positive"):
        fd.pose_heatmaps(points, visible, 64, sigma=0)
    with pytest.raises(DataError, match=r"expected \(18, 2\) keypoints"):
        fd.pose_heatmaps(points[:17], visible[:17], 64)
    with pytest.raises(DataError, match="unknown hair_style 'mohawk'"):
        dataclasses.replace(person, hair_style="mohawk")
    with pytest.raises(DataError, match="finite"):
        Pose(yaw=float("nan"))
