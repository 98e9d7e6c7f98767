"""`python -m training`: the contract in DESIGN.md, its error messages and exit statuses.

Commands run in-process through ``training.cli.main`` (fast); exit statuses of the real
process are covered by the subprocess tests in test_training.py.
"""

import argparse
import csv
import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from benchmarks.browser import free_port as closed_port  # free now, closed when used
from hub_models import toy2d
from hub_models.registry import FAMILIES
from hub_models.toy2d import Toy2DConfig, Toy2DGAN
from training import cli

ROOT = Path(__file__).resolve().parents[1]

# The options each command promises (DESIGN.md, "CLI contract").
OPTIONS = {
    "list": ["--json"],
    "train": ["--preset", "--data", "--out", "--resume", "--field=value"],
    "evaluate": ["--from", "--json"],
    "sample": ["--from", "--n", "--seed", "--out"],
    "publish": ["DIR", "--repo-id", "--dry-run"],
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Any Hub access goes to a closed port on loopback with an empty cache."""
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", "toy2d", "--preset", "tiny", "--steps=12", "--out", str(out)]) == 0
    return out


def main(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----------------------------------------------------------------------------- list, help


def test_list_json_has_every_family(capsys):
    code, out, _ = main(capsys, "list", "--json")
    assert code == 0
    rows = {row["family"]: row for row in json.loads(out)}
    assert set(rows) == set(FAMILIES)
    for name, family in FAMILIES.items():
        row = rows[name]
        assert (
            row["presets"] == list(FAMILIES[name].make_trainer().presets)
            and "tiny" in row["presets"]
        )
        assert row["models"] == [m.repo_id for m in family.models]
        assert row["config_fields"] == [
            f.name for f in dataclasses.fields(family.bundle.config_class)
        ]


def test_list_as_text(capsys):
    code, out, _ = main(capsys, "list")
    assert code == 0
    for name, family in FAMILIES.items():
        assert name in out and family.models[0].repo_id in out


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_contract_command_exists():
    assert set(OPTIONS) <= set(subcommands())


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_help_of_each_command_mentions_every_option(command, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([command, "--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    declared = [s for a in subcommands()[command]._actions for s in a.option_strings]
    for option in [*declared, *OPTIONS.get(command, [])]:
        assert option in text, f"{command} --help does not mention {option}"


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    for command in OPTIONS:
        assert command in text
    assert "HF_ENDPOINT" in text


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "training", "list", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert {row["family"] for row in json.loads(result.stdout)} == set(FAMILIES)


# ----------------------------------------------------------------------------- overrides


def test_overrides_are_typed():
    values = cli.parse_overrides(
        Toy2DConfig,
        ["--lr-d=1e-4", "--spectral_norm=true", "--g_width=8", "--objective=hinge", "--pack=2"],
    )
    assert values == {
        "lr_d": 1e-4,
        "spectral_norm": True,
        "g_width": 8,
        "objective": "hinge",
        "pack": 2,
    }
    assert type(values["lr_d"]) is float and type(values["g_width"]) is int
    assert cli.parse_overrides(Toy2DConfig, ["--spectral_norm=no"]) == {"spectral_norm": False}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("--bogus=1", "Toy2DConfig has no field 'bogus'; fields: target, objective"),
        ("--g_width=wide", "--g_width expects int, got 'wide'"),
        ("--g_width=1.5", "--g_width expects int, got '1.5'"),
        ("--lr_d=fast", "--lr_d expects float, got 'fast'"),
        ("--spectral_norm=maybe", "--spectral_norm expects true or false, got 'maybe'"),
        (
            "--g_width",
            "unrecognised argument '--g_width'; config fields are given as --field=value",
        ),
        ("stray", "unrecognised argument 'stray'"),
    ],
)
def test_bad_override_is_refused_clearly(item, message, tmp_path, capsys):
    code, _, err = main(capsys, "train", "toy2d", "--preset", "tiny", "--out", tmp_path / "o", item)
    assert code == 2
    assert message in err
    assert not (tmp_path / "o").exists()


def test_the_keypoint_regressor_takes_its_config_fields_and_other_auxiliaries_none(
    tmp_path, capsys
):
    tiny = ("--width=4", "--levels=2", "--steps=2", "--batch_size=4", "--train_pairs=4")
    out = tmp_path / "judge"
    code, said, _ = main(capsys, "auxiliary", "pose-figures-keypoints", "--out", out, *tiny)
    assert code == 0 and "trained pose-figures-keypoints" in said
    record = json.loads((out / "training.json").read_text())
    assert record["config"]["width"] == 4 and record["config"]["steps"] == 2
    assert record["command"].endswith(" ".join(tiny))
    code, _, err = main(capsys, "auxiliary", "pose-figures-keypoints", "--out", out, "--wdth=4")
    assert code == 2 and "KeypointConfig has no field 'wdth'" in err
    other = next(
        m.name for f in FAMILIES.values() for m in f.auxiliary if m.name != "pose-figures-keypoints"
    )
    code, _, err = main(capsys, "auxiliary", other, "--out", tmp_path / "o", "--steps=2")
    assert code == 2 and f"{other} takes no --field=value options" in err
    assert not (tmp_path / "o").exists()


def test_recipe_switches_that_default_to_none_parse_as_their_type():
    """--r1_weight=0 turns R1 off (the field is float | None: None takes the kind's default)."""
    from hub_models.images import ImageConfig

    values = cli.parse_overrides(ImageConfig, ["--r1_weight=0", "--mbstd=false", "--augment="])
    assert values == {"r1_weight": 0.0, "mbstd": False, "augment": ""}
    assert type(values["r1_weight"]) is float
    with pytest.raises(cli.UsageError, match="--ema_decay expects float, got 'slow'"):
        cli.parse_overrides(ImageConfig, ["--ema_decay=slow"])


def test_tuple_fields_parse_from_their_declared_types():
    """--d_widths=1,2,3 is a tuple of ints (it used to become a tuple of characters)."""
    from hub_models.seqgan import SeqGANConfig

    values = cli.parse_overrides(SeqGANConfig, ["--d_widths=1,2,3", "--d_counts=4, 5,6"])
    assert values == {"d_widths": (1, 2, 3), "d_counts": (4, 5, 6)}
    assert cli.parse_overrides(SeqGANConfig, ["--tokens=a,b"]) == {"tokens": ("a", "b")}


def test_a_bad_tuple_item_is_a_clear_error_with_exit_code_2(tmp_path, capsys):
    code, _, err = main(
        capsys, "train", "seqgan", "--preset", "tiny", "--out", tmp_path / "o", "--d_widths=1,x"
    )
    assert code == 2
    assert "--d_widths expects int, got 'x'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "huge"], "unknown preset 'huge'; toy2d has tiny, demo"),
        (["--preset", "tiny", "--pack=3"], "pack must be >= 1 and divide batch_size"),
        (["--preset", "tiny", "--objective=vanilla"], "objective must be one of"),
        (["--preset", "tiny", "--target=torus"], "unknown target 'torus'"),
        (["--preset", "tiny", "--data", "missing.csv"], "missing.csv is not a file"),
    ],
)
def test_bad_training_request_exits_2(argv, message, tmp_path, capsys):
    code, _, err = main(capsys, "train", "toy2d", "--out", tmp_path / "o", *argv)
    assert code == 2
    assert message in err


def test_unknown_family_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["train", "cats", "--preset", "tiny"])
    assert caught.value.code == 2
    assert "invalid choice: 'cats'" in capsys.readouterr().err


def test_stray_arguments_outside_train_are_refused(trained, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["evaluate", "toy2d", "--from", str(trained), "--lr_d=1"])
    assert caught.value.code == 2
    assert "unrecognised arguments: --lr_d=1" in capsys.readouterr().err


def test_train_records_its_overrides(trained):
    record = json.loads((trained / "training.json").read_text())
    assert record["overrides"] == {"steps": 12}
    assert record["command"] == "python -m training train toy2d --preset tiny --steps=12"


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_a_trained_folder_as_json(trained, capsys):
    code, out, _ = main(capsys, "evaluate", "toy2d", "--from", trained, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["source"] == "local" and report["model"] == str(trained)
    saved = json.loads((trained / "eval.json").read_text())
    assert report["metrics"].keys() == saved.keys()
    for key, value in saved.items():
        got = report["metrics"][key]
        assert (math.isnan(value) and math.isnan(got)) or got == pytest.approx(value)


def test_evaluate_as_text(trained, capsys):
    code, out, _ = main(capsys, "evaluate", "toy2d", "--from", trained)
    assert code == 0
    assert out.startswith(f"local folder · {trained}")
    assert "Modes covered:" in out and "Reverse KL" in out


def test_evaluate_something_that_does_not_exist(capsys):
    code, _, err = main(capsys, "evaluate", "toy2d", "--from", "nobody/nothing")
    assert code == 2
    assert "nobody/nothing could not be found" in err and "unreachable" in err


# ----------------------------------------------------------------------------- sample


def test_sample_csv(trained, tmp_path, capsys):
    target = tmp_path / "deep" / "points.csv"
    code, out, _ = main(
        capsys, "sample", "toy2d", "--from", trained, "--n", 10, "--seed", 3, "--out", target
    )
    assert code == 0 and "wrote 10 samples" in out
    with target.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["x", "y"] and len(rows) == 11
    expected = toy2d.sample(Toy2DGAN.load_folder(trained), 10, 3)
    assert torch.tensor([[float(v) for v in row] for row in rows[1:]]) == pytest.approx(
        expected, abs=1e-5
    )


def test_sample_png(trained, tmp_path, capsys):
    target = tmp_path / "points.png"
    code, _, _ = main(capsys, "sample", "toy2d", "--from", trained, "--n", 50, "--out", target)
    assert code == 0
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (512, 512)


def test_sample_with_a_bad_extension(trained, tmp_path, capsys):
    code, _, err = main(capsys, "sample", "toy2d", "--from", trained, "--out", tmp_path / "p.txt")
    assert code == 2
    assert "toy2d samples are written as .csv, .png" in err
    assert not (tmp_path / "p.txt").exists()


def test_sample_needs_out(trained, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["sample", "toy2d", "--from", str(trained)])
    assert caught.value.code == 2
    assert "--out" in capsys.readouterr().err


# ----------------------------------------------------------------------------- publish


def test_publish_dry_run_lists_only_the_published_files(trained, capsys):
    code, out, _ = main(capsys, "publish", trained, "--repo-id", "me/toy", "--dry-run")
    assert code == 0
    assert out.splitlines()[0].startswith("would upload to http://127.0.0.1:")
    files = [line.strip() for line in out.splitlines()[1:]]
    for name in ("model.safetensors", "config.json", "README.md"):
        assert name in files
    assert not [f for f in files if f.startswith(("checkpoint", "samples/", "."))]
    assert "metrics.jsonl" not in files
    assert (trained / "checkpoint").is_dir() and (trained / "samples").is_dir()


def tampered_copy(trained: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    return folder


def test_publish_refuses_a_config_that_does_not_match_the_weights(trained, tmp_path, capsys):
    folder = tampered_copy(trained, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["g_width"] = 16
    (folder / "config.json").write_text(json.dumps(config))
    code, out, err = main(capsys, "publish", folder, "--repo-id", "me/toy", "--dry-run")
    assert code == 2
    assert "key 'generator.net.0.weight' has shape (32, 2) in the checkpoint" in err
    assert "would upload" not in out


def test_publish_refuses_non_finite_weights(trained, tmp_path, capsys):
    folder = tampered_copy(trained, tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    state["generator.net.0.bias"] = torch.full_like(state["generator.net.0.bias"], float("nan"))
    save_file(state, str(folder / "model.safetensors"))
    code, _, err = main(capsys, "publish", folder, "--repo-id", "me/toy", "--dry-run")
    assert code == 2
    assert "not finite" in err


@pytest.mark.parametrize("missing", ["README.md", "training.json"])
def test_publish_refuses_an_incomplete_folder(missing, trained, tmp_path, capsys):
    folder = tampered_copy(trained, tmp_path)
    (folder / missing).unlink()
    code, _, err = main(capsys, "publish", folder, "--repo-id", "me/toy", "--dry-run")
    assert code == 2
    assert missing in err
