"""Hub round trip with the real huggingface_hub client against a Hub-compatible loopback server.

publish (CLI) → wipe cache → resolve/download → identical output → reload with HF_HUB_OFFLINE=1
from the cache; loading downloads only the weights and the config, other files on demand; and
the endpoint going down → the bundled snapshot after one bounded probe, with a notice (how long
that takes is measured by `python -m benchmarks loading`). Each client step runs in a fresh
process because huggingface_hub reads HF_* at import time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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


FETCH = """
import json, os, sys
from hub_models import hub
from hub_models.toy2d import Toy2DGAN
repo, cache = sys.argv[1], sys.argv[2]
Toy2DGAN.from_pretrained(repo)  # into HF_HUB_CACHE, read by huggingface_hub at import
mixin = sorted(p.name for p in next(hub.hub_cache().glob("models--*/snapshots/*")).iterdir())
os.environ["HF_HUB_CACHE"] = cache  # hub.py reads it at call time: a second, empty cache
where = hub.resolve(repo)
resolved = sorted(p.name for p in where.path.iterdir())
extra = {name: hub.fetch_file(where, name) for name in ("replay.safetensors", "sample.png", "nope")}
print(json.dumps({
    "mixin": mixin,
    "resolved": resolved,
    "source": where.source,
    "extra": {k: v and str(v.relative_to(where.path)) for k, v in extra.items()},
    "after": sorted(p.name for p in where.path.iterdir()),
}))
"""

OFFLINE_FETCH = """
import json, sys
from hub_models import hub
where = hub.resolve(sys.argv[1])
print(json.dumps({"source": where.source, "revision": where.revision, **{
    name: bool(hub.fetch_file(where, name)) for name in ("sample.png", "eval.json")}}))
"""


def test_loading_downloads_only_weights_and_config(trained, tmp_path):
    repo = "gallery-test/toy2d-two-files"
    assert {"README.md", "sample.png", "replay.safetensors", "eval.json"} <= {
        p.name for p in trained.iterdir()
    }
    with HubServer(tmp_path / "server") as server:
        env = clean_env(HF_ENDPOINT=server.url, HF_TOKEN="hf_x", HF_HUB_CACHE=str(tmp_path / "a"))
        published = python(env, "-m", "training", "publish", str(trained), "--repo-id", repo)
        assert published.returncode == 0, published.stderr[-3000:]
        result = python(env, "-c", FETCH, repo, str(tmp_path / "b"))
        assert result.returncode == 0, result.stderr[-3000:]
        got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["mixin"] == ["config.json", "model.safetensors"]  # from_pretrained
    assert got["source"] == "hub"
    assert got["resolved"] == ["config.json", "model.safetensors"]  # hub.resolve
    # Extra files on demand, into the same snapshot (the same revision); a missing one is None.
    assert got["extra"] == {
        "replay.safetensors": "replay.safetensors",
        "sample.png": "sample.png",
        "nope": None,
    }
    assert got["after"] == ["config.json", "model.safetensors", "replay.safetensors", "sample.png"]
    # Server gone: the cache serves what was fetched, and nothing else is attempted.
    offline = python(
        clean_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "b")), "-c", OFFLINE_FETCH, repo
    )
    assert offline.returncode == 0, offline.stderr[-3000:]
    assert json.loads(offline.stdout.strip().splitlines()[-1]) == {
        "source": "cache",
        "revision": (
            tmp_path / "b" / "models--gallery-test--toy2d-two-files/refs/main"
        ).read_text(),
        "sample.png": True,
        "eval.json": False,
    }


FALLBACK = """
import json, sys
from pathlib import Path
import huggingface_hub
from hub_models import hub

calls = []

def refuse(*args, **kwargs):
    calls.append("download")
    raise AssertionError("huggingface_hub was called after a failed probe")

huggingface_hub.hf_hub_download = huggingface_hub.snapshot_download = refuse
real_probe = hub._probe

def spy(url, timeout):
    calls.append(["probe", url, timeout])
    return real_probe(url, timeout)

hub._probe = spy
where = hub.resolve(sys.argv[1], Path(sys.argv[2]))
print(json.dumps({"source": where.source, "notice": where.notice, "calls": calls,
                  "deadline": hub.PROBE_SECONDS}))
"""


def test_endpoint_down_falls_back_to_bundled_after_one_bounded_probe(trained, tmp_path):
    with HubServer(tmp_path / "server") as server:
        url = server.url  # a real endpoint that then goes away
    env = clean_env(HF_ENDPOINT=url, HF_HUB_CACHE=str(tmp_path / "empty"))
    got = client("resolve", "gallery-test/never-published", env, str(trained))
    assert got["source"] == "bundled" and "unreachable" in got["notice"]
    assert got["points"] == expected_points(trained)
    result = python(env, "-c", FALLBACK, "gallery-test/x", str(trained))
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["source"] == "bundled" and "unreachable" in seen["notice"]
    # One probe with its deadline, then straight to the bundled snapshot: huggingface_hub's
    # download (and its retry loop) is never entered.
    assert seen["calls"] == [["probe", url, seen["deadline"]]]


MIXIN_AND_LOAD = """
import json, sys
import hub_models
from hub_models.features import FeatureNet
from hub_models.toy2d import Toy2DGAN, sample
repo, features = sys.argv[1], sys.argv[2]
mixin = Toy2DGAN.from_pretrained(repo)
loaded, where = hub_models.load(repo)
net = FeatureNet.from_pretrained(features)
print(json.dumps({
    "mixin": [mixin.resolved.source, mixin.resolved.revision, mixin.resolved.notice],
    "load": [where.source, where.revision],
    "features": net.resolved.source,
    "same": sample(mixin, 8, 3).tolist() == sample(loaded, 8, 3).tolist(),
    "points": sample(mixin, 8, 3).tolist(),
}))
"""


def mixin_and_load(env: dict[str, str], repo: str, features: str) -> dict:
    result = python(env, "-c", MIXIN_AND_LOAD, repo, features)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"stderr": result.stderr}


def test_from_pretrained_resolves_like_load_offline_and_with_the_endpoint_down(tmp_path):
    """The README's one-liner works where `load` works: no Hub, empty cache."""
    repo, features = "gan-gallery/toy2d-grid-minimax", "gan-gallery/images-mnist-features"
    empty = str(tmp_path / "empty")
    offline = mixin_and_load(clean_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=empty), repo, features)
    assert offline["mixin"][0] == offline["load"][0] == offline["features"] == "bundled"
    assert offline["mixin"][1] == offline["load"][1] and offline["same"]
    assert f"{repo}: weights from bundled snapshot" in offline["stderr"]  # says which
    with HubServer(tmp_path / "server") as server:
        url = server.url  # an endpoint that then goes away
    down = mixin_and_load(clean_env(HF_ENDPOINT=url, HF_HUB_CACHE=empty), repo, features)
    assert down["mixin"][0] == "bundled" and "unreachable" in down["mixin"][2]
    assert down["points"] == offline["points"]


REPO_FILES = """
import json, sys, zipfile, io
from hub_models import hub
from hub_models.registry import published
where = hub.resolve(sys.argv[1], published(sys.argv[1])[1].snapshot)
files = hub.repo_files(where)
archive = zipfile.ZipFile(io.BytesIO(hub.repo_zip(where, files)))
print(json.dumps({
    "source": where.source,
    "files": {f.name: f.sha256 for f in files},
    "zip_equal": all(archive.read(f"{where.repo_id.split('/')[1]}/{f.name}") == f.path.read_bytes()
                     for f in files),
}))
"""


def test_publish_all_to_a_fork_then_load_and_list_it_under_the_forks_name(tmp_path):
    from hub_models.hub import sha256_of
    from hub_models.registry import FAMILIES

    names = ["toy2d-grid-minimax", "images-mnist-features"]
    snapshots = {
        m.name: m.snapshot
        for f in FAMILIES.values()
        for m in (*f.models, *f.auxiliary)
        if m.name in names
    }
    cards = {name: (folder / "README.md").read_bytes() for name, folder in snapshots.items()}
    with HubServer(tmp_path / "server") as server:
        cache = str(tmp_path / "cache")
        env = clean_env(HF_ENDPOINT=server.url, HF_TOKEN="hf_x", HF_HUB_CACHE=cache)
        done = python(env, "-m", "training", "publish-all", "--org", "fork-org", "--only", *names)
        assert done.returncode == 0, done.stderr[-3000:]
        for name in names:
            assert f"published: {server.url}/fork-org/{name}" in done.stdout
        assert "load them with GAN_GALLERY_ORG=fork-org" in done.stdout
        # the bundled snapshots are left as they are; the published cards name the fork
        assert {n: (f / "README.md").read_bytes() for n, f in snapshots.items()} == cards

        fork = {**env, "GAN_GALLERY_ORG": "fork-org"}
        got = mixin_and_load(fork, "fork-org/toy2d-grid-minimax", "fork-org/images-mnist-features")
        assert got["mixin"][0] == got["load"][0] == got["features"] == "hub"
        assert len(got["mixin"][1]) == 40 and got["same"]
        assert got["points"] == expected_points(snapshots["toy2d-grid-minimax"])

        listed = python(fork, "-c", REPO_FILES, "fork-org/toy2d-grid-minimax")
        assert listed.returncode == 0, listed.stderr[-3000:]
        repo = json.loads(listed.stdout.strip().splitlines()[-1])
        folder = snapshots["toy2d-grid-minimax"]
        assert repo["source"] == "hub" and repo["zip_equal"]
        assert sorted(repo["files"]) == sorted(p.name for p in folder.iterdir())
        for name, digest in repo["files"].items():
            if name != "README.md":  # the one file publish-all rewrote
                assert digest == sha256_of(folder / name), name
        card = Path(cache).glob("models--fork-org--toy2d-grid-minimax/snapshots/*/README.md")
        assert 'from_pretrained("fork-org/toy2d-grid-minimax")' in next(card).read_text()
    # the fork's Hub gone: its name still finds the bundled snapshot, or the cache
    offline = mixin_and_load(
        clean_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=cache, GAN_GALLERY_ORG="fork-org"),
        "fork-org/toy2d-grid-minimax",
        "fork-org/images-mnist-features",
    )
    assert offline["mixin"][0] == "cache" and offline["mixin"][1] == got["mixin"][1]
    assert offline["features"] == "cache"
    bundled = mixin_and_load(
        clean_env(
            HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty"), GAN_GALLERY_ORG="fork-org"
        ),
        "fork-org/toy2d-grid-minimax",
        "fork-org/images-mnist-features",
    )
    assert bundled["mixin"][0] == bundled["features"] == "bundled"
    assert bundled["points"] == got["points"]
