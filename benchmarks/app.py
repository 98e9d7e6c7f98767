"""App start-up and model-loading benchmarks (each step in a fresh process, as a user meets it)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.browser import CHROMIUM, free_port, serve_app, wait_for_text

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


def startup(quick: bool = False, verbose: bool = True) -> dict:
    """Cold start: `streamlit run app.py` → server healthy → home page drawn in chromium."""
    runs = 1 if quick else 3
    server, drawn = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            began = time.monotonic()
            with serve_app(Path(cache)) as url:
                server.append(time.monotonic() - began)
                if CHROMIUM.exists():
                    wait_for_text(f"{url}/", "GAN Gallery", timeout=60)
                    drawn.append(time.monotonic() - began)
    result = {"server_healthy_seconds": round(statistics.median(server), 3), "runs": runs}
    if drawn:
        result["home_drawn_seconds"] = round(statistics.median(drawn), 3)
        result["drawn_over_healthy"] = round(
            result["home_drawn_seconds"] / result["server_healthy_seconds"], 2
        )
    else:
        result["home_drawn_seconds"] = None
        result["note"] = f"{CHROMIUM} not installed: page drawing not measured"
    return result


LOAD_SNIPPET = """
import json, sys, time
began = time.perf_counter()
from hub_models import load, hub
import huggingface_hub, torch
imported = time.perf_counter()
model, where = load(sys.argv[1])
done = time.perf_counter()
print(json.dumps({"import_seconds": imported - began, "seconds": done - imported,
                  "source": where.source}))
"""


def _timed_load(repo_id: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_SNIPPET, repo_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def loading(quick: bool = False, verbose: bool = True) -> dict:
    """Per family: a fresh process resolving and loading its featured model from each source.

    bundled: HF_HUB_OFFLINE=1 and an empty cache; bundled_after_failed_probe: HF_ENDPOINT at
    a closed loopback port, so the reachability probe fails first; hub: a loopback
    Hub-compatible server (tests/hub_server.py) with an empty cache; cache: HF_HUB_OFFLINE=1
    with the cache the hub run filled. Imports are timed apart: the ratios compare resolve +
    strict load alone.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from hub_server import HubServer

    from hub_models import hub
    from hub_models.registry import FAMILIES

    repeats = 1 if quick else 3
    results = {}
    with tempfile.TemporaryDirectory() as tmp, HubServer(Path(tmp) / "server") as server:
        for family in FAMILIES.values():
            published = family.featured_model
            cache = str(Path(tmp) / f"cache-{family.name}")
            hub_env = _env(HF_ENDPOINT=server.url, HF_TOKEN="hf_benchmark", HF_HUB_CACHE=cache)
            previous = dict(os.environ)
            os.environ.update(hub_env)
            try:
                hub.publish(published.snapshot, published.repo_id)
            finally:
                os.environ.clear()
                os.environ.update(previous)
            timings: dict[str, list[float]] = {
                "bundled": [],
                "bundled_after_failed_probe": [],
                "hub": [],
                "cache": [],
            }
            imports: list[float] = []
            for _ in range(repeats):
                empty = str(Path(tempfile.mkdtemp(dir=tmp)))
                got = _timed_load(published.repo_id, _env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=empty))
                timings["bundled"].append(got["seconds"])
                imports.append(got["import_seconds"])
                down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
                got = _timed_load(published.repo_id, _env(HF_ENDPOINT=down, HF_HUB_CACHE=empty))
                assert got["source"] == "bundled", got
                timings["bundled_after_failed_probe"].append(got["seconds"])
                fresh = str(Path(tempfile.mkdtemp(dir=tmp)))
                got = _timed_load(published.repo_id, {**hub_env, "HF_HUB_CACHE": fresh})
                assert got["source"] == "hub", got
                timings["hub"].append(got["seconds"])
                got = _timed_load(published.repo_id, _env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=fresh))
                assert got["source"] == "cache", got
                timings["cache"].append(got["seconds"])
            medians = {k: round(statistics.median(v), 3) for k, v in timings.items()}
            results[family.name] = {
                "model": published.repo_id,
                "import_seconds": round(statistics.median(imports), 3),
                **{f"{k}_seconds": v for k, v in medians.items()},
                "cache_over_bundled": round(medians["cache"] / medians["bundled"], 2),
                "hub_over_bundled": round(medians["hub"] / medians["bundled"], 2),
            }
    return {
        "repeats": repeats,
        "per_family": results,
        "note": "fresh process per load; seconds = resolve + strict load after imports; "
        "hub = a Hub-compatible server on loopback",
    }
