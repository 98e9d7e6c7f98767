"""2D mode-collapse lab: replay published runs, train live, compare two objectives."""

from __future__ import annotations

import time
from collections import deque

import streamlit as st

from gallery import toy2d_lab as lab
from gallery.common import device, load_published, published_file, seed, source_caption
from gallery.models import models_link_ui
from hub_models import runfiles, toy2d
from hub_models.base import CheckpointError
from hub_models.objectives import OBJECTIVES
from hub_models.registry import FAMILIES
from hub_models.toy2d import VARIANTS

FAMILY = FAMILIES["toy2d"]
TARGET_CHOICES = {
    "ring": "ring (8 modes)",
    "grid": "grid (25 modes)",
    "unequal": "unequal weights (6 modes)",
    "spiral": "spiral",
    "moons": "two moons",
    "table": "your mixture (table)",
    "csv": "your points (CSV)",
}
DEFAULT_TABLE = [
    {"x": -1.0, "y": 0.0, "std": 0.05, "weight": 1.0},
    {"x": 1.0, "y": 0.0, "std": 0.05, "weight": 1.0},
    {"x": 0.0, "y": 1.5, "std": 0.1, "weight": 0.5},
]
SPEEDS = {"10": 10, "30": 30, "100": 100, "300": 300, "max": None}  # D+G steps per second
DEFAULT_OBJECTIVES = {"A": "minimax", "B": "wgan-gp"}

st.title("2D mode-collapse lab")
models_link_ui("toy2d")
st.write(
    "A generator (orange points) learns to imitate the grey points. The background is the "
    "discriminator's verdict, green lines show where the generator's loss pushes each point, "
    "and the blue mesh is how the generator warps a grid of its noise. Orange diamonds on the "
    "edge stand for generated points outside the view. Count the modes it keeps."
)


def kept(widget, label: str, key: str, default, **kwargs):
    """``widget`` whose value outlives it. Streamlit forgets the state of a widget that a run
    does not draw (configuration B while one run trains, every live setting during a replay),
    so the page keeps a copy and hands it back when the widget is drawn again."""
    saved = st.session_state.setdefault("lab_saved", {})
    if key not in st.session_state:
        st.session_state[key] = saved.get(key, default)
    value = widget(label, key=key, **kwargs)
    saved[key] = value
    return value


def show_ui() -> dict[str, bool]:
    cols = st.columns(3)
    return {
        "field": kept(cols[0].checkbox, "discriminator heatmap", "show_field", True),
        "arrows": kept(cols[1].checkbox, "generator gradients", "show_arrows", True),
        "manifold": kept(cols[2].checkbox, "latent grid", "show_manifold", True),
    }


# ----------------------------------------------------------------------------- replay


@st.cache_resource(show_spinner="Loading replay…")
def cached_replay(name: str):
    model, where = load_published("toy2d", name, "cpu")
    replay = published_file("toy2d", name, runfiles.REPLAY)
    if replay is None:
        raise CheckpointError(f"{where.label} has no {runfiles.REPLAY} to replay")
    return lab.load_replay(replay, model.config), where


@st.cache_resource(show_spinner=False)
def cached_animation(name: str, show_key: tuple, title: str):
    replay, _ = cached_replay(name)
    return lab.replay_animation(replay, title, dict(show_key))


def replay_ui(show: dict[str, bool]) -> None:
    target = kept(
        st.radio, "Benchmark", "replay_target", "ring", options=["ring", "grid"], horizontal=True
    )
    slugs = [slug for slug, _, _ in VARIANTS]
    titles = {slug: title for slug, title, _ in VARIANTS}
    featured = FAMILY.featured_model.name.split("-", 2)[-1]  # e.g. "minimax"
    c1, c2 = st.columns(2)
    left = kept(
        c1.selectbox, "Left", "replay_left", "vanilla", options=slugs, format_func=titles.get
    )
    right = kept(
        c2.selectbox, "Right", "replay_right", featured, options=slugs, format_func=titles.get
    )
    for side, column, slug in (("left", c1, left), ("right", c2, right)):
        name = f"toy2d-{target}-{slug}"
        with column:
            try:
                _, where = cached_replay(name)
            except CheckpointError as error:
                st.error(str(error))
                continue
            fig = cached_animation(name, tuple(sorted(show.items())), titles[slug])
            # the side is part of the key: the same run may be shown on both sides
            st.plotly_chart(fig, key=f"replay_{side}_{name}", config={"displayModeBar": False})
            source_caption(where)
    st.caption(lab.JARGON)


# ----------------------------------------------------------------------------- live


def table_target() -> toy2d.Target | None:
    """The mixture typed into the table; rows still being filled in wait, left out."""
    saved = st.session_state.setdefault("lab_saved", {})
    if "mixture_table" not in st.session_state:  # the editor starts from the last rows seen
        saved["table_base"] = saved.get("table_rows", DEFAULT_TABLE)
    rows = st.data_editor(
        saved.get("table_base", DEFAULT_TABLE),
        num_rows="dynamic",
        key="mixture_table",
        column_config={"std": {"help": "standard deviation"}},
    )
    rows = list(rows)
    saved["table_rows"] = rows
    waiting = lab.incomplete_rows(rows)
    if waiting:
        numbers = ", ".join(str(n) for n in waiting)
        st.caption(f"Row(s) {numbers} left out until x, y, std and weight are all filled in.")
    try:
        return lab.target_from_table(rows, skip=tuple(waiting))
    except ValueError as error:
        st.error(f"Mixture table: {error}. The run keeps its current target.")
        return None


def target_ui() -> toy2d.Target | None:
    """The target the settings ask for; None while there is none yet (the run keeps its own)."""
    choice = kept(
        st.selectbox,
        "Target distribution",
        "live_target",
        "ring",
        options=list(TARGET_CHOICES),
        format_func=TARGET_CHOICES.get,
    )
    if choice == "table":
        return table_target()
    if choice == "csv":
        upload = st.file_uploader(
            "CSV with two columns x,y (a header row is fine)", type=["csv", "txt"], key="points_csv"
        )
        if upload is None:
            st.info("Upload a CSV of points to train on them.")
            return None
        try:
            return lab.target_from_csv(upload.getvalue(), upload.name)
        except ValueError as error:
            st.error(f"Could not use {upload.name}: {error}")
            return None
    return toy2d.builtin_target(choice)


def config_ui(prefix: str) -> toy2d.Toy2DConfig:
    objective = kept(
        st.selectbox,
        "Objective",
        f"{prefix}_objective",
        DEFAULT_OBJECTIVES[prefix],
        options=OBJECTIVES,
    )
    c1, c2, c3 = st.columns(3)
    unrolled = kept(
        c1.number_input,
        "unroll k",
        f"{prefix}_unrolled",
        0,
        min_value=0,
        max_value=10,
        help="Unrolled GAN: G sees D after k look-ahead updates.",
    )
    pack = kept(
        c2.selectbox,
        "pack m",
        f"{prefix}_pack",
        1,
        options=[1, 2, 4, 8],
        help="PacGAN: D judges m samples at once.",
    )
    spectral = kept(c3.checkbox, "spectral norm", f"{prefix}_sn", False)
    with st.expander("Architecture and optimiser"):
        st.caption(
            "Learning rates, D steps and batch size apply to the running run; "
            "width, depth and noise dimension need a new run."
        )
        a1, a2, a3 = st.columns(3)
        width = kept(
            a1.select_slider, "width", f"{prefix}_width", 128, options=[16, 32, 64, 128, 256]
        )
        depth = kept(a2.slider, "depth", f"{prefix}_depth", 3, min_value=1, max_value=5)
        noise = kept(a3.slider, "noise dimension", f"{prefix}_noise", 2, min_value=1, max_value=16)
        b1, b2, b3 = st.columns(3)
        rates = [1e-4, 3e-4, 1e-3, 3e-3]
        lr_g = kept(b1.select_slider, "G learning rate", f"{prefix}_lrg", 1e-3, options=rates)
        lr_d = kept(b2.select_slider, "D learning rate", f"{prefix}_lrd", 1e-3, options=rates)
        d_steps = kept(
            b3.slider, "D steps per G step", f"{prefix}_dsteps", 1, min_value=1, max_value=5
        )
        batch = kept(
            st.select_slider, "batch size", f"{prefix}_batch", 256, options=[64, 128, 256, 512]
        )
    return toy2d.Toy2DConfig(
        objective=objective,
        unrolled_steps=int(unrolled),
        pack=int(pack),
        spectral_norm=spectral,
        g_width=width,
        d_width=width,
        g_depth=depth,
        d_depth=depth,
        noise_dim=noise,
        lr_g=lr_g,
        lr_d=lr_d,
        d_steps=d_steps,
        batch_size=batch,
        seed=seed(),
    )


def start_run(prefix: str, config: toy2d.Toy2DConfig, target: toy2d.Target) -> lab.LiveRun:
    """A new run for ``prefix`` at step 0; the one it replaces stops."""
    old = st.session_state.pop(f"lab_run_{prefix}", None)
    if old is not None:
        old.close()
    run = lab.LiveRun(config, target, device())
    st.session_state[f"lab_run_{prefix}"] = run
    return run


def session_run(
    prefix: str, name: str, config: toy2d.Toy2DConfig, target: toy2d.Target | None
) -> lab.LiveRun | None:
    """The session's run for ``prefix``. A change that needs a new run restarts it only while
    nothing would be lost (no update yet); otherwise the run goes on and a note offers the
    restart. None: no run and no target to start one."""
    run = st.session_state.get(f"lab_run_{prefix}")
    if run is not None and not run.alive:
        minutes = lab.CLOSE_AFTER_SECONDS / 60
        st.info(f"{name}: the run had stopped (runs close after {minutes:.0f} minutes unwatched).")
        run = None
    if run is None:
        return None if target is None else start_run(prefix, config, target)
    reasons = lab.restart_reasons(run.config, run.target, config, target)
    if run.device != device():
        reasons.append("device")
    if not reasons:
        return run
    new_target = target or run.target
    if run.untouched:
        return start_run(prefix, config, new_target)
    with st.container(border=True):
        st.markdown(
            f"**{name}**: a new {', '.join(reasons)} needs a new run from step 0. "
            f"Until you restart, the run goes on with its old settings (step {run.step:,})."
        )
        if st.button("Restart with these settings", key=f"restart_{prefix}"):
            start_run(prefix, config, new_target)
            st.rerun()
    return run


def pause_others(shown: str) -> None:
    """Runs not on screen pause (configuration B keeps its run while one run is shown)."""
    for prefix in "AB":
        run = st.session_state.get(f"lab_run_{prefix}")
        if prefix not in shown and run is not None and run.alive:
            run.pause()


def controls_ui(
    runs: dict[str, lab.LiveRun], configs: dict[str, toy2d.Toy2DConfig], target
) -> tuple[bool, float | None]:
    """Play/pause, single D and G steps, restart, speed; returns (playing, steps/s cap)."""
    c1, c2, c3, c4, c5 = st.columns([1, 1, 1, 1.2, 2.4])
    playing = c1.toggle("Play", key="playing")
    if c2.button("D step", help="one discriminator update", disabled=playing):
        for run in runs.values():
            run.update("d")
    if c3.button("G step", help="one generator update", disabled=playing):
        for run in runs.values():
            run.update("g")
    if c4.button("Restart", help="start again from step 0 with the settings above"):
        for prefix, run in runs.items():
            runs[prefix] = start_run(prefix, configs[prefix], target or run.target)
    speed = kept(
        c5.select_slider,
        "speed (D+G steps per second)",
        "speed",
        "max",
        options=list(SPEEDS),
        help="max: as many as this server manages. Changing it keeps the run.",
    )
    return playing, SPEEDS[speed]


def draw_runs(snapshots: dict[str, lab.Snapshot], show, compare: bool, frame: int) -> list[str]:
    """Each run in its column: its picture while playing, else the interactive figure;
    returns each run's status."""
    status = []
    columns = st.columns(len(snapshots))
    for column, (prefix, snapshot) in zip(columns, snapshots.items(), strict=True):
        title = f"{prefix}: {snapshot.config.label}" if compare else snapshot.config.label
        with column:
            if snapshot.playing and snapshot.picture is not None:
                details = "  \n".join(lab.title_lines(snapshot.view))
                st.markdown(f"**{title}**  \n{details}")
                st.html(lab.picture_html(snapshot, frame, alt=title))
            else:
                history = list(snapshot.history)
                figure = lab.run_figure(
                    snapshot.view, history, title, show, compact=compare, validate=False
                )
                st.plotly_chart(figure, key=f"live_{prefix}", config={"displayModeBar": False})
        rate = f"{snapshot.steps_per_second:,.0f} steps/s" if snapshot.playing else "paused"
        status.append(f"{prefix + ': ' if compare else ''}step {snapshot.step:,} · {rate}")
    return status


def live_ui(show: dict[str, bool], compare: bool) -> None:
    shown = "AB" if compare else "A"
    pause_others(shown)
    target = target_ui()
    columns = st.columns(2) if compare else [st.container()]
    configs = {}
    for column, prefix in zip(columns, shown, strict=True):
        with column:
            if compare:
                st.markdown(f"**Configuration {prefix}**")
            configs[prefix] = config_ui(prefix)
    names = {p: f"Configuration {p}" if compare else "The run" for p in shown}
    runs = {p: session_run(p, names[p], configs[p], target) for p in shown}
    if any(run is None for run in runs.values()):
        return  # no target yet, and no run to keep showing: the message above says why
    playing, cap = controls_ui(runs, configs, target)
    # learning rates, D steps, batch size and speed apply to the running runs
    settings = {p: lab.Settings.of(configs[p], playing, cap) for p in shown}
    # Playing: a picture per run and frame, drawn by the run's worker and sent inline (a
    # browser shows it in a few milliseconds; no media file to fetch, none to miss when the
    # next frame replaces it). Paused: the interactive figure (hover, zoom).
    width = lab.PICTURE_WIDTH_COMPACT if compare else lab.PICTURE_WIDTH
    picture = lab.PictureSpec.of(show, width) if playing else None

    @st.fragment(run_every=lab.FRAME_SECONDS if playing else None)
    def live_frames() -> None:
        try:
            for prefix, run in runs.items():
                run.configure(settings[prefix])  # also tells the worker someone watches
            with st.spinner("Starting the trainer…", show_time=True):
                snapshots = {
                    p: run.latest(fresh=not playing, picture=picture) for p, run in runs.items()
                }
        except lab.LiveRunError as error:
            st.error(f"{error}. Press Restart to start a new run.")
            return
        times = st.session_state.setdefault("lab_frames", deque(maxlen=20))
        if playing:  # when the latest frames were drawn, for frames/s
            times.append(time.monotonic())
        else:
            times.clear()
        frame = st.session_state["lab_frame_count"] = st.session_state.get("lab_frame_count", 0) + 1
        status = draw_runs(snapshots, show, compare, frame)
        fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9) if len(times) > 1 else 0.0
        status.append(f"frame {frame:,}" + (f" · {fps:.1f} frames/s" if playing else ""))
        st.caption(" · ".join(status))

    live_frames()
    st.caption(lab.JARGON)


@st.cache_resource(show_spinner=False)
def worker_server_started() -> bool:
    lab.start_worker_server()
    return True


worker_server_started()  # once per server: the first live run then starts without waiting
mode = kept(
    st.radio,
    "Mode",
    "lab_mode",
    "Replay published runs",
    options=["Replay published runs", "Train live", "Side by side"],
    horizontal=True,
    help="Replays are instant: frames saved while the published models trained.",
)
show = show_ui()
if mode == "Replay published runs":
    pause_others("")
    replay_ui(show)
else:
    live_ui(show, compare=mode == "Side by side")
