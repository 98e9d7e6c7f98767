"""2D mode-collapse lab: replay published runs, train live, compare two objectives."""

from __future__ import annotations

import streamlit as st

from gallery import toy2d_lab as lab
from gallery.common import device, load_published, published_file, seed, source_caption
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

st.title("2D mode-collapse lab")
st.write(
    "A generator (orange) learns to imitate the grey points. The background is the "
    "discriminator's verdict, green lines show where the generator's loss pushes each point, "
    "and the blue mesh is how the generator warps a grid of its noise. Count the modes it keeps."
)


def show_ui() -> dict[str, bool]:
    cols = st.columns(3)
    return {
        "field": cols[0].checkbox("discriminator heatmap", True, key="show_field"),
        "arrows": cols[1].checkbox("generator gradients", True, key="show_arrows"),
        "manifold": cols[2].checkbox("latent grid", True, key="show_manifold"),
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
    target = st.radio("Benchmark", ["ring", "grid"], horizontal=True, key="replay_target")
    slugs = [slug for slug, _, _ in VARIANTS]
    titles = {slug: title for slug, title, _ in VARIANTS}
    c1, c2 = st.columns(2)
    left = c1.selectbox(
        "Left", slugs, index=slugs.index("vanilla"), format_func=titles.get, key="replay_left"
    )
    featured = FAMILY.featured_model.name.split("-", 2)[-1]  # e.g. "pacgan4"
    right = c2.selectbox(
        "Right", slugs, index=slugs.index(featured), format_func=titles.get, key="replay_right"
    )
    for column, slug in ((c1, left), (c2, right)):
        name = f"toy2d-{target}-{slug}"
        with column:
            try:
                replay, where = cached_replay(name)
            except CheckpointError as error:
                st.error(str(error))
                continue
            fig = cached_animation(name, tuple(sorted(show.items())), titles[slug])
            st.plotly_chart(fig, key=f"replay_{name}", config={"displayModeBar": False})
            last = replay.view(len(replay) - 1)
            st.plotly_chart(lab.mode_histogram(last), key=f"hist_{name}")
            st.plotly_chart(lab.curves_figure(replay.curves()), key=f"curves_{name}")
            source_caption(where)


# ----------------------------------------------------------------------------- live


def target_ui() -> toy2d.Target | None:
    choice = st.selectbox(
        "Target distribution",
        list(TARGET_CHOICES),
        format_func=TARGET_CHOICES.get,
        key="live_target",
    )
    if choice == "table":
        rows = st.data_editor(
            DEFAULT_TABLE,
            num_rows="dynamic",
            key="mixture_table",
            column_config={"std": {"help": "standard deviation"}},
        )
        try:
            return lab.target_from_table(list(rows))
        except ValueError as error:
            st.error(f"Mixture table: {error}")
            return None
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


def config_ui(prefix: str, objective: str) -> toy2d.Toy2DConfig:
    objective = st.selectbox(
        "Objective",
        OBJECTIVES,
        key=f"{prefix}_objective",
        index=OBJECTIVES.index(objective),
    )
    c1, c2, c3 = st.columns(3)
    unrolled = c1.number_input(
        "unroll k",
        0,
        10,
        0,
        key=f"{prefix}_unrolled",
        help="Unrolled GAN: G sees D after k look-ahead updates.",
    )
    pack = c2.selectbox(
        "pack m", [1, 2, 4, 8], key=f"{prefix}_pack", help="PacGAN: D judges m samples at once."
    )
    spectral = c3.checkbox("spectral norm", key=f"{prefix}_sn")
    with st.expander("Architecture and optimiser"):
        a1, a2, a3 = st.columns(3)
        width = a1.select_slider("width", [16, 32, 64, 128, 256], 128, key=f"{prefix}_width")
        depth = a2.slider("depth", 1, 5, 3, key=f"{prefix}_depth")
        noise = a3.slider("noise dimension", 1, 16, 2, key=f"{prefix}_noise")
        b1, b2, b3 = st.columns(3)
        lr_g = b1.select_slider(
            "G learning rate", [1e-4, 3e-4, 1e-3, 3e-3], 1e-3, key=f"{prefix}_lrg"
        )
        lr_d = b2.select_slider(
            "D learning rate", [1e-4, 3e-4, 1e-3, 3e-3], 1e-3, key=f"{prefix}_lrd"
        )
        d_steps = b3.slider("D steps per G step", 1, 5, 1, key=f"{prefix}_dsteps")
        batch = st.select_slider("batch size", [64, 128, 256, 512], 256, key=f"{prefix}_batch")
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


def current_run(key: str, config: toy2d.Toy2DConfig, target: toy2d.Target) -> lab.LabRun:
    """The session's run for ``key``; a changed config or target starts a fresh one."""
    run = st.session_state.get(key)
    fresh = (
        run is None
        or run.config != config
        or run.target != target
        or str(next(run.model.parameters()).device) != device()
    )
    if fresh:
        run = lab.new_run(config, target, device())
        st.session_state[key] = run
    return run


def live_ui(show: dict[str, bool], compare: bool) -> None:
    target = target_ui()
    if target is None:
        return
    columns = st.columns(2) if compare else [st.container()]
    configs = []
    for column, prefix, default in zip(columns, ("A", "B"), ("minimax", "wgan-gp"), strict=False):
        with column:
            if compare:
                st.markdown(f"**Configuration {prefix}**")
            configs.append(config_ui(prefix, default))
    runs = [current_run(f"lab_run_{p}", c, target) for p, c in zip("AB", configs, strict=False)]

    c1, c2, c3, c4, c5 = st.columns([1, 1, 1, 1, 2])
    playing = c1.toggle("Play", key="playing")
    if c2.button("D step", help="one discriminator update", disabled=playing):
        for run in runs:
            lab.single_update(run, "d")
    if c3.button("G step", help="one generator update", disabled=playing):
        for run in runs:
            lab.single_update(run, "g")
    if c4.button("Reset"):
        for p in "AB":
            st.session_state.pop(f"lab_run_{p}", None)
        st.rerun()
    speed = c5.select_slider(
        "speed (iterations per second)",
        ["slow: 10", "50", "100", "250", "max"],
        "max",
        key="speed",
        help="max: as many as fit in each 200 ms frame on this machine",
    )
    pace = st.session_state.setdefault("lab_pace", lab.Pace())
    pace.max_per_second = None if speed == "max" else int(speed.split()[-1])

    @st.fragment(run_every=lab.FRAME_SECONDS if playing else None)
    def live_frames() -> None:
        if st.session_state.get("playing"):
            views = lab.play_frame(runs, pace)
        else:
            views = [lab.live_view(run) for run in runs]
        for column, run, view, name in zip(st.columns(len(runs)), runs, views, "AB", strict=False):
            title = f"{name}: {run.config.label}" if compare else run.config.label
            with column:
                for index, figure in enumerate(lab.frame_figures(view, run.history, title, show)):
                    st.plotly_chart(figure, key=f"live_{name}_{index}")
        if playing:
            st.caption(
                f"{pace.per_frame} iterations per frame, {1 / lab.FRAME_SECONDS:.0f} "
                "frames per second"
            )

    live_frames()


mode = st.radio(
    "Mode",
    ["Replay published runs", "Train live", "Side by side"],
    horizontal=True,
    key="lab_mode",
    help="Replays are instant: frames saved while the published models trained.",
)
show = show_ui()
if mode == "Replay published runs":
    replay_ui(show)
else:
    live_ui(show, compare=mode == "Side by side")
