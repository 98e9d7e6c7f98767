"""The live lab's training worker without a browser: stepping, the speed cap, settings that keep
or restart a run, consistent snapshots, pausing, stopping, and leaving the process state alone.

Speed targets live in `python -m benchmarks toy2d-live`; nothing here asserts on wall time.
"""

from __future__ import annotations

import gc
import time

import pytest
import torch

from gallery import toy2d_lab as lab
from hub_models import toy2d

SMALL = toy2d.Toy2DConfig(g_width=16, d_width=16, g_depth=1, d_depth=1, batch_size=32)
RING = toy2d.builtin_target("ring")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def trainer(config: toy2d.Toy2DConfig = SMALL, clock: Clock | None = None) -> lab.Trainer:
    return lab.Trainer(config, RING, clock=clock or Clock())


def play(t: lab.Trainer, steps_per_second: float | None = None, **live) -> None:
    config = toy2d.Toy2DConfig(**{**SMALL.__dict__, **live})
    t.apply(lab.Settings.of(config, playing=True, steps_per_second=steps_per_second))


@pytest.fixture(autouse=True)
def _close_runs():
    yield
    lab.close_all()


# ----------------------------------------------------------------------------- the trainer


def test_a_paused_trainer_has_nothing_due_and_a_playing_one_steps():
    t = trainer()
    assert t.seconds_until_due() is None
    play(t)
    assert t.seconds_until_due() == 0.0
    for _ in range(3):
        t.step()
    assert t.run.step == 3 and t.updates == 6  # 1 D and 1 G update per step


def test_the_speed_cap_spaces_steps_and_does_not_burst_after_falling_behind():
    clock = Clock()
    t = trainer(clock=clock)
    play(t, steps_per_second=10)
    done = 0
    for _ in range(200):  # one simulated second, in 5 ms ticks
        if t.seconds_until_due() == 0:
            t.step()
            done += 1
        clock.now += 0.005
    assert done == 10
    assert t.seconds_until_due() == pytest.approx(0.0, abs=0.05)
    clock.now += 5.0  # the machine stalled for 5 s: the next second still gets ~10 steps
    t.step()
    caught_up = 0
    for _ in range(200):
        if t.seconds_until_due() == 0:
            t.step()
            caught_up += 1
        clock.now += 0.005
    assert caught_up <= 11


def test_uncapped_means_always_due_and_a_new_cap_applies_at_once():
    clock = Clock()
    t = trainer(clock=clock)
    play(t)
    t.step()
    t.step()
    assert t.seconds_until_due() == 0.0
    play(t, steps_per_second=2)
    t.step()
    assert t.seconds_until_due() == pytest.approx(0.5)
    assert t.run.step == 3


def test_live_settings_apply_to_the_running_model_without_restarting():
    t = trainer()
    play(t)
    t.step()
    weights = [p.clone() for p in t.run.model.parameters()]
    play(t, lr_g=3e-4, lr_d=1e-4, d_steps=2, batch_size=64)
    assert t.run.step == 1
    assert all(torch.equal(a, b) for a, b in zip(weights, t.run.model.parameters(), strict=True))
    assert t.run.optimizers["g"].param_groups[0]["lr"] == 3e-4
    assert t.run.optimizers["d"].param_groups[0]["lr"] == 1e-4
    assert t.run.model.config.d_steps == 2 and t.run.model.config.batch_size == 64
    t.step()
    assert t.updates == 2 + 3  # the second step made 2 D updates and 1 G update


def test_a_snapshot_is_consistent_and_reused_until_something_changes():
    t = trainer()
    play(t)
    for _ in range(4):
        t.step()
    t.apply(lab.Settings.of(SMALL, playing=False))  # pausing logs the step it stopped at
    first = t.snapshot(1)
    assert first.answers == 1 and first.step == first.view.step == 4
    assert first.history[-1]["step"] == 4 and not first.playing
    assert first.view.metrics["modes_total"] == 8
    again = t.snapshot(2)
    assert again.answers == 2 and again.view is first.view  # nothing changed: not redrawn
    t.update("g")
    after = t.snapshot(3)
    assert after.step == 5 and after.view is not first.view
    first.history[-1]["step"] = -1  # a snapshot's history is a copy
    assert t.run.history[-1]["step"] == 5


def test_a_snapshot_carries_a_picture_drawn_by_the_worker_when_asked():
    from io import BytesIO

    from PIL import Image

    t = trainer()
    play(t)
    for _ in range(3):
        t.step()
    assert t.snapshot(1).picture is None  # the paused page draws its own interactive figure
    spec = lab.PictureSpec(field=True, arrows=False, manifold=True, width=300)
    first = t.snapshot(2, spec)
    image = Image.open(BytesIO(first.picture))
    assert image.format == "JPEG" and image.width == 300 and image.height > 300
    assert t.snapshot(3, spec).picture is first.picture  # drawn once per state and kind
    t.step()
    assert t.snapshot(4, spec).picture != first.picture
    cloud = lab.Trainer(SMALL, toy2d.builtin_target("moons"), clock=Clock())
    assert cloud.snapshot(1, spec).picture  # no modes: no histogram, still a picture


def test_history_is_thinned_but_keeps_its_newest_entry(monkeypatch):
    monkeypatch.setattr(lab, "HISTORY_POINTS", 8)
    run = lab.new_run(SMALL, RING)
    for _ in range(20):
        lab.advance(run, 1)
    assert len(run.history) <= 8
    assert run.history[-1]["step"] == 20 and run.history[0]["step"] == 1


def test_new_runs_are_reproducible_without_reseeding_the_process():
    sn = toy2d.Toy2DConfig(**{**SMALL.__dict__, "spectral_norm": True})
    a, b = lab.new_run(sn, RING), lab.new_run(sn, RING)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    other = lab.new_run(toy2d.Toy2DConfig(**{**SMALL.__dict__, "seed": 1}), RING)
    assert not torch.equal(
        next(a.model.generator.parameters()), next(other.model.generator.parameters())
    )

    def process_draw_after_a_run_with_seed(seed: int) -> torch.Tensor:
        torch.manual_seed(123)
        lab.new_run(toy2d.Toy2DConfig(**{**SMALL.__dict__, "seed": seed}), RING)
        return torch.rand(4)

    # a run's seed never reaches the process-wide RNG (other visitors draw from it)
    assert torch.equal(process_draw_after_a_run_with_seed(0), process_draw_after_a_run_with_seed(7))


def test_restart_reasons_name_only_changes_that_need_a_new_run():
    def changed(**fields) -> list[str]:
        wanted = toy2d.Toy2DConfig(**{**SMALL.__dict__, **fields})
        return lab.restart_reasons(SMALL, RING, wanted, RING)

    assert changed(lr_g=1e-4, lr_d=3e-3, d_steps=3, batch_size=512) == []
    assert changed(objective="hinge") == ["objective"]
    assert changed(g_width=32, d_width=32) == ["width"]
    assert changed(pack=4, seed=3) == ["pack m", "seed"]
    grid = toy2d.builtin_target("grid")
    assert lab.restart_reasons(SMALL, RING, SMALL, grid) == ["target"]
    assert lab.restart_reasons(SMALL, RING, SMALL, None) == []  # no target yet: keep the run


# ----------------------------------------------------------------------------- the worker

ISOLATIONS = ["process", "thread"]


def wait_until(condition, timeout: float = 60.0, every: float = 0.05):
    """Poll ``condition`` until it holds (the test fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_live_run_plays_pauses_steps_and_closes(isolation):
    run = lab.LiveRun(SMALL, RING, isolation=isolation)
    first = run.latest()
    assert first.step == 0 and not first.playing and run.untouched
    run.configure(lab.Settings.of(SMALL, playing=True))
    wait_until(lambda: run.latest(fresh=True).step >= 3)
    playing = run.latest(fresh=True, picture=lab.PictureSpec(width=200))
    assert playing.playing and playing.picture[:2] == b"\xff\xd8"  # a JPEG
    run.configure(lab.Settings.of(SMALL, playing=False))
    paused = run.latest(fresh=True)
    assert not paused.playing and paused.steps_per_second == 0
    time.sleep(0.2)
    assert run.latest(fresh=True).step == paused.step  # a paused run does not step
    run.update("g")
    assert run.latest(fresh=True).step == paused.step + 1
    assert not run.untouched
    run.close()
    assert not run.alive
    with pytest.raises(lab.LiveRunError, match="stopped"):
        run.configure(lab.Settings.of(SMALL, playing=True))


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_live_settings_reach_the_worker_and_keep_the_run(isolation):
    run = lab.LiveRun(SMALL, RING, isolation=isolation)
    run.update("g")
    before = run.latest(fresh=True)
    live = toy2d.Toy2DConfig(**{**SMALL.__dict__, "lr_g": 3e-4, "batch_size": 64})
    run.configure(lab.Settings.of(live, playing=False, steps_per_second=30))
    after = run.latest(fresh=True)
    assert after.step == before.step == 1
    assert after.config.lr_g == 3e-4 and after.config.batch_size == 64


def test_the_newest_snapshot_comes_without_waiting_once_the_first_arrived():
    run = lab.LiveRun(SMALL, RING, isolation="thread")
    first = run.latest()
    run.configure(lab.Settings.of(SMALL, playing=True))
    # not fresh: returns what has arrived (maybe the first again) and asks for the next one
    wait_until(lambda: run.latest().answers > first.answers)
    assert run.latest().step >= 0


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_an_unwatched_run_pauses_then_closes(isolation):
    run = lab.LiveRun(SMALL, RING, isolation=isolation, pause_after=0.3, close_after=1.5)
    run.configure(lab.Settings.of(SMALL, playing=True))
    run.latest(fresh=True)
    time.sleep(0.8)  # no word from the page: the worker pauses itself
    assert not run.latest(fresh=True).playing
    wait_until(lambda: not run.alive, timeout=30)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_dropping_the_last_reference_stops_the_worker(isolation):
    run = lab.LiveRun(SMALL, RING, isolation=isolation)
    run.latest()
    worker = run._worker
    del run
    gc.collect()
    wait_until(lambda: not worker.is_alive(), timeout=30)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_failing_worker_says_why(isolation):
    run = lab.LiveRun(SMALL, RING, device="no-such-device", isolation=isolation)
    with pytest.raises(lab.LiveRunError, match="failed"):
        run.latest(timeout=60)


def test_the_worker_kind_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAN_GALLERY_LAB_WORKER", "thread")
    assert lab.default_isolation() == "thread"
    monkeypatch.setenv("GAN_GALLERY_LAB_WORKER", "fork-bomb")
    with pytest.raises(ValueError, match="process"):
        lab.default_isolation()
    monkeypatch.delenv("GAN_GALLERY_LAB_WORKER")
    assert lab.default_isolation() == "process"


# ----------------------------------------------------------------------------- in chromium


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from benchmarks.browser import CHROMIUM, serve_app

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with serve_app(tmp_path_factory.mktemp("hf-cache")) as url:
        yield url


@pytest.mark.browser
def test_in_chromium_a_playing_run_shows_pictures_of_advancing_steps(app_url):
    from benchmarks.browser import browser_page
    from benchmarks.toy2d import _wait_for_status

    shown = "[...document.querySelectorAll('img[data-lab-step]')]"
    with browser_page(width=1000, height=1600) as page:
        page.goto(f"{app_url}/toy2d")
        page.get_by_text("Train live", exact=True).click()
        _wait_for_status(page, "step 0 · paused")  # the live page, not the replay, is drawn
        page.get_by_text("Play", exact=True).first.click()
        page.wait_for_function(
            f"() => {shown}.some(i => i.complete && i.naturalWidth && +i.dataset.labStep > 0)",
            timeout=60_000,
        )
        first = page.evaluate(f"() => +{shown}[0].dataset.labStep")
        page.wait_for_function(f"() => +{shown}[0].dataset.labStep > {first}", timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0


@pytest.mark.browser
def test_in_chromium_replay_titles_fit_their_charts_at_1000_px(app_url):
    from benchmarks.browser import browser_page

    with browser_page(width=1000, height=1600) as page:
        page.goto(f"{app_url}/toy2d")
        page.locator(".js-plotly-plot .gtitle").nth(1).wait_for(timeout=60_000)
        overflow = page.evaluate(
            """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
                 const box = plot.getBoundingClientRect();
                 const title = plot.querySelector('.gtitle').getBoundingClientRect();
                 return title.right - box.right;
               })"""
        )
        assert len(overflow) == 2 and max(overflow) <= 0, overflow  # no title runs off
        assert page.locator(".js-plotly-plot .legend").count() == 0  # nothing over the titles
