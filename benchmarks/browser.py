"""Serving the app and driving Debian's chromium with Playwright (never `playwright install`).

Shared by the browser tests and the start-up benchmark.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/lib/chromium/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def serve_app(hf_cache: Path, timeout: float = 60) -> Iterator[str]:
    """`streamlit run app.py` on 127.0.0.1, offline on the bundled snapshots; yields its URL
    once healthy."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hf_cache), HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_http(f"{url}/_stcore/health", timeout):
            raise RuntimeError(f"streamlit did not become healthy within {timeout:.0f} s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def wait_for_text(url: str, text: str, timeout: float = 60) -> None:
    """Open ``url`` and return once ``text`` is visible on the page."""
    with browser_page() as page:
        page.goto(url, timeout=timeout * 1000)
        page.get_by_text(text, exact=False).first.wait_for(timeout=timeout * 1000)


def screenshots(folder: Path) -> list[Path]:
    """Full-page screenshots of the home page and every demo page (for the README)."""
    import tempfile

    from hub_models.registry import FAMILIES

    folder.mkdir(parents=True, exist_ok=True)
    pages = [("home", "", "GAN Gallery")]
    pages += [(f.name, f.name, f.title) for f in FAMILIES.values()]
    written = []
    with (
        tempfile.TemporaryDirectory() as cache,
        serve_app(Path(cache)) as url,
        browser_page(height=900) as page,
    ):
        for name, path, heading in pages:
            page.goto(f"{url}/{path}")
            page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
            page.wait_for_timeout(4000)  # images and charts finish drawing
            target = folder / f"{name}.png"
            page.screenshot(path=str(target), full_page=name == "home")
            written.append(target)
    return written


if __name__ == "__main__":
    for path in screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")):
        print(path)
