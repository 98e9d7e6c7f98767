"""The lab's app-side logic without a browser: runs, views, replays, targets, figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gallery import toy2d_lab as lab
from hub_models import toy2d

SMALL = toy2d.Toy2DConfig(g_width=16, d_width=16, g_depth=1, d_depth=1, batch_size=32)


def test_same_seed_same_run_and_steps_count():
    a = lab.new_run(SMALL, toy2d.builtin_target("ring"))
    b = lab.new_run(SMALL, toy2d.builtin_target("ring"))
    lab.advance(a, 5)
    lab.advance(b, 5)
    assert a.step == b.step == 5
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.history[-1]["modes_total"] == 8


def test_single_updates_move_only_their_network():
    run = lab.new_run(SMALL, toy2d.builtin_target("grid"))
    g_before = [p.clone() for p in run.model.generator.parameters()]
    d_before = [p.clone() for p in run.model.discriminator.parameters()]
    lab.single_update(run, "d")
    assert all(
        torch.equal(a, b) for a, b in zip(g_before, run.model.generator.parameters(), strict=True)
    )
    assert not all(
        torch.equal(a, b)
        for a, b in zip(d_before, run.model.discriminator.parameters(), strict=True)
    )
    assert run.step == 0
    lab.single_update(run, "g")
    assert run.step == 1
    assert not all(
        torch.equal(a, b) for a, b in zip(g_before, run.model.generator.parameters(), strict=True)
    )


def test_live_view_shapes_and_figures_serialise():
    run = lab.new_run(SMALL, toy2d.builtin_target("moons"))
    lab.advance(run, 2)
    view = lab.live_view(run)
    assert view.points.shape == (lab.VIEW_POINTS, 2) == view.directions.shape
    assert view.field.shape == (lab.FIELD_RESOLUTION, lab.FIELD_RESOLUTION)
    assert view.manifold.shape == (lab.MANIFOLD_RESOLUTION, lab.MANIFOLD_RESOLUTION, 2)
    assert "energy_distance" in view.metrics
    fig = lab.view_figure(view, "t", {"field": False, "arrows": True, "manifold": False})
    names = [trace.name for trace in fig.data]
    assert names == ["real", "G gradient", "generated"]
    assert "energy distance" in fig.layout.title.text
    lab.curves_figure(run.history).to_json()
    lab.mode_histogram(view).to_json()


def test_replay_views_come_from_saved_frames(tmp_path):
    from safetensors.torch import save_file

    frames = 3
    save_file(
        {
            "points": torch.zeros(frames, 4, 2, dtype=torch.float16),
            "directions": torch.ones(frames, 4, 2, dtype=torch.float16),
            "field": torch.zeros(frames, 5, 5, dtype=torch.float16),
            "manifold": torch.zeros(frames, 3, 3, 2, dtype=torch.float16),
            "metrics": torch.tensor([[1, 8, 0.5, 2.0]] * frames, dtype=torch.float32),
            "step": torch.tensor([10, 20, 30]),
        },
        str(tmp_path / "replay.safetensors"),
    )
    replay = lab.load_replay(tmp_path / "replay.safetensors", toy2d.Toy2DConfig(target="ring"))
    assert len(replay) == 3
    view = replay.view(2)
    assert view.step == 30 and view.metrics["modes_covered"] == 1
    assert [c["step"] for c in replay.curves()] == [10, 20, 30]
    animation = lab.replay_animation(replay, "t")
    assert len(animation.frames) == 3


def test_mode_histogram_counts_high_quality_samples():
    target = toy2d.builtin_target("ring")
    points = np.array([target.means[0]] * 3 + [target.means[1]] + [(5.0, 5.0)], dtype=np.float32)
    view = lab.View(
        target,
        target.extent(),
        points,
        points,
        np.zeros_like(points),
        np.zeros((2, 2)),
        np.zeros((2, 2, 2)),
        True,
        0,
        {},
    )
    bars = lab.mode_histogram(view).data[0]
    assert list(bars.y[:3]) == [3, 1, 0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "at least one mode"),
        ([{"x": "a", "y": 0, "std": 0.1, "weight": 1}], "row 1"),
        ([{"x": 0, "y": 0, "std": -1, "weight": 1}], "stds must be > 0"),
        ([{"x": 0, "y": float("inf"), "std": 0.1, "weight": 1}], "not finite"),
        ([{"x": 0, "y": 0, "std": 0.1, "weight": 0}], "positive sum"),
    ],
)
def test_bad_mixture_tables_are_refused(rows, message):
    with pytest.raises(ValueError, match=message):
        lab.target_from_table(rows)


def test_good_mixture_table_normalises_weights():
    target = lab.target_from_table(
        [{"x": 0, "y": 0, "std": 0.1, "weight": 3}, {"x": 1, "y": 1, "std": 0.2, "weight": 1}]
    )
    assert target.weights == (0.75, 0.25) and target.has_modes
