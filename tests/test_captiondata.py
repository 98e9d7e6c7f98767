"""Captioned pictures for StackGAN: every vendor's emoji named by CLDR, and a user's folder
(CSV, JSONL or one .txt per picture) whose bad pairs are reported one by one while the rest
load; then tiny StackGAN runs on both, the folder one through the CLI.

The emoji set is read at 16x16 from the 32x32 renders the image families' tests cache too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hub_models import captiondata, emojidata, imagedata, textenc
from hub_models.captiondata import DataError, folder_captions, split_groups
from hub_models.shapesdata import tokenize
from hub_models.stackgan import (
    EMOJI_MATCHER,
    EMOJI_TEXT_ENCODER,
    MATCHER,
    METRIC_NAMES,
    TEXT_ENCODER,
    StackGAN,
    StackGANConfig,
    encode_captions,
    load_auxiliary,
    sample,
)
from training import cli, loop
from training.stackgan import (
    OWN_ENCODER_STEPS,
    OWN_TEXT_ENCODER,
    StackGANTrainer,
    auxiliary_names,
    load_data,
    train_text_image,
)

TRAINER = StackGANTrainer()
TINY = TRAINER.presets["tiny"]
RESOLUTION = 16
TINY_TEXT_IMAGE = {
    "word_dim": 8,
    "text_hidden": 8,
    "text_dim": TINY["text_dim"],
    "resolution": RESOLUTION,
    "image_width": 4,
    "steps": 3,
    "batch_size": 8,
}


@pytest.fixture(scope="module")
def emoji() -> captiondata.CaptionSet:
    return captiondata.emoji_captions(RESOLUTION)


# -- emoji ---------------------------------------------------------------------------------------


def test_emoji_pictures_are_aligned_with_their_names(emoji):
    drawn = emojidata.load_emoji(None, captiondata.EMOJI_MIN_RENDER, "all", aligned=False)
    assert len(emoji) == len(drawn)
    names = [emoji.captions[g] for g in emoji.image_group.tolist()]
    assert names == list(drawn.names)
    expected = imagedata.resize(np.asarray(drawn.images), RESOLUTION)
    assert torch.equal(emoji.pixels, torch.from_numpy(expected).permute(0, 3, 1, 2))
    grinning = emoji.captions.index("grinning face")
    assert emoji.phrasings[grinning][0] == "grinning face"
    assert "smileys emotion" in emoji.phrasings[grinning][1]  # its CLDR group as a keyword


def test_each_emoji_caption_has_several_vendors_drawings(emoji):
    drawn = emojidata.load_emoji(None, captiondata.EMOJI_MIN_RENDER, "all", aligned=False)
    vendors_of: dict[int, set[int]] = {}
    for group, vendor in zip(emoji.image_group.tolist(), drawn.vendors.tolist(), strict=True):
        vendors_of.setdefault(group, set()).add(vendor)
    counts = [len(v) for v in vendors_of.values()]
    assert len(vendors_of) == len(emoji.captions)
    assert np.mean([c >= 2 for c in counts]) > 0.9
    assert len(vendors_of[emoji.captions.index("grinning face")]) == len(drawn.vendor_names)


def test_the_emoji_test_set_is_fixed_and_held_out_of_training(emoji):
    test = set(emoji.test_captions())
    assert 0.05 < len(test) / len(emoji.captions) < 0.15
    # Membership depends on the caption alone: fewer captions, same verdict for each.
    some = list(emoji.captions[::7])
    assert {some[i] for i in split_groups(some).tolist()} == test & set(some)
    assert {"OK button", "Argentina"} <= test and "grinning face" not in test
    train_images = emoji.image_index("train")
    assert not set(emoji.image_group[train_images].tolist()) & set(emoji.test_groups.tolist())
    assert len(train_images) + len(emoji.image_index("test")) == len(emoji)
    images, texts = emoji.draw(64, torch.Generator().manual_seed(0))
    assert images.shape == (64, 3, RESOLUTION, RESOLUTION) and images.abs().max() <= 1
    assert not {t.split(":")[0] for t in texts} & test


def test_the_emoji_vocabulary_reads_training_captions_only(emoji):
    vocabulary = emoji.vocabulary()
    index = textenc.vocabulary_index(vocabulary)
    assert vocabulary[:2] == textenc.SPECIALS and "grinning" in index and "smileys" in index
    train_words = {
        w for g in emoji.train_groups.tolist() for p in emoji.phrasings[g] for w in tokenize(p)
    }
    test_only = {w for c in emoji.test_captions() for w in tokenize(c)} - train_words
    assert test_only and not test_only & set(index)
    assert train_words == set(index) - set(textenc.SPECIALS)


# -- a user's folder -----------------------------------------------------------------------------


def picture(path: Path, colour=(200, 30, 30), size=(24, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def good_folder(root: Path, n: int = 6) -> Path:
    for i in range(n):
        picture(root / f"p{i}.png", (40 * i, 255 - 40 * i, 90))
    return root


def test_a_csv_with_a_header_loads_every_good_pair_and_names_each_bad_one(tmp_path):
    folder = good_folder(tmp_path / "data")
    (folder / "broken.png").write_bytes(b"not a png at all")
    long = " ".join(["word"] * (captiondata.MAX_CAPTION_WORDS + 1))
    rows = [
        "file,caption",
        *(f"p{i}.png,a picture number {i}" for i in range(6)),
        "gone.png,a missing picture",
        'p0.png,""',
        f"p1.png,{long}",
        "broken.png,a damaged file",
        "lonely",
    ]
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    data = folder_captions(folder, RESOLUTION)
    assert len(data) == 6 and data.pixels.shape == (6, 3, RESOLUTION, RESOLUTION)
    assert data.captions[0] == "a picture number 0"
    problems = "\n".join(data.problems)
    assert len(data.problems) == 5, problems
    assert "gone.png: the picture does not exist" in problems
    assert "line 9: the caption of p0.png is empty" in problems
    assert f"the caption of p1.png has {captiondata.MAX_CAPTION_WORDS + 1} words" in problems
    assert "broken.png is not an image" in problems
    assert "line 12: expected two columns" in problems


def test_a_headerless_csv_keeps_commas_and_every_caption_of_a_picture(tmp_path):
    folder = good_folder(tmp_path / "data", 3)
    lines = ["p0.png,a red, round thing", "p1.png,first", "p1.png,second", "p2.png,third"]
    (folder / "metadata.csv").write_text("\n".join(lines))
    data = folder_captions(folder, RESOLUTION)
    assert data.captions == ("a red, round thing", "first", "third")
    assert data.phrasings[1] == ("first", "second") and not data.problems


def test_jsonl_and_an_index_file_named_directly(tmp_path):
    folder = good_folder(tmp_path / "data", 4)
    lines = [json.dumps({"file_name": f"p{i}.png", "text": f"caption {i}"}) for i in range(4)]
    lines += ["{not json", json.dumps({"file": "p0.png"})]
    index = folder / "captions.jsonl"
    index.write_text("\n".join(lines))
    for path in (folder, index):
        data = folder_captions(path, RESOLUTION)
        assert len(data) == 4
        assert "line 5: not valid JSON" in data.problems[0]
        assert "line 6: expected an object" in data.problems[1]


def test_one_txt_per_picture(tmp_path):
    folder = good_folder(tmp_path / "data", 4)
    for i in range(3):
        (folder / f"p{i}.txt").write_text(f"picture {i}\nanother way to say {i}\n")
    picture(folder / "sub" / "q.jpg")
    (folder / "sub" / "q.txt").write_text("in a subfolder")
    (folder / "orphan.txt").write_text("no picture")
    (folder / "blank.png").write_bytes((folder / "p0.png").read_bytes())
    (folder / "blank.txt").write_text("  \n")
    data = folder_captions(folder, RESOLUTION)
    assert sorted(data.captions) == ["in a subfolder", "picture 0", "picture 1", "picture 2"]
    assert data.phrasings[data.captions.index("picture 1")] == ("picture 1", "another way to say 1")
    problems = "\n".join(data.problems)
    assert "p3.png: no caption (expected p3.txt beside it)" in problems
    assert "orphan.txt: a caption with no picture" in problems
    assert "blank.txt: the caption of blank.png is empty" in problems


def test_nothing_loadable_is_one_error_that_lists_the_problems(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG broken")
    (folder / "captions.csv").write_text("a.png,a broken picture\nb.png,missing\nc.png,\n")
    with pytest.raises(DataError) as error:
        folder_captions(folder, RESOLUTION)
    message = str(error.value)
    assert "0 captioned picture(s) could be used" in message and "3 problem(s)" in message
    assert "a.png" in message and "b.png: the picture does not exist" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="Nothing was found"):
        folder_captions(empty, RESOLUTION)
    with pytest.raises(DataError, match="does not exist"):
        folder_captions(tmp_path / "nowhere", RESOLUTION)
    (folder / "captions.jsonl").write_text("")
    with pytest.raises(DataError, match="keep one index"):
        folder_captions(folder, RESOLUTION)


def test_the_folder_test_split_is_fixed_and_never_empty_or_everything():
    for n in (2, 3, 5, 40):
        captions = [f"caption {i}" for i in range(n)]
        groups = split_groups(captions)
        assert 1 <= len(groups) < n
        assert torch.equal(groups, split_groups(list(captions)))
    with pytest.raises(DataError, match="at least 2"):
        split_groups(["alone"])


# -- StackGAN on captioned pictures ----------------------------------------------------------------


def test_stackgan_trains_on_a_folder_through_the_cli(tmp_path, capsys):
    folder = good_folder(tmp_path / "data", 6)
    (folder / "captions.csv").write_text(
        "\n".join([*(f"p{i}.png,a shade number {i}" for i in range(6)), "gone.png,missing"])
    )
    out = tmp_path / "run"
    argv = ["train", "stackgan", "--preset", "tiny", "--data", str(folder), "--out", str(out)]
    assert cli.main(argv) == 0
    assert "gone.png: the picture does not exist" in capsys.readouterr().err
    model = StackGAN.load_folder(out)
    assert model.config.dataset == "folder"
    assert {"shade", "number"} <= set(model.config.vocabulary)
    record = json.loads((out / "training.json").read_text())
    assert record["data"] == str(folder) and "--data" in record["command"]
    assert set(json.loads((out / "eval.json").read_text())) == set(METRIC_NAMES)
    assert sample(model, 2, 0).shape == (2, 3, RESOLUTION, RESOLUTION)
    capsys.readouterr()
    assert cli.main(["evaluate", "stackgan", "--from", str(out), "--json"]) == 0
    assert "r_precision_chance" in capsys.readouterr().out


COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")


def test_a_folder_run_trains_its_own_text_encoder_and_resume_reuses_it(tmp_path, capsys):
    folder = good_folder(tmp_path / "data", len(COLOURS))
    (folder / "captions.csv").write_text(
        "\n".join(f"p{i}.png,a {colour} square" for i, colour in enumerate(COLOURS))
    )
    out = tmp_path / "run"
    argv = ["train", "stackgan", "--preset", "tiny", "--data", str(folder), "--out", str(out)]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    trained = [line for line in err.splitlines() if "trained a text encoder" in line]
    assert len(trained) == 1 and str(out / OWN_TEXT_ENCODER) in trained[0], err
    assert "untrained" not in err

    # An auxiliary folder, read by folder as a published encoder is, trained on this folder's
    # training captions with the small-folder budget.
    encoder = load_auxiliary(textenc.TextImageModel, str(out / OWN_TEXT_ENCODER))
    data = folder_captions(folder, RESOLUTION)
    assert encoder.config.dataset == "folder" and encoder.config.compositions == "train"
    assert encoder.config.vocabulary == data.vocabulary("train")
    assert encoder.config.steps == OWN_ENCODER_STEPS[0]
    assert "test_r_precision" in json.loads((out / OWN_TEXT_ENCODER / "eval.json").read_text())

    def same_text_tower(model: StackGAN) -> bool:
        mine = model.text.state_dict()
        return all(torch.equal(mine[k], v) for k, v in encoder.text.state_dict().items())

    model = StackGAN.load_folder(out)
    assert model.config.vocabulary == encoder.config.vocabulary
    assert same_text_tower(model)
    _, unknown = encode_captions(model, ["a zebra square"])
    assert unknown == [["zebra"]]

    # --resume reuses a complete encoder and retrains an incomplete one.
    weights = out / OWN_TEXT_ENCODER / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert cli.main([*argv, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "reusing the text encoder" in err and "trained a text encoder" not in err
    assert weights.stat().st_mtime_ns == written
    assert same_text_tower(StackGAN.load_folder(out))
    (out / OWN_TEXT_ENCODER / "eval.json").unlink()
    assert cli.main([*argv, "--resume"]) == 0
    assert "trained a text encoder" in capsys.readouterr().err
    assert not (out / f"{OWN_TEXT_ENCODER}.partial").exists()


def test_a_folder_with_nothing_usable_stops_the_cli_with_its_problems(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "captions.csv").write_text("a.png,missing\n")
    argv = ["train", "stackgan", "--preset", "tiny", "--data", str(folder), "--out", tmp_path]
    assert cli.main([str(a) for a in argv]) == 2
    assert "a.png: the picture does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def emoji_auxiliary(tmp_path_factory):
    root = tmp_path_factory.mktemp("emoji-auxiliary")
    metrics = {
        name: train_text_image(name, root / name, eval_scenes=16, **TINY_TEXT_IMAGE)
        for name in (EMOJI_TEXT_ENCODER, EMOJI_MATCHER)
    }
    return root, metrics


def test_emoji_text_encoder_and_matcher_train_on_their_own_captions(emoji, emoji_auxiliary):
    root, metrics = emoji_auxiliary
    encoder = textenc.TextImageModel.load_folder(root / EMOJI_TEXT_ENCODER)
    matcher = textenc.TextImageModel.load_folder(root / EMOJI_MATCHER)
    assert encoder.config.dataset == matcher.config.dataset == "emoji"
    assert encoder.config.vocabulary == emoji.vocabulary("train")
    assert matcher.config.vocabulary == emoji.vocabulary("all")
    for name, values in metrics.items():
        assert set(values) == {"test_r_precision", "r_precision_chance"}, name
        assert all(math.isfinite(v) for v in values.values())
        assert "python -m training auxiliary" in (root / name / "README.md").read_text()
    assert textenc.smoke(encoder, 3, 0).shape == (3, 3)


def test_a_tiny_emoji_run_end_to_end(emoji, emoji_auxiliary, tmp_path):
    root, _ = emoji_auxiliary
    config = StackGANConfig(
        **{
            **TINY,
            "dataset": "emoji",
            "text_encoder": str(root / EMOJI_TEXT_ENCODER),
            "matcher": str(root / EMOJI_MATCHER),
        }
    )
    out = loop.train(TRAINER, config, loop.RunOptions(out=tmp_path / "run", preset="tiny"))
    metrics = json.loads((out / "eval.json").read_text())
    assert set(metrics) == set(METRIC_NAMES)
    for key in ("r_precision", "r_precision_stage1", "r_precision_real", "r_precision_chance"):
        assert math.isfinite(metrics[key]), key
    assert math.isnan(metrics["test_colour"]) and math.isnan(metrics["r_precision_held_out"])
    model = StackGAN.load_folder(out)
    assert model.config.dataset == "emoji"
    encoder = textenc.TextImageModel.load_folder(root / EMOJI_TEXT_ENCODER)
    assert model.config.vocabulary == encoder.config.vocabulary
    caption = ["grinning cat face"]
    assert torch.equal(encode_captions(model, caption)[0], textenc.encode(encoder.text, caption)[0])
    assert sample(model, 2, 0).shape == (2, 3, RESOLUTION, RESOLUTION)


def test_an_emoji_run_refuses_shapes_graders_and_unknown_names(emoji_auxiliary):
    root, _ = emoji_auxiliary
    emoji_tiny = {**TINY, "dataset": "emoji"}
    with pytest.raises(ValueError, match="attribute grader reads shape scenes only"):
        load_data(StackGANConfig(**{**emoji_tiny, "attributes": str(root / EMOJI_MATCHER)}))
    # The config's defaults name the shapes models: an emoji run reads the emoji ones instead.
    defaults = StackGANConfig(**{**emoji_tiny, "text_encoder": TEXT_ENCODER, "matcher": MATCHER})
    assert auxiliary_names(defaults, "emoji") == {
        "text_encoder": EMOJI_TEXT_ENCODER,
        "matcher": EMOJI_MATCHER,
        "attributes": "",
    }
    with pytest.raises(ValueError, match="neither a folder nor one of"):
        load_data(StackGANConfig(**{**emoji_tiny, "text_encoder": "stackgan-cats-text-encoder"}))
    with pytest.raises(ValueError, match="reads emoji captions but this run reads shapes"):
        load_data(StackGANConfig(**{**TINY, "text_encoder": str(root / EMOJI_TEXT_ENCODER)}))
