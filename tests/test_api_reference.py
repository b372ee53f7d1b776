"""docs/api.md's generated tables match the code they are made from."""

from __future__ import annotations

import pytest

from backend.errors import ModelNotInstalled
from tools.api_reference import API_PAGE, REGENERATE, errors_table, fields_tables, render
from workflows.registry import ROUTES


def test_the_api_reference_is_up_to_date() -> None:
    page = API_PAGE.read_text(encoding="utf-8")
    assert render(page) == page, f"docs/api.md is stale: run `{REGENERATE}`"


def test_a_generated_section_is_replaced_and_the_prose_around_it_kept() -> None:
    page = API_PAGE.read_text(encoding="utf-8")
    begin = f"<!-- generated: errors ({REGENERATE}) -->\n"
    stale = page.replace(begin, begin + "| 418 | `teapot` | an old row |\n")
    fresh = render(stale)
    assert "teapot" not in fresh and fresh == page


def test_a_missing_marker_is_an_error_naming_it() -> None:
    page = API_PAGE.read_text(encoding="utf-8").replace("<!-- end generated: fields -->", "")
    with pytest.raises(ValueError, match="end generated: fields"):
        render(page)


def test_the_tables_say_what_the_models_and_errors_say() -> None:
    fields = fields_tables()
    assert "| `width` | integer | 256-2048, multiple of 16 | `1024` | width in pixels |" in fields
    assert "| `lora_strength` | number | 0.0-1.0 | `0.8` |" in fields
    assert "| `method` | string | `instantid`, `pulid` | `\"instantid\"` |" in fields
    assert all(f"`POST {path}`" in fields for path in ROUTES)
    assert f"| 503 | `{ModelNotInstalled.code}` | A model file the graph needs" in errors_table()
