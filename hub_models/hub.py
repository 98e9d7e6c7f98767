"""Hub access: resolve a published model (Hub → cache → bundled snapshot), load it, publish it.

Environment, read at call time so tests and the app can point it elsewhere:
``HF_ENDPOINT`` (default https://huggingface.co; mirrors and self-hosted hubs work),
``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` / ``HF_HOME``, ``HF_TOKEN`` (or the ``hf auth login`` file).

One short reachability probe per endpoint per process decides whether the Hub is tried at
all, so an offline machine falls back to the bundled snapshot at once instead of sitting in
huggingface_hub's retry loop.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import urllib.parse
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from hub_models.base import WEIGHTS_NAME, CheckpointError, HubBundle

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 1.5
Source = Literal["hub", "cache", "bundled", "local"]


@dataclass(frozen=True)
class Resolved:
    """Where a model's files were found, and which revision they are."""

    repo_id: str
    path: Path
    source: Source
    revision: str
    notice: str = ""  # why a fallback was used, for the UI

    @property
    def label(self) -> str:
        where = {
            "hub": "Hub",
            "cache": "HF cache",
            "bundled": "bundled snapshot",
            "local": "local folder",
        }[self.source]
        return f"{where} · {self.repo_id} @ {self.revision[:12]}"


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "huggingface"
    )
    return Path(home) / "hub"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _probe(url: str, timeout: float) -> bool:
    parts = urllib.parse.urlsplit(url)
    conn_cls = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_cls(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("HEAD", (parts.path or "") + "/api/models")
        conn.getresponse()  # any HTTP answer, even an error status, means a server is there
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@cache
def endpoint_reachable(url: str) -> bool:
    """True if ``url`` answers HTTP within PROBE_SECONDS; asked once per process per URL.

    The probe runs in a daemon thread joined with a deadline, because name resolution ignores
    socket timeouts and can hang far longer on a machine without network.
    """
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(_probe(url, PROBE_SECONDS)), daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS + 0.5)
    return bool(answer and answer[0])


@cache
def bundled_revision(folder: Path) -> str:
    """A bundled snapshot's revision: the content hash of its weights (it has no Hub commit)."""
    digest = hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest()
    return f"sha256:{digest[:12]}"


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, cache_dir=hub_cache(), local_files_only=True
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None


def resolve(repo_id: str, bundled: Path | None = None, revision: str | None = None) -> Resolved:
    """Find a published model's files: a local folder, else the Hub, else cache, else bundled."""
    if Path(repo_id).is_dir():
        return Resolved(repo_id, Path(repo_id), "local", "working copy")
    notice = ""
    if offline():
        notice = "HF_HUB_OFFLINE is set"
    elif not endpoint_reachable(endpoint()):
        notice = f"{endpoint()} is unreachable"
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError

        try:
            path = Path(
                snapshot_download(
                    repo_id,
                    revision=revision,
                    endpoint=endpoint(),
                    cache_dir=hub_cache(),
                    etag_timeout=5,
                )
            )
            return Resolved(repo_id, path, "hub", path.name)
        except (HfHubHTTPError, OSError, ValueError) as error:
            notice = f"{endpoint()} could not serve {repo_id} ({type(error).__name__})"
    cached = _cached_snapshot(repo_id, revision)
    if cached is not None:
        return Resolved(repo_id, cached, "cache", cached.name, notice + "; using the HF cache")
    if bundled is not None and (bundled / WEIGHTS_NAME).is_file():
        return Resolved(
            repo_id,
            bundled,
            "bundled",
            bundled_revision(bundled),
            notice + "; using the snapshot bundled with the app",
        )
    raise CheckpointError(
        f"{repo_id} could not be found: {notice or 'not on the Hub'}, not in the HF cache at "
        f"{hub_cache()}, and no bundled snapshot. Train it with `python -m training train`."
    )


def load(
    bundle: type[HubBundle],
    repo_id: str,
    bundled: Path | None = None,
    revision: str | None = None,
    device: str = "cpu",
) -> tuple[HubBundle, Resolved]:
    """Resolve and strictly load a published model; returns the model and where it came from."""
    where = resolve(repo_id, bundled, revision)
    return bundle.load_folder(where.path, device), where


# ----------------------------------------------------------------------------- publishing

PUBLISHED_FILES = ("model.safetensors", "config.json", "README.md")


def publish(folder: Path, repo_id: str, dry_run: bool = False) -> list[str]:
    """Upload a validated model folder to ``repo_id`` at HF_ENDPOINT with the real client.

    The token comes from HF_TOKEN or the HF login file, through huggingface_hub; it is never
    read into this code, printed or logged. Returns the list of files (uploaded or that would be).
    """
    folder = Path(folder)
    files = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not _private(p.relative_to(folder))
    )
    missing = [name for name in PUBLISHED_FILES if name not in files]
    if missing:
        raise CheckpointError(f"{folder} cannot be published: {', '.join(missing)} missing")
    if dry_run:
        return files
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint())
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        commit_message=f"Publish {repo_id}",
        allow_patterns=files,
    )
    return files


def _private(relative: Path) -> bool:
    """Training leftovers that stay local: checkpoints, logs, snapshots, hidden files."""
    return (
        relative.parts[0] in ("checkpoint", "checkpoint.old", "samples")
        or any(part.startswith(".") for part in relative.parts)
        or relative.name == "metrics.jsonl"
    )
