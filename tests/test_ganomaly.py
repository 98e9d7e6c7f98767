"""GANomaly: the protocol's splits, defects, metrics on hand cases, scoring, uploads, training."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from drawings import drawn_seven
from PIL import Image

from hub_models import anomalydata, hub
from hub_models.ganomaly import DIGITS as GANOMALY_DIGITS
from hub_models.ganomaly import Ganomaly, GanomalyConfig, knn_scores, score_images
from hub_models.imagedata import DataError
from hub_models.metrics import at_threshold, auroc, roc_curve
from hub_models.registry import FAMILIES
from training import cli
from training.base import StepContext

FAMILY = FAMILIES["ganomaly"]
TINY = FAMILIES["ganomaly"].make_trainer().presets["tiny"]


def published(name: str) -> Ganomaly:
    spec = FAMILY.model(name)
    model, _ = hub.load(Ganomaly, spec.repo_id, spec.snapshot)
    return model


# -- metrics on hand cases -------------------------------------------------------------------


def test_auroc_hand_cases():
    # Anomalies 0.35 and 0.8 against normals 0.1 and 0.4: 3 of 4 pairs ordered correctly.
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == 0.75
    assert auroc(torch.tensor([1.0, 1.0]), torch.tensor([0, 1])) == 0.5  # a tie counts half
    assert auroc(torch.tensor([0.0, 1.0]), torch.tensor([0, 1])) == 1.0
    assert auroc(torch.tensor([1.0, 0.0]), torch.tensor([0, 1])) == 0.0
    with pytest.raises(ValueError, match="both"):
        auroc(torch.tensor([0.1, 0.2]), torch.tensor([0, 0]))


def test_roc_curve_area_equals_auroc_with_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 20, (300,), generator=g).float()  # many ties
    labels = (torch.rand(300, generator=g) < 0.4).long()
    curve = roc_curve(scores, labels)
    assert curve["fpr"][0] == 0 and curve["tpr"][-1] == 1 and curve["fpr"][-1] == 1
    area = torch.trapezoid(curve["tpr"], curve["fpr"])
    assert float(area) == pytest.approx(auroc(scores, labels), abs=1e-12)


def test_precision_recall_f1_at_a_threshold():
    scores = torch.tensor([0.1, 0.5, 0.6, 0.9, 0.2])
    labels = torch.tensor([0, 0, 1, 1, 1])
    out = at_threshold(scores, labels, 0.5)  # flags 0.5, 0.6, 0.9: 2 TP, 1 FP, 1 FN
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)
    assert out["false_alarm_rate"] == pytest.approx(1 / 2)


def test_knn_score_is_the_mean_distance_to_the_k_nearest():
    train = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    test = torch.tensor([[0.0], [20.0]])
    assert knn_scores(train, test, k=2).tolist() == pytest.approx([0.5, 13.5])  # 20: 10 and 17 away


# -- data ------------------------------------------------------------------------------------


def test_digit_protocol_trains_on_normal_digits_and_tests_on_all_anomalies():
    data = anomalydata.digits(3)
    kinds = np.array(data.test_kinds)
    assert int(data.test_labels.sum()) == 500 and set(kinds[data.test_labels.numpy() == 1]) == {"3"}
    assert "3" not in set(kinds[data.test_labels.numpy() == 0])
    normal = len(data.train) + len(data.calibration) + int((data.test_labels == 0).sum())
    assert normal == 4500
    assert int((data.test_labels == 0).sum()) == 900  # the paper's 20 %
    train, calibration, test = (set(i.tolist()) for i in anomalydata._split_normals(4500))
    assert not (train & calibration or train & test or calibration & test)
    assert train | calibration | test == set(range(4500))


def test_texture_splits_come_from_separate_tiles_and_are_reproducible():
    a, b = anomalydata.textures("gravel"), anomalydata.textures.__wrapped__("gravel")
    assert torch.equal(a.test, b.test) and a.test_kinds == b.test_kinds
    assert (a.train.shape, a.calibration.shape, a.test.shape) == (
        (2000, 1, 32, 32),
        (200, 1, 32, 32),
        (600, 1, 32, 32),
    )
    tiles = [set(anomalydata.TEXTURE_TILES[k]) for k in ("train", "calibration", "test")]
    assert sum(map(len, tiles)) == len(set.union(*tiles)) == 16  # disjoint, all used
    assert set(a.test_kinds[300:]) == set(anomalydata.DEFECTS)


@pytest.mark.parametrize("kind", anomalydata.DEFECTS)
def test_a_defect_changes_the_image_only_where_it_is_placed(kind):
    clean = anomalydata.textures("brick").test[0]
    damaged = anomalydata.add_defect(clean, kind, 0.25, 0.25, 0.3, 0.0, -1.0, texture="brick")
    changed = (damaged - clean).abs()[0] > 1e-6
    assert changed.any()
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert rows.float().mean() < 16 and cols.float().mean() < 16  # the upper-left quarter
    assert damaged.min() >= -1 and damaged.max() <= 1


# -- scoring with the published models ---------------------------------------------------------


def test_an_inverted_image_scores_higher_than_a_training_image():
    model = published(f"ganomaly-mnist-{GANOMALY_DIGITS[0]}")
    data = anomalydata.load(model.config.dataset, model.config.anomaly, 32, 1, None)
    train = data.train[:64]
    normal = score_images(model, train)["score"]
    inverted = score_images(model, -train)["score"]
    assert (inverted > normal).all()
    assert float(score_images(model, -train)["relative"].min()) > 1  # all flagged


def test_calibration_flags_about_five_percent_of_unseen_normal_images():
    model = published("ganomaly-brick")
    data = anomalydata.textures("brick")
    out = score_images(model, data.calibration)
    flagged = float((out["relative"] >= 1).float().mean())
    assert 0.02 <= flagged <= 0.08
    assert out["percentile"].min() >= 0 and out["percentile"].max() <= 100


def test_published_models_beat_chance_and_brick_and_a_digit_clearly():
    """Fixed weights on fixed test sets: deterministic. Grass stays near chance (its
    photograph is not stationary: see the README), the others do not."""
    for spec in FAMILY.models:
        model = published(spec.name)
        data = anomalydata.load(model.config.dataset, model.config.anomaly, 32, 1, None)
        value = auroc(score_images(model, data.test)["score"], data.test_labels)
        assert value > (0.85 if spec.name in ("ganomaly-brick", "ganomaly-mnist-2") else 0.5), (
            spec.name
        )


# -- uploads ---------------------------------------------------------------------------------


def png(size=(40, 40), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_good_upload_becomes_the_model_input():
    for mode in ("RGB", "RGBA", "L", "P"):
        x = anomalydata.prepare_upload(png(mode=mode), "ok.png", 32, 1)
        assert x.shape == (1, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    jpeg = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(jpeg, "JPEG")
    assert anomalydata.prepare_upload(jpeg.getvalue(), "photo.jpg", 32, 1).shape == (1, 1, 32, 32)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"name,score\nx,1\n", "not an image"),
        (png()[:60], "is a damaged or unsupported image"),  # a truncated PNG
        (png(size=(8, 8)), "at least 16x16"),
    ],
    ids=["empty", "text", "corrupt", "tiny"],
)
def test_bad_uploads_get_a_clear_message(data, message):
    with pytest.raises(DataError, match=message) as caught:
        anomalydata.prepare_upload(data, "upload", 32, 1)
    assert "BytesIO" not in str(caught.value) and " at 0x" not in str(caught.value)


@pytest.mark.parametrize(("ink", "paper"), [("black", "white"), ("white", "black")])
def test_a_drawn_digit_is_made_like_the_training_digits(ink, paper):
    """Fitted to 20x20 and centred by its centre of mass in 28x28, padded to 32, light ink on
    black: a clean 7 is normal for the model whose anomaly is 0; cropped as a photo it is not."""
    model = published(f"ganomaly-mnist-{GANOMALY_DIGITS[0]}")
    upload = drawn_seven(ink, paper)
    x = anomalydata.prepare_upload(upload, "seven.png", 32, 1, "mnist")
    ink_rows = torch.nonzero((x[0, 0] > 0).any(1)).flatten()
    assert int(ink_rows[0]) >= 2 and int(ink_rows[-1]) <= 29  # inside the 28x28 box + padding
    assert float(score_images(model, x)["relative"][0]) < 1
    plain = anomalydata.prepare_upload(upload, "seven.png", 32, 1)
    assert float(score_images(model, plain)["relative"][0]) > 1


def test_a_huge_upload_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr("hub_models.imagedata.MAX_PIXELS", 1000)
    with pytest.raises(DataError, match="megapixels"):
        anomalydata.prepare_upload(png(size=(100, 100)), "huge.png", 32, 1)


# -- training --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ganomaly", "autoencoder"])
def test_one_training_step_updates_every_network(kind):
    trainer = FAMILIES["ganomaly"].make_trainer()
    config = GanomalyConfig(**{**TINY, "kind": kind, "dataset": "brick"})
    data = trainer.prepare_data(config, None)
    torch.manual_seed(0)
    model = trainer.build(config, data).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = StepContext(Accelerator(cpu=True), torch.Generator().manual_seed(0), 0, 1)
    losses = trainer.train_step(model, trainer.optimizers(model), data, ctx)
    assert losses and all(math.isfinite(v) for v in losses.values())
    changed = {
        k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])
    }
    expected = {"encoder", "decoder"} | (
        {"encoder2", "discriminator"} if kind == "ganomaly" else set()
    )
    assert changed == expected


def write_images(folder, n, seed, value=None):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(100, 140, (24, 24), dtype=np.uint8) if value is None else value
        Image.fromarray(np.full((24, 24), pixels, np.uint8)).save(folder / f"{i}.png")


def test_train_on_a_user_folder_with_real_anomalies_then_evaluate(tmp_path, capsys):
    data = tmp_path / "parts"
    write_images(data, 30, 0)
    write_images(data / "anomalous", 6, 1, value=255)
    out = tmp_path / "run"
    args = ["train", "ganomaly", "--preset", "tiny", "--data", str(data), "--dataset=parts"]
    assert cli.main([*args, "--out", str(out)]) == 0
    config = Ganomaly.load_folder(out).config
    assert config.dataset == "parts"
    assert Ganomaly.load_folder(out).calibrated
    assert cli.main(["evaluate", "ganomaly", "--from", str(out), "--json"]) == 0
    assert '"auroc"' in capsys.readouterr().out
    loaded = anomalydata.folder(data, 16, 1)
    assert int(loaded.test_labels.sum()) == 6 and len(loaded.train) + len(loaded.calibration) == 24
    csv = tmp_path / "scores.csv"
    assert cli.main(["sample", "ganomaly", "--from", str(out), "--n", "5", "--out", str(csv)]) == 0
    assert csv.read_text().startswith("index,kind,anomalous,score,relative")


def test_a_user_folder_without_anomalies_is_tested_on_synthetic_defects(tmp_path):
    write_images(tmp_path / "normal", 20, 0)
    data = anomalydata.folder(tmp_path / "normal", 16, 1)
    assert set(data.test_kinds) == {"normal", *anomalydata.DEFECTS}
    assert int(data.test_labels.sum()) == len(data.test) // 2


def test_too_few_normal_images_get_a_clear_message(tmp_path, capsys):
    write_images(tmp_path / "few", 5, 0)
    code = cli.main(
        ["train", "ganomaly", "--preset", "tiny", "--data", str(tmp_path / "few"),
         "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert code == 2
    assert "at least 10 are needed" in capsys.readouterr().err


@pytest.mark.parametrize(("channels", "resolution"), [(3, 32), (1, 64), (3, 16)])
def test_grey_and_colour_at_any_power_of_two_size(channels, resolution):
    config = GanomalyConfig(channels=channels, resolution=resolution, width=4, z_dim=8)
    model = Ganomaly(config).eval()
    images = torch.rand(5, channels, resolution, resolution) * 2 - 1
    model.calibrate(images)
    out = score_images(model, images)
    assert out["reconstruction"].shape == images.shape
    assert out["residual"].shape == (5, resolution, resolution)
    assert out["score"].shape == (5,) and (out["score"] >= 0).all()
    with pytest.raises(ValueError, match="power of two"):
        GanomalyConfig(resolution=48)


def test_scoring_leaves_the_process_thread_count_alone(monkeypatch):
    """The server is shared: a request must not change process-wide state such as torch's
    thread count, even for a moment (the app sets its policy once, at start)."""
    model = published(FAMILY.featured_model.name)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    score_images(model, torch.zeros(1, 1, 32, 32))
    score_images(model, torch.zeros(40, 1, 32, 32))
    assert calls == []
