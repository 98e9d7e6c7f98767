"""A first visitor's walk in chromium: every page and every tab of it, on a cold server.

Screenshots go to docs/walk/; the result lists each exception a page showed and each error
line the server wrote to its log. `python -m benchmarks walk` (a check more than a timing,
kept here beside the other browser runs).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from benchmarks.browser import (
    CHROMIUM,
    EXCEPTION,
    ROOT,
    SCRIPT_DONE,
    browser_page,
    page_headings,
    serve,
)

OUT = ROOT / "docs" / "walk"
SERVER_ERRORS = re.compile(r"Traceback|Error|Exception")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "home"


def run(quick: bool = False, verbose: bool = True, out: Path = OUT) -> dict:
    if not CHROMIUM.exists():
        return {"note": f"{CHROMIUM} not installed: the walk needs chromium"}
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    shown, shots = [], []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with serve(Path(tmp) / "hf-cache", log=log) as server, browser_page(height=1100) as page:
            for path, heading in page_headings():
                page.goto(f"{server.url}/{path}")
                page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)
                page.locator(SCRIPT_DONE).wait_for(timeout=120_000)
                tabs = page.get_by_role("tab")
                names = [tabs.nth(i).inner_text() for i in range(tabs.count())] or [""]
                for index, name in enumerate(names):
                    if name:
                        tabs.nth(index).click()
                    page.wait_for_timeout(1500 if quick else 3000)
                    page.locator(SCRIPT_DONE).wait_for(timeout=120_000)
                    file = out / f"{_slug(path)}{'-' + _slug(name) if name else ''}.png"
                    page.screenshot(path=str(file), full_page=True)
                    shots.append(str(file.relative_to(ROOT)))
                    for error in page.locator(EXCEPTION).all_inner_texts():
                        shown.append({"page": path or "home", "tab": name, "exception": error})
                    if verbose:
                        print(f"/{path} {name}: {file.name}", flush=True)
        server_errors = [
            line for line in log.read_text(errors="replace").splitlines()
            if SERVER_ERRORS.search(line)
        ]  # fmt: skip
    return {
        "pages": len(page_headings()),
        "screenshots": shots,
        "page_exceptions": shown,
        "server_log_errors": server_errors,
        "clean": not shown and not server_errors,
        "seconds": round(time.perf_counter() - began, 1),
    }
