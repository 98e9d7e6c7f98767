"""`python -m training publish` and `publish-all` against the loopback Hub server: a bad folder
gets one clear message per problem and nothing reaches the server; a good one is listed, then
uploaded, and its URL printed; the whole gallery publishes under any organisation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import HubServer

from hub_models import family as family_module
from hub_models import hub, runfiles
from hub_models.registry import FAMILIES
from training import cli

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.hub
ORG = "gallery-test"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("publish") / "run"
    assert cli.main(["train", "toy2d", "--preset", "tiny", "--steps=12", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with HubServer(tmp_path_factory.mktemp("hub")) as running:
        yield running


@pytest.fixture
def hub_env(server, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_dummy_secret_value")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return server


def on_server(server: HubServer, repo_id: str) -> bool:
    """Whether the server holds the repo (created by any upload, even a failed one)."""
    return (server.root / "mirrors" / "models" / repo_id).exists()


def run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GAN_GALLERY"))}
    return {**env, "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


BAD = {
    "missing-config": (
        lambda folder: (folder / runfiles.CONFIG).unlink(),
        "config.json is missing: a published model needs the config.json",
    ),
    "pickle-weights": (
        lambda folder: (folder / runfiles.WEIGHTS).rename(folder / "pytorch_model.bin"),
        "holds only pickle checkpoints (pytorch_model.bin)",
    ),
    "config-mismatch": (
        lambda folder: (folder / runfiles.CONFIG).write_text(
            json.dumps({**json.loads((folder / runfiles.CONFIG).read_text()), "g_width": 16})
        ),
        "model.safetensors does not match its config: key 'generator.net.0.bias' has shape "
        "(32,) in the checkpoint but the config expects (16,)",
    ),
    "missing-card": (
        lambda folder: (folder / runfiles.CARD).unlink(),
        "README.md (the model card) is missing",
    ),
    "missing-training-record": (
        lambda folder: (folder / runfiles.TRAINING).unlink(),
        "has no training.json: publish folders written by `python -m training train`",
    ),
}


@pytest.mark.parametrize("how", list(BAD))
def test_a_bad_folder_is_refused_with_one_message_and_nothing_is_uploaded(
    how, trained, tmp_path, hub_env, capsys
):
    folder = tmp_path / how
    shutil.copytree(trained, folder)
    damage, message = BAD[how]
    damage(folder)
    repo_id = f"{ORG}/refused-{how}"
    card_before = (
        (folder / runfiles.CARD).read_bytes() if (folder / runfiles.CARD).exists() else b""
    )
    code = cli.main(["publish", str(folder), "--repo-id", repo_id])
    out, err = capsys.readouterr()
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert f"nothing uploaded: fix {folder}" in err
    assert out == ""  # no listing, no URL
    assert not on_server(hub_env, repo_id)
    if card_before:  # the card is only rewritten once everything passed
        assert (folder / runfiles.CARD).read_bytes() == card_before


def test_a_good_folder_is_listed_uploaded_and_its_url_printed(trained, tmp_path, server):
    folder = tmp_path / "good"
    shutil.copytree(trained, folder)
    repo_id = f"{ORG}/toy2d-good"
    env = clean_env(
        HF_ENDPOINT=server.url, HF_TOKEN="hf_test_x", HF_HUB_CACHE=str(tmp_path / "cache")
    )
    dry = run("publish", str(folder), "--repo-id", repo_id, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr[-3000:]
    url = f"{server.url}/{repo_id}"
    names = hub.publishable_names(folder)
    assert dry.stdout.splitlines()[0] == f"would upload to {url}:"
    assert [line.strip() for line in dry.stdout.splitlines()[1 : 1 + len(names)]] == names
    assert f"dry run: nothing uploaded; without --dry-run the model will be at {url}" in dry.stdout
    assert not on_server(server, repo_id)

    done = run("publish", str(folder), "--repo-id", repo_id, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"uploading to {url}:" and lines[-1] == f"published: {url}"
    assert [line.strip() for line in lines[1 : 1 + len(names)]] == names
    from huggingface_hub import HfApi

    assert sorted(HfApi(endpoint=server.url).list_repo_files(repo_id)) == names


def test_publish_all_dry_run_lists_every_repo_and_its_files(hub_env, capsys):
    assert cli.main(["publish-all", "--org", "a-fork", "--dry-run"]) == 0
    out = capsys.readouterr().out
    models = [m for f in FAMILIES.values() for m in (*f.models, *f.auxiliary)]
    for model in models:
        heading = f"would upload to {hub_env.url}/a-fork/{model.name}:"
        assert heading in out
        listed = out.split(heading + "\n", 1)[1].splitlines()
        names = hub.publishable_names(model.snapshot)
        assert [line.strip() for line in listed[: len(names)]] == names
    assert out.splitlines()[-1] == (
        f"would publish {len(models)} repos under {hub_env.url}/a-fork; "
        "load them with GAN_GALLERY_ORG=a-fork"
    )
    assert not (hub_env.root / "mirrors" / "models" / "a-fork").exists()


def test_publish_all_uploads_nothing_when_one_snapshot_is_bad(
    hub_env, tmp_path, monkeypatch, capsys
):
    names = ["toy2d-ring-minimax", "toy2d-grid-minimax"]
    for name in names:
        shutil.copytree(family_module.SNAPSHOTS / name, tmp_path / "snapshots" / name)
    (tmp_path / "snapshots" / names[1] / runfiles.CARD).unlink()
    monkeypatch.setattr(family_module, "SNAPSHOTS", tmp_path / "snapshots")
    assert cli.main(["publish-all", "--org", "broken-fork", "--only", *names]) == 2
    err = capsys.readouterr().err
    assert f"{names[1]}/README.md (the model card) is missing" in err
    assert "nothing uploaded: 1 snapshot(s) failed their checks" in err
    assert not (hub_env.root / "mirrors" / "models" / "broken-fork").exists()


def test_publish_all_names_unknown_models(hub_env, capsys):
    assert cli.main(["publish-all", "--org", "x", "--only", "no-such-model"]) == 2
    assert "no model named no-such-model" in capsys.readouterr().err
