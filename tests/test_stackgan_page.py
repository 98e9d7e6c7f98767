"""The text-to-image page: AppTest of every control, bad captions included; the page's logic
(gallery/stackgan.py) without a browser; and the StackGAN benchmarks on a tiny model.

The page runs on the published model as a visitor gets it. Until ``stackgan-shapes`` is
trained and bundled, the ``published`` fixture puts a tiny model of the same family into the
test's HF cache, where resolution finds it offline exactly as it would a downloaded one.
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from apptest import APP, TIMEOUT, cold_offline_app, open_page
from streamlit.testing.v1 import AppTest

from gallery import stackgan as gs
from hub_models import runfiles, shapesdata, textenc
from hub_models.metrics import COPY_RMS
from hub_models.stackgan import (
    AttributeClassifier,
    AttributeConfig,
    StackGAN,
    StackGANConfig,
    encode_captions,
    generate,
)
from hub_models.textenc import TextImageConfig, TextImageModel

PAGE = "stackgan.py"
TWO_SHAPES = gs.EXAMPLE_CAPTIONS["shapes"]["Two shapes"]


@pytest.fixture(autouse=True)
def offline_app(monkeypatch, tmp_path):
    """Each test starts cold and offline, on the bundled snapshots."""
    yield from cold_offline_app(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A folder written by `python -m training train stackgan --preset tiny`."""
    from training import cli

    out = tmp_path_factory.mktemp("stackgan") / "run"
    assert cli.main(["train", "stackgan", "--preset", "tiny", "--out", str(out)]) == 0
    return out


@pytest.fixture
def published(request, tmp_path) -> str:
    """Where the page's published model comes from: the bundled snapshot once it exists, else
    the tiny model in this test's HF cache (a cached download of the same repo)."""
    featured = gs.FAMILY.featured_model
    if (featured.snapshot / runfiles.WEIGHTS).is_file():
        return "bundled snapshot"
    run = request.getfixturevalue("tiny_run")
    repo = tmp_path / "hf-cache" / ("models--" + featured.repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in (runfiles.WEIGHTS, "config.json"):
        shutil.copy(run / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return "HF cache"


def tiny_model(seed: int = 0) -> StackGAN:
    from training.stackgan import StackGANTrainer

    torch.manual_seed(seed)
    return StackGAN(StackGANConfig(**StackGANTrainer.presets["tiny"])).eval()


def shown(at, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


def image_captions(at) -> list[str]:
    return [image.proto.imgs[0].caption for image in at.get("image")]


def sample_pairs(at) -> list[str]:
    """The captions of the Samples tab's pictures, one per sample."""
    return [c for c in image_captions(at) if c.startswith("sample ") and "(enlarged)" in c]


# -- AppTest ----------------------------------------------------------------------------------


def test_page_draws_both_stages_of_every_sample_and_says_where_weights_came_from(published):
    at = open_page(PAGE)
    assert at.title[0].value == "Text to image (StackGAN)"
    assert not at.error and not at.warning, shown(at, "error") + shown(at, "warning")
    assert at.text_input(key="stk_caption").value == TWO_SHAPES
    pairs = sample_pairs(at)
    assert len(pairs) == 4  # the default number of samples
    assert "Stage-II" in pairs[0] and "(enlarged)" in pairs[0]
    assert published in shown(at, "caption")
    assert at.get("download_button")  # the samples as PNG
    at.slider(key="stk_n").set_value(7).run()
    assert len(sample_pairs(at)) == 7


def test_examples_set_the_caption_and_unknown_words_are_marked(published):
    at = open_page(PAGE)
    at.button(key="stk_example_Unknown word").click().run()
    assert at.text_input(key="stk_caption").value == gs.EXAMPLE_CAPTIONS["shapes"]["Unknown word"]
    assert "fluffy" in shown(at, "warning") and "<unk>" in shown(at, "warning")
    assert ":red[**fluffy**]" in shown(at, "markdown")
    assert not at.exception and not at.error


def test_a_held_out_pair_is_named_as_never_seen(published):
    at = open_page(PAGE)
    at.button(key="stk_example_Unseen pair").click().run()
    assert "Never in a training scene: blue square" in shown(at, "caption")


@pytest.mark.parametrize(
    ("caption", "message"),
    [
        ("", "Type a caption"),
        ("   ", "Type a caption"),
        ("123 !!! 456", "Type a caption"),
        ("a red circle " * 2000, "characters long"),
    ],
    ids=["empty", "spaces", "no-words", "enormous"],
)
def test_empty_or_enormous_captions_get_a_clear_message(published, caption, message):
    at = open_page(PAGE)
    at.text_input(key="stk_caption").input(caption).run()
    assert not at.exception, at.exception
    assert message in shown(at, "info")
    assert not at.get("download_button")  # nothing drawn


def test_words_past_the_limit_are_struck_through_not_fatal(published):
    at = open_page(PAGE)
    long = " ".join(["a red circle above a cross"] * 6)  # 36 words
    at.text_input(key="stk_caption").input(long).run()
    assert not at.exception and not at.error
    assert "4 more are ignored" in shown(at, "warning")
    assert ":gray[~~" in shown(at, "markdown")


def test_nothing_known_says_so(published):
    at = open_page(PAGE)
    at.text_input(key="stk_caption").input("zebra xylophone").run()
    assert "nothing in this caption is known" in shown(at, "warning")
    assert not at.exception


def test_edit_tab_suggests_a_colour_swap_and_draws_both_rows(published):
    at = open_page(PAGE)
    assert at.text_input(key="stk_edit").value == TWO_SHAPES.replace("red", "blue")
    assert any("same noise per column" in c for c in image_captions(at))
    at.text_input(key="stk_edit").input("a small red circle below a large green square").run()
    assert not at.exception and not at.error
    at.text_input(key="stk_edit").input("").run()
    assert "Type a caption" in shown(at, "info")
    # a new caption brings a new suggestion
    at.text_input(key="stk_caption").input("a green cross").run()
    assert at.text_input(key="stk_edit").value == "a yellow cross"
    # and so does the same caption after a run that drew nothing (Streamlit forgets the
    # state of widgets a run did not draw)
    at.text_input(key="stk_caption").input("").run()
    at.text_input(key="stk_caption").input("a green cross").run()
    assert at.text_input(key="stk_edit").value == "a yellow cross"


def test_interpolation_and_its_controls(published):
    at = open_page(PAGE)
    assert any("great circle" in c for c in image_captions(at))
    at.slider(key="stk_steps").set_value(4).run()
    at.text_input(key="stk_to").input("a big purple diamond").run()
    assert not at.exception and not at.error
    at.text_input(key="stk_to").input("?!").run()
    assert "Type a caption" in shown(at, "info")


def test_nearest_training_caption_and_copy_check(published, monkeypatch):
    pools = []  # the resolutions the page built a pool for

    def recorded_pool(resolution, *args, **kwargs):
        pools.append(resolution)
        return real_pool(resolution, *args, **kwargs)

    real_pool = gs.training_pool
    monkeypatch.setattr(gs, "training_pool", recorded_pool)
    at = open_page(PAGE)
    # Off until asked: a visit that never opens the tab must not render the pool.
    assert at.toggle(key="stk_nearest").value is False
    assert "The nearest training caption" not in shown(at, "markdown") and not pools
    at.toggle(key="stk_nearest").set_value(True).run()
    assert not at.exception and not at.error, shown(at, "error")
    text = shown(at, "markdown")
    assert "The nearest training caption" in text and "Is it a copy?" in text
    assert "Not a copy" in text or "Possibly a copy" in text
    assert "its training image" in image_captions(at)
    assert len(pools) == 1  # the one run with the toggle on


def test_noise_slider_and_seed_are_accepted(published):
    at = open_page(PAGE)
    at.slider(key="stk_noise").set_value(0.0).run()
    at.number_input(key="stk_seed").set_value(5).run()
    assert not at.exception and not at.error


def test_a_link_reproduces_the_caption_and_settings(published):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.query_params.update(
        {"stk_caption": "a green cross", "stk_seed": "9", "stk_n": "2", "stk_noise": "0.5"}
    )
    at.switch_page(f"pages/{PAGE}").run()
    assert not at.exception
    assert at.text_input(key="stk_caption").value == "a green cross"
    assert at.session_state["stk_seed"] == 9 and at.slider(key="stk_n").value == 2


def test_page_runs_a_model_trained_into_a_folder(published, tiny_run):
    at = open_page(PAGE)
    at.radio(key="stk_source").set_value("A folder I trained").run()
    at.text_input(key="stk_folder").input(str(tiny_run)).run()
    assert not at.exception and not at.error, shown(at, "error")
    assert len(sample_pairs(at)) == 4


@pytest.mark.parametrize(
    ("folder", "message"),
    [("", "Enter the folder"), ("/no/such/folder", "is not a folder")],
    ids=["empty", "missing"],
)
def test_bad_user_folder_gets_a_message(published, folder, message):
    at = open_page(PAGE)
    at.radio(key="stk_source").set_value("A folder I trained").run()
    at.text_input(key="stk_folder").input(folder).run()
    assert not at.exception
    assert message in shown(at, "info") + shown(at, "error")


# -- the page's logic ------------------------------------------------------------------------


def test_read_caption_knows_the_encoders_vocabulary():
    model = tiny_model()
    reading = gs.read_caption(model, "A fluffy RED circle, over a blue glorp; fluffy!")
    assert reading.unknown == ["fluffy", "glorp"]  # once each, in order
    assert not reading.problem and not reading.ignored and not reading.all_unknown
    assert gs.marked_words(reading).startswith("a :red[**fluffy**] red circle over")
    assert encode_captions(model, [reading.text])[1][0] == reading.unknown  # as the model reads


@pytest.mark.parametrize("text", ["", "   ", "42 !?", None])
def test_a_caption_without_words_is_a_problem(text):
    assert "Type a caption" in gs.read_caption(tiny_model(), text).problem


def test_an_enormous_caption_is_refused_and_a_long_one_cut():
    model = tiny_model()
    assert "characters long" in gs.read_caption(model, "x" * (gs.MAX_CAPTION_CHARS + 1)).problem
    reading = gs.read_caption(model, " ".join(["red"] * (textenc.MAX_WORDS + 3)))
    assert reading.ignored == 3 and len(reading.read) == textenc.MAX_WORDS
    assert gs.marked_words(reading).count("~~") == 2 * 3


def test_suggest_edit_swaps_the_first_colour_word_only():
    assert (
        gs.suggest_edit("a red circle above a red-ish box") == "a blue circle above a red-ish box"
    )
    assert gs.suggest_edit("Violet disc") == "Orange disc"
    assert gs.suggest_edit("a reddish circle") == "a reddish circle"  # whole words only
    assert gs.suggest_edit("") == ""


def test_composition_notes_name_objects_held_out_pairs_and_problems():
    notes = gs.composition_notes("shapes", "a large blue square to the right of a red")
    assert notes[0] == "Objects: large blue square; red."
    assert any("Never in a training scene: blue square" in n for n in notes)
    assert any("has no shape" in n for n in notes)
    assert gs.composition_notes("emoji", "red heart") == []


def test_pictures_have_the_documented_sizes():
    model = tiny_model()
    stage1, stage2 = generate(model, ["a red circle"], 3, seed=0)
    assert gs.pair_picture(stage1[0], stage2[0]).size == (2 * gs.DISPLAY + gs.GAP, gs.DISPLAY)
    sheet = gs.samples_sheet(stage1, stage2)
    side = stage2.shape[-1] * max(1, 256 // stage2.shape[-1])
    assert sheet.width > 6 * side and sheet.height > side  # 3 pairs in one row
    rows = gs.rows_sheet([stage1, stage2])  # Stage-I enlarged to Stage-II's side
    assert rows.width > rows.height > 0


def test_the_noise_scale_changes_only_the_conditioning_noise():
    model = tiny_model()
    caption = ["a small red circle above a large green square"]
    still = generate(model, caption, 2, seed=3, noise_scale=0.0)[1]
    moved = generate(model, caption, 2, seed=3, noise_scale=1.5)[1]
    again = generate(model, caption, 2, seed=3, noise_scale=0.0)[1]
    assert torch.equal(still, again) and not torch.allclose(still, moved)
    assert not torch.allclose(still[0], still[1])  # z still varies at scale 0


def test_interpolation_ends_on_both_captions_with_sample_ones_noise():
    model = tiny_model()
    a, b = "a red circle", "a blue diamond above a green cross"
    stage1, stage2 = gs.interpolate(model, a, b, 5, seed=4, noise_scale=0.7)
    assert stage2.shape[0] == stage1.shape[0] == 5
    for caption, index in ((a, 0), (b, -1)):
        expected = generate(model, [caption], 1, seed=4, noise_scale=0.7)[1][0]
        assert torch.allclose(stage2[index], expected, atol=1e-5)
    path = gs.slerp(*encode_captions(model, [a, b])[0], 7)
    assert torch.allclose(path.norm(dim=1), torch.ones(7), atol=1e-5)
    same = gs.slerp(path[0], path[0], 3)  # a caption to itself: no division by zero
    assert torch.isfinite(same).all()


def test_nearest_caption_and_copy_checks_on_a_small_pool():
    model = tiny_model()
    pool = gs.training_pool(16, size=40)
    assert len(pool.captions) == 40 and pool.images.dtype == torch.uint8
    found = gs.nearest_caption(model, "tiny", pool, pool.captions[7])
    assert found.similarity == pytest.approx(1.0, abs=1e-5)  # its own caption is in the pool
    copies = pool.images[[3, 11]].float() / 127.5 - 1
    checks = gs.copy_checks(pool, torch.cat([copies, torch.zeros(1, 3, 16, 16)]))
    assert [c.index for c in checks[:2]] == [3, 11] and all(c.copy for c in checks[:2])
    assert checks[0].rms < 1e-6 and "Possibly a copy" in gs.copy_verdict(checks[0])
    assert not checks[2].copy and checks[2].rms > COPY_RMS
    assert "Not a copy" in gs.copy_verdict(checks[2])
    assert 0 <= checks[2].closer_real <= 1


TINY_CAPTIONS = ("red circle", "blue square", "green cross", "a yellow box", "red disc",
                 "purple triangle", "orange circle", "a blue diamond", "big red box")  # fmt: skip


def tiny_caption_set():
    """Nine captions with two random 16x16 pictures each; groups 1, 4 and 7 are the test set."""
    from hub_models.captiondata import CaptionSet

    generator = torch.Generator().manual_seed(0)
    return CaptionSet(
        name="tiny",
        pixels=torch.randint(0, 256, (18, 3, 16, 16), dtype=torch.uint8, generator=generator),
        image_group=torch.arange(18) % len(TINY_CAPTIONS),  # two pictures per caption
        captions=TINY_CAPTIONS,
        phrasings=tuple((c,) for c in TINY_CAPTIONS),
        test_groups=torch.tensor([1, 4, 7]),
    )


def test_captioned_pictures_pool_holds_the_training_groups_only():
    model = tiny_model()
    captions = TINY_CAPTIONS
    pictures = tiny_caption_set()
    pool = gs.caption_set_pool(pictures)
    train = pictures.image_index("train")
    assert torch.equal(pool.images, pictures.pixels[train])  # no test group's picture
    assert sorted(pool.captions) == sorted(captions[g] for g in pictures.train_groups.tolist())
    assert len(pool.real_nearest) == len(pictures.image_index("test"))  # test groups calibrate
    found = gs.nearest_caption(model, "tiny-captioned", pool, "green cross")
    assert found.caption == "green cross"
    assert found.similarity == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(found.image, pictures.images(torch.tensor([2]))[0])  # its picture
    checks = gs.copy_checks(pool, pictures.images(train[[0, 5]]))
    assert [c.index for c in checks] == [0, 5]
    assert all(c.rms < 1e-6 and c.copy for c in checks)


def test_page_logic_leaves_process_wide_state_alone():
    model = tiny_model()
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    generate(model, ["a red circle"], 4, seed=1, noise_scale=0.5)
    gs.interpolate(model, "a red circle", "a blue cross", 4, seed=1, noise_scale=1.0)
    pool = gs.training_pool(16, size=20)
    gs.copy_checks(pool, generate(model, ["a red circle"], 2, seed=1)[1])
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_every_example_caption_is_read_without_problems_or_unknown_words():
    vocabulary = textenc.vocabulary_index(textenc.shapes_vocabulary())
    for label, caption in gs.EXAMPLE_CAPTIONS["shapes"].items():
        parsed = shapesdata.parse_caption(caption)
        assert not parsed.problems, (label, parsed.problems)
        unknown = [w for w in shapesdata.tokenize(caption) if w not in vocabulary]
        assert unknown == (["fluffy"] if label == "Unknown word" else []), label


def test_the_emoji_examples_are_known_words_and_one_is_a_held_out_name():
    from hub_models import captiondata
    from hub_models.stackgan import EMOJI_TEXT_ENCODER, FAMILY

    folder = next(m for m in FAMILY.auxiliary if m.name == EMOJI_TEXT_ENCODER).snapshot
    vocabulary = textenc.TextImageModel.load_folder(folder).config.vocabulary
    known = textenc.vocabulary_index(vocabulary)
    bound = captiondata.TEST_SHARE * 2**64  # the test set: the lowest share of split keys
    for label, caption in gs.EXAMPLE_CAPTIONS["emoji"].items():
        assert all(word in known for word in caption.split()), label
        held_out = captiondata.split_key(caption) < bound
        assert held_out == (label == "Held-out name"), label


# -- benchmarks -------------------------------------------------------------------------------


def tiny_graders():
    """Untrained graders of the tiny model's size: the benchmark's plumbing, not its numbers."""
    from training.stackgan import StackGANData

    torch.manual_seed(0)
    attributes = AttributeClassifier(AttributeConfig(resolution=16, width=4, hidden=8)).eval()
    matcher = TextImageModel(
        TextImageConfig(word_dim=8, text_hidden=8, text_dim=16, resolution=16, image_width=4)
    ).eval()
    return StackGANData(None, attributes, matcher)


def test_benchmark_table_measures_every_row_and_reads_its_verdicts():
    from benchmarks import stackgan as bench

    model = tiny_model()
    results = bench.measure(model, tiny_graders())
    metrics = results["metrics"]
    for split in ("test", "held_out"):
        for prefix in bench.ATTRIBUTE_ROWS:
            value = metrics[f"{prefix}{split}_colour"]
            assert 0 <= value <= 1, (prefix, split)
    assert 0 <= metrics["r_precision"] <= 1 and 0 <= metrics["r_precision_shuffled"] <= 1
    assert metrics["r_precision_chance"] == pytest.approx(1 / model.config.eval_scenes)
    assert list(results["fd_effnet"]) == list(bench.FD_ROWS)
    assert all(math.isfinite(v) and v >= 0 for v in results["fd_effnet"].values())
    text = bench.markdown(results, quick=True)
    assert "| test set | **Stage-II samples** |" in text
    assert "| held-out compositions | retrieval baseline |" in text
    assert "| chance |" in text and "FD-EffNet" in text and "--quick" in text
    assert set(bench.verdicts(results)) == {*bench.BARS, bench.STAGES_BAR}


def test_benchmark_grades_captioned_pictures_by_r_precision_and_both_stages():
    import dataclasses

    from benchmarks import stackgan as bench

    model = tiny_model()
    model.config = dataclasses.replace(model.config, dataset="emoji", eval_scenes=6)
    pictures = tiny_caption_set()
    graders = tiny_graders()
    graders.captions, graders.attributes = pictures, None
    results = bench.measure(model, graders)
    assert results["dataset"] == "emoji" and results["scenes"] == 3  # all the test captions
    assert 0 <= results["metrics"]["r_precision"] <= 1
    assert list(results["fd_effnet"]) == list(bench.FD_ROWS)
    text = bench.markdown(results, quick=True)
    assert "Attribute accuracy" not in text and "held-out" not in text
    assert "real pictures, test set (ceiling)" in text and "FD-EffNet" in text
    assert set(bench.verdicts(results)) == {bench.STAGES_BAR}


def test_benchmark_verdicts_on_hand_made_numbers():
    from benchmarks import stackgan as bench

    metrics = {
        "test_colour": 0.95,
        "test_shape": 0.91,
        "held_out_colour": 0.80,
        "held_out_shape": math.nan,  # no grader: never a pass
    }
    fd = {bench.STAGE1: 30.0, bench.STAGE2: 20.0}
    assert bench.verdicts({"dataset": "shapes", "metrics": metrics, "fd_effnet": fd}) == {
        "seen compositions: colour and shape >= 90 %": True,
        "held-out compositions: colour and shape >= 75 %": False,
        "Stage-II FD-EffNet below Stage-I's": True,
    }
    # Captioned pictures have no attributes: only the stages are compared.
    emoji = {"dataset": "emoji", "metrics": {}, "fd_effnet": {**fd, bench.STAGE2: 40.0}}
    assert bench.verdicts(emoji) == {"Stage-II FD-EffNet below Stage-I's": False}


def test_benchmark_speed_times_a_caption_to_eight_images_and_restores_threads():
    from benchmarks import stackgan as bench

    threads = torch.get_num_threads()
    timed = bench.time_generation(tiny_model(), repeats=2)
    assert timed["one_thread_ms"] > 0 and timed["all_threads_ms"] > 0
    assert torch.get_num_threads() == threads
    images = bench.caption_to_images(tiny_model(), bench.SPEED_CAPTION, bench.SPEED_IMAGES, 0)
    assert images.shape[0] == bench.SPEED_IMAGES
