"""`make demo` in a real browser (issue 23): started as `make demo` starts it (tests/demo.py:
the ComfyUI double with its models folder, a backend and the studio with its banner), the
studio without a GPU works in every tab, the banner in view all along."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import free_port
from tests.demo import running_demo
from tests.screenshots import use_every_tab
from tests.studio.test_creator_browser import browser, open_page  # noqa: F401 (fixture)
from ui.studio.history import History

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")

TABS = ["flux", "sheet", "lora", "review", "history"]


def test_the_demo_works_in_every_tab(browser, faces: Path, tmp_path: Path) -> None:  # noqa: F811
    assert (faces / "obama_1.jpg").is_file()  # the sheet and Review take a real face
    base = tmp_path / "demo"
    used: list[str] = []
    with running_demo(free_port(), base) as url:
        page = open_page(browser, url)
        banner = page.locator("#demo-banner")

        def in_view(tab: str) -> None:
            sync_api.expect(banner).to_be_visible()
            sync_api.expect(banner).to_contain_text("placeholders from a demo backend")
            used.append(tab)

        # Each tab is waited on until its result shows (use_every_tab); then what it holds.
        use_every_tab(page, tmp_path, in_view)
        # The double pastes the reference face into an identity graph's output: it passes.
        sync_api.expect(page.locator("#sheet-summary")).to_contain_text("pass 7/7")
        sync_api.expect(page.locator("#review-summary")).to_contain_text("pass 1/3")
        page.close()
    assert used == TABS
    # Each run is in the studio's History with its images on disk.
    runs = {item.kind: item for item in History(base / "history").items()}
    assert set(runs) == {"flux", "sheet", "lora", "review"}
    assert len(runs["flux"].outputs) == 2 and len(runs["sheet"].outputs) == 7
    assert runs["lora"].params["lora_id"] == "maya"
    for item in runs.values():
        assert item.paths() and all(path.is_file() for path in item.paths()), item.kind
