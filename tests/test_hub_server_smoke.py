"""Smoke test of `hub_server.HubServer` through the real huggingface_hub client.

huggingface_hub reads HF_ENDPOINT / HF_HUB_CACHE / HF_HUB_OFFLINE at import time, so every
client step runs in a fresh Python subprocess with its own environment. The steps print one
JSON line that the test checks.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hub_server import HubServer

pytestmark = pytest.mark.hub

REPO_ID = "gallery/smoke"
DUMMY_TOKEN = "hf_test_dummy"

CLIENT = textwrap.dedent(
    '''
    """Hub client steps: `push SEED`, `load [--snapshot]`. Prints one JSON line."""
    import json
    import sys
    from pathlib import Path

    import torch
    from huggingface_hub import HfApi, PyTorchModelHubMixin, snapshot_download
    from torch import nn

    REPO_ID = "gallery/smoke"


    class Net(nn.Module, PyTorchModelHubMixin):
        def __init__(self, width: int = 4) -> None:
            super().__init__()
            self.fc = nn.Linear(width, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)


    @torch.no_grad()
    def output(net: Net) -> list[list[float]]:
        width = net.fc.in_features
        return net(torch.linspace(-1.0, 1.0, 2 * width).reshape(2, width)).tolist()


    command = sys.argv[1]
    if command == "push":
        torch.manual_seed(int(sys.argv[2]))
        net = Net(width=5)  # not the default: proves config.json round-trips
        commit = net.push_to_hub(REPO_ID)
        result = {"oid": commit.oid, "output": output(net)}
    else:
        net = Net.from_pretrained(REPO_ID)
        result = {"output": output(net), "width": net.fc.in_features}
        if "--snapshot" in sys.argv:
            folder = Path(snapshot_download(REPO_ID))
            result["files"] = sorted(p.name for p in folder.iterdir())
            result["snapshot_revision"] = folder.name
            result["sha"] = HfApi().model_info(REPO_ID).sha
    print(json.dumps(result))
    '''
)


def run_client(
    script: Path, cache: Path, *args: str, endpoint: str, offline: bool = False
) -> dict[str, Any]:
    # Start from a clean slate: no HF_* variable (token, home, cache) of the caller leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(cache.parent / "hf_home"),
        "HF_HUB_CACHE": str(cache),
        "HF_TOKEN": DUMMY_TOKEN,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"client {args} failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_push_download_and_offline_reload(tmp_path: Path) -> None:
    script = tmp_path / "hub_client.py"
    script.write_text(CLIENT)
    cache_v1, cache_v2 = tmp_path / "cache_v1", tmp_path / "cache_v2"

    with HubServer(tmp_path / "hub") as hub:
        assert hub.url.startswith("http://127.0.0.1:")

        def client(cache: Path, *args: str) -> dict[str, Any]:
            return run_client(script, cache, *args, endpoint=hub.url)

        # 1. push_to_hub: create_repo + upload_folder (preupload + commit) of save_pretrained.
        push_v1 = client(tmp_path / "cache_push", "push", "0")

        # 2. Download from an empty cache: from_pretrained, snapshot_download, model_info.
        shutil.rmtree(cache_v1, ignore_errors=True)
        v1 = client(cache_v1, "load", "--snapshot")
        assert v1["output"] == push_v1["output"]
        assert v1["width"] == 5
        assert {"config.json", "model.safetensors", "README.md"} <= set(v1["files"])
        assert v1["snapshot_revision"] == v1["sha"] == push_v1["oid"]

        # 4. A second push with other weights is a new revision; a fresh download gets it.
        push_v2 = client(tmp_path / "cache_push", "push", "1")
        assert push_v2["oid"] != push_v1["oid"]
        assert push_v2["output"] != push_v1["output"]
        v2 = client(cache_v2, "load", "--snapshot")
        assert v2["output"] == push_v2["output"]
        assert v2["snapshot_revision"] == v2["sha"] == push_v2["oid"]

    # 3. Server stopped: nothing listens any more, and HF_HUB_OFFLINE=1 loads from the cache.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{hub.url}/api/models/{REPO_ID}", timeout=2)
    offline_v2 = run_client(script, cache_v2, "load", endpoint=hub.url, offline=True)
    assert offline_v2["output"] == push_v2["output"]
    # The older cache still holds (and resolves `main` to) the first revision.
    offline_v1 = run_client(script, cache_v1, "load", endpoint=hub.url, offline=True)
    assert offline_v1["output"] == push_v1["output"]
