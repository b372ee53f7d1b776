"""The studio as a creator finds it, in a real browser (issue 23): seeds exact through
reuse, references checked before any job, Review with a bad file, a field's error by that
field, and the demo banner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.studio.conftest import Studio, closed_port_url, running_studio
from tests.studio.test_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, open_tab

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    sync_api.expect.set_options(timeout=WAIT_MS)
    page.goto(url)
    page.wait_for_selector("#flux-generate")
    return page


@pytest.fixture(scope="module")
def page(browser, studio: Studio) -> Iterator:
    page = open_page(browser, studio.url)
    yield page
    page.close()


def wait_until(condition, timeout_s: float = WAIT_MS / 1000) -> None:
    """Poll a condition (the double's job list) until it holds."""
    give_up = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < give_up, "the condition never held"
        time.sleep(0.1)


def job_seeds(double, since: int = 0) -> list[int]:
    """The seed of every job the double ran from job number `since` on, in order (the
    backend's own record of it; the double is shared, so earlier jobs are left out by
    number, not by position in this list)."""
    return [node["inputs"]["seed"] for job in double.jobs[since:] for node in job.graph.values()
            if "seed" in node["inputs"] and isinstance(node["inputs"]["seed"], int)]


def test_seeds_are_exact_from_backend_to_table_and_back(page, backend_server_session) -> None:
    double = backend_server_session.double
    open_tab(page, "Flux Dev")
    page.get_by_label("Schnell").check()
    page.fill("#flux-prompt textarea", "a harbour at dawn")
    page.fill("#flux-seed textarea, #flux-seed input", "")
    before = len(double.jobs)
    page.click("#flux-generate")
    last = page.locator("#flux-last-seed textarea, #flux-last-seed input").first
    sync_api.expect(last).not_to_have_value("")
    shown = last.input_value()
    ran = job_seeds(double, before)
    assert ran and shown == str(ran[-1])  # exactly what ComfyUI was given
    assert page.locator("#flux-details").get_by_text(shown, exact=True).count() >= 1
    assert page.locator("#flux-gallery").get_by_text(f"seed {shown}").count() >= 1
    # Reuse last seed, then generate: the same seed reaches ComfyUI again.
    page.click("#flux-reuse")
    seed_box = page.locator("#flux-seed textarea, #flux-seed input").first
    sync_api.expect(seed_box).to_have_value(shown)
    before = len(double.jobs)
    page.click("#flux-generate")
    wait_until(lambda: len(double.jobs) > before and double.jobs[-1].graph)
    assert job_seeds(double, before) == [int(shown)]
    sync_api.expect(page.locator("#flux-last-seed textarea, #flux-last-seed input").first).to_have_value(shown)
    # "Use these settings again" brings the exact seed back too.
    seed_box.fill("")
    open_tab(page, "History")
    page.click("#history-refresh")
    sync_api.expect(page.locator("#history-table")).to_contain_text("a harbour at dawn")
    page.locator("#history-table").get_by_text("a harbour at dawn").filter(visible=True).first.click()
    page.click("#history-reuse")
    sync_api.expect(seed_box).to_have_value(shown)


def test_a_field_error_is_shown_by_its_field_and_nothing_runs(page, backend_server_session) -> None:
    double = backend_server_session.double
    open_tab(page, "Flux Dev")
    before = len(double.jobs)
    page.fill("#flux-prompt textarea", "a harbour at noon")
    page.locator("#flux-seed textarea, #flux-seed input").first.fill(str(2**53))
    page.click("#flux-generate")
    sync_api.expect(page.locator("#flux-seed")).to_contain_text("at most 9007199254740991")
    sync_api.expect(page.locator("#flux-notice")).to_contain_text("Check the marked settings")
    page.fill("#flux-prompt textarea", "   ")
    page.locator("#flux-seed textarea, #flux-seed input").first.fill("7")
    page.click("#flux-generate")
    sync_api.expect(page.locator("#flux-prompt")).to_contain_text("must not be blank")
    sync_api.expect(page.locator("#flux-seed")).not_to_contain_text("at most")
    assert "Value error" not in page.inner_text("#flux-prompt")
    # No red "Error" on outputs that were never tried; the earlier images stay.
    assert page.locator("#flux-gallery").get_by_text("Error", exact=True).count() == 0
    assert page.locator("#flux-gallery img").count() >= 1
    assert len(double.jobs) == before


@pytest.mark.parametrize("kind", ["no face", "not an image"])
def test_sheet_refuses_a_bad_reference_before_any_job(page, backend_server_session, tmp_path: Path,
                                                      kind: str) -> None:
    double = backend_server_session.double
    if kind == "no face":
        reference = tmp_path / "wall.png"
        Image.new("RGB", (400, 400), (190, 180, 170)).save(reference)
        expected = "no face found"
    else:
        reference = tmp_path / "notes.png"
        reference.write_bytes(b"these are notes, not a photo")
        expected = "not an image"
    open_tab(page, "Character sheet")
    before = len(double.jobs)
    page.set_input_files("#sheet-reference input[type=file]", str(reference))
    page.click("#sheet-generate")
    sync_api.expect(page.locator("#sheet-notice")).to_contain_text("Check the marked settings")
    where = page.locator("#sheet-reference")
    sync_api.expect(where).to_contain_text(expected)
    text = page.inner_text("body")
    assert "ReferenceFaceNotFound" not in text and "UnidentifiedImageError" not in text
    assert str(tmp_path) not in text
    assert len(double.jobs) == before  # no GPU time spent


def test_review_scores_every_readable_image_and_marks_the_bad_one(page, faces: Path,
                                                                  tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    open_tab(page, "Review")
    page.set_input_files("#review-reference input[type=file]", str(faces / "obama_1.jpg"))
    page.wait_for_selector("#review-reference img")
    page.set_input_files("#review-images input[type=file]",
                         [str(faces / "obama_2.jpg"), str(broken), str(faces / "biden_1.jpg")])
    page.wait_for_selector("#review-images :text('biden_1')")
    page.click("#review-run")
    page.wait_for_selector("#review-summary:has-text('pass 1/3')")
    scores = page.locator("#review-scores")
    sync_api.expect(scores).to_contain_text("NOT AN IMAGE")
    assert scores.get_by_text("✔ PASS", exact=True).count() == 1
    assert scores.get_by_text("✘ FAIL", exact=True).count() == 1
    sync_api.expect(page.locator("#review-outputs img")).to_have_count(2)


def test_open_in_review_scores_again(page, studio: Studio) -> None:
    open_tab(page, "History")
    page.click("#history-refresh")
    table = page.locator("#history-table")
    sync_api.expect(table).to_contain_text("review")
    reviews = [it for it in studio.history.items() if it.kind == "review"]
    assert reviews, "the review test above leaves a review in History"
    table.get_by_text(reviews[0].id).filter(visible=True).first.click()  # a row opens on click
    page.wait_for_selector("#history-gallery img")
    before = len(studio.history.items())
    page.click("#history-to-review")
    # Scored again: a new review lands in History, and Review shows its summary.
    wait_until(lambda: len(studio.history.items()) == before + 1)
    assert studio.history.items()[0].kind == "review"
    sync_api.expect(page.locator("#review-summary")).to_contain_text("pass 1/3")


def test_demo_banner(browser, tmp_path: Path) -> None:
    with running_studio(closed_port_url(), tmp_path / "demo", demo=True) as studio:
        page = open_page(browser, studio.url)
        sync_api.expect(page.locator("#demo-banner")).to_contain_text("placeholders from a demo backend")
        page.close()
    with running_studio(closed_port_url(), tmp_path / "plain") as studio:
        page = open_page(browser, studio.url)
        assert page.locator("#demo-banner").count() == 0
        page.close()
