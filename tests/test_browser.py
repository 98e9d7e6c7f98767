"""Real-browser flows: Debian's chromium (via Playwright) against `streamlit run` on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.browser import CHROMIUM, SCRIPT_DONE, browser_page, page_headings, serve_app

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with serve_app(tmp_path_factory.mktemp("hf-cache")) as url:
        yield url


PAGES = page_headings()


def test_every_page_renders_its_main_content(app_url):
    with browser_page() as page:
        for path, heading in PAGES:
            page.goto(f"{app_url}/{path}")
            page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)  # let charts and late elements settle
            assert page.locator("[data-testid='stException']").count() == 0, path
            assert page.locator("[data-testid='stMainBlockContainer']").is_visible()


def test_lab_replay_and_live_training_in_the_browser(app_url):
    with browser_page(height=1400) as page:
        page.goto(f"{app_url}/toy2d")
        page.get_by_role("heading", name="2D mode-collapse lab").wait_for(timeout=60_000)
        # replay: two animated plotly charts with their play buttons
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        assert page.get_by_text("Play", exact=True).count() >= 2
        # live: switch mode, press Play, and see the step counter (chart title or caption) advance
        page.get_by_text("Train live", exact=True).click()
        page.get_by_role("button", name="G step", exact=True).wait_for(timeout=60_000)
        page.locator(SCRIPT_DONE).wait_for(timeout=60_000)  # the replay's charts are gone
        page.get_by_text("Play", exact=True).first.click()
        # While playing, the page draws the worker's pictures, each stamped with its step.
        page.wait_for_function(
            "() => [...document.querySelectorAll('img[data-lab-step]')]"
            ".some(img => Number(img.dataset.labStep) > 0)",
            timeout=60_000,
        )
        assert page.locator("[data-testid='stException']").count() == 0
