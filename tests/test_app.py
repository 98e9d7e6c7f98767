"""AppTest of every page, driven by the registry, including bad input on the lab page."""

from __future__ import annotations

import pytest
import streamlit as st
from apptest import cold_offline_app, open_page
from streamlit.testing.v1 import AppTest

from hub_models.registry import FAMILIES


@pytest.fixture(autouse=True)
def offline_app(monkeypatch, tmp_path):
    """Each test starts cold and offline, on the bundled snapshots."""
    yield from cold_offline_app(monkeypatch, tmp_path)


def test_home_shows_a_card_per_family_with_its_source():
    at = open_page()
    # Cards fill three columns, so the element tree lists them column by column.
    assert sorted(s.value for s in at.subheader) == sorted(f.title for f in FAMILIES.values())
    captions = " ".join(c.value for c in at.caption)
    assert "bundled snapshot" in captions  # offline: the page says where weights came from
    assert "@ sha256:" in captions  # and which revision


def test_sidebar_device_and_seed_are_shared_state():
    at = open_page()
    assert at.selectbox(key="device_choice").value == "auto"
    assert at.session_state["device"] == "cpu"
    at.number_input(key="seed").set_value(7).run()
    at.switch_page("pages/toy2d_lab.py").run()
    at.radio(key="lab_mode").set_value("Train live").run()
    assert at.number_input(key="seed").value == 7  # survives the page switch
    assert at.session_state["lab_run_A"].config.seed == 7  # and reaches the page


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))
def test_every_page_renders_without_exception(family):
    at = open_page(family.page)
    assert at.title[0].value == family.title
    assert not at.error, [e.value for e in at.error]


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_replay_draws_both_published_runs_with_their_source():
    at = open_page("toy2d_lab.py")
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # per side, one animation: view, mode histogram and curves
    captions = " ".join(c.value for c in at.caption)
    assert "toy2d-ring-vanilla" in captions and "bundled snapshot" in captions
    at.radio(key="replay_target").set_value("grid").run()
    assert not at.exception and not at.error


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_live_training_steps_and_plays():
    at = open_page("toy2d_lab.py")
    at.radio(key="lab_mode").set_value("Train live").run()
    run = at.session_state["lab_run_A"]
    assert run.step == 0
    at.button[1].click().run()  # G step
    assert at.session_state["lab_run_A"] is run and run.step == 1
    at.toggle(key="playing").set_value(True).run()
    assert at.button[1].disabled  # no single steps while playing
    lab_wait_until(lambda: run.latest(fresh=True).step > 1)  # trains between page runs

    def picture_shown() -> bool:  # playing: the worker's picture, sent inline
        at.run()
        return any("data-lab-step" in str(e.proto) for e in at.get("html"))

    lab_wait_until(picture_shown)
    assert not at.exception
    assert at.session_state["lab_run_A"] is run
    status = " ".join(c.value for c in at.caption)
    assert "steps/s" in status and "frames/s" in status


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_side_by_side_uses_same_data_and_seed():
    at = open_page("toy2d_lab.py")
    at.radio(key="lab_mode").set_value("Side by side").run()
    a, b = at.session_state["lab_run_A"], at.session_state["lab_run_B"]
    assert a.target == b.target and a.config.seed == b.config.seed
    assert a.config.objective != b.config.objective
    assert len(at.get("plotly_chart")) == 2  # one figure per run


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_mixture_table_builds_a_custom_target():
    at = open_page("toy2d_lab.py")
    at.radio(key="lab_mode").set_value("Train live").run()
    at.selectbox(key="live_target").set_value("table").run()
    assert not at.error
    assert at.session_state["lab_run_A"].target.name == "custom mixture"


@pytest.mark.usefixtures("lab_runs_closed")
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"x,y\n1,2\nhello,3\n", "not two numbers"),
        (b"1,2,3\n4,5,6\n", "2 columns"),
        (b"\x00\x01\x02binary", "binary"),
        (b"x,y\n1,2\n", "at least 2"),
        (b"x,y\n1,2\nnan,3\n", "NaN"),
    ],
)
def test_lab_bad_csv_gets_a_clear_message(payload, message):
    at = open_page("toy2d_lab.py")
    at.radio(key="lab_mode").set_value("Train live").run()
    at.selectbox(key="live_target").set_value("csv").run()
    assert at.info and "Upload a CSV" in at.info[0].value
    at.file_uploader(key="points_csv").set_value(("points.csv", payload, "text/csv")).run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "points.csv" in errors and message in errors


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_good_csv_trains_on_the_points():
    at = open_page("toy2d_lab.py")
    at.radio(key="lab_mode").set_value("Train live").run()
    at.selectbox(key="live_target").set_value("csv").run()
    rows = "\n".join(f"{i % 7},{i % 3}" for i in range(50))
    at.file_uploader(key="points_csv").set_value(("mine.csv", f"x,y\n{rows}".encode(), "text/csv"))
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["lab_run_A"].target.name == "mine.csv"


# -- This emoji does not exist --------------------------------------------------------------


def test_images_page_one_image_per_click_with_its_neighbours():
    at = open_page("images.py")
    assert not at.error, [e.value for e in at.error]
    first = at.session_state["img_seed"]
    at.button(key="img_next").click().run()
    assert at.session_state["img_seed"] == first + 1
    text = " ".join(m.value for m in at.markdown)
    assert "Is it memorised?" in text
    assert any("real images the model never saw" in m.value for m in at.markdown)
    captions = " ".join(c.value for c in at.caption)
    assert "EfficientNet distance" in captions and "images-emoji-faces" in captions
    assert "The same code in every vendor's style" in text


def test_images_page_featured_faces_beside_the_first_models_and_in_every_style():
    at = open_page("images.py")
    assert at.selectbox(key="img_dataset").value == "emoji-faces"
    assert at.selectbox(key="img_class").options == [
        "Twemoji",
        "OpenMoji",
        "Noto Color Emoji",
        "EmojiOne 2",
    ]
    one = at.tabs[0]
    styles = [image.proto.imgs[0].caption for image in one.get("image")]
    assert {"Twemoji", "OpenMoji", "Noto Color Emoji", "EmojiOne 2"} <= set(styles)
    assert len(at.tabs[3].columns) == 5  # the faces model, then DCGAN, WGAN-GP, VAE, cGAN
    at.selectbox(key="img_class").set_value("OpenMoji").run()
    assert not at.exception and not at.error


def test_images_page_conditional_model_takes_a_class():
    at = open_page("images.py")
    at.selectbox(key="img_dataset").set_value("mnist").run()
    at.selectbox(key="img_kind").set_value("cgan").run()
    assert at.selectbox(key="img_class").options == [str(d) for d in range(10)]
    at.selectbox(key="img_class").set_value("7").run()
    assert not at.exception and not at.error


def test_images_page_truncation_interpolation_and_pairs():
    at = open_page("images.py")
    at.toggle(key="img_pairs").set_value(True).run()
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert any("nearest training image" in c for c in captions), captions
    at.slider(key="img_truncation").set_value(0.5).run()
    at.slider(key="img_steps").set_value(6).run()
    assert not at.exception and not at.error


@pytest.mark.parametrize(
    ("folder", "message"),
    [("", "Enter the folder"), ("/no/such/folder", "is not a folder")],
    ids=["empty", "missing"],
)
def test_images_page_bad_user_folder_gets_a_message(folder, message):
    at = open_page("images.py")
    at.radio(key="img_source").set_value("A folder I trained").run()
    at.text_input(key="img_folder").input(folder).run()
    assert not at.exception
    shown = " ".join(m.value for m in [*at.info, *at.error])
    assert message in shown


def test_images_page_folder_without_weights_or_with_pickles(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not opened")
    at = open_page("images.py")
    at.radio(key="img_source").set_value("A folder I trained").run()
    at.text_input(key="img_folder").input(str(tmp_path)).run()
    assert not at.exception
    assert "pickle" in " ".join(e.value for e in at.error)


def test_images_page_runs_a_model_trained_on_a_user_folder(tmp_path):
    from PIL import Image

    from training import cli

    data = tmp_path / "mine"
    data.mkdir()
    for i in range(8):
        Image.new("RGB", (20, 20), (30 * i, 10, 200)).save(data / f"{i}.png")
    out = tmp_path / "run"
    assert (
        cli.main(["train", "images", "--preset", "tiny", "--data", str(data), "--out", str(out)])
        == 0
    )
    at = open_page("images.py")
    at.radio(key="img_source").set_value("A folder I trained").run()
    at.text_input(key="img_folder").input(str(out)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Is it memorised?" in " ".join(m.value for m in at.markdown)
    # the training images vanish: the page still samples, and says why novelty is unchecked
    for path in data.iterdir():
        path.unlink()
    st.cache_resource.clear()
    at.run()
    assert not at.exception
    assert "holds no images" in " ".join(w.value for w in at.warning)


# -- Anomaly scoring (GANomaly) ---------------------------------------------------------------


def score_metrics(at: AppTest) -> list[float]:
    """The anomaly scores the page shows, in page order (one image, then the defect pair)."""
    return [float(m.value.rstrip("×")) for m in at.metric if m.label == "Anomaly score"]


def test_ganomaly_page_scores_a_test_image_and_a_random_one():
    at = open_page("ganomaly.py")
    assert not at.error, [e.value for e in at.error]
    first = at.session_state["gan_index"]
    at.button(key="gan_random").click().run()
    assert at.session_state["gan_index"] != first
    assert len(score_metrics(at)) == 3  # the test image, then the image without/with a defect
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert {"input", "reconstruction", "residual |x - x̂|"} <= set(captions)
    assert len(at.get("plotly_chart")) == 2  # histogram and ROC


def test_ganomaly_page_a_defect_raises_the_score():
    at = open_page("ganomaly.py")
    at.selectbox(key="gan_model").set_value("ganomaly-brick").run()
    at.selectbox(key="gan_defect").set_value("stain").run()
    at.slider(key="gan_size").set_value(0.5).run()
    _, clean, damaged = score_metrics(at)
    assert damaged > clean and damaged > 1


def test_ganomaly_page_threshold_moves_precision_and_recall():
    at = open_page("ganomaly.py")
    recall = next(m.value for m in at.metric if m.label == "Recall")
    at.slider(key="gan_threshold").set_value(0.3).run()
    assert next(m.value for m in at.metric if m.label == "Recall") >= recall
    assert next(m.value for m in at.metric if m.label == "False alarms (test set)") != "5.0%"
    assert not at.exception


def png_bytes(size=(40, 40)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, 20).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"just text", "not an image"),
        (png_bytes()[:50], "damaged or unsupported"),
        (png_bytes((6, 6)), "at least 16x16"),
    ],
    ids=["empty", "text", "corrupt", "tiny"],
)
def test_ganomaly_page_bad_uploads_get_a_clear_message(payload, message):
    at = open_page("ganomaly.py")
    at.radio(key="gan_pick").set_value("Upload").run()
    at.file_uploader(key="gan_upload").set_value(("scan.png", payload, "image/png")).run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "scan.png" in errors and message in errors
    assert "BytesIO" not in errors and " at 0x" not in errors


def test_ganomaly_page_scores_a_drawn_digit_as_the_training_digits_were_made():
    from drawings import drawn_seven

    at = open_page("ganomaly.py")
    at.selectbox(key="gan_model").set_value("ganomaly-mnist-0").run()
    at.radio(key="gan_pick").set_value("Upload").run()
    at.file_uploader(key="gan_upload").set_value(("seven.png", drawn_seven(), "image/png")).run()
    assert not at.error, [e.value for e in at.error]
    assert score_metrics(at)[0] < 1  # a clean 7 is normal for the 0-is-anomalous model


def open_user_ganomaly(tmp_path, before_opening=None) -> AppTest:
    """Train a tiny GANomaly on a folder of grey tiles, then open it on the page."""
    from PIL import Image

    from training import cli

    data = tmp_path / "tiles"
    data.mkdir()
    for i in range(12):
        Image.new("L", (20, 20), 100 + i).save(data / f"{i}.png")
    out = tmp_path / "run"
    args = ["train", "ganomaly", "--preset", "tiny", "--data", str(data), "--out", str(out)]
    assert cli.main(args) == 0
    if before_opening is not None:
        before_opening(data)
    at = open_page("ganomaly.py")
    at.radio(key="gan_source").set_value("A folder I trained").run()
    at.text_input(key="gan_folder").input(str(out)).run()
    return at


def test_ganomaly_page_runs_a_model_trained_on_a_user_folder(tmp_path):
    at = open_user_ganomaly(tmp_path)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(score_metrics(at)) == 3


# -- Text generation (SeqGAN) ------------------------------------------------------------------


def test_seqgan_page_side_by_side_with_rewards_and_metrics():
    at = open_page("seqgan.py")
    assert not at.error, [e.value for e in at.error]
    assert [s.value for s in at.subheader][:2] == ["MLE only", "SeqGAN"]
    shown = " ".join(h.proto.body for h in at.get("html"))
    assert shown.count('title="reward ') >= 2 * 10  # every token of 10 samples per side
    table = at.dataframe[0].value
    assert list(table.index) == ["MLE only", "SeqGAN"]
    assert {"novelty", "BLEU-4 vs held-out", "self-BLEU-4"} <= set(table.columns)
    assert "seqgan-names" in " ".join(c.value for c in at.caption)
    at.slider(key="sg_temperature").set_value(0.7).run()
    at.select_slider(key="sg_rollouts").set_value(0).run()
    assert not at.exception and not at.error
    assert 'title="reward ' not in " ".join(h.proto.body for h in at.get("html"))


@pytest.mark.parametrize("corpus", ["idioms", "fortunes", "oracle"])
def test_seqgan_page_every_corpus(corpus):
    at = open_page("seqgan.py")
    at.selectbox(key="sg_corpus").set_value(corpus).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert f"seqgan-{corpus}" in " ".join(c.value for c in at.caption)
    table = at.dataframe[0].value
    assert list(table.index) == ["MLE only", "SeqGAN"]
    if corpus == "oracle":
        assert list(table.columns) == ["oracle NLL (quality)"]
        assert (table.iloc[:, 0] > 5).all()  # above the oracle's own entropy


def test_seqgan_page_oracle_curves_and_table():
    at = open_page("seqgan.py")
    assert len(at.get("plotly_chart")) == 1  # the NLL curves, MLE phase then adversarial
    text = " ".join(m.value for m in at.markdown)
    assert "synthetic benchmark" in text and "held-out NLL" in text


@pytest.mark.parametrize(
    ("folder", "message"),
    [("", "Enter the folder"), ("/no/such/folder", "is not a folder")],
    ids=["empty", "missing"],
)
def test_seqgan_page_bad_user_folder_gets_a_message(folder, message):
    at = open_page("seqgan.py")
    at.radio(key="sg_source").set_value("A folder I trained").run()
    at.text_input(key="sg_folder").input(folder).run()
    assert not at.exception
    assert message in " ".join(m.value for m in [*at.info, *at.error])


def test_seqgan_page_runs_a_model_trained_on_a_user_text_file(tmp_path):
    from training import cli

    data = tmp_path / "pets.txt"
    data.write_text("\n".join(f"{a}{b}" for a in ("rex", "fido", "tom") for b in "abcdefgh"))
    out = tmp_path / "run"
    argv = [
        "train",
        "seqgan",
        "--preset",
        "tiny",
        "--data",
        str(data),
        "--corpus=pets",
        "--level=char",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    at = open_page("seqgan.py")
    at.radio(key="sg_source").set_value("A folder I trained").run()
    at.text_input(key="sg_folder").input(str(out)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value.index) == ["MLE only", "SeqGAN"]
    data.write_bytes(b"\x00\x01 binary now")  # the text file is replaced: a warning, no crash
    st.cache_resource.clear()
    at.run()
    assert not at.exception
    assert "binary" in " ".join(w.value for w in at.warning)


def test_ganomaly_page_without_its_test_images_still_scores_uploads(tmp_path):
    import shutil

    at = open_user_ganomaly(tmp_path, before_opening=shutil.rmtree)  # the folder is gone
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "cannot be read" in " ".join(w.value for w in at.warning)
    assert at.radio(key="gan_pick").options == ["Upload"]
    at.file_uploader(key="gan_upload").set_value(("a.png", png_bytes(), "image/png")).run()
    assert len(score_metrics(at)) == 1


def test_one_folder_on_two_pages_is_loaded_as_each_pages_model_type(tmp_path):
    """The cache of a user's runs is keyed by the bundle type too: a toy2d run entered on the
    emoji page must not come back as the lab's model from the cache."""
    from gallery.common import load_user_model
    from hub_models.base import CheckpointError
    from hub_models.images import ImageModel
    from hub_models.toy2d import Toy2DConfig, Toy2DGAN

    folder = tmp_path / "run"
    Toy2DGAN(Toy2DConfig(g_width=8, d_width=8)).save_pretrained(folder)
    model, _ = load_user_model(Toy2DGAN, str(folder))
    assert isinstance(model, Toy2DGAN)
    with pytest.raises(CheckpointError):
        load_user_model(ImageModel, str(folder))  # its config is not an ImageConfig


# -- 2D lab: live runs kept across settings and modes ---------------------------------------


@pytest.fixture
def lab_runs_closed():
    """Stop the lab's live runs (worker processes) that a test started."""
    yield
    from gallery import toy2d_lab

    toy2d_lab.close_all()


def lab_wait_until(condition, timeout: float = 60.0):
    """Poll ``condition`` until it holds: live runs train between the page's runs."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def open_lab_live(mode: str = "Train live") -> AppTest:
    at = open_page("toy2d_lab.py")
    at.radio(key="lab_mode").set_value(mode).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_replay_of_the_same_run_on_both_sides():
    at = open_page("toy2d_lab.py")
    at.selectbox(key="replay_right").set_value("vanilla").run()
    assert not at.exception, at.exception  # was StreamlitDuplicateElementKey
    assert len(at.get("plotly_chart")) == 2
    assert "rev-KL" in " ".join(c.value for c in at.caption)  # the jargon, explained


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_change_needing_a_new_run_keeps_a_trained_run_and_offers_the_restart():
    at = open_lab_live()
    at.button[1].click().run()  # G step: the run now has something to lose
    run = at.session_state["lab_run_A"]
    at.selectbox(key="A_objective").set_value("hinge").run()
    assert at.session_state["lab_run_A"] is run and run.config.objective == "minimax"
    note = " ".join(m.value for m in at.markdown)
    assert "a new objective needs a new run from step 0" in note and "step 1" in note
    next(b for b in at.button if b.label == "Restart with these settings").click().run()
    fresh = at.session_state["lab_run_A"]
    assert fresh is not run and fresh.config.objective == "hinge" and fresh.step == 0
    assert not run.alive  # the replaced run's worker stopped
    assert "needs a new run" not in " ".join(m.value for m in at.markdown)


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_change_before_any_update_just_starts_the_new_run():
    at = open_lab_live()
    run = at.session_state["lab_run_A"]
    at.selectbox(key="live_target").set_value("grid").run()
    fresh = at.session_state["lab_run_A"]
    assert fresh is not run and fresh.target.name == "grid"
    assert "needs a new run" not in " ".join(m.value for m in at.markdown)


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_learning_rates_and_speed_apply_to_the_running_run():
    at = open_lab_live()
    at.button[1].click().run()
    run = at.session_state["lab_run_A"]
    at.select_slider(key="A_lrg").set_value(3e-4).run()
    at.select_slider(key="A_batch").set_value(64).run()
    at.select_slider(key="speed").set_value("30").run()
    assert at.session_state["lab_run_A"] is run
    snapshot = run.latest(fresh=True)
    assert snapshot.step == 1 and snapshot.config.lr_g == 3e-4
    assert snapshot.config.batch_size == 64
    assert "needs a new run" not in " ".join(m.value for m in at.markdown)


@pytest.mark.usefixtures("lab_runs_closed")
def test_lab_switching_modes_keeps_configuration_b_and_its_run():
    at = open_lab_live("Side by side")
    at.selectbox(key="B_objective").set_value("lsgan").run()
    at.button[1].click().run()  # G step on both
    b = at.session_state["lab_run_B"]
    for mode in ("Train live", "Replay published runs", "Side by side"):
        at.radio(key="lab_mode").set_value(mode).run()
        assert not at.exception, at.exception
    assert at.selectbox(key="B_objective").value == "lsgan"
    assert at.session_state["lab_run_B"] is b and b.latest(fresh=True).step == 1
