"""The shared training loop with the tiny toy2d preset: outputs, resume, divergence, two processes.

Most runs are in-process (``training.loop.train``); a subprocess is used where the process
boundary is the point: a SIGKILL mid-run, the CLI's exit status, and torchrun.
"""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from benchmarks.browser import free_port
from hub_models import toy2d
from hub_models.registry import FAMILIES
from hub_models.toy2d import Toy2DConfig, Toy2DGAN
from training import checkpoint, cli
from training.loop import RunOptions, TrainingDiverged, train

ROOT = Path(__file__).resolve().parents[1]
TRAINER = FAMILIES["toy2d"].make_trainer()
TINY = TRAINER.presets["tiny"]


def tiny(**overrides) -> Toy2DConfig:
    return Toy2DConfig(**{**TINY, **overrides})


def run(config: Toy2DConfig, out: Path, trainer=TRAINER, **options) -> Path:
    return train(trainer, config, RunOptions(out=out, preset="tiny", **options))


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def metrics_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}
    env.pop("ACCELERATE_USE_CPU", None)
    return env


class Interrupted(Exception):
    pass


class StopAt:
    """The toy2d trainer, but the run dies at ``step`` (as if killed), in-process."""

    def __init__(self, step: int) -> None:
        self.stop = step

    def __getattr__(self, name):
        return getattr(TRAINER, name)

    def train_step(self, model, optimizers, data, ctx):
        if ctx.step == self.stop:
            raise Interrupted
        return TRAINER.train_step(model, optimizers, data, ctx)


# ----------------------------------------------------------------------------- smoke


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return run(tiny(), tmp_path_factory.mktemp("tiny") / "run")


def test_outputs_of_a_tiny_run(tiny_run):
    for name in (
        "model.safetensors",
        "config.json",
        "README.md",
        "sample.png",
        "replay.safetensors",
        "training.json",
        "eval.json",
        "metrics.jsonl",
    ):
        assert (tiny_run / name).is_file(), name
    snapshots = sorted((tiny_run / "samples").glob("*.png"))
    assert [p.name for p in snapshots] == [f"step_{s:08d}.png" for s in (12, 24, 36, 48, 60)]
    for image in (tiny_run / "sample.png", snapshots[-1]):
        with Image.open(image) as opened:
            assert opened.format == "PNG" and opened.size == (256, 256)

    card = (tiny_run / "README.md").read_text()
    assert "[More Information Needed]" not in card
    assert "python -m training train toy2d --preset tiny" in card
    assert "model-index" in card and "license: mit" in card

    record = json.loads((tiny_run / "training.json").read_text())
    assert record["family"] == "toy2d" and record["preset"] == "tiny"
    assert record["steps"] == TINY["steps"]
    assert record["hardware"].startswith("1 x ")
    assert record["replica_max_abs_diff"] == 0.0
    assert json.loads((tiny_run / "checkpoint" / "state.json").read_text())["step"] == 60


def test_card_with_an_undefined_metric(tiny_run):
    # Reverse KL is NaN when no sample is high quality: the card must still be a valid card.
    from huggingface_hub import ModelCard

    from training.cards import card_text

    record = json.loads((tiny_run / "training.json").read_text())
    metrics = {"modes_covered": 0, "modes_total": 8, "high_quality": 0.0, "reverse_kl": math.nan}
    text = card_text(tiny_run, TRAINER.family, tiny(), record, metrics)
    card = ModelCard(text)
    results = card.data.eval_results
    assert [r.metric_type for r in results] == ["modes_covered", "modes_total", "high_quality"]
    assert "| Reverse KL (mode histogram || true weights) | n/a |" in text


def test_losses_are_finite_and_logged(tiny_run):
    lines = metrics_lines(tiny_run)
    assert [line["step"] for line in lines] == [1, 51, 60]
    for line in lines:
        assert math.isfinite(line["loss_d"]) and math.isfinite(line["loss_g"])


def test_parameters_change(tiny_run):
    config = tiny()
    torch.manual_seed(config.seed)
    initial = Toy2DGAN(config).state_dict()
    trained = weights(tiny_run)
    assert trained.keys() == initial.keys()
    for key, value in trained.items():
        assert not torch.equal(value, initial[key]), f"{key} did not train"


def test_published_folder_loads_and_matches_its_evaluation(tiny_run):
    model = Toy2DGAN.load_folder(tiny_run)
    assert model.config == tiny()
    measured = toy2d.evaluate(model, toy2d.builtin_target("ring"), n=2500, seed=0)
    saved = json.loads((tiny_run / "eval.json").read_text())
    assert saved.keys() == measured.keys()
    for key, value in measured.items():
        assert (math.isnan(value) and math.isnan(saved[key])) or saved[key] == pytest.approx(value)


def test_replay_frames(tiny_run):
    replay = load_file(str(tiny_run / "replay.safetensors"))
    assert replay["step"].tolist() == list(range(2, 61, 2))  # ~30 frames per run
    assert replay["points"].shape == (30, 256, 2)
    assert replay["field"].shape == (30, 40, 40)
    assert replay["manifold"].shape == (30, 12, 12, 2)
    assert replay["directions"].shape == (30, 256, 2)
    assert replay["metrics"].shape == (30, 4)
    final = toy2d.fixed_noise(tiny(), 256)
    with torch.no_grad():
        expected = Toy2DGAN.load_folder(tiny_run).generator(final).half()
    assert torch.equal(replay["points"][-1], expected)


def test_training_on_user_points(tmp_path, capsys):
    rng = np.random.default_rng(0)
    csv = tmp_path / "blob.csv"
    np.savetxt(csv, rng.normal(size=(300, 2)), delimiter=",", header="x,y", comments="")
    out = run(tiny(steps=6), tmp_path / "run", data=csv)
    metrics = json.loads((out / "eval.json").read_text())
    assert set(metrics) == {"energy_distance"} and math.isfinite(metrics["energy_distance"])
    record = json.loads((out / "training.json").read_text())
    assert record["data"] == str(csv)
    assert f"--data {csv}" in record["command"]
    assert "blob.csv" in (out / "README.md").read_text()  # the card names the user's data
    # evaluate scores it against the points it learnt, not the config's default target
    from training.cli import main

    capsys.readouterr()
    assert main(["evaluate", "toy2d", "--from", str(out), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["metrics"]) == {"energy_distance"}


# ----------------------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    """40 uninterrupted steps with a checkpoint at step 20."""
    return run(tiny(steps=40), tmp_path_factory.mktemp("straight") / "run", checkpoint_every=20)


def test_resume_after_interruption_matches_an_uninterrupted_run(straight_run, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        run(tiny(steps=40), out, trainer=StopAt(25), checkpoint_every=20)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 20
    assert not (out / "model.safetensors").exists()

    run(tiny(steps=40), out, checkpoint_every=20, resume=True)
    # Model, optimizer and both RNG states were restored: the result is bit-identical.
    expected, got = weights(straight_run), weights(out)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    replay_expected = load_file(str(straight_run / "replay.safetensors"))
    replay_got = load_file(str(out / "replay.safetensors"))
    assert replay_expected.keys() == replay_got.keys()
    for key in replay_expected:  # metrics hold NaN (reverse KL with no high-quality sample)
        torch.testing.assert_close(
            replay_got[key], replay_expected[key], rtol=0, atol=0, equal_nan=True, msg=key
        )
    assert metrics_lines(out)[-1]["step"] == 40


def test_resuming_a_finished_run_changes_nothing(straight_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(straight_run, out)
    before = weights(out)
    run(tiny(steps=40), out, checkpoint_every=20, resume=True)
    after = weights(out)
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert json.loads((out / "training.json").read_text())["steps"] == 40


def test_resume_with_another_config_is_refused(straight_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(straight_run, out)
    with pytest.raises(ValueError, match="different config"):
        run(tiny(steps=40, lr_d=1e-4), out, resume=True)


def test_resume_without_checkpoint_starts_from_zero(tmp_path, capsys):
    out = run(tiny(steps=4), tmp_path / "run", resume=True)
    assert "no checkpoint" in capsys.readouterr().err
    assert json.loads((out / "training.json").read_text())["steps"] == 4


def test_checkpoint_falls_back_to_the_previous_folder(straight_run, tmp_path):
    # A kill between the two renames of an atomic save leaves only checkpoint.old.
    shutil.copytree(straight_run / "checkpoint", tmp_path / checkpoint.PREVIOUS)
    assert checkpoint.latest(tmp_path) == tmp_path / checkpoint.PREVIOUS
    (tmp_path / checkpoint.PREVIOUS / "state.json").unlink()
    assert checkpoint.latest(tmp_path) is None


@pytest.mark.slow
def test_kill_then_resume_in_a_subprocess(tmp_path):
    out = tmp_path / "run"
    steps = 1000  # a few seconds; checkpoints every 100 steps
    command = [
        sys.executable,
        "-m",
        "training",
        "train",
        "toy2d",
        "--preset",
        "tiny",
        f"--steps={steps}",
        "--out",
        str(out),
    ]
    first = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not (out / "checkpoint" / "state.json").exists():
            assert first.poll() is None, "the run ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert not (out / "training.json").exists(), "the run finished before the kill"
    before_resume = metrics_lines(out)

    second = subprocess.run(
        [*command, "--resume"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    resumed_at = int(second.stderr.split("resuming from ")[1].split(" at step ")[1].split()[0])
    assert 0 < resumed_at < steps and resumed_at % 100 == 0

    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == steps
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == steps
    replay = load_file(str(out / "replay.safetensors"))
    assert replay["step"].tolist() == [*range(33, steps + 1, 33), steps]
    # The log keeps what was logged up to the checkpoint (nothing lost to buffering), then
    # continues from there without repeating the steps that were trained again.
    lines = metrics_lines(out)
    kept = [line for line in before_resume if line["step"] <= resumed_at]
    assert kept and kept[0]["step"] == 1 and kept[-1]["step"] == resumed_at - 49
    assert lines[: len(kept)] == kept
    logged = [line["step"] for line in lines]
    assert logged == [*range(1, steps, 50), steps]
    Toy2DGAN.load_folder(out)


# ----------------------------------------------------------------------------- divergence


def test_cli_exits_3_when_the_loss_blows_up(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "toy2d",
            "--preset",
            "tiny",
            "--lr_d=1e30",
            "--lr_g=1e30",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "diverged" in result.stderr and "at step 0" in result.stderr
    assert "no checkpoint had been written yet" in result.stderr
    assert not (out / "model.safetensors").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    real_step = type(TRAINER).train_step

    def step(self, model, optimizers, data, ctx):
        losses = real_step(self, model, optimizers, data, ctx)
        return {**losses, "loss_g": float("nan")} if ctx.step == 8 else losses

    monkeypatch.setattr(type(TRAINER), "train_step", step)
    out = tmp_path / "run"
    code = cli.main(["train", "toy2d", "--preset", "tiny", "--out", str(out)])
    assert code == 3
    error = capsys.readouterr().err
    assert "loss_g=nan at step 8" in error
    assert f"last good checkpoint (step 6) is kept in {out / 'checkpoint'}" in error
    assert not (out / "model.safetensors").exists(), "a diverged run must not look publishable"

    config = tiny()
    model = Toy2DGAN(config)
    optimizers = TRAINER.optimizers(model)
    step_, _, extra = checkpoint.load(checkpoint.latest(out), model, optimizers, torch.Generator())
    assert step_ == 6 and extra["config"] == dataclasses.asdict(config)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_non_finite_weights_never_replace_a_good_checkpoint(tmp_path, monkeypatch):
    # The loss at the step is still finite, but its update leaves NaN weights behind.
    real_step = type(TRAINER).train_step

    def step(self, model, optimizers, data, ctx):
        losses = real_step(self, model, optimizers, data, ctx)
        if ctx.step == 11:  # the update that a checkpoint at step 12 would save
            with torch.no_grad():
                model.discriminator.net[0].weight[0, 0] = float("nan")
        return losses

    monkeypatch.setattr(type(TRAINER), "train_step", step)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"step 11.*last good checkpoint \(step 6\)"):
        run(tiny(), out)
    model = Toy2DGAN(tiny())
    step_, _, _ = checkpoint.load(
        checkpoint.latest(out), model, TRAINER.optimizers(model), torch.Generator()
    )
    assert step_ == 6
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ----------------------------------------------------------------------------- two processes


@pytest.mark.slow
def test_two_process_data_parallel_keeps_replicas_identical(tmp_path):
    out = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            "-m",
            "training",
            "train",
            "toy2d",
            "--preset",
            "tiny",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=cli_env(GLOO_SOCKET_IFNAME="lo"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    record = json.loads((out / "training.json").read_text())
    assert record["hardware"].startswith("2 x "), record["hardware"]
    assert record["replica_max_abs_diff"] == 0.0
    assert record["steps"] == TINY["steps"]
    # Only the main process writes: one log line per logged step, not one per process.
    assert [line["step"] for line in metrics_lines(out)] == [1, 51, 60]
    Toy2DGAN.load_folder(out)


def test_resume_with_another_shape_names_the_fields_before_loading_weights(straight_run, tmp_path):
    """A wider G cannot load the checkpoint's weights: say which fields differ, not a raw
    RuntimeError from load_state_dict."""
    out = tmp_path / "run"
    shutil.copytree(straight_run, out)
    with pytest.raises(ValueError) as caught:
        run(tiny(steps=40, g_width=64), out, resume=True)
    message = str(caught.value)
    assert "g_width: 32 in the checkpoint, 64 now" in message
    assert "lr_d" not in message  # only the fields that differ


def test_a_finished_run_is_extended_by_resuming_with_more_steps(straight_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(straight_run, out)
    run(tiny(steps=50), out, resume=True, checkpoint_every=20)
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 50
    assert metrics_lines(out)[-1]["step"] == 50
    before, after = weights(straight_run), weights(out)
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("generator"))
    with pytest.raises(ValueError, match="steps: 50 in the checkpoint, 30 now"):
        run(tiny(steps=30), out, resume=True)


def test_resume_with_another_shape_from_the_cli_exits_2(straight_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(straight_run, out)
    code = cli.main(
        ["train", "toy2d", "--preset", "tiny", "--out", str(out), "--resume", "--g_width=64"]
    )
    assert code == 2
    assert "g_width: 32 in the checkpoint, 64 now" in capsys.readouterr().err


def test_a_time_limit_ends_the_run_at_a_logged_step_and_records_the_steps_taken(tmp_path):
    out = run(tiny(steps=40), tmp_path / "run", log_every=5, time_limit=1e-9)
    record = json.loads((out / "training.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert record["steps"] == config["steps"] == 5  # the first logged step past the limit
    assert record["stopped_at_time_limit"] is True
    assert "--steps=5" in record["command"]
    assert metrics_lines(out)[-1]["step"] == 5
    Toy2DGAN.load_folder(out)  # published as a finished run is
    # More steps extend it by --resume, as any finished run.
    run(tiny(steps=10), out, resume=True, log_every=5)
    assert json.loads((out / "training.json").read_text())["steps"] == 10
    assert "stopped_at_time_limit" not in json.loads((out / "training.json").read_text())


def test_without_a_time_limit_nothing_is_recorded_about_one(straight_run):
    assert "stopped_at_time_limit" not in json.loads((straight_run / "training.json").read_text())
