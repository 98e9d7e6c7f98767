"""Captioned shape scenes: determinism, the caption grammar's round trip, pixels that match the
attributes, the held-out compositions, and refusals of bad arguments."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hub_models import shapesdata as sd
from hub_models.imagedata import DataError
from hub_models.shapesdata import Scene, SceneObject, parse_caption

MASK_TOLERANCE = 50  # grey levels per channel: pure object pixels, not edges blended with paper


def one_object(shape: str, size: str, colour: str = "red", x=0.5, y=0.5) -> Scene:
    return Scene((SceneObject(colour, shape, size, x, y),), (), "plain", "grey", 0)


def mask(image: np.ndarray, colour: str) -> np.ndarray:
    target = np.array(sd.COLOURS[colour], np.int16)
    return (np.abs(image.astype(np.int16) - target) <= MASK_TOLERANCE).all(axis=-1)


def centroid(m: np.ndarray) -> np.ndarray:
    """(x, y) of a mask's pixel centres, as fractions of the side."""
    ys, xs = np.nonzero(m)
    return (np.array([xs.mean(), ys.mean()]) + 0.5) / m.shape[0]


# -- determinism -----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_scenes_and_pixels():
    first, again = sd.scenes(40, seed=7), sd.scenes(40, seed=7)
    assert first == again
    assert np.array_equal(sd.render_many(first, 32), sd.render_many(again, 32))
    assert sd.scenes(10, seed=7) == first[:10]  # a prefix of a longer list
    assert sd.scenes(40, seed=8) != first
    assert sd.scenes(40, seed=7, split="test") != first  # each split has its own stream


def test_a_scene_renders_the_same_alone_and_in_any_batch():
    batch = sd.scenes(30, seed=3)
    together = sd.render_many(batch, 32)
    for i in (0, 13, 29):
        assert np.array_equal(sd.render(batch[i], 32), together[i])
    assert np.array_equal(sd.render_many(batch[::-1], 32)[::-1], together)


def test_fixed_sets_are_fixed_and_apart_from_training():
    assert sd.test_set(50) == sd.test_set(50)
    assert sd.held_out_set(50) == sd.held_out_set(50)
    assert sd.test_set(20) == sd.test_set(50)[:20]
    assert sd.TEST_SEED != sd.HELD_OUT_SEED
    assert not set(sd.test_set(200)) & set(sd.scenes(200, seed=sd.TEST_SEED))


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_resolutions(resolution):
    images = sd.render_many(sd.scenes(5, seed=1), resolution)
    assert images.shape == (5, resolution, resolution, 3)
    assert images.dtype == np.uint8
    assert sd.render(sd.scenes(1, seed=1)[0], resolution).shape == (resolution, resolution, 3)
    assert sd.render_many([], resolution).shape == (0, resolution, resolution, 3)


# -- captions --------------------------------------------------------------------------------


def check_round_trip(text: str, scene: Scene) -> None:
    parsed = parse_caption(text)
    assert parsed.mismatches(scene) == [], text
    assert parsed.unknown == [], text
    assert set(sd.tokenize(text)) <= set(sd.VOCABULARY), text
    if parsed.complete:  # every size stated: the exact attributes come back
        assert sorted((o.colour, o.shape, o.size) for o in parsed.objects) == sorted(
            (o.colour, o.shape, o.size) for o in scene.objects
        ), text


def test_every_phrasing_parses_back_to_the_scene():
    for scene in sd.scenes(40, seed=11) + sd.held_out_set(20):
        texts = sd.captions(scene)
        assert len(texts) == len(set(texts))
        for text in texts:
            check_round_trip(text, scene)
        assert any(parse_caption(t).complete for t in texts)  # every size stated


def test_random_captions_with_synonyms_parse_back():
    rng = np.random.default_rng(5)
    words = set()
    for seed in range(4):
        for scene in sd.scenes(150, seed=seed):
            text = sd.caption(scene, rng)
            check_round_trip(text, scene)
            words.update(sd.tokenize(text))
    assert words == set(sd.VOCABULARY)  # every word of the vocabulary is produced


def test_phrasings_of_each_scene_size():
    by_count = {len(s.objects): s for s in sd.scenes(50, seed=2)}
    assert set(by_count) == {1, 2, 3}
    # openings x sizes stated; x directions; x directions x clause orders x separators
    assert len(sd.captions(by_count[1])) == 3 * 2
    assert len(sd.captions(by_count[2])) == 4 * 2 * 4
    assert len(sd.captions(by_count[3])) == 4 * 4 * 2 * 2 * 8


@pytest.mark.parametrize(
    ("meaning", "synonym"),
    [(m, w) for m, words in sd.SYNONYMS.items() for w in words],
)
def test_synonyms_mean_the_same(meaning, synonym):
    template = ["a", "small", "red", "circle", "above", "a", "large", "blue", "square"]
    if meaning in sd.SIZE_WORDS:
        template[1] = synonym if meaning == "small" else template[1]
        template[6] = synonym if meaning == "large" else template[6]
    elif meaning in sd.COLOUR_WORDS:
        template[2] = synonym
    elif meaning in sd.SHAPE_WORDS:
        template[3] = synonym
    else:
        template[4] = synonym
    parsed = parse_caption(" ".join(template))
    expected_colour = meaning if meaning in sd.COLOUR_WORDS else "red"
    expected_shape = meaning if meaning in sd.SHAPE_WORDS else "circle"
    expected_relation = meaning if meaning in sd.RELATION_WORDS else "above"
    assert parsed.unknown == [] and parsed.problems == []
    assert [(o.colour, o.shape, o.size) for o in parsed.objects] == [
        (expected_colour, expected_shape, "small"),
        ("blue", "square", "large"),
    ]
    assert parsed.relations == [sd.Relation(0, expected_relation, 1)]


def test_no_word_has_two_meanings():
    phrases = [(m, w) for m, words in sd.SYNONYMS.items() for w in words]
    assert len({w for _, w in phrases}) == len(phrases)


def test_synonymous_captions_give_the_same_attributes():
    plain = parse_caption("a small red circle above a large blue square")
    for text in (
        "a little red circle over a big blue square",
        "a big blue square under a little red circle",
        "A large blue BOX, beneath a tiny red disc.",
        "there is a large blue square below a small red circle",
        "a picture of a large  blue square is under a small red circle!",
    ):
        other = parse_caption(text)
        assert {(o.colour, o.shape, o.size) for o in other.objects} == {
            (o.colour, o.shape, o.size) for o in plain.objects
        }, text
        scene = Scene(
            (
                SceneObject("red", "circle", "small", 0.5, 0.2),
                SceneObject("blue", "square", "large", 0.5, 0.7),
            ),
            (sd.Relation(0, "above", 1),),
            "plain",
            "grey",
            0,
        )
        assert other.describes(scene), (text, other.mismatches(scene))


def test_unknown_words_are_reported_not_raised():
    parsed = parse_caption("A shiny red circle, floating above the BLUE box!! shiny")
    assert parsed.unknown == ["shiny", "floating"]
    assert [(o.colour, o.shape) for o in parsed.objects] == [("red", "circle"), ("blue", "square")]
    assert parsed.relations == [sd.Relation(0, "above", 1)]
    for text in ("", "   ", "🙂 ??? 123", "a cat on the mat", "above", "red", "the the the"):
        parsed = parse_caption(text)  # never raises
        assert isinstance(parsed.unknown, list)
    assert parse_caption("a cat on the mat").unknown == ["cat", "on", "mat"]
    assert parse_caption("red").problems == ["'red' has no shape"]
    assert parse_caption("a big").problems == ["'big' has no colour or shape"]
    said_twice = parse_caption("a small red circle above a blue box and the big red circle")
    assert said_twice.problems == ["'big red circle' was said to be small before"]
    assert parse_caption("above").problems == ["'above' needs an object on each side"]
    assert parse_caption("a small circle").objects[0].colour is None


def test_a_caption_that_contradicts_the_scene_is_caught():
    scene = Scene(
        (
            SceneObject("red", "circle", "small", 0.2, 0.5),
            SceneObject("blue", "square", "large", 0.7, 0.5),
        ),
        (sd.Relation(0, "left of", 1),),
        "plain",
        "grey",
        0,
    )
    assert parse_caption("a red circle to the left of a blue square").describes(scene)
    assert parse_caption("a blue square right of a small red circle").describes(scene)
    for wrong in (
        "a red circle to the right of a blue square",
        "a large red circle to the left of a blue square",
        "a red circle above a blue square",
        "a green circle to the left of a blue square",
        "a red circle",
    ):
        assert not parse_caption(wrong).describes(scene), wrong


def test_a_near_miss_changes_one_thing_and_its_captions_contradict_the_scene():
    rng = np.random.default_rng(2)
    changed = set()
    for scene in sd.scenes(200, seed=12):
        near = sd.near_miss(scene, rng)
        assert near.pairs <= set(sd.SEEN_PAIRS)
        assert len({o.colour for o in near.objects}) == len(near.objects)
        objects = sum(a != b for a, b in zip(scene.objects, near.objects, strict=True))
        relations = sum(a != b for a, b in zip(scene.relations, near.relations, strict=True))
        assert objects + relations == 1
        for a, b in zip(scene.objects, near.objects, strict=True):
            changed.update(f for f in ("colour", "shape", "size") if getattr(a, f) != getattr(b, f))
        changed.update(["relation"] * relations)
        full = [t for t in sd.captions(near) if parse_caption(t).complete]
        assert full and all(parse_caption(t).describes(near) for t in full)
        assert not any(parse_caption(t).describes(scene) for t in full)
    assert changed == set(sd.NEAR_MISS_CHANGES)


def test_tokenize():
    assert sd.tokenize("A  Red-Circle, ABOVE!\tthe box2") == [
        "a",
        "red",
        "circle",
        "above",
        "the",
        "box",
    ]
    assert list(sd.VOCABULARY) == sorted(set(sd.VOCABULARY))


# -- pixels match attributes -----------------------------------------------------------------


@pytest.mark.parametrize("resolution", [32, 64])
def test_the_colour_at_each_centre_is_the_named_colour(resolution):
    batch = sd.scenes(150, seed=21) + sd.held_out_set(50)
    images = sd.render_many(batch, resolution)
    for scene, image in zip(batch, images, strict=True):
        for o in scene.objects:
            # A triangle's centroid is a third of its half-height below its box's centre.
            y = o.y + (o.radius / 3 if o.shape == "triangle" else 0)
            pixel = image[int(y * resolution), int(o.x * resolution)].astype(int)
            assert np.abs(pixel - sd.COLOURS[o.colour]).max() <= 30, (o, pixel)


def test_backgrounds_are_pale_and_far_from_every_colour():
    batch = sd.scenes(60, seed=4)
    images = sd.render_many(batch, 32)
    kinds = {s.background for s in batch}
    assert kinds == set(sd.BACKGROUNDS)
    empty = [Scene((), (), s.background, s.tint, s.texture_seed) for s in batch]
    paper = sd.render_many(empty, 32)
    assert paper.min() >= 195
    for colour in sd.COLOURS:
        assert not mask(paper, colour).any()
    for scene, image, plain in zip(batch, images, paper, strict=True):
        if scene.background == "plain":
            assert (plain == sd.TINTS[scene.tint]).all()
        else:
            assert plain.std() > 1  # textured, lightly
        assert image.shape == plain.shape


@pytest.mark.parametrize("shape", sd.SHAPES)
def test_a_large_object_covers_more_pixels_than_a_small_one(shape):
    small = mask(sd.render(one_object(shape, "small"), 64), "red").sum()
    large = mask(sd.render(one_object(shape, "large"), 64), "red").sum()
    assert small > 0
    assert 2.4 < large / small < 4.5  # (1.8 times as wide) squared is 3.24


def test_relations_hold_between_pixel_centroids():
    batch = [s for s in sd.scenes(200, seed=9) if s.relations]
    images = sd.render_many(batch, 32)
    checked = 0
    for scene, image in zip(batch, images, strict=True):
        centres = [centroid(mask(image, o.colour)) for o in scene.objects]
        for rel in scene.relations:
            dx, dy = centres[rel.subject] - centres[rel.reference]
            offset = {"left of": -dx, "right of": dx, "above": -dy, "below": dy}[rel.relation]
            assert offset >= 0.12, (scene, rel, dx, dy)
            checked += 1
    assert checked > 200


def test_objects_stay_apart_and_inside_the_picture():
    for scene in sd.scenes(300, seed=12) + sd.held_out_set(100):
        colours = [o.colour for o in scene.objects]
        assert len(set(colours)) == len(colours)
        for o in scene.objects:
            assert o.radius <= o.x <= 1 - o.radius and o.radius <= o.y <= 1 - o.radius
        for a, b in itertools.combinations(scene.objects, 2):
            reach = a.radius + b.radius
            assert abs(a.x - b.x) >= reach or abs(a.y - b.y) >= reach
        for rel in scene.relations:
            a, b = scene.objects[rel.subject], scene.objects[rel.reference]
            major, minor = {
                "left of": (b.x - a.x, a.y - b.y),
                "right of": (a.x - b.x, a.y - b.y),
                "above": (b.y - a.y, a.x - b.x),
                "below": (a.y - b.y, a.x - b.x),
            }[rel.relation]
            assert major >= sd.RELATION_MARGIN
            assert abs(minor) <= sd.RELATION_DOMINANCE * major


# -- held-out compositions -------------------------------------------------------------------


def test_held_out_pairs_never_train_or_test_and_always_held_out():
    train = sd.scenes(1500, seed=0)
    test = sd.test_set(500)
    held = sd.held_out_set(400)
    seen = set().union(*(s.pairs for s in train + test))
    assert not seen & sd.HELD_OUT_PAIRS
    assert seen == set(sd.SEEN_PAIRS)  # every seen pair occurs
    assert all(s.pairs & sd.HELD_OUT_PAIRS for s in held)
    assert set().union(*(s.pairs for s in held)) >= sd.HELD_OUT_PAIRS


def test_every_colour_and_shape_trains_with_several_partners():
    for colour in sd.COLOURS:
        assert sum(c == colour for c, _ in sd.SEEN_PAIRS) >= 4
    for shape in sd.SHAPES:
        assert sum(s == shape for _, s in sd.SEEN_PAIRS) >= 5
    train = sd.scenes(300, seed=1)
    assert {o.colour for s in train for o in s.objects} == set(sd.COLOURS)
    assert {o.shape for s in train for o in s.objects} == set(sd.SHAPES)
    assert len(sd.HELD_OUT_PAIRS) == 5
    assert all(pair in sd.ALL_PAIRS for pair in sd.HELD_OUT_PAIRS)


# -- refusals --------------------------------------------------------------------------------


def test_bad_arguments_raise_data_errors():
    with pytest.raises(DataError, match="unknown split 'validation'; choose one of: train"):
        sd.scenes(3, split="validation")
    with pytest.raises(DataError, match="unknown split"):
        sd.random_scene(np.random.default_rng(0), split="dev")
    with pytest.raises(DataError, match=r"n must be a whole number of scenes, 0 or more \(got -1"):
        sd.scenes(-1)
    with pytest.raises(DataError, match="n must be"):
        sd.test_set(-5)
    with pytest.raises(DataError, match="n must be"):
        sd.scenes(2.5)
    with pytest.raises(DataError, match="seed must be"):
        sd.scenes(2, seed=-1)
    scene = sd.scenes(1)[0]
    for resolution in (4, 7, 0, -32, 32.0, 4096):
        with pytest.raises(DataError, match=r"resolution must be .* from 8 to"):
            sd.render(scene, resolution)
    with pytest.raises(DataError, match="cannot draw a small pink circle"):
        sd.render(one_object("circle", "small", colour="pink"))
    with pytest.raises(DataError, match="a caption must be text"):
        parse_caption(None)
    with pytest.raises(DataError, match="a scene without objects has no caption"):
        sd.caption(Scene((), (), "plain", "grey", 0), np.random.default_rng(0))
    broken = Scene(scene.objects, (sd.Relation(0, "near", 5),), "plain", "grey", 0)
    with pytest.raises(DataError, match="bad relation"):
        sd.captions(broken)
    assert sd.scenes(0) == []
    assert sd.render(scene, 8).shape == (8, 8, 3)
