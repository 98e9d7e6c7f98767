"""Hub round trip with the real huggingface_hub client against a Hub-compatible loopback server.

publish (CLI) → wipe cache → resolve/download → identical output → reload with HF_HUB_OFFLINE=1
from the cache; and the endpoint going down → the bundled snapshot, quickly, with a notice.
Each client step runs in a fresh process because huggingface_hub reads HF_* at import time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hub_server import HubServer

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.hub

CLIENT = """
import json, sys, torch
from hub_models import hub
from hub_models.toy2d import Toy2DGAN, sample
mode, repo = sys.argv[1], sys.argv[2]
if mode == "mixin":   # the one-liner a user types, through PyTorchModelHubMixin
    model = Toy2DGAN.from_pretrained(repo)
    where = {"source": "mixin", "revision": ""}
else:                 # the gallery's resolver (Hub -> cache -> bundled)
    bundled = sys.argv[3] if len(sys.argv) > 3 else None
    from pathlib import Path
    model, resolved = hub.load(Toy2DGAN, repo, Path(bundled) if bundled else None)
    where = {"source": resolved.source, "revision": resolved.revision, "notice": resolved.notice}
print(json.dumps({**where, "points": sample(model, 8, 3).tolist()}))
"""


def python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`python ARGS` in the repository, in a fresh process with ``env``."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def client(mode: str, repo: str, env: dict[str, str], *extra: str) -> dict:
    result = python(env, "-c", CLIENT, mode, repo, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "toy2d-tiny"
    subprocess.run(
        [sys.executable, "-m", "training", "train", "toy2d", "--preset", "tiny", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def expected_points(folder: Path) -> list:
    from hub_models.toy2d import Toy2DGAN, sample

    return sample(Toy2DGAN.load_folder(folder), 8, 3).tolist()


def test_publish_download_and_offline_reload(trained, tmp_path):
    token = "hf_test_dummy_secret_value"
    with HubServer(tmp_path / "server") as server:
        cache = tmp_path / "cache"
        env = clean_env(HF_ENDPOINT=server.url, HF_TOKEN=token, HF_HUB_CACHE=str(cache))
        published = python(
            env, "-m", "training", "publish", str(trained), "--repo-id", "gallery-test/toy2d-tiny"
        )
        assert published.returncode == 0, published.stderr[-3000:]
        assert token not in published.stdout + published.stderr  # never printed
        assert "model.safetensors" in published.stdout and "checkpoint" not in published.stdout
        card = (trained / "README.md").read_text()
        assert 'from_pretrained("gallery-test/toy2d-tiny")' in card  # the card names its repo

        shutil.rmtree(cache, ignore_errors=True)
        first = client("resolve", "gallery-test/toy2d-tiny", env)
        assert first["source"] == "hub" and len(first["revision"]) == 40
        assert first["points"] == expected_points(trained)
        assert (cache / "models--gallery-test--toy2d-tiny").is_dir()
        mixin = client("mixin", "gallery-test/toy2d-tiny", env)
        assert mixin["points"] == first["points"]
    # server gone: offline reload from the cache only
    offline = client(
        "resolve", "gallery-test/toy2d-tiny", clean_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))
    )
    assert offline["source"] == "cache" and offline["revision"] == first["revision"]
    assert offline["points"] == first["points"]
    mixin_offline = client(
        "mixin", "gallery-test/toy2d-tiny", clean_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))
    )
    assert mixin_offline["points"] == first["points"]


def test_publish_dry_run_uploads_nothing(trained, tmp_path):
    with HubServer(tmp_path / "server") as server:
        env = clean_env(HF_ENDPOINT=server.url, HF_TOKEN="hf_x", HF_HUB_CACHE=str(tmp_path / "c"))
        out = python(
            env,
            "-m",
            "training",
            "publish",
            str(trained),
            "--repo-id",
            "gallery-test/dry",
            "--dry-run",
        )
        assert out.returncode == 0 and "would upload" in out.stdout
        got = python(env, "-c", CLIENT, "resolve", "gallery-test/dry")
        assert got.returncode != 0 and "could not be found" in got.stderr


def test_endpoint_down_falls_back_to_bundled_within_3_seconds(trained, tmp_path):
    with HubServer(tmp_path / "server") as server:
        url = server.url  # a real endpoint that then goes away
    env = clean_env(HF_ENDPOINT=url, HF_HUB_CACHE=str(tmp_path / "empty"))
    began = time.monotonic()
    got = client("resolve", "gallery-test/never-published", env, str(trained))
    elapsed = time.monotonic() - began
    assert got["source"] == "bundled" and "unreachable" in got["notice"]
    assert got["points"] == expected_points(trained)
    assert elapsed < 3 + 5  # fresh-process imports included; the resolver itself is timed below
    probe = python(
        env,
        "-c",
        "import time, sys; from pathlib import Path; "
        "from hub_models import hub; t = time.monotonic(); "
        "r = hub.resolve('gallery-test/x', Path(sys.argv[1])); "
        "print(r.source, time.monotonic() - t)",
        str(trained),
    )
    source, seconds = probe.stdout.split()
    assert source == "bundled" and float(seconds) < 3
