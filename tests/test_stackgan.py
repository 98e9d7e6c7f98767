"""StackGAN: the text encoder, conditioning augmentation, both stages, the matching-aware loss,
the metrics on hand cases, a training step of every network, an end-to-end tiny run, and the
three auxiliary models.

The family is not in the registry yet (its models are not trained): the end-to-end run puts
it there for the length of one test (``monkeypatch.setitem`` on the registry's dict, which
``training.base`` reads), so the trainer stays exactly like every registered family's.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator

from hub_models import shapesdata, textenc
from hub_models.base import CheckpointError
from hub_models.stackgan import (
    ABSENT,
    ATTRIBUTES,
    AUXILIARY,
    COLOURS,
    FAMILY,
    HEAD_PER_COLOUR,
    MATCHER,
    METRIC_NAMES,
    SHAPES,
    TEXT_ENCODER,
    AttributeClassifier,
    AttributePrediction,
    ConditioningAugmentation,
    StackGAN,
    StackGANConfig,
    attribute_accuracy,
    caption_attribute_loss,
    caption_slots,
    caption_targets,
    contrastive_loss,
    encode_captions,
    fixed_captions,
    generate,
    inference_generators,
    kl_divergence,
    matching_aware_discriminator_loss,
    merges_into_transposed,
    noise,
    predicted_relation,
    r_precision,
    sample,
    scene_attribute_loss,
    scene_targets,
    synthesize,
    upsampling_as_transposed,
)
from training import base, loop
from training.base import StepContext
from training.stackgan import (
    StackGANData,
    StackGANTrainer,
    load_data,
    on_device,
    right_and_wrong_captions,
    train_attributes,
    train_text_image,
)

TRAINER = StackGANTrainer()
TINY = TRAINER.presets["tiny"]
# Auxiliary models small enough to train in a second (the same code as the published ones).
TINY_TEXT_IMAGE = {
    "word_dim": 8,
    "text_hidden": 8,
    "text_dim": TINY["text_dim"],
    "resolution": 16,
    "image_width": 4,
    "steps": 3,
    "batch_size": 8,
}
TINY_ATTRIBUTES = {"resolution": 16, "width": 4, "hidden": 16, "steps": 3, "batch_size": 8}


def tiny_model(seed: int = 0, **overrides) -> StackGAN:
    torch.manual_seed(seed)
    return StackGAN(StackGANConfig(**{**TINY, **overrides})).eval()


@pytest.fixture(scope="module")
def auxiliary(tmp_path_factory):
    """The three auxiliary models, trained tiny, as published folders."""
    root = tmp_path_factory.mktemp("auxiliary")
    metrics = {
        TEXT_ENCODER: train_text_image(
            TEXT_ENCODER, root / TEXT_ENCODER, eval_scenes=16, **TINY_TEXT_IMAGE
        ),
        MATCHER: train_text_image(MATCHER, root / MATCHER, eval_scenes=16, **TINY_TEXT_IMAGE),
        ATTRIBUTES: train_attributes(root / ATTRIBUTES, eval_scenes=16, **TINY_ATTRIBUTES),
    }
    return root, metrics


# -- the text encoder --------------------------------------------------------------------------


def test_the_vocabulary_shares_rows_between_synonyms_and_starts_with_pad_and_unk():
    vocabulary = textenc.shapes_vocabulary()
    index = textenc.vocabulary_index(vocabulary)
    assert vocabulary[:2] == (textenc.PAD, textenc.UNK)
    assert index["box"] == index["square"] and index["violet"] == index["purple"]
    assert index["tiny"] == index["little"] == index["small"]
    assert index["beneath"] == index["under"] == index["below"] != index["above"]
    assert index["red"] != index["blue"] and index["left"] != index["right"]
    assert set(shapesdata.VOCABULARY) <= set(index)
    with pytest.raises(ValueError, match="two rows"):
        textenc.vocabulary_index((textenc.PAD, textenc.UNK, "red", "crimson|red"))


def test_synonyms_give_the_same_vector_and_unknown_words_are_reported():
    torch.manual_seed(0)
    encoder = textenc.TextEncoder(
        vocabulary=textenc.shapes_vocabulary(), word_dim=8, text_hidden=8, text_dim=16
    ).eval()
    vectors, unknown = textenc.encode(
        encoder,
        [
            "a big violet box above a tiny red disc",
            "A LARGE purple square, over a small red circle!",
            "a big zorp box above a tiny red disc",
            "a big florb box above a tiny red disc zorp",
            "a big blue box above a tiny red disc",
            "",
        ],
    )
    assert torch.allclose(vectors[0], vectors[1])  # synonyms, case and punctuation
    assert unknown[:2] == [[], []]
    assert unknown[2] == ["zorp"] and unknown[3] == ["florb", "zorp"]
    # Every unknown word is read as <unk>: two different unknown colours are the same caption.
    assert torch.allclose(
        vectors[2], textenc.encode(encoder, ["a big florb box above a tiny red disc"])[0][0]
    )
    assert not torch.allclose(vectors[0], vectors[4])  # a known word does change the vector
    assert unknown[5] == [] and torch.isfinite(vectors[5]).all()
    assert torch.allclose(vectors.norm(dim=1), torch.ones(6))


def test_an_emoji_vocabulary_plugs_into_the_same_encoder():
    vocabulary = textenc.emoji_vocabulary(["grinning face", "cat face", "red heart"])
    assert vocabulary == (textenc.PAD, textenc.UNK, "cat", "face", "grinning", "heart", "red")
    encoder = textenc.TextEncoder(vocabulary=vocabulary, word_dim=4, text_hidden=4, text_dim=8)
    vectors, unknown = textenc.encode(encoder, ["smiling cat face", "red heart"])
    assert vectors.shape == (2, 8) and unknown == [["smiling"], []]


def test_word_dropout_replaces_only_real_words_by_unk():
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    lengths = torch.tensor([3, 2])
    dropped = textenc.word_dropout(ids, lengths, 1.0, torch.Generator().manual_seed(0))
    assert dropped.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    kept = textenc.word_dropout(ids, lengths, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(kept, ids)


# -- conditioning augmentation -------------------------------------------------------------------


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zero = torch.zeros(4, 3)
    assert kl_divergence(zero, zero).item() == 0
    assert kl_divergence(torch.ones(4, 3), zero).item() == pytest.approx(0.5)  # mu^2 / 2
    assert kl_divergence(zero, torch.ones(4, 3)).item() == pytest.approx(0.5 * (math.e - 2))
    assert kl_divergence(zero, -torch.ones(4, 3)).item() > 0


def test_conditioning_augmentation_samples_mu_plus_sigma_eps():
    ca = ConditioningAugmentation(text_dim=4, c_dim=2)
    with torch.no_grad():
        ca.fc.weight.zero_()
        ca.fc.bias.copy_(torch.tensor([1.0, -2.0, 0.0, math.log(4.0)]))  # mu, logvar
    eps = torch.tensor([[0.5, 0.5]])
    c, mu, _ = ca(torch.randn(1, 4), eps)
    assert mu.tolist() == [[1.0, -2.0]]
    assert c[0].tolist() == pytest.approx([1.0 + 0.5, -2.0 + 2 * 0.5])  # sigma = 1 and 2


# -- the stages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{}, {"resolution": 32}], ids=["16", "32"])
def test_stage_one_draws_half_the_side_of_stage_two(overrides):
    model = tiny_model(**overrides)
    r = model.config.resolution
    stage1, stage2 = generate(model, ["a red circle", "a blue box left of a green cross"], 3, 0)
    assert stage1.shape == (6, 3, r // 2, r // 2) and stage2.shape == (6, 3, r, r)
    assert stage2.min() >= -1 and stage2.max() <= 1
    assert sample(model, 5, 1).shape == (5, 3, r, r)


def test_the_published_size_draws_32_then_64():
    model = StackGAN(StackGANConfig()).eval()
    stage1, stage2 = generate(model, ["a small red circle above a large blue square"], 2, 0)
    assert stage1.shape == (2, 3, 32, 32) and stage2.shape == (2, 3, 64, 64)


def test_same_seed_same_images_and_sample_j_shares_its_noise_across_captions():
    model = tiny_model()
    captions = ["a red circle", "a blue square"]
    first = generate(model, captions, 2, 5)
    torch.manual_seed(123)  # the global RNG must not matter
    again = generate(model, captions, 2, 5)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[1], generate(model, captions, 2, 6)[1])
    alone = generate(model, captions[:1], 2, 5)
    # Caption-major, noise per sample index (equal up to the batch's float arithmetic).
    assert torch.allclose(alone[1], first[1][:2], atol=1e-5)
    edited = generate(model, ["a green circle"], 2, 5)[1]
    assert not torch.equal(edited, alone[1])  # same noise, other words, other picture
    longer = noise(model.config, 5, 5)
    assert all(
        torch.equal(a, b[:2]) for a, b in zip(noise(model.config, 2, 5), longer, strict=True)
    )


def test_folded_generators_draw_the_same_pictures_and_follow_new_weights():
    model = tiny_model()
    for m in model.modules():  # running statistics away from 0 and 1, so folding shows
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    g1, g2 = inference_generators(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.Upsample) for m in g2.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in g1.modules())
    assert inference_generators(model)[1] is g2  # built once per set of weights
    c, z = torch.randn(4, TINY["c_dim"]), torch.randn(4, TINY["z_dim"])
    with torch.no_grad():
        torch.testing.assert_close(g1(c, z), model.g1(c, z), atol=1e-5, rtol=0)
        s1 = model.g1(c, z)
        torch.testing.assert_close(g2(s1, c), model.g2(s1, c), atol=1e-5, rtol=0)
    assert inference_generators(model.train()) == (model.g1, model.g2)
    model.eval()
    state = set(model.state_dict())
    with torch.no_grad():
        model.g2.up[-2].weight.add_(1.0)
    assert inference_generators(model)[1] is not g2 and set(model.state_dict()) == state


@pytest.mark.parametrize("bias", [True, False])
def test_upsampling_then_a_convolution_is_one_transposed_convolution(bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 7, 3, 1, 1, bias=bias)
    pair = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode="nearest"), conv)
    assert merges_into_transposed(*pair)
    assert not merges_into_transposed(torch.nn.Upsample(scale_factor=2, mode="bilinear"), conv)
    assert not merges_into_transposed(pair[0], torch.nn.Conv2d(5, 7, 3, 2, 1))
    merged = upsampling_as_transposed(conv)
    for x in (torch.randn(3, 5, 4, 6), torch.randn(2, 5, 5, 5)):  # any shape, odd sides too
        with torch.no_grad():
            torch.testing.assert_close(merged(x), pair(x), atol=1e-5, rtol=0)


def test_encode_captions_reports_unknown_words_of_a_prompt():
    model = tiny_model()
    vectors, unknown = encode_captions(model, ["a crimson circle above a blue box"])
    assert vectors.shape == (1, model.config.text_dim) and unknown == [["crimson"]]


def test_save_load_round_trip_and_a_strict_refusal(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "a")
    loaded = StackGAN.load_folder(tmp_path / "a")
    assert loaded.config == model.config
    model.round_to_storage()
    assert torch.equal(sample(model, 4, 2), sample(loaded, 4, 2))
    other = StackGAN(dataclasses.replace(model.config, g1_width=8))
    other.save_pretrained(tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes(
        (tmp_path / "b" / "model.safetensors").read_bytes()
    )
    with pytest.raises(CheckpointError, match="g1"):
        StackGAN.load_folder(tmp_path / "a")


def test_configs_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="color"):
        StackGANConfig(augment="translation,color")
    with pytest.raises(ValueError, match="--data FOLDER"):
        StackGANConfig(dataset="photos")
    with pytest.raises(ValueError, match="power of two"):
        StackGANConfig(resolution=48)
    StackGANConfig(augment="translation,cutout")
    with pytest.raises(ValueError, match="share"):
        StackGANConfig(near_misses=1.5)
    with pytest.raises(ValueError, match="rendered shapes only"):
        StackGANConfig(dataset="emoji", w_attributes=1.0)
    with pytest.raises(ValueError, match="move or hide"):
        StackGANConfig(w_attributes=1.0, augment="translation")


# -- the loss and the metrics on hand cases ------------------------------------------------------


def test_matching_aware_loss_on_a_hand_case():
    real_right = torch.tensor([2.0, 0.5])
    fake_right = torch.tensor([-2.0, 0.0])
    real_wrong = torch.tensor([0.5])
    # hinge: real relu(1 - d) = (0 + 0.5) / 2 = 0.25; fake relu(1 + d) = (0 + 1) / 2 = 0.5;
    # wrong relu(1 + 0.5) = 1.5; L = 0.25 + (0.5 + 1.5) / 2 = 1.25
    loss = matching_aware_discriminator_loss(real_right, fake_right, real_wrong, "hinge")
    assert loss.item() == pytest.approx(1.25)
    # non-saturating at d = 0 everywhere: log 2 + (log 2 + log 2) / 2 = 2 log 2
    zero = torch.zeros(3)
    loss = matching_aware_discriminator_loss(zero, zero, zero, "nonsaturating")
    assert loss.item() == pytest.approx(2 * math.log(2))
    # a D that accepts real pairs and rejects the rest by a margin has no hinge loss
    accepted, rejected, mismatched = torch.tensor([3.0]), torch.tensor([-3.0]), torch.tensor([-1.0])
    loss = matching_aware_discriminator_loss(accepted, rejected, mismatched)
    assert loss.item() == 0


def test_the_relation_of_two_centres_follows_the_renderers_rule():
    dx = torch.tensor([-0.3, 0.3, 0.1, -0.1, -0.3])
    dy = torch.tensor([0.1, -0.1, -0.3, 0.3, 0.3])  # y grows downwards
    names = [shapesdata.RELATIONS[i] for i in predicted_relation(dx, dy).tolist()]
    assert names == ["left of", "right of", "above", "below", "left of"]  # a tie: horizontal


def test_a_perfect_grader_scores_every_stated_attribute_right():
    scenes = shapesdata.test_set(200)
    captions = fixed_captions("test", 200)
    truth = scene_targets(scenes)
    targets = caption_targets(captions)
    assert attribute_accuracy(truth, targets) == {
        "colour": 1.0,
        "shape": 1.0,
        "size": 1.0,
        "relation": 1.0,
    }
    # Hand case: a scene of one object, graded on captions that get some of it wrong.
    scene = next(s for s in scenes if len(s.objects) == 1)
    o = scene.objects[0]
    size = {"small": "large", "large": "small"}[o.size]
    colour = next(c for c in shapesdata.COLOURS if c != o.colour)
    shape = next(s for s in shapesdata.SHAPES if s != o.shape)
    said = [
        f"a {o.size} {o.colour} {o.shape}",  # all right
        f"a {size} {o.colour} {o.shape}",  # the size is wrong
        f"a {colour} {o.shape}",  # no object of that colour: colour and shape wrong, no size
        f"a {o.colour} {shape}",  # the colour is there, with another shape
    ]
    scores = attribute_accuracy(scene_targets([scene] * 4), caption_targets(said))
    assert scores["colour"] == 3 / 4 and scores["shape"] == 2 / 4 and scores["size"] == 1 / 2
    assert math.isnan(scores["relation"])  # no caption states one


def test_caption_slots_hold_what_each_caption_states():
    captions = ["a small red circle above a blue cross", "a picture of a large green box"]
    shape, size = caption_slots(caption_targets(captions))
    red, blue, green = (COLOURS.index(c) for c in ("red", "blue", "green"))
    expected_shape = torch.full((2, len(COLOURS)), ABSENT)
    expected_shape[0, red], expected_shape[0, blue] = SHAPES.index("circle"), SHAPES.index("cross")
    expected_shape[1, green] = SHAPES.index("square")
    expected_size = torch.full((2, len(COLOURS)), -1)
    expected_size[0, red], expected_size[1, green] = 0, 1  # the blue cross has no stated size
    assert torch.equal(shape, expected_shape) and torch.equal(size, expected_size)


def test_the_caption_attribute_loss_is_zero_for_a_head_that_reads_the_scene_right():
    scenes = shapesdata.test_set(100)
    truth = scene_targets(scenes)
    targets = caption_targets(fixed_captions("test", 100))
    sure = 50.0  # logits that make the cross-entropy vanish
    right = (
        F.one_hot(truth.shape, ABSENT + 1).float() * sure,
        F.one_hot(truth.size, 2).float() * sure,
        truth.xy,
    )
    assert caption_attribute_loss(right, targets).item() == pytest.approx(0, abs=1e-6)
    # Objects in the right places with the wrong shapes; then the right shapes, mirrored.
    wrong_shape = (right[0].roll(1, 2), *right[1:])
    assert caption_attribute_loss(wrong_shape, targets).item() > 10
    mirrored = (*right[:2], 1 - truth.xy)
    assert caption_attribute_loss(mirrored, targets).item() > 1
    assert scene_attribute_loss(right, truth).item() == pytest.approx(0, abs=1e-6)


def test_an_empty_picture_scores_nothing():
    captions = fixed_captions("held_out", 50)
    nothing = AttributePrediction(
        torch.full((50, 6), ABSENT), torch.zeros(50, 6, dtype=torch.long), torch.zeros(50, 6, 2)
    )
    scores = attribute_accuracy(nothing, caption_targets(captions))
    assert scores == {"colour": 0.0, "shape": 0.0, "size": 0.0, "relation": 0.0}


def test_r_precision_on_hand_cases():
    eye = torch.eye(150)
    assert r_precision(eye, eye) == 1.0
    assert r_precision(eye, eye.roll(1, 0)) == 0.0  # every image holds another's caption
    same = torch.ones(150, 4)
    assert r_precision(same, same) == 0.0  # a tie is no win
    # Images 0-9 carry their caption, the others a vector no caption scores above others.
    half = torch.cat([eye[:10], torch.zeros(140, 150)])
    assert r_precision(half, eye) == pytest.approx(10 / 150)
    assert r_precision(eye[:5, :5], eye[:5, :5]) == 1.0  # fewer than 100 captions: all of them


# -- training ------------------------------------------------------------------------------------


def one_step(step: int, **overrides) -> set[str]:
    """The networks (top-level modules) whose weights one training step changes."""
    config = StackGANConfig(**{**TINY, **overrides})
    data = StackGANData(None, None, None)
    torch.manual_seed(0)
    model = TRAINER.build(config, data).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = StepContext(Accelerator(cpu=True), torch.Generator().manual_seed(0), step, 10)
    losses = TRAINER.train_step(model, TRAINER.optimizers(model), data, ctx)
    assert losses and all(math.isfinite(v) for v in losses.values())
    return {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def test_attribute_targets_and_sampling_copies_live_on_the_model_device():
    """On "meta" (shapes without data) a tensor made on the CPU beside a model elsewhere shows
    as it would beside a GPU's: the targets moved for the losses, and the folded copies of
    the generators that sampling builds."""
    captions = ["a small red circle above a large blue square", "a green triangle"]
    targets = on_device(caption_targets(captions), torch.device("meta"))
    assert {part.device.type for part in caption_slots(targets)} == {"meta"}
    scenes = on_device(scene_targets(shapesdata.scenes(2, 0, "train")), torch.device("meta"))
    assert {part.device.type for part in scenes} == {"meta"}
    conv = torch.nn.Conv2d(4, 3, 3, 1, 1, device="meta")
    assert upsampling_as_transposed(conv).weight.device.type == "meta"
    model = tiny_model().to("meta").eval()
    g1, g2 = inference_generators(model)
    assert {p.device.type for p in [*g1.parameters(), *g2.parameters()]} == {"meta"}


def test_a_joint_step_trains_every_network_but_the_text_encoder():
    assert one_step(step=5, stage2_start=5) == {"ca1", "g1", "d1", "ca2", "g2", "d2"}


def test_before_stage2_start_only_stage_one_trains():
    assert one_step(step=4, stage2_start=5, augment="translation") == {"ca1", "g1", "d1"}


def test_moving_averages_follow_the_trained_stages_and_draw_the_samples(tmp_path):
    with pytest.raises(ValueError, match="ema_decay"):
        StackGANConfig(**{**TINY, "ema_decay": 1.0})
    assert not hasattr(tiny_model(), "ema")
    assert one_step(step=5, stage2_start=5, ema_decay=0.9) == {
        "ca1", "g1", "d1", "ca2", "g2", "d2", "ema"
    }  # fmt: skip
    model = tiny_model(ema_decay=0.9)
    with torch.no_grad():
        for p in model.ema["g2"].parameters():
            p.zero_()  # the average now draws something else than the live Stage-II
    text = torch.randn(2, model.config.text_dim)
    averaged = synthesize(model.eval(), text, noise(model.config, 2, 0))[1]
    with torch.no_grad():
        for p, q in zip(model.ema["g2"].parameters(), model.g2.parameters(), strict=True):
            p.copy_(q)
    live = synthesize(model, text, noise(model.config, 2, 0))[1]
    assert not torch.allclose(averaged, live)  # eval mode samples with the average
    assert model.train().sampled("g2") is model.g2  # training steps use the live weights

    # A fine-tune starts from every weight of a model without averages; its own begin there.
    tiny_model(seed=1).save_pretrained(tmp_path / "donor")
    donor = StackGAN.load_folder(tmp_path / "donor")  # as stored
    config = StackGANConfig(**{**TINY, "ema_decay": 0.9, "init_from": str(tmp_path / "donor")})
    tuned = TRAINER.build(config, StackGANData(None, None, None))
    assert torch.equal(tuned.g2.encode[0].weight, donor.g2.encode[0].weight.float())
    assert torch.equal(tuned.ema["g1"].fc[0].weight, donor.g1.fc[0].weight.float())
    assert TRAINER.donors(config) == [tmp_path / "donor"]
    wider = StackGANConfig(
        **{**TINY, "g2_width": 2 * TINY["g2_width"], "init_from": str(tmp_path / "donor")}
    )
    with pytest.raises(ValueError, match="another architecture"):
        TRAINER.build(wider, StackGANData(None, None, None))
    with pytest.raises(ValueError, match="neither a folder nor one of"):
        TRAINER.build(
            StackGANConfig(**{**TINY, "init_from": "no-such-model"}), StackGANData(None, None, None)
        )


def test_the_contrastive_term_is_low_for_matched_rows_and_high_for_shuffled_ones():
    text = torch.nn.functional.normalize(
        torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    )
    matched = contrastive_loss(text, text, temperature=0.1)
    shuffled = contrastive_loss(text.roll(1, 0), text, temperature=0.1)
    assert matched < 0.05 < math.log(8) < shuffled
    assert contrastive_loss(torch.zeros(8, 16), text, 0.1) == pytest.approx(math.log(8))


def test_a_step_with_the_contrastive_term_trains_the_same_networks_and_the_embedding():
    changed = one_step(step=5, stage2_start=5, w_contrastive=1.0)
    assert changed == {"ca1", "g1", "d1", "ca2", "g2", "d2"}
    assert tiny_model(w_contrastive=1.0).d1.embed is not None and tiny_model().d1.embed is None


def test_a_step_with_the_attribute_head_trains_the_same_networks_and_the_head():
    head = tiny_model(w_attributes=1.0).d2.attributes
    assert head.out_features == len(COLOURS) * HEAD_PER_COLOUR
    assert tiny_model().d1.attributes is None
    changed = one_step(step=5, stage2_start=5, w_attributes=1.0, near_misses=1.0)
    assert changed == {"ca1", "g1", "d1", "ca2", "g2", "d2"}


def test_a_step_with_near_misses_trains_the_same_networks():
    assert one_step(step=5, stage2_start=5, near_misses=1.0) == {
        "ca1",
        "g1",
        "d1",
        "ca2",
        "g2",
        "d2",
    }


def test_near_miss_captions_are_wrong_in_one_thing_and_the_rest_are_another_pictures():
    scenes = shapesdata.scenes(64, seed=3)
    rng = np.random.default_rng(0)
    captions = [shapesdata.caption(s, rng) for s in scenes]
    right, wrong = right_and_wrong_captions(captions, scenes, 0.0, torch.Generator())
    assert right == captions and wrong == captions[-1:] + captions[:-1]
    right, wrong = right_and_wrong_captions(captions, scenes, 1.0, torch.Generator())
    near = 0
    for scene, true, other in zip(scenes, right, wrong, strict=True):
        assert shapesdata.parse_caption(true).describes(scene)
        assert true != other
        near += other not in captions
        if other not in captions:  # a near miss: one thing changed
            assert not shapesdata.parse_caption(other).describes(scene)
    assert near >= 0.7 * len(scenes)  # the rest: a size the caption does not state


def test_auxiliary_models_train_into_loadable_folders(auxiliary):
    root, metrics = auxiliary
    bundles = {
        TEXT_ENCODER: textenc.TextImageModel,
        MATCHER: textenc.TextImageModel,
        ATTRIBUTES: AttributeClassifier,
    }
    for spec in AUXILIARY:  # the shapes models (the emoji ones: tests/test_captiondata.py)
        folder = root / spec.name
        for name in ("model.safetensors", "config.json", "README.md", "eval.json", "training.json"):
            assert (folder / name).is_file(), (spec.name, name)
        model = spec.bundle.load_folder(folder)
        assert type(model) is bundles[spec.name]
        out = spec.sample(model, 3, 0)
        assert out.shape[0] == 3 and torch.isfinite(out).all()
        assert json.loads((folder / "eval.json").read_text()) == pytest.approx(metrics[spec.name])
        record = json.loads((folder / "training.json").read_text())
        assert record["family"] == "stackgan" and record["auxiliary"] == spec.name
        card = (folder / "README.md").read_text()
        assert spec.name in card and "python -m training auxiliary" in card
    assert textenc.TextImageModel.load_folder(root / TEXT_ENCODER).config.compositions == "train"
    assert textenc.TextImageModel.load_folder(root / MATCHER).config.compositions == "all"
    keys = ("colour", "shape", "size", "relation")
    assert set(metrics[ATTRIBUTES]) == {f"{s}_{k}" for s in ("test", "held_out") for k in keys}


def test_a_tiny_run_end_to_end(auxiliary, tmp_path, monkeypatch):
    monkeypatch.setitem(base.FAMILIES, FAMILY.name, FAMILY)  # until it is registered
    root, _ = auxiliary
    config = StackGANConfig(
        **{
            **TINY,
            "text_encoder": str(root / TEXT_ENCODER),
            "attributes": str(root / ATTRIBUTES),
            "matcher": str(root / MATCHER),
        }
    )
    out = loop.train(TRAINER, config, loop.RunOptions(out=tmp_path / "run", preset="tiny"))
    for name in ("model.safetensors", "config.json", "README.md", "eval.json", "sample.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "eval.json").read_text())
    assert set(metrics) == set(METRIC_NAMES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), metrics
    model = StackGAN.load_folder(out)
    # The bundle carries the text encoder's weights: it reads captions as the encoder does.
    encoder = textenc.TextImageModel.load_folder(root / TEXT_ENCODER)
    caption = ["a small red circle above a large blue box"]
    assert torch.equal(encode_captions(model, caption)[0], textenc.encode(encoder.text, caption)[0])
    assert sample(model, 2, 0).shape == (2, 3, 16, 16)
    TRAINER.save_samples(model, None, 3, 0, tmp_path / "samples.png")
    assert (tmp_path / "samples.png").stat().st_size > 0


def test_a_text_encoder_that_saw_held_out_pairs_or_grades_itself_is_refused(auxiliary):
    root, _ = auxiliary
    with pytest.raises(ValueError, match="training compositions only"):
        load_data(StackGANConfig(**{**TINY, "text_encoder": str(root / MATCHER)}))
    same = str(root / TEXT_ENCODER)
    with pytest.raises(ValueError, match="own teacher"):
        load_data(StackGANConfig(**{**TINY, "text_encoder": same, "matcher": same}))
    mismatched = StackGANConfig(**{**TINY, "text_dim": 32, "text_encoder": same})
    with pytest.raises(ValueError, match="text_dim"):
        TRAINER.build(mismatched, load_data(mismatched))
