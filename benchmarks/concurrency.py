"""Many visitors at once: a cold server, eight visitors opening their pages at the same moment,
then all interacting together; once on an idle machine and once with one core kept busy.

Beside it, the thread policy app.py sets (one torch thread): the lab's live training speed with
one and with two intra-op threads, idle and with the busy core.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.browser import (
    CHROMIUM,
    SCRIPT_DONE,
    chromium,
    page_headings,
    peak_rss_mb,
    serve,
    visit,
)

ROOT = Path(__file__).resolve().parent.parent
# every page, then the heavier ones again (URL paths are the registry's family names)
VISITORS = [
    "",
    "toy2d",
    "images",
    "ganomaly",
    "seqgan",
    "stackgan",
    "pose",
    "models",
    "toy2d",
    "images",
]
WAIT_MS = 120_000
Interaction = Callable[..., Awaitable[float]]

# ----------------------------------------------------------------------------- interactions
# Each returns the seconds from the user's action to its visible result, then waits (untimed)
# for the script run to finish, so that the next action starts on a settled page.


async def _settle(page) -> None:
    await page.locator(SCRIPT_DONE).wait_for(timeout=WAIT_MS)


async def _another_image(page) -> float:
    """Images: "Another one" draws the next seed; wait for the new image's caption."""
    seed = int(await page.get_by_label("Seed", exact=True).input_value())
    began = time.monotonic()
    await page.get_by_role("button", name="Another one", exact=True).click()
    await page.get_by_text(f"seed {seed + 1}", exact=True).first.wait_for(timeout=WAIT_MS)
    took = time.monotonic() - began
    await _settle(page)
    return took


async def _next_test_image(page) -> float:
    """GANomaly: the next test image; wait for its score row."""
    box = page.get_by_label("Test image", exact=True)
    index = int(await box.input_value()) + 1
    began = time.monotonic()
    await box.fill(str(index))
    await box.press("Enter")
    heading = page.get_by_text(re.compile(rf"^Test image {index}: "))
    await heading.first.wait_for(timeout=WAIT_MS)
    took = time.monotonic() - began
    await _settle(page)
    return took


async def _new_samples(page) -> float:
    """SeqGAN: the next seed; wait until the sampled sequences change."""
    box = page.get_by_label("Seed", exact=True)
    seed = int(await box.input_value()) + 1
    samples = page.locator("[data-testid='stHtml']").first
    before = await samples.inner_text()
    began = time.monotonic()
    await box.fill(str(seed))
    await box.press("Enter")
    await page.wait_for_function(
        "before => { const e = document.querySelector(\"[data-testid='stHtml']\");"
        " return e !== null && e.innerText !== before; }",
        arg=before,
        timeout=WAIT_MS,
    )
    took = time.monotonic() - began
    await _settle(page)
    return took


FIRST_IMAGE_SOURCE = (
    "() => { const i = document.querySelector(\"[data-testid='stImage'] img\");"
    " return i === null ? '' : i.src; }"
)


def _next_number(label: str) -> Interaction:
    """Raise the number box ``label`` by one; wait until the page's first picture changes."""

    async def interaction(page) -> float:
        box = page.get_by_label(label, exact=True)
        value = int(await box.input_value()) + 1
        before = await page.evaluate(FIRST_IMAGE_SOURCE)
        began = time.monotonic()
        await box.fill(str(value))
        await box.press("Enter")
        await page.wait_for_function(
            f"before => ({FIRST_IMAGE_SOURCE})() !== before", arg=before, timeout=WAIT_MS
        )
        took = time.monotonic() - began
        await _settle(page)
        return took

    return interaction


async def _train_live(page) -> None:
    await page.get_by_text("Train live", exact=True).click()
    # the button comes with the live mode's run; when it ends, the replay's charts are gone
    await page.get_by_role("button", name="G step", exact=True).wait_for(timeout=WAIT_MS)
    await _settle(page)
    await page.locator(".gtitle").first.wait_for(timeout=WAIT_MS)


STEP_SHOWN = (
    "() => Math.max(-1, ...[...document.querySelectorAll('.gtitle')].map(t => "
    "+((/step ([0-9,]+)/.exec(t.textContent) || [0, '-1'])[1].replace(/,/g, ''))))"
)


async def _generator_step(page) -> float:
    """Lab (live mode): one generator update; wait for the step counter in the chart title."""
    step = await page.evaluate(STEP_SHOWN)
    began = time.monotonic()
    await page.get_by_role("button", name="G step", exact=True).click()
    await page.wait_for_function(f"step => ({STEP_SHOWN})() > step", arg=step, timeout=WAIT_MS)
    took = time.monotonic() - began
    await _settle(page)
    return took


async def _come_back(page) -> float:
    """Home: the visitor reloads the gallery (a new session on a warm server)."""
    began = time.monotonic()
    await page.reload(timeout=WAIT_MS)
    await page.get_by_role("heading", name="GAN Gallery").first.wait_for(timeout=WAIT_MS)
    await _settle(page)
    return time.monotonic() - began


async def _reopen_models(page) -> float:
    """Models: the visitor reloads the table of every published model."""
    began = time.monotonic()
    await page.reload(timeout=WAIT_MS)
    await page.get_by_role("heading", name="Models").first.wait_for(timeout=WAIT_MS)
    await _settle(page)
    return time.monotonic() - began


INTERACTIONS: dict[str, tuple[str, Interaction, Callable[..., Awaitable[None]] | None]] = {
    "": ("reload the page", _come_back, None),
    "toy2d": ("Train live, then G step", _generator_step, _train_live),
    "images": ('"Another one"', _another_image, None),
    "ganomaly": ("next test image", _next_test_image, None),
    "seqgan": ("next seed", _new_samples, None),
    "stackgan": ("next seed", _next_number("Seed"), None),
    "pose": ("next test person", _next_number("Test person"), None),
    "models": ("reload the table", _reopen_models, None),
}


async def _interact(page, path: str, repeats: int) -> tuple[list[float], int]:
    """Seconds of each interaction on one visitor's page, and how many failed."""
    from playwright.async_api import Error as PlaywrightError

    _, action, setup = INTERACTIONS[path]
    seconds, failed = [], 0
    try:
        if setup is not None:
            await setup(page)
    except PlaywrightError:
        return [], repeats
    for _ in range(repeats):
        try:
            seconds.append(await action(page))
        except PlaywrightError:
            failed += 1
    return seconds, failed


async def _visitors(url: str, visitors: list[str], repeats: int) -> dict:
    headings = dict(page_headings())
    async with chromium() as browser:
        began = time.monotonic()
        opened = await asyncio.gather(*(visit(browser, url, p, headings[p]) for p in visitors))
        drawn = time.monotonic() - began
        pages = [page for _, page in opened]
        done = await asyncio.gather(
            *(_interact(page, path, repeats) for page, path in zip(pages, visitors, strict=True))
        )
    seen = [v for v, _ in opened]
    times = [t for ts, _ in done for t in ts]
    by_page: dict[str, list[float]] = {}
    for path, (ts, _) in zip(visitors, done, strict=True):
        by_page.setdefault(path or "home", []).extend(ts)
    return {
        "all_drawn_seconds": round(drawn, 2) if all(v.drawn_seconds for v in seen) else None,
        "drawn_seconds": {
            (v.path or "home") + f"#{i}": v.drawn_seconds and round(v.drawn_seconds, 2)
            for i, v in enumerate(seen)
        },
        "visitors_with_problems": [
            {"path": v.path, "exceptions": v.exceptions, "dialogs": v.dialogs, "sidebar": v.sidebar}
            for v in seen
            if not v.ok
        ],
        "interactions": len(times),
        "interaction_failures": sum(f for _, f in done),
        "interaction_ms_median": _ms(statistics.median(times)) if times else None,
        "interaction_ms_p95": _ms(_p95(times)) if times else None,
        "interaction_ms_median_by_page": {
            p: _ms(statistics.median(t)) for p, t in by_page.items() if t
        },
    }


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


# ----------------------------------------------------------------------------- load


@contextmanager
def busy_core(busy: bool) -> Iterator[bool]:
    """Another process spinning on core 0 (pinned where the OS allows); yields whether pinned."""
    if not busy:
        yield False
        return
    pinned = hasattr(os, "sched_setaffinity") and 0 in os.sched_getaffinity(0)
    code = f"import os\nif {pinned}: os.sched_setaffinity(0, {{0}})\nwhile True: pass\n"
    spinner = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.2)
        yield pinned
    finally:
        spinner.kill()
        spinner.wait()


def _server_run(visitors: list[str], repeats: int, busy: bool) -> dict:
    with busy_core(busy) as pinned, tempfile.TemporaryDirectory() as cache:
        load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
        began = time.monotonic()
        with serve(Path(cache), timeout=120) as server:
            healthy = time.monotonic() - began
            result = asyncio.run(_visitors(server.url, visitors, repeats))
            peak = peak_rss_mb(server.pid)
    return {
        "busy_core": busy,
        "busy_core_pinned": pinned,
        "load_average_before": load,  # 1-minute load as the run starts: other work here
        "server_healthy_seconds": round(healthy, 2),
        **result,
        "server_peak_rss_mb": peak,
    }


LAB_SPEED = """
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from gallery import toy2d_lab as lab
from hub_models import toy2d
run = lab.new_run(toy2d.Toy2DConfig(target="ring"), toy2d.builtin_target("ring"))
lab.advance(run, 20)  # warm-up
began, steps = time.perf_counter(), 0
while time.perf_counter() - began < float(sys.argv[2]):
    lab.advance(run, 10)
    steps += 10
print(json.dumps(steps / (time.perf_counter() - began)))
"""


def lab_speed(threads: int, busy: bool, seconds: float) -> float:
    """The lab's live training (default widths), iterations per second, in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    with busy_core(busy):
        out = subprocess.run(
            [sys.executable, "-c", LAB_SPEED, str(threads), str(seconds)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    return round(json.loads(out.stdout.strip().splitlines()[-1]), 1)


def thread_policy(rounds: int, seconds: float) -> dict:
    """Lab training speed with one and with two torch threads, idle and with the busy core.

    The four settings take turns, ``rounds`` times, so that other work on the machine meets
    them alike; each cell is the median of its rounds.
    """
    cells: dict[tuple[int, bool], list[float]] = {
        (threads, busy): [] for threads in (1, 2) for busy in (False, True)
    }
    for _ in range(rounds):
        for (threads, busy), speeds in cells.items():
            speeds.append(lab_speed(threads, busy, seconds))
    out: dict[str, dict[str, float]] = {}
    for (threads, busy), speeds in cells.items():
        name = f"{threads}_thread{'s' if threads > 1 else ''}"
        out.setdefault(name, {})["loaded" if busy else "idle"] = statistics.median(speeds)
    return out


# ----------------------------------------------------------------------------- report


def run(quick: bool = False, verbose: bool = True) -> dict:
    """Idle and one-busy-core runs side by side, each on a fresh (cold) server."""
    if not CHROMIUM.exists():
        return {"note": f"{CHROMIUM} not installed: nothing measured"}
    visitors = list(dict.fromkeys(VISITORS)) if quick else VISITORS  # quick: each page once
    repeats = 2 if quick else 5
    runs = {}
    for name, busy in (("idle", False), ("loaded", True)):
        if verbose:
            print(f"  {len(visitors)} visitors, {name} …", file=sys.stderr)
        runs[name] = _server_run(visitors, repeats, busy)
    idle, loaded = runs["idle"], runs["loaded"]
    ratios = {}
    for key in ("all_drawn_seconds", "interaction_ms_median", "interaction_ms_p95"):
        if idle[key] and loaded[key]:
            ratios[key] = round(loaded[key] / idle[key], 2)
    if verbose:
        print("  lab training speed by thread count …", file=sys.stderr)
    threads = thread_policy(rounds=1 if quick else 3, seconds=1.0 if quick else 2.0)
    return {
        "quick": quick,
        "cpus": os.cpu_count(),
        "visitors": [p or "home" for p in visitors],
        "interactions_per_visitor": repeats,
        "interaction": {p or "home": what for p, (what, _, _) in INTERACTIONS.items()},
        "idle": idle,
        "loaded": loaded,
        "loaded_over_idle": ratios,
        "lab_iterations_per_second": threads,
        "note": "loaded: another process spins on one core (pinned) from before the server "
        "starts; interaction = user action -> its visible result; peak RSS = VmHWM of the "
        "streamlit process",
    }
