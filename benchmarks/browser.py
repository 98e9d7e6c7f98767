"""Debian's chromium driven by Playwright (never `playwright install`): shared by tests and
benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
