"""The README's screenshots, made from the current studio so they cannot go stale:

    python -m tests.screenshots [--out assets]

Starts the demo (tests/demo.py: the ComfyUI double, a backend, the studio with its banner),
uses every tab once in Debian's chromium through Playwright, and writes
assets/studio-<tab>.png. Needs the face photos of tests/shared_files.py.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.builders import free_port, safetensors_bytes
from tests.demo import running_demo
from tests.shared_files import FACES_DIR
from tests.studio.test_browser import CHROMIUM, CHROMIUM_ARGS

WAIT_MS = 180_000
VIEWPORT = {"width": 1400, "height": 1000}


def text_box(selector: str, page):
    """A Textbox's editable element (a textarea or, for one line, an input)."""
    return page.locator(f"{selector} textarea, {selector} input").first


def shoot(page, out: Path, name: str) -> None:
    page.wait_for_timeout(500)  # let the last layout transition settle before the picture
    page.screenshot(path=str(out / f"studio-{name}.png"), full_page=True)
    print(f"wrote {out / f'studio-{name}.png'}", flush=True)


def use_every_tab(page, scratch: Path, done: Callable[[str], None]) -> None:
    """Every tab once on the demo, each waited on until its result shows: a Flux batch of
    two, a quick character sheet of a real face, a LoRA uploaded (made in `scratch`) and
    used, a review, and History opening the sheet. `done(tab)` runs once each result is
    in view (a screenshot, a test's checks)."""
    page.wait_for_selector("#backend-status:has-text('ready')")

    page.fill("#flux-prompt textarea", "a portrait photo of a woman in a red coat, autumn park")
    page.locator("#flux-batch input[type=number]").fill("2")
    page.locator("#flux-batch input[type=number]").press("Enter")
    page.click("#flux-generate")
    expect(page.locator("#flux-gallery img")).to_have_count(2)
    done("flux")

    page.get_by_role("tab", name="Character sheet").click()
    page.set_input_files("#sheet-reference input[type=file]", str(FACES_DIR / "obama_1.jpg"))
    page.wait_for_selector("#sheet-reference img")
    page.get_by_label("Variation preset").click()
    page.get_by_role("option", name="Quick 7: angles, full body, two expressions").click()
    page.click("#sheet-generate")
    page.wait_for_selector("#sheet-summary:has-text('mean similarity')")
    done("sheet")

    page.get_by_role("tab", name="LoRA").click()
    lora = scratch / "maya.safetensors"
    lora.write_bytes(safetensors_bytes(1))
    page.get_by_text("Upload a LoRA").click()
    page.set_input_files("#lora-upload-file input[type=file]", str(lora))
    text_box("#lora-upload-id", page).fill("maya")
    text_box("#lora-upload-trigger", page).fill("maya_ryla")
    page.click("#lora-upload")
    page.wait_for_selector("#lora-upload-result:has-text('Uploaded')")
    page.fill("#lora-prompt textarea", "maya_ryla on a beach at sunset, candid photo")
    page.click("#lora-generate")
    page.wait_for_selector("#lora-gallery img")
    done("lora")

    page.get_by_role("tab", name="Review").click()
    page.set_input_files("#review-reference input[type=file]", str(FACES_DIR / "obama_1.jpg"))
    page.wait_for_selector("#review-reference img")
    page.set_input_files("#review-images input[type=file]",
                         [str(FACES_DIR / name) for name in ("obama_2.jpg", "biden_1.jpg",
                                                             "biden_2.jpg")])
    page.wait_for_selector("#review-images :text('biden_2')")
    page.click("#review-run")
    page.wait_for_selector("#review-summary:has-text('mean similarity')")
    done("review")

    page.get_by_role("tab", name="History").click()
    page.click("#history-refresh")
    page.locator("#history-table").get_by_text("sheet", exact=True).filter(visible=True).first.click()
    page.wait_for_selector("#history-gallery img")
    done("history")


def make_screenshots(url: str, out: Path, scratch: Path) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        page.goto(url)
        use_every_tab(page, scratch, lambda tab: shoot(page, out, tab))
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("assets"), help="folder (default assets)")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (make chromium)")
    if not (FACES_DIR / "obama_1.jpg").is_file():
        raise SystemExit(f"needs the face photos in {FACES_DIR}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ryla-screenshots-") as scratch:
        with running_demo(free_port(), Path(scratch) / "demo") as url:
            make_screenshots(url, args.out.resolve(), Path(scratch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
