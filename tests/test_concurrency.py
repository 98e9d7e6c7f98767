"""Many visitors at once on a cold server: every page renders for every one of them.

Each visitor is its own browser context (own cookies, so own Streamlit session), all in one
chromium, all opening their page at the same moment on a freshly started `streamlit run`.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from benchmarks.browser import CHROMIUM, chromium, page_headings, serve, visit


@pytest.fixture
def chromium_installed():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


async def open_all(url: str, pages: list[tuple[str, str]]):
    async with chromium() as browser:
        opened = await asyncio.gather(*(visit(browser, url, p, h, timeout=75) for p, h in pages))
        return [seen for seen, _ in opened]


@pytest.mark.browser
def test_cold_server_draws_every_page_for_concurrent_visitors(chromium_installed, tmp_path):
    # every page once, then the heavier pages again: 8 sessions start their first run together
    pages = page_headings()
    pages += [p for p in pages if p[0] in ("toy2d", "images")]
    with serve(tmp_path / "hf-cache") as server:
        seen = asyncio.run(open_all(server.url, pages))
    failed = [v for v in seen if not v.ok]
    assert not failed, "\n".join(
        f"/{v.path}: drawn after {v.drawn_seconds} s, "
        f"exceptions {[e.splitlines()[0] for e in v.exceptions]}, "
        f"dialogs {v.dialogs}, sidebar {v.sidebar}"
        for v in failed
    )


def test_concurrency_benchmark_visits_and_acts_on_every_page():
    from benchmarks.concurrency import INTERACTIONS, VISITORS

    paths = {path for path, _ in page_headings()}
    assert set(VISITORS) == paths == set(INTERACTIONS)
