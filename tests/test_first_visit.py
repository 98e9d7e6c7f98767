"""A first visit's defects, each as it was met: every control does what it says (AppTest)."""

from __future__ import annotations

import pytest
from apptest import APP, cold_offline_app, open_page
from streamlit.testing.v1 import AppTest


@pytest.fixture(autouse=True)
def offline_app(monkeypatch, tmp_path):
    yield from cold_offline_app(monkeypatch, tmp_path)


def everything_shown(at: AppTest) -> str:
    return repr(at.main) + " ".join(str(e.value) for e in [*at.markdown, *at.info, *at.error])


@pytest.mark.parametrize(
    ("page", "key"), [("images.py", "img"), ("ganomaly.py", "gan"), ("seqgan.py", "sg")]
)
def test_choosing_a_folder_with_the_box_empty_asks_for_one(page, key):
    """It used to fill the page with Streamlit's DeltaGenerator documentation."""
    at = open_page(page)
    at.radio(key=f"{key}_source").set_value("A folder I trained").run()
    assert not at.exception
    assert "Enter the folder a training run wrote" in " ".join(i.value for i in at.info)
    assert "DeltaGenerator" not in everything_shown(at)
    at.text_input(key=f"{key}_folder").input("/no/such/run").run()
    assert "is not a folder with a published model" in " ".join(e.value for e in at.error)


def test_a_page_seed_follows_the_global_seed():
    at = open_page("images.py")
    assert at.number_input(key="img_seed").value == 0
    at.number_input(key="seed").set_value(5).run()
    assert at.number_input(key="img_seed").value == 5
    at.number_input(key="img_seed").set_value(9).run()  # the page's own choice stays...
    assert at.number_input(key="img_seed").value == 9
    at.number_input(key="seed").set_value(6).run()  # ...until the global seed moves again
    assert at.number_input(key="img_seed").value == 6


def test_a_link_reproduces_the_view_and_the_view_writes_the_link():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(
        {"img_dataset": "mnist", "img_kind": "cgan", "img_seed": "42", "img_class": "7"}
    )
    at.run()
    at.switch_page("pages/images.py").run()
    assert not at.exception
    assert at.selectbox(key="img_dataset").value == "mnist"
    assert at.selectbox(key="img_kind").value == "cgan"
    assert at.number_input(key="img_seed").value == 42
    assert at.selectbox(key="img_class").value == "7"
    at.number_input(key="img_seed").set_value(43).run()
    assert at.query_params["img_seed"] in ("43", ["43"])


def test_a_bad_link_value_is_ignored():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"img_kind": "diffusion", "img_seed": "many"})
    at.run()
    at.switch_page("pages/images.py").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="img_kind").value == "diffaugment"


def test_example_inputs_set_the_page_in_one_click():
    at = open_page("images.py")
    at.button(key="img_example_An animal (OpenMoji)").click().run()
    assert not at.exception
    assert at.selectbox(key="img_dataset").value == "emoji-all"
    assert at.selectbox(key="img_class").value == "Animals & Nature / OpenMoji"


def test_seqgan_sampling_controls_live_in_the_samples_tab_only():
    """The oracle tab ignored Seed, Samples, Temperature and Roll-outs while showing them."""
    at = open_page("seqgan.py")
    samples, oracle = at.tabs
    assert {w.key for w in samples.slider} >= {"sg_n", "sg_temperature"}
    assert not oracle.slider and not oracle.number_input and not oracle.select_slider


def test_side_by_side_includes_the_cgan_and_its_class_picker():
    at = open_page("images.py")
    at.selectbox(key="img_dataset").set_value("mnist").run()

    def pictures(at: AppTest) -> list:
        return [c.children[len(c.children) - 1] for c in at.tabs[3].columns]

    assert len(pictures(at)) == 4  # DCGAN, WGAN-GP, VAE and cGAN
    before = pictures(at)[3].proto
    at.selectbox(key="img_compare_class3").set_value("3").run()
    assert pictures(at)[3].proto != before


def test_patch_defects_show_only_the_controls_that_change_them():
    at = open_page("ganomaly.py")
    at.selectbox(key="gan_defect").set_value("patch").run()
    keys = {w.key for w in at.slider}
    assert "gan_strength" not in keys and "gan_angle" not in keys
    at.selectbox(key="gan_defect").set_value("stain").run()
    keys = {w.key for w in at.slider}
    assert "gan_strength" in keys and "gan_angle" not in keys


def test_anomaly_threshold_says_what_it_is_calibrated_on_and_warns_below_the_baseline():
    at = open_page("ganomaly.py")
    assert "calibration images" in at.slider(key="gan_threshold").help
    labels = [m.label for m in at.metric]
    assert "False alarms (test set)" in labels
    assert not any("no better than the simple baseline" in w.value for w in at.warning)  # brick
    at.selectbox(key="gan_model").set_value("ganomaly-grass").run()
    assert any("no better than the simple baseline" in w.value for w in at.warning)


def test_truncation_stops_where_images_stop_being_blank():
    at = open_page("images.py")
    assert at.slider(key="img_truncation").min >= 1.0
