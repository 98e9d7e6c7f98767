"""hub.resolve: local folder, Hub, HF cache, bundled snapshot, and what it says about each.

No real Hub here: the endpoint is a closed port, a tiny HTTP server that answers 404 to
everything, or the probe is monkeypatched. The Hub round trip itself is tested against olah.
How long a fallback takes is measured by `python -m benchmarks loading`, not asserted here.
"""

import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import huggingface_hub
import pytest
import torch

from benchmarks.browser import free_port as closed_port  # free now, closed when used
from hub_models import hub, load
from hub_models.base import CheckpointError
from hub_models.registry import FAMILIES
from hub_models.toy2d import Toy2DConfig, Toy2DGAN, sample

REPO = "gan-gallery/test-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def hub_env(monkeypatch, tmp_path):
    """Unreachable endpoint on loopback, an empty HF cache, not offline."""
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def model() -> Toy2DGAN:
    """A model as training publishes it: weights already rounded to the storage dtype."""
    torch.manual_seed(0)
    model = Toy2DGAN(Toy2DConfig(**FAMILIES["toy2d"].make_trainer().presets["tiny"])).eval()
    model.round_to_storage()
    return model


@pytest.fixture
def bundled(model, tmp_path) -> Path:
    folder = tmp_path / "bundled" / "test-model"
    model.save_pretrained(folder)
    return folder


def fill_cache(model: Toy2DGAN, cache: Path, repo_id: str = REPO) -> Path:
    """The layout huggingface_hub's cache uses: refs/main -> snapshots/<commit>/files."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    model.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


class Counter:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float) -> bool:
        self.urls.append(url)
        return self.answer


class Spy:
    """Wraps the real probe: records each (url, timeout) and still probes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.probe = hub._probe

    def __call__(self, url: str, timeout: float) -> bool:
        self.calls.append((url, timeout))
        return self.probe(url, timeout)


@pytest.fixture
def no_downloads(monkeypatch) -> list[str]:
    """huggingface_hub's network calls, replaced by ones that record that they were made."""
    called: list[str] = []

    def refuse(name: str):
        def download(*args, **kwargs):
            called.append(name)
            raise AssertionError(f"huggingface_hub.{name} was called after a failed probe")

        return download

    for name in ("hf_hub_download", "snapshot_download"):
        monkeypatch.setattr(huggingface_hub, name, refuse(name))
    return called


def test_unreachable_endpoint_falls_back_to_bundled_after_one_bounded_probe(
    bundled, monkeypatch, no_downloads
):
    spy = Spy()
    monkeypatch.setattr(hub, "_probe", spy)
    where = hub.resolve(REPO, bundled)
    assert spy.calls == [(hub.endpoint(), hub.PROBE_SECONDS)]  # one probe, with its deadline
    assert no_downloads == []  # never huggingface_hub's retry loop
    assert where.source == "bundled"
    assert where.path == bundled
    assert "unreachable" in where.notice and "bundled" in where.notice
    assert where.revision.startswith("sha256:")
    assert where.label.startswith(f"bundled snapshot · {REPO} @ sha256:")


def test_offline_does_not_probe(bundled, monkeypatch):
    probe = Counter(True)
    monkeypatch.setattr(hub, "_probe", probe)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    where = hub.resolve(REPO, bundled)
    assert where.source == "bundled"
    assert "HF_HUB_OFFLINE" in where.notice
    assert probe.urls == []


def test_probe_is_cached_per_url(bundled, monkeypatch):
    probe = Counter(False)
    monkeypatch.setattr(hub, "_probe", probe)
    hub.resolve(REPO, bundled)
    hub.resolve(REPO, bundled)
    assert probe.urls == [hub.endpoint()]
    assert hub.endpoint_reachable("http://127.0.0.1:1") is False
    assert hub.endpoint_reachable("http://127.0.0.1:1") is False
    assert probe.urls == [hub.endpoint(), "http://127.0.0.1:1"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_probe_is_retried_once_its_answer_expires(monkeypatch):
    clock, probe = Clock(), Counter(False)
    monkeypatch.setattr(hub, "_clock", clock)
    monkeypatch.setattr(hub, "_probe", probe)
    url = "http://127.0.0.1:1"
    assert hub.endpoint_reachable(url) is False
    clock.now += hub.UNREACHABLE_SECONDS - 1
    assert hub.endpoint_reachable(url) is False
    assert len(probe.urls) == 1  # still remembered
    probe.answer = True  # the blip is over
    clock.now += 2
    assert hub.endpoint_reachable(url) is True
    assert len(probe.urls) == 2


def test_good_probe_answer_lasts_longer_then_expires(monkeypatch):
    clock, probe = Clock(), Counter(True)
    monkeypatch.setattr(hub, "_clock", clock)
    monkeypatch.setattr(hub, "_probe", probe)
    url = "http://127.0.0.1:1"
    assert hub.REACHABLE_SECONDS > hub.UNREACHABLE_SECONDS
    assert hub.endpoint_reachable(url) is True
    clock.now += hub.REACHABLE_SECONDS - 1
    assert hub.endpoint_reachable(url) is True
    assert len(probe.urls) == 1
    probe.answer = False
    clock.now += 2
    assert hub.endpoint_reachable(url) is False
    assert len(probe.urls) == 2
    hub.endpoint_reachable.cache_clear()  # what tests/conftest.py relies on
    assert hub.endpoint_reachable(url) is False
    assert len(probe.urls) == 3


def test_concurrent_callers_share_one_probe(monkeypatch):
    calls: list[str] = []

    def slow(url, timeout):
        calls.append(url)
        time.sleep(0.2)
        return True

    monkeypatch.setattr(hub, "_probe", slow)
    answers: list[bool] = []
    threads = [
        threading.Thread(target=lambda: answers.append(hub.endpoint_reachable("http://x")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [True] * 8
    assert calls == ["http://x"]


def test_probe_gives_up_on_a_hanging_probe(monkeypatch):
    def hang(url, timeout):
        time.sleep(5)
        return True

    monkeypatch.setattr(hub, "_probe", hang)
    monkeypatch.setattr(hub, "PROBE_SECONDS", 0.1)
    # The probe would answer True after 5 s; False means the deadline cut it short.
    assert hub.endpoint_reachable("http://10.255.255.1") is False


def test_real_probe_of_closed_and_open_ports():
    assert hub.endpoint_reachable(hub.endpoint()) is False
    with NotFoundServer() as url:
        assert hub.endpoint_reachable(url) is True  # any HTTP answer means a server is there


def test_local_folder_resolves_as_local(bundled, monkeypatch):
    probe = Counter(True)
    monkeypatch.setattr(hub, "_probe", probe)
    where = hub.resolve(str(bundled))
    assert where.source == "local" and where.path == bundled
    assert where.label.startswith("local folder · ")
    assert probe.urls == []


def test_cache_comes_before_bundled(model, bundled, tmp_path):
    snapshot = fill_cache(model, tmp_path / "hf-cache")
    where = hub.resolve(REPO, bundled)
    assert where.source == "cache"
    assert where.path == snapshot and where.revision == COMMIT
    assert "unreachable" in where.notice and "HF cache" in where.notice
    loaded, where = hub.load(Toy2DGAN, REPO, bundled)
    assert where.source == "cache"
    assert torch.equal(sample(loaded, 5, 0), sample(model, 5, 0))


def test_cache_without_the_weights_is_not_used(model, bundled, tmp_path):
    snapshot = fill_cache(model, tmp_path / "hf-cache")
    (snapshot / "model.safetensors").unlink()  # e.g. only the card was ever downloaded
    where = hub.resolve(REPO, bundled)
    assert where.source == "bundled"


def test_endpoint_that_cannot_serve_the_repo_falls_back(bundled, monkeypatch):
    with NotFoundServer() as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        where = hub.resolve(REPO, bundled)
    assert where.source == "bundled"
    assert f"could not serve {REPO}" in where.notice


def test_nothing_found_says_what_to_do(tmp_path):
    with pytest.raises(CheckpointError) as caught:
        hub.resolve(REPO, tmp_path / "no-snapshot")
    message = str(caught.value)
    assert REPO in message and "unreachable" in message
    assert str(tmp_path / "hf-cache") in message
    assert "python -m training train" in message


# ----------------------------------------------------------------------------- pinned revision


def test_pinned_revision_other_than_the_bundled_one_is_refused(bundled):
    bundled_at = hub.bundled_revision(bundled)
    with pytest.raises(CheckpointError) as caught:
        hub.resolve(REPO, bundled, revision=COMMIT)
    message = str(caught.value)
    assert f"pinned to revision {COMMIT}" in message
    assert f"bundled snapshot is revision {bundled_at}" in message
    assert "cannot be checked offline" in message


def test_pinned_revision_equal_to_the_bundled_one_is_accepted(bundled):
    bundled_at = hub.bundled_revision(bundled)
    where = hub.resolve(REPO, bundled, revision=bundled_at)
    assert where.source == "bundled" and where.revision == bundled_at


def test_pinned_revision_in_the_cache_comes_from_the_cache(model, bundled, tmp_path):
    snapshot = fill_cache(model, tmp_path / "hf-cache")
    where = hub.resolve(REPO, bundled, revision=COMMIT)
    assert where.source == "cache" and where.path == snapshot and where.revision == COMMIT


# ----------------------------------------------------------------------------- extra files


def test_fetch_file_from_bundled_and_local_folders(bundled):
    (bundled / "sample.png").write_bytes(b"png")
    for where in (hub.resolve(REPO, bundled), hub.resolve(str(bundled))):
        assert hub.fetch_file(where, "sample.png") == where.path / "sample.png"
        assert hub.fetch_file(where, "replay.safetensors") is None


def test_fetch_file_from_the_cache_while_offline(model, bundled, tmp_path, monkeypatch):
    snapshot = fill_cache(model, tmp_path / "hf-cache")
    (snapshot / "eval.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    where = hub.resolve(REPO, bundled)
    assert where.source == "cache"
    assert hub.fetch_file(where, "eval.json") == snapshot / "eval.json"
    assert hub.fetch_file(where, "sample.png") is None  # not cached, and the Hub is not asked


# ----------------------------------------------------------------------------- HF cache folder

HF_CACHE_VARIABLES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"HF_HUB_CACHE": "{tmp}/a", "HF_HOME": "{tmp}/b", "XDG_CACHE_HOME": "{tmp}/c"}, "a"),
        ({"HUGGINGFACE_HUB_CACHE": "{tmp}/legacy", "HF_HOME": "{tmp}/b"}, "legacy"),
        ({"HF_HOME": "{tmp}/b", "XDG_CACHE_HOME": "{tmp}/c"}, "b/hub"),
        ({"XDG_CACHE_HOME": "{tmp}/c"}, "c/huggingface/hub"),
        ({"HOME": "{tmp}/home"}, "home/.cache/huggingface/hub"),
        ({"HOME": "{tmp}/home", "HF_HUB_CACHE": "~/x"}, "home/x"),
    ],
    ids=["HF_HUB_CACHE", "legacy", "HF_HOME", "XDG_CACHE_HOME", "default", "tilde"],
)
def test_hub_cache_follows_huggingface_hub(variables, expected, tmp_path, monkeypatch):
    for name in HF_CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert hub.hub_cache() == tmp_path / expected
    # ...which is where huggingface_hub itself, imported in this environment, puts its cache.
    theirs = subprocess.run(
        [
            sys.executable,
            "-c",
            "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)",
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(theirs) == hub.hub_cache()


def test_load_gives_the_model_and_where_it_came_from(model, bundled):
    loaded, where = hub.load(Toy2DGAN, REPO, bundled)
    assert where.source == "bundled"
    assert torch.equal(sample(loaded, 5, 0), sample(model, 5, 0))


def test_top_level_load_knows_only_published_repos():
    with pytest.raises(KeyError, match="not a model this gallery publishes"):
        load("someone/else")
    assert all(m.snapshot.name == m.name for f in FAMILIES.values() for m in f.models)


class NotFoundServer:
    """An HTTP server on loopback that answers 404 to everything: reachable, but no repos."""

    def __enter__(self) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(b"{}")

            do_GET = do_HEAD = do_POST = answer

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
