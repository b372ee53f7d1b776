"""Jobs in the studio, in a real browser (issues 22 and 25): a long action shows its step,
image and live preview, Stop cancels the backend's jobs and says what ComfyUI confirmed,
a job started in one page is visible in another's History, and the studio warms the GPU
on intent: once on open, not again within the window, never with RYLA_STUDIO_PREWARM=0.

A job is held mid-run with the double's `hold_next("SaveImage")`: its sampler steps (and
their previews) have run, its save cannot be interrupted until the test releases it, and
the next job waits behind it in ComfyUI's queue (the double runs one job at a time)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend_fixtures import BackendServer
from tests.studio.conftest import Studio, running_studio
from tests.studio.test_browser import open_tab
from tests.studio.test_creator_browser import browser, open_page, wait_until  # noqa: F401 (fixture)
from ui.studio.warm import PrewarmSettings

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


class WarmCounter:
    """ASGI middleware on the test's backend: counts POST /warm as the backend hears it."""

    def __init__(self, app) -> None:  # noqa: ANN001 - an ASGI app
        self.app = app

    count = 0
    lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/warm":
            with WarmCounter.lock:
                WarmCounter.count += 1
        await self.app(scope, receive, send)


@pytest.fixture
def slow_steps(backend_server_session) -> Iterator[None]:
    """Sampler steps the page can see: the backend keeps only the latest progress of a
    job for its subscribers, so instant steps would be coalesced into the next node's."""
    double = backend_server_session.double
    double.step_delay = 0.3
    try:
        yield
    finally:
        double.step_delay = 0.0


@pytest.fixture
def counted_backend(comfyui_double, tmp_path: Path) -> Iterator[BackendServer]:
    server = BackendServer(comfyui_double, tmp_path / "backend")
    server.app.add_middleware(WarmCounter)  # before the first request builds the stack
    WarmCounter.count = 0
    server.start()
    try:
        yield server
    finally:
        server.stop()


def hold_the_save(double) -> tuple[threading.Event, threading.Event]:
    """(release, reached): the next job's SaveImage runs until `release` is set;
    `reached` is set once the node waits on it, past the point where ComfyUI (and the
    double, at the node's start) would still honour an interrupt."""
    release, reached = double.hold_next("SaveImage"), threading.Event()
    wait = release.wait

    def waiting(timeout: float | None = None) -> bool:
        reached.set()
        return wait(timeout)

    release.wait = waiting  # the double's executor calls it as the node runs
    return release, reached


# -- progress, preview, Stop ------------------------------------------------------------------


def test_progress_preview_and_stop_say_what_comfyui_confirmed(browser, studio: Studio,  # noqa: F811
                                                              backend_server_session,
                                                              slow_steps) -> None:
    double = backend_server_session.double
    page = open_page(browser, studio.url)
    open_tab(page, "Flux Dev")
    page.get_by_label("Schnell").check()
    page.fill("#flux-prompt textarea", "a lighthouse held at its save")
    page.locator("#flux-batch input[type=number]").fill("2")
    page.locator("#flux-batch input[type=number]").press("Enter")
    release, reached = hold_the_save(double)
    before = {job["id"] for job in studio.client.jobs(limit=50)}
    try:
        page.click("#flux-generate")
        progress = page.locator("#flux-progress")
        # The sampler's steps ran (the save is held): step n of N, image 1 of 2, a preview.
        sync_api.expect(progress).to_contain_text(re.compile(r"Image 1 of 2 · step \d+ of \d+"))
        sync_api.expect(progress.locator("img.ryla-preview")).to_be_visible()
        sync_api.expect(progress).to_contain_text("ETA ~")
        ours = [job for job in studio.client.jobs(limit=50) if job["id"] not in before]
        assert len(ours) == 2  # the whole batch is on the backend, whatever the page does
        wait_until(reached.is_set)
        page.click("#flux-stop")
        # Stop asked the backend: the queued second job is cancelled as soon as ComfyUI
        # confirms; the first, whose save cannot be interrupted, is still running.
        second, first = sorted(ours, key=lambda job: job["created_at"], reverse=True)
        wait_until(lambda: studio.client.job(second["id"])["status"] == "cancelled")
        assert studio.client.job(first["id"])["status"] == "running"
    finally:
        release.set()
    wait_until(lambda: studio.client.job(first["id"])["status"] == "succeeded")
    sync_api.expect(progress).to_contain_text("What ComfyUI confirmed")
    sync_api.expect(progress).to_contain_text("image 2: cancelled")
    sync_api.expect(progress).to_contain_text("image 1: finished anyway, kept")
    # The image that was made anyway is kept in History, which says the run was stopped.
    wait_until(lambda: studio.history.items()[0].state == "stopped")
    item = studio.history.items()[0]
    assert len(item.files) == 1 and item.params["prompt"] == "a lighthouse held at its save"
    assert {job["status"] for job in item.jobs} == {"succeeded", "cancelled"}
    page.close()


def test_a_sheet_in_one_page_is_live_in_another_and_says_it_was_stopped(
        browser, studio: Studio, backend_server_session, faces: Path,  # noqa: F811
        slow_steps) -> None:
    double = backend_server_session.double
    creator = open_page(browser, studio.url)
    watcher = open_page(browser, studio.url)
    open_tab(watcher, "History")
    open_tab(creator, "Character sheet")
    creator.set_input_files("#sheet-reference input[type=file]", str(faces / "obama_1.jpg"))
    creator.wait_for_selector("#sheet-reference img")
    creator.get_by_label("PuLID (Flux)").check()
    creator.fill("#sheet-prompts textarea", "a watched portrait\na watched profile\na watched smile")
    release, reached = hold_the_save(double)
    try:
        creator.click("#sheet-generate")
        sync_api.expect(creator.locator("#sheet-progress")).to_contain_text(re.compile(r"step \d+ of \d+"))
        # The other page sees the run and its jobs without a click: History is live.
        sync_api.expect(watcher.locator("#history-table")).to_contain_text("running")
        sync_api.expect(watcher.locator("#history-jobs")).to_contain_text("/flux-instantid")
        sync_api.expect(watcher.locator("#history-jobs")).to_contain_text("running")
        wait_until(reached.is_set)
        creator.click("#sheet-stop")
        item = studio.history.items()[0]
        wait_until(lambda: sum(j["status"] == "cancelled"
                               for j in studio.history.get(item.id).jobs) == 2)
    finally:
        release.set()
    sync_api.expect(creator.locator("#sheet-progress")).to_contain_text("finished anyway, kept")
    # The stopped sheet keeps the image that was made, and History says it was stopped.
    wait_until(lambda: studio.history.get(item.id).state == "stopped")
    stopped = studio.history.get(item.id)
    assert len(stopped.files) == 1
    sync_api.expect(watcher.locator("#history-table")).to_contain_text("stopped")
    choice = watcher.locator("#history-item input")
    choice.fill(item.id)
    choice.press("Enter")
    sync_api.expect(watcher.locator("#history-params")).to_contain_text('"stopped"')
    sync_api.expect(watcher.locator("#history-gallery img")).to_have_count(2)  # reference + 1
    creator.close()
    watcher.close()


def type_and_make_an_image(page, prompt: str) -> None:
    """Type a prompt key by key, as a creator does, and wait for its image."""
    open_tab(page, "Flux Dev")
    page.get_by_label("Schnell").check()
    page.locator("#flux-prompt textarea").press_sequentially(prompt)
    page.click("#flux-generate")
    sync_api.expect(page.locator("#flux-progress")).to_contain_text("Done: 1 of 1")


# -- warm on intent -------------------------------------------------------------------------


def test_warm_once_on_open_and_not_again_within_the_window(browser, counted_backend,  # noqa: F811
                                                            tmp_path: Path) -> None:
    with running_studio(counted_backend.url, tmp_path / "studio",
                        prewarm=PrewarmSettings(enabled=True, window_s=300)) as studio:
        page = open_page(browser, studio.url)
        wait_until(lambda: WarmCounter.count == 1)
        sync_api.expect(page.locator("#gpu-status")).to_contain_text("GPU ready")
        # Typing a prompt within the window asks nothing more; an image made after it shows
        # the page went on working (its requests came after the typing's).
        type_and_make_an_image(page, "a quiet harbour")
        assert WarmCounter.count == 1
        # A second page is a second creator: it asks once too.
        other = open_page(browser, studio.url)
        wait_until(lambda: WarmCounter.count == 2)
        page.close()
        other.close()


def test_typing_warms_again_once_the_window_has_passed(browser, counted_backend,  # noqa: F811
                                                       tmp_path: Path) -> None:
    with running_studio(counted_backend.url, tmp_path / "studio",
                        prewarm=PrewarmSettings(enabled=True, window_s=1)) as studio:
        page = open_page(browser, studio.url)
        wait_until(lambda: WarmCounter.count == 1)
        box = page.locator("#flux-prompt textarea")

        def typed_and_warmed() -> bool:
            box.press_sequentially("a")
            return WarmCounter.count >= 2

        wait_until(typed_and_warmed)
        page.close()


def test_no_warm_with_prewarm_off(browser, counted_backend, tmp_path: Path,  # noqa: F811
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYLA_STUDIO_PREWARM", "0")
    with running_studio(counted_backend.url, tmp_path / "studio") as studio:
        page = open_page(browser, studio.url)
        assert page.locator("#ryla-warm-trigger").count() == 0
        type_and_make_an_image(page, "a cold harbour")
        assert WarmCounter.count == 0
        page.close()
