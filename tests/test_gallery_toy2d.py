"""The lab's app-side logic without a browser: runs, views, replays, targets, figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
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


def test_live_view_shapes_and_figure_serialise():
    run = lab.new_run(SMALL, toy2d.builtin_target("moons"))
    lab.advance(run, 2)
    view = lab.live_view(run)
    assert view.points.shape == (lab.VIEW_POINTS, 2) == view.directions.shape
    assert view.field.shape == (lab.FIELD_RESOLUTION, lab.FIELD_RESOLUTION)
    assert view.manifold.shape == (lab.MANIFOLD_RESOLUTION, lab.MANIFOLD_RESOLUTION, 2)
    assert "energy_distance" in view.metrics
    fig = lab.run_figure(
        view, run.history, "t", {"field": False, "arrows": True, "manifold": False}
    )
    names = [trace.name for trace in fig.data]
    assert names[:3] == ["real", "G gradient", "generated"]
    assert "energy distance" in fig.layout.title.text
    assert "xaxis2" not in fig.to_dict()["layout"]  # a point cloud has no mode histogram
    fig.to_json()


def test_the_fast_live_figure_is_a_valid_figure():
    run = lab.new_run(SMALL, toy2d.builtin_target("grid"))
    lab.advance(run, 2)
    fast = lab.run_figure(lab.live_view(run), run.history, "A: minimax", {}, validate=False)
    checked = go.Figure(fast.to_dict())  # plotly's checks, which the live page skips
    assert [t.name for t in checked.data] == [t["name"] for t in fast.to_dict()["data"]]
    layout = checked.layout
    assert layout.xaxis.constrain == "domain" and layout.yaxis.scaleanchor == "x"
    assert {layout.xaxis3.anchor, layout.xaxis4.anchor} == {"y3", "y4"}  # losses | metrics
    assert layout.showlegend is False  # panel titles name the curves: nothing covers the title
    title = layout.title.text
    assert title.startswith("<b>A: minimax</b><br>") and "step 2" in title


def test_the_heatmap_fills_the_view_and_stray_points_stay_visible():
    target = toy2d.builtin_target("ring")
    points = np.array([[0.0, 0.0]] * 90 + [[30.0, 0.0]] * 10, dtype=np.float32)
    extent = lab.view_extent(target, points)
    assert extent == lab.square_extent(target, lab.ZOOMS[-1])  # zoomed out as far as it goes
    near = lab.view_extent(target, np.zeros((10, 2), dtype=np.float32))
    assert near == lab.square_extent(target, 1.0)
    view = lab.View(
        target,
        extent,
        np.zeros((4, 2)),
        points,
        np.zeros_like(points),
        np.zeros((5, 5)),
        np.zeros((3, 3, 2)),
        True,
        0,
        {},
    )
    traces = {t["name"]: t for t in lab.view_traces(view, {})}
    heat = traces["discriminator"]
    assert heat["x"][0] == extent[0] and heat["x"][-1] == extent[1]
    assert heat["y"][0] == extent[2] and heat["y"][-1] == extent[3]
    edge = traces["generated, outside the view (drawn on its edge)"]
    assert len(edge["x"]) == 10 and np.all(edge["x"] == extent[1])
    assert len(traces["generated"]["x"]) == 90


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


def test_a_table_row_being_filled_in_waits_instead_of_failing():
    rows = [
        {"x": 0, "y": 0, "std": 0.1, "weight": 1},
        {"x": None, "y": None, "std": None, "weight": None},  # just added
        {"x": 1, "y": float("nan"), "std": 0.1, "weight": 1},  # half typed
        {"x": 1, "y": 1, "std": 0.1, "weight": 1},
    ]
    waiting = lab.incomplete_rows(rows)
    assert waiting == [2, 3]
    target = lab.target_from_table(rows, skip=tuple(waiting))
    assert target.means == ((0.0, 0.0), (1.0, 1.0))
    with pytest.raises(ValueError, match="row 4"):
        lab.target_from_table([*rows[:3], {"x": "a", "y": 0, "std": 0.1, "weight": 1}], (2, 3))


def test_good_mixture_table_normalises_weights():
    target = lab.target_from_table(
        [{"x": 0, "y": 0, "std": 0.1, "weight": 3}, {"x": 1, "y": 1, "std": 0.2, "weight": 1}]
    )
    assert target.weights == (0.75, 0.25) and target.has_modes
