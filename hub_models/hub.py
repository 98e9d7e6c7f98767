"""Hub access: resolve a published model (Hub → cache → bundled snapshot), load it, list and zip
its files, check a folder and publish it.

Environment, read at call time so tests and the app can point it elsewhere:
``HF_ENDPOINT`` (default https://huggingface.co; mirrors and self-hosted hubs work),
``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` / ``HF_HOME`` / ``XDG_CACHE_HOME``, ``HF_TOKEN`` (or the
``hf auth login`` file).

A short reachability probe decides whether the Hub is tried at all, so an offline machine falls
back to the bundled snapshot at once instead of sitting in huggingface_hub's retry loop. Its
answer expires: a failed probe is retried after UNREACHABLE_SECONDS, a good one after
REACHABLE_SECONDS, so one network blip does not pin a long-running app to bundled weights.

Resolving downloads only the files a model needs to load (``model.safetensors`` and
``config.json``); ``fetch_file`` gets any other file of the repo (``sample.png``,
``replay.safetensors``, ``eval.json``...) on demand, from the same revision.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Literal

from hub_models import runfiles
from hub_models.base import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    HubBundle,
    refuse_pickles,
)

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 1.5
REACHABLE_SECONDS = 300.0  # how long a server that answered is trusted to stay up
UNREACHABLE_SECONDS = 30.0  # how soon a failed probe is tried again
MODEL_FILES = (WEIGHTS_NAME, CONFIG_NAME)  # what loading needs; everything else is on demand
Source = Literal["hub", "cache", "bundled", "local"]


@dataclass(frozen=True)
class Resolved:
    """Where a model's files were found, and which revision they are.

    For "hub" and "cache", ``path`` is the HF cache snapshot of ``revision`` (a commit) and holds
    the files resolve() was asked for; ``fetch_file`` adds others. "bundled" and "local" folders
    hold every file.
    """

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
    """The HF cache folder, by huggingface_hub's rules but read from the environment now.

    huggingface_hub computes ``constants.HF_HUB_CACHE`` once, at import, and has no helper that
    reads the environment later; this follows the same order: HF_HUB_CACHE, the legacy
    HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub,
    with ``~`` and ``$VARS`` expanded. An empty variable counts as unset (huggingface_hub would
    take it as a relative path).
    """
    env = os.environ.get
    home = env("HF_HOME") or os.path.join(
        env("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    home = os.path.expandvars(os.path.expanduser(home))
    chosen = env("HF_HUB_CACHE") or env("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(chosen)))


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


def _probe_with_deadline(url: str) -> bool:
    # A daemon thread joined with a deadline, because name resolution ignores socket timeouts
    # and can hang far longer on a machine without network.
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(_probe(url, PROBE_SECONDS)), daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS + 0.5)
    return bool(answer and answer[0])


_clock = time.monotonic  # tests replace it to move time on


class _Reachability:
    """Probe answers per URL that expire; concurrent callers of one URL share one probe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[bool, float]] = {}  # url -> (answer, expiry)
        self._probing: dict[str, threading.Lock] = {}

    def __call__(self, url: str) -> bool:
        """True if ``url`` answered HTTP within PROBE_SECONDS, probing when the answer expired."""
        with self._lock:
            probing = self._probing.setdefault(url, threading.Lock())
        with probing:  # a second caller waits for the first one's probe instead of probing too
            with self._lock:
                known = self._answers.get(url)
            if known is not None and _clock() < known[1]:
                return known[0]
            reachable = _probe_with_deadline(url)
            lifetime = REACHABLE_SECONDS if reachable else UNREACHABLE_SECONDS
            with self._lock:
                self._answers[url] = (reachable, _clock() + lifetime)
            return reachable

    def cache_clear(self) -> None:
        with self._lock:
            self._answers.clear()


endpoint_reachable = _Reachability()


@cache
def bundled_revision(folder: Path) -> str:
    """A bundled snapshot's revision: the content hash of its weights (it has no Hub commit)."""
    digest = hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest()
    return f"sha256:{digest[:12]}"


def _snapshot_of(file: str | Path, filename: str) -> Path:
    """The snapshot folder (snapshots/<commit>) that holds ``file``, the cached ``filename``."""
    return Path(file).parents[len(PurePosixPath(filename).parts) - 1]


def _cached_snapshot(repo_id: str, revision: str | None, files: Sequence[str]) -> Path | None:
    """The cache snapshot of ``revision`` if it holds all ``files``; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    snapshot = None
    for filename in files:
        try:
            found = try_to_load_from_cache(
                repo_id, filename, cache_dir=hub_cache(), revision=revision
            )
        except ValueError:  # a repo id or file name the cache layout cannot hold
            return None
        if not isinstance(found, str):  # not cached, or cached as known to be missing
            return None
        snapshot = _snapshot_of(found, filename)
    return snapshot


def _download(repo_id: str, revision: str | None, files: Sequence[str]) -> Path:
    """Download ``files`` of one commit into the HF cache; returns that commit's snapshot."""
    from huggingface_hub import hf_hub_download

    snapshot, at = Path(), revision
    for filename in files:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=at,
            endpoint=endpoint(),
            cache_dir=hub_cache(),
            etag_timeout=5,
        )
        snapshot = _snapshot_of(path, filename)
        at = snapshot.name  # the rest from the same commit, even if a push lands in between
    return snapshot


def resolve(
    repo_id: str,
    bundled: Path | None = None,
    revision: str | None = None,
    files: Sequence[str] = MODEL_FILES,
) -> Resolved:
    """Find a published model's files: a local folder, else the Hub, else cache, else bundled.

    From the Hub or the cache only ``files`` are fetched (by default what loading needs), all of
    one commit, and all must exist; get any other file with ``fetch_file``.

    A pinned ``revision`` is honoured by the Hub and the cache. The bundled snapshot has no Hub
    commit, only the content hash of its weights (``bundled_revision``): it is used for a
    pinned revision only when that revision is exactly this hash; any other pin raises
    CheckpointError, because whether the bundled weights are that revision cannot be checked
    offline.
    """
    if not files:
        raise ValueError("resolve() needs at least one file name (MODEL_FILES to load)")
    if Path(repo_id).is_dir():
        return Resolved(repo_id, Path(repo_id), "local", "working copy")
    notice = ""
    if offline():
        notice = "HF_HUB_OFFLINE is set"
    elif not endpoint_reachable(endpoint()):
        notice = f"{endpoint()} is unreachable"
    else:
        from huggingface_hub.errors import HfHubHTTPError

        try:
            path = _download(repo_id, revision, files)
            return Resolved(repo_id, path, "hub", path.name)
        except (HfHubHTTPError, OSError, ValueError) as error:
            notice = f"{endpoint()} could not serve {repo_id} ({type(error).__name__})"
    cached = _cached_snapshot(repo_id, revision, files)
    if cached is not None:
        return Resolved(repo_id, cached, "cache", cached.name, notice + "; using the HF cache")
    if bundled is not None and (bundled / WEIGHTS_NAME).is_file():
        snapshot_revision = bundled_revision(bundled)
        if revision is not None and revision != snapshot_revision:
            raise CheckpointError(
                f"{repo_id} is pinned to revision {revision}, but {notice} and the HF cache at "
                f"{hub_cache()} does not hold it. The bundled snapshot is revision "
                f"{snapshot_revision} and the pinned revision cannot be checked offline: "
                f"reach the Hub once to cache {revision}, or pin {snapshot_revision} (or no "
                "revision) to accept the bundled weights."
            )
        return Resolved(
            repo_id,
            bundled,
            "bundled",
            snapshot_revision,
            notice + "; using the snapshot bundled with the app",
        )
    raise CheckpointError(
        f"{repo_id} could not be found: {notice or 'not on the Hub'}, not in the HF cache at "
        f"{hub_cache()}, and no bundled snapshot. Train it with `python -m training train`."
    )


def fetch_file(where: Resolved, filename: str) -> Path | None:
    """One more file of a resolved model (``sample.png``, ``replay.safetensors``...), or None.

    The file comes from the same revision as the weights and is ``where.path / filename``: a
    local or bundled folder already holds it; for "hub" and "cache" it is taken from the HF
    cache, else downloaded into that snapshot from ``where.revision``. None when the model has
    no such file, or when it is not cached and the Hub cannot be asked now (HF_HUB_OFFLINE,
    endpoint unreachable); any other failure of the Hub raises CheckpointError.
    """
    path = where.path / filename
    if path.is_file():
        return path
    if where.source in ("local", "bundled") or offline() or not endpoint_reachable(endpoint()):
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    try:
        return Path(
            hf_hub_download(
                where.repo_id,
                filename,
                revision=where.revision,
                endpoint=endpoint(),
                cache_dir=hub_cache(),
                etag_timeout=5,
            )
        )
    except EntryNotFoundError:  # not in the repo, or the connection dropped and it is not cached
        return None
    except (HfHubHTTPError, OSError) as error:
        raise CheckpointError(
            f"{endpoint()} could not serve {filename} of {where.repo_id} @ {where.revision} "
            f"({type(error).__name__}: {error})"
        ) from error


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

PUBLISHED_FILES = runfiles.PUBLISHED


def publish(folder: Path, repo_id: str, dry_run: bool = False) -> list[str]:
    """Upload a validated model folder to ``repo_id`` at HF_ENDPOINT with the real client.

    The token comes from HF_TOKEN or the HF login file, through huggingface_hub; it is never
    read into this code, printed or logged. Returns the list of files (uploaded or that would be).
    """
    folder = Path(folder)
    files = publishable_names(folder)
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


def repo_url(repo_id: str) -> str:
    """Where a published repo lives on HF_ENDPOINT (its page on huggingface.co)."""
    return f"{endpoint()}/{repo_id}"


def publishable_names(folder: Path) -> list[str]:
    """The files of a folder that publishing uploads, sorted (training leftovers stay local)."""
    folder = Path(folder)
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not _private(p.relative_to(folder))
    )


def _private(relative: Path) -> bool:
    """Training leftovers that stay local: checkpoints, logs, snapshots, hidden files."""
    return relative.parts[0] in runfiles.LOCAL or any(
        part.startswith(".") for part in relative.parts
    )


@dataclass(frozen=True)
class PublishCheck:
    """What ``python -m training publish --dry-run`` finds in a folder: the files it would
    upload and every problem that stops it (none when the folder can be published)."""

    folder: Path
    family: str | None
    auxiliary: str | None  # the auxiliary model a folder holds, else None
    files: tuple[RepoFile, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_publishable(folder: Path) -> PublishCheck:
    """Every check publishing runs, without uploading: the run record names a family of the
    registry, config.json, safetensors weights (pickles are refused unopened) and the card
    exist, the card parses, the weights load strictly into the config, and a smoke sample
    is finite. One message per problem; a problem that hides others (no weights: nothing to
    load) is reported alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return PublishCheck(
            folder,
            None,
            None,
            (),
            (f"{folder} is not a folder: give the --out folder of `python -m training train`",),
        )
    problems: list[str] = []
    bundle, sample, family_name, auxiliary = _run_record_model(folder, problems)
    config = folder / CONFIG_NAME
    if not config.is_file():
        problems.append(
            f"{config} is missing: a published model needs the config.json its training run "
            "wrote beside the weights"
        )
    loadable = config.is_file()
    if not (folder / WEIGHTS_NAME).is_file():
        loadable = False
        try:
            refuse_pickles(folder)
        except CheckpointError as error:
            problems.append(str(error))
    card = folder / runfiles.CARD
    if not card.is_file():
        problems.append(
            f"{card} (the model card) is missing: `python -m training train` writes it, and the "
            "Hub shows it as the repo's page"
        )
    else:
        problems.extend(_card_problems(card))
    if family_name and not (folder / runfiles.EVALUATION).is_file():
        problems.append(
            f"{folder / runfiles.EVALUATION} is missing: publishing writes the card's metrics "
            "from it (`python -m training train` writes it)"
        )
    if loadable and bundle is not None:
        problems.extend(_load_problems(folder, bundle, sample))
    files = () if problems else tuple(_local_file(folder, n) for n in publishable_names(folder))
    return PublishCheck(folder, family_name, auxiliary, files, tuple(problems))


def _run_record_model(folder: Path, problems: list[str]):
    """The bundle and smoke sample of the model a run folder's training.json names."""
    from hub_models.registry import FAMILIES

    try:
        record = runfiles.read_json(folder, runfiles.TRAINING)
    except runfiles.RunFolderError as error:
        problems.append(str(error))
        return None, None, None, None
    if record is None:
        problems.append(
            f"{folder} has no {runfiles.TRAINING}: publish folders written by "
            "`python -m training train` (it records the family and the command)"
        )
        return None, None, None, None
    spec = FAMILIES.get(record.get("family", ""))
    if spec is None:
        problems.append(
            f"{folder / runfiles.TRAINING} names family {record.get('family')!r}; this gallery "
            f"has {', '.join(FAMILIES)}"
        )
        return None, None, None, None
    name = record.get("auxiliary")
    if not name:
        return spec.bundle, spec.sample, spec.name, None
    for model in spec.auxiliary:
        if model.name == name:
            return model.bundle, model.sample, spec.name, name
    problems.append(f"{spec.name} declares no auxiliary model named {name!r}")
    return None, None, spec.name, name


def _card_problems(card: Path) -> list[str]:
    from huggingface_hub import ModelCard

    try:
        ModelCard.load(card)
    except Exception as error:  # yaml and huggingface_hub raise several types for a bad header
        return [f"{card} is not a valid model card ({type(error).__name__}: {error})"]
    return []


def _load_problems(folder: Path, bundle: type[HubBundle], sample) -> list[str]:
    import torch

    try:
        model = bundle.load_folder(folder)
    except CheckpointError as error:
        return [str(error)]
    if not torch.isfinite(sample(model, 4, 0).float()).all():
        return ["the model's smoke sample is not finite; it cannot be published"]
    return []


# ----------------------------------------------------------------------------- a repo's files


@dataclass(frozen=True)
class RepoFile:
    """One file of a resolved repo: its name in the repo and the local copy it was read from."""

    name: str
    path: Path
    size: int
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _local_file(folder: Path, name: str) -> RepoFile:
    path = Path(folder) / name
    return RepoFile(name, path, path.stat().st_size, sha256_of(path))


def repo_file_names(where: Resolved) -> list[str]:
    """The files of a resolved repo at its revision: a bundled or local folder's publishable
    files; for the Hub, its file list at that commit, or, when the Hub cannot be asked, the
    files a published run folder holds (runfiles.SHIPPED)."""
    if where.source in ("bundled", "local"):
        return publishable_names(where.path)
    if not offline() and endpoint_reachable(endpoint()):
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError

        try:
            listed = HfApi(endpoint=endpoint()).list_repo_files(
                where.repo_id, revision=where.revision
            )
            return sorted(listed)
        except (HfHubHTTPError, OSError):
            pass  # the files fetch_file can still find are listed below
    return sorted(runfiles.SHIPPED)


def repo_files(where: Resolved) -> list[RepoFile]:
    """Every file of a resolved repo, fetched from its revision, with its size and sha256."""
    found = []
    for name in repo_file_names(where):
        path = fetch_file(where, name)
        if path is not None:
            found.append(RepoFile(name, path, path.stat().st_size, sha256_of(path)))
    return found


def repo_zip(where: Resolved, files: Sequence[RepoFile] | None = None) -> bytes:
    """The repo as a zip: ``NAME/<file>`` for each file, stored byte for byte (no compression,
    fixed timestamps: the same files give the same archive)."""
    import io
    import zipfile

    files = repo_files(where) if files is None else files
    root = where.repo_id.rstrip("/").split("/")[-1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for item in files:
            info = zipfile.ZipInfo(f"{root}/{item.name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, item.path.read_bytes())
    return buffer.getvalue()
