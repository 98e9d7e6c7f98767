"""Serving the app and driving Debian's chromium with Playwright (never `playwright install`).

Shared by the browser tests and the start-up and concurrency benchmarks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
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
# The app root says whether a script run is in progress ("initial", "running", "notRunning").
SCRIPT_DONE = "[data-testid='stApp'][data-test-script-state='notRunning']"
EXCEPTION = "[data-testid='stException']"


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


@dataclass(frozen=True)
class AppServer:
    url: str
    pid: int


@contextmanager
def serve_app(hf_cache: Path, timeout: float = 60) -> Iterator[str]:
    """`streamlit run app.py` on 127.0.0.1, offline on the bundled snapshots; yields its URL
    once healthy."""
    with serve(hf_cache, timeout) as server:
        yield server.url


@contextmanager
def serve(
    hf_cache: Path,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[AppServer]:
    """As serve_app, with the server's process id; ``env`` adds to its environment and
    ``log`` keeps what the server prints."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | (env or {})
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hf_cache), HF_HUB_DISABLE_TELEMETRY="1")
    log_file = open(log, "w") if log else None  # noqa: SIM115 (closed when the server stops)
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
        stdout=log_file or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_http(f"{url}/_stcore/health", timeout):
            raise RuntimeError(f"streamlit did not become healthy within {timeout:.0f} s")
        yield AppServer(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_file is not None:
            log_file.close()


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


def page_headings() -> list[tuple[str, str]]:
    """(URL path, heading) of the home page, every family's page (from the registry) and the
    Models page."""
    from hub_models.registry import FAMILIES

    families = [(f.name, f.title) for f in FAMILIES.values()]
    return [("", "GAN Gallery"), *families, ("models", "Models")]


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (Linux VmHWM); elsewhere psutil's current RSS."""
    status = Path(f"/proc/{pid}/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


# ----------------------------------------------------------------------------- many visitors


@asynccontextmanager
async def chromium() -> AsyncIterator:
    """One headless chromium for many visitors (async Playwright: one browser context each)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Visit:
    """What one visitor saw when the page first finished drawing."""

    path: str
    heading: str
    drawn_seconds: float | None  # goto -> heading and sidebar shown, run finished; None: never
    exceptions: list[str] = field(default_factory=list)  # texts of st.exception boxes
    dialogs: list[str] = field(default_factory=list)  # e.g. Streamlit's "Page not found"
    sidebar: bool = False  # app.py's shared sidebar is there (its "Global seed" input)

    @property
    def ok(self) -> bool:
        return (
            self.drawn_seconds is not None
            and not self.exceptions
            and not self.dialogs
            and self.sidebar
        )


async def visit(browser, url: str, path: str, heading: str, timeout: float = 120):
    """A new visitor (own browser context, so own session) opens ``url/path``.

    Returns (Visit, page) once the heading and the shared sidebar show and the script run has
    finished, or when ``timeout`` runs out; the page stays open for more interaction.
    """
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    began = time.monotonic()
    result = Visit(path, heading, drawn_seconds=None)

    def left_ms() -> float:
        return max(1.0, timeout - (time.monotonic() - began)) * 1000

    title = page.get_by_role("heading", name=heading)
    try:
        await page.goto(f"{url}/{path}", timeout=left_ms())
        await title.or_(page.locator(EXCEPTION)).first.wait_for(timeout=left_ms())
        # the home page's sidebar can come with a second run, just after the first finished
        await page.get_by_text("Global seed", exact=True).wait_for(timeout=left_ms())
        result.sidebar = True
        await page.locator(SCRIPT_DONE).wait_for(timeout=left_ms())
        if await title.count():
            result.drawn_seconds = time.monotonic() - began
    except PlaywrightTimeout:
        pass
    result.exceptions = await page.locator(EXCEPTION).all_inner_texts()
    result.dialogs = await page.get_by_role("dialog").all_inner_texts()
    return result, page


def screenshots(folder: Path) -> list[Path]:
    """Full-page screenshots of the home page and every demo page (for the README)."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    pages = [(path or "home", path, heading) for path, heading in page_headings()]
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
