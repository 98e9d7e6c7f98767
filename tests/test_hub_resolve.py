"""hub.resolve: local folder, Hub, HF cache, bundled snapshot, and what it says about each.

No real Hub here: the endpoint is a closed port, a tiny HTTP server that answers 404 to
everything, or the probe is monkeypatched. The Hub round trip itself is tested against olah.
"""

import http.server
import threading
import time
from pathlib import Path

import pytest
import torch

from benchmarks.browser import free_port as closed_port  # free now, closed when used
from hub_models import hub, load
from hub_models.base import CheckpointError
from hub_models.registry import FAMILIES
from hub_models.toy2d import Toy2DConfig, Toy2DGAN, sample
from training import trainers

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
    torch.manual_seed(0)
    return Toy2DGAN(Toy2DConfig(**trainers()["toy2d"].presets["tiny"])).eval()


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


def test_unreachable_endpoint_falls_back_to_bundled_quickly(bundled):
    began = time.monotonic()
    where = hub.resolve(REPO, bundled)
    took = time.monotonic() - began
    assert took < 3, f"resolve sat {took:.1f} s on an unreachable endpoint"  # spec bound
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
