"""Out-of-range numbers are refused by their field, not clamped (issue 23): every bounded
number of every tab is a number box without Gradio's own bounds (a slider's box clamps a
typed 5000 to 100 without a word), its range in its help line, checked by the studio."""

from __future__ import annotations

import gradio as gr
import pytest

from tests.studio.conftest import Studio
from tests.studio.test_browser import open_tab
from tests.studio.test_creator_browser import browser, open_page  # noqa: F401 (fixture)
from ui.studio import flux_tab, lora_tab, review_tab, sheet_tab
from ui.studio.fields import NUMBER_WIDGETS, Field, FieldProblem, component

sync_api = pytest.importorskip("playwright.sync_api")

BOUNDED = [pytest.param(f, id=f"{tab.__name__.rsplit('.', 1)[-1]}.{f.name}")
           for tab in (flux_tab, lora_tab, sheet_tab, review_tab)
           for f in tab.FIELDS if f.widget in NUMBER_WIDGETS and f.bounded]


def test_every_tab_has_bounded_numbers() -> None:
    names = {p.id for p in BOUNDED}
    assert {"flux_tab.steps", "flux_tab.batch", "lora_tab.lora_strength",
            "sheet_tab.instantid_strength", "review_tab.threshold"} <= names


@pytest.mark.parametrize("field", BOUNDED)
def test_a_bounded_number_says_its_range_and_refuses_beyond_it(field: Field) -> None:
    with gr.Blocks():
        made = component(field, "tab")
    assert isinstance(made, gr.Number)
    assert (made.minimum, made.maximum) == (None, None)  # nothing clamps or toasts in the page
    assert field.range_text and made.info.endswith(field.range_text)
    assert field.convert(field.default) == field.default
    assert field.convert(field.high) == field.high and field.convert(field.low) == field.low
    span = field.high - field.low
    with pytest.raises(FieldProblem, match=r"^at most ") as above:
        field.convert(field.high + span)
    assert above.value.field == field.name
    with pytest.raises(FieldProblem, match=r"^at least "):
        field.convert(field.low - span)
    with pytest.raises(FieldProblem, match=rf"^a number from {field.range_text}, please$"):
        field.convert(None)


def test_a_studio_only_number_is_refused_before_its_cast() -> None:
    batch = next(f for f in flux_tab.FIELDS if f.name == "batch")
    # Its cast turns 0 into 1; the typed 0 is refused, not replaced.
    with pytest.raises(FieldProblem, match="at least 1"):
        batch.convert(0)
    assert batch.convert(3.0) == 3


@pytest.mark.browser
@pytest.mark.parametrize(("typed", "refusal"), [("5000", "at most 100"), ("0", "at least 1")])
def test_typed_steps_out_of_range_are_refused_by_the_field(browser, studio: Studio,  # noqa: F811
                                                           backend_server_session, typed: str,
                                                           refusal: str) -> None:
    double = backend_server_session.double
    page = open_page(browser, studio.url)
    open_tab(page, "Flux Dev")
    steps_field = page.locator("#flux-steps")
    sync_api.expect(steps_field).to_contain_text("1 to 100")  # the range, in its help line
    page.fill("#flux-prompt textarea", "a harbour at dusk")
    steps = page.locator("#flux-steps input[type=number]")
    steps.fill(typed)
    before = len(double.jobs)
    page.click("#flux-generate")
    sync_api.expect(steps_field).to_contain_text(refusal)
    sync_api.expect(page.locator("#flux-notice")).to_contain_text("Check the marked settings")
    sync_api.expect(steps).to_have_value(typed)  # as typed: not clamped
    assert len(double.jobs) == before  # nothing was sent
    # A value in range clears the mark and runs.
    steps.fill("4")
    page.click("#flux-generate")
    page.wait_for_selector("#flux-gallery img")
    sync_api.expect(steps_field).not_to_contain_text(refusal)
    assert len(double.jobs) > before
    page.close()
