"""The studio in a real browser (Debian's chromium, headless, through Playwright): a Flux
Dev generation, a character sheet whose reference and scored outputs stand side by side,
a review with pass and fail, and a screenshot of every tab."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.studio.conftest import Studio

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Generous: the whole sheet (generation on the double, then face scoring on CPU) must fit.
WAIT_MS = 120_000

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def page(studio: Studio) -> Iterator:
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        sync_api.expect.set_options(timeout=WAIT_MS)
        page.goto(studio.url)
        page.wait_for_selector("#flux-generate")
        yield page
        browser.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def shoot(page, output_dir: Path, name: str) -> Path:
    path = output_dir / f"studio-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real render, not an empty page
    return path


def test_backend_status_is_visible(page) -> None:
    page.wait_for_selector("#backend-status:has-text('Backend ok')")


def test_flux_dev_generation(page, output_dir: Path) -> None:
    open_tab(page, "Flux Dev")
    page.fill("#flux-prompt textarea", "a red fox in fresh snow, golden hour")
    page.fill("#flux-seed input", "31337")
    page.click("#flux-generate")
    page.wait_for_selector("#flux-gallery img")
    page.wait_for_selector("#flux-details:has-text('31337')")
    assert page.locator("#flux-gallery img").first.is_visible()
    shoot(page, output_dir, "flux")


def test_z_image_turbo_choice_and_its_settings_reused_from_history(page) -> None:
    open_tab(page, "Flux Dev")
    steps = page.locator("#flux-steps input[type=number]")
    guidance = page.locator("#flux-guidance input[type=number]")
    page.get_by_label("Z-Image Turbo").check()
    sync_api.expect(steps).to_have_value("8")  # its own default
    sync_api.expect(guidance).to_be_disabled()  # no guidance: the value is not sent
    page.fill("#flux-prompt textarea", "a lighthouse on a cliff, quick draft")
    steps.fill("6")
    steps.press("Enter")
    page.fill("#flux-seed input", "2718")
    page.click("#flux-generate")
    page.wait_for_selector("#flux-details:has-text('2718')")
    page.get_by_label("Dev", exact=True).check()
    sync_api.expect(steps).to_have_value("28")
    sync_api.expect(guidance).to_be_enabled()
    # "Use these settings again" brings Z-Image Turbo back with the steps of that run,
    # not the model's default.
    open_tab(page, "History")
    page.click("#history-refresh")
    sync_api.expect(page.locator("#history-table")).to_contain_text("a lighthouse on a cliff")
    page.click("#history-reuse")
    sync_api.expect(page.get_by_label("Z-Image Turbo")).to_be_checked()
    sync_api.expect(page.locator("#flux-prompt textarea")).to_have_value("a lighthouse on a cliff, quick draft")
    sync_api.expect(guidance).to_be_disabled()
    sync_api.expect(steps).to_have_value("6")


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box


def test_character_sheet_reference_beside_scored_outputs(page, faces: Path, output_dir: Path) -> None:
    open_tab(page, "Character sheet")
    page.set_input_files("#sheet-reference input[type=file]", str(faces / "obama_1.jpg"))
    page.wait_for_selector("#sheet-reference img")
    page.get_by_label("Both (compare)").check()
    page.fill("#sheet-prompts textarea", "front view portrait\nsmiling close-up\nside profile")
    page.click("#sheet-generate")
    page.wait_for_selector("#sheet-summary:has-text('mean similarity')")
    sync_api.expect(page.locator("#sheet-outputs img")).to_have_count(6)
    ref, first = _box(page, "#sheet-reference-view img"), _box(page, "#sheet-outputs img")
    # Side by side: the reference is left of the outputs, on the same band of the page.
    assert ref["x"] + ref["width"] <= first["x"]
    assert ref["y"] < first["y"] + first["height"] and first["y"] < ref["y"] + ref["height"]
    # Each output carries its badge and similarity: the double pastes the reference into
    # identity-graph outputs (as InstantID/PuLID keep the face), so every one passes.
    outputs = page.locator("#sheet-outputs")
    badge = outputs.get_by_text(re.compile(r"✔ PASS \d+\.\d%")).first
    sync_api.expect(badge).to_be_visible()
    assert outputs.get_by_text(re.compile("NO FACE|FAIL")).count() == 0
    mark = badge.bounding_box()
    assert mark is not None and ref["x"] + ref["width"] <= mark["x"]
    assert ref["y"] < mark["y"] + mark["height"] and mark["y"] < ref["y"] + ref["height"]
    assert page.locator("#sheet-scores").get_by_text("pulid · side-profile").count() == 1
    scores = page.locator("#sheet-scores")
    assert scores.get_by_text("✔ PASS", exact=True).count() >= 6
    assert scores.get_by_text(re.compile("NO FACE|FAIL")).count() == 0
    summary = page.inner_text("#sheet-summary")
    assert "InstantID (SDXL)" in summary and "pass 6/6 (100%)" in summary
    shoot(page, output_dir, "sheet")


def test_review_shows_pass_and_fail(page, faces: Path, output_dir: Path) -> None:
    open_tab(page, "Review")
    page.set_input_files("#review-reference input[type=file]", str(faces / "obama_1.jpg"))
    page.wait_for_selector("#review-reference img")
    page.set_input_files("#review-images input[type=file]",
                         [str(faces / "obama_2.jpg"), str(faces / "biden_1.jpg")])
    page.wait_for_selector("#review-images :text('biden_1')")
    page.click("#review-run")
    page.wait_for_selector("#review-summary:has-text('pass 1/2')")
    outputs = page.locator("#review-outputs")
    assert outputs.get_by_text("PASS").count() >= 1 and outputs.get_by_text("FAIL").count() >= 1
    ref, first = _box(page, "#review-reference-view img"), _box(page, "#review-outputs img")
    assert ref["x"] + ref["width"] <= first["x"]
    page.wait_for_selector("#review-report :text('face_scores')")
    shoot(page, output_dir, "review")


def test_lora_and_history_tabs(page, output_dir: Path) -> None:
    open_tab(page, "LoRA")
    page.wait_for_selector("#lora-strength")
    shoot(page, output_dir, "lora")
    open_tab(page, "History")
    page.click("#history-refresh")
    # The runs above are listed, newest first: the review, then the sheet, then Flux.
    table = sync_api.expect(page.locator("#history-table"))
    table.to_contain_text("review")
    table.to_contain_text("a red fox in fresh snow")
    page.wait_for_selector("#history-gallery img")
    shoot(page, output_dir, "history")
    page.click("#history-reuse")
    # Reusing the newest item (a review) is refused with a clear message, not a traceback.
    page.wait_for_selector("text=a review has no generation settings")
