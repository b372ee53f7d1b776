"""docs/api.md's tables, generated: the generation routes (workflows/registry.py), their
request fields (workflows/request_models.py, read through ui/controls.py), the error
codes (backend/errors.py) and the analytics events (the registry).

    python -m tools.api_reference          # rewrite the tables in docs/api.md
    python -m tools.api_reference --check  # exit 1 when docs/api.md is stale

Only the text between `<!-- generated: NAME -->` and `<!-- end generated: NAME -->` is
replaced; everything around it is written by hand.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path

from backend.errors import ApiError
from ui.controls import Control, controls
from workflows.registry import GENERATION_FAILED, LORA_LOADED, ROUTES

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
REGENERATE = "python -m tools.api_reference"

_TYPE_WORDS = {"text": "string", "int": "integer", "float": "number", "choice": "string",
               "flag": "boolean", "structured": "object"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def routes_table() -> str:
    rows = ["| route | `ryla` command | what | answers with |", "|---|---|---|---|"]
    for route in ROUTES.values():
        media = ", ".join(f"`{m}`" for m in route.media_types)
        rows.append(f"| `POST {route.path}` | `{route.command}` | {_cell(route.help)} | {media} |")
    return "\n".join(rows)


def _allowed(spec: Control) -> str:
    if spec.choices:
        return ", ".join(f"`{c}`" for c in spec.choices)
    if spec.pattern:
        return f"matches `{spec.pattern}`"
    if spec.max_length:
        return f"at most {spec.max_length} characters"
    return spec.allowed


def _default(spec: Control) -> str:
    if spec.required:
        return "**required**"
    return "absent" if spec.default is None else f"`{spec.default!r}`".replace("'", '"')


def fields_tables() -> str:
    parts = []
    for route in ROUTES.values():
        model = route.request_model
        rows = [f"#### `POST {route.path}` (`{model.__name__}`)", "",
                "| field | type | allowed | default | what |", "|---|---|---|---|---|"]
        for name, spec in controls(model).items():
            rows.append(f"| `{name}` | {_TYPE_WORDS[spec.kind]} | {_cell(_allowed(spec))} | "
                        f"{_cell(_default(spec))} | {_cell(spec.help or '')} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def _error_classes(cls: type[ApiError] = ApiError) -> list[type[ApiError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_error_classes(sub)]
    return found


def errors_table() -> str:
    rows = ["| status | code | when |", "|---|---|---|"]
    errors = sorted({(c.status, c.code): c for c in _error_classes()}.items())
    for (status, code), cls in errors:
        when = " ".join((inspect.getdoc(cls) or "").split())
        rows.append(f"| {status} | `{code}` | {_cell(when)} |")
    return "\n".join(rows)


def events_table() -> str:
    rows = ["| route | requested | completed |", "|---|---|---|"]
    for route in ROUTES.values():
        rows.append(f"| `{route.path}` | `{route.requested_event}` | `{route.completed_event}` |")
    rows += ["", f"Any route's failed generation sends `{GENERATION_FAILED}` (with the error "
                 f"code), and a job that loads a LoRA from the store `{LORA_LOADED}` (with its id)."]
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "routes": routes_table,
    "fields": fields_tables,
    "errors": errors_table,
    "events": events_table,
}


def render(page: str) -> str:
    """`page` with every generated section made again from the code."""
    for name, make in SECTIONS.items():
        begin = f"<!-- generated: {name} ({REGENERATE}) -->"
        end = f"<!-- end generated: {name} -->"
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        if not pattern.search(page):
            raise ValueError(f"docs/api.md has no section between {begin!r} and {end!r}")
        page = pattern.sub(lambda _: f"{begin}\n{make()}\n{end}", page, count=1)
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/api.md is stale")
    args = parser.parse_args(argv)
    page = API_PAGE.read_text(encoding="utf-8")
    fresh = render(page)
    if args.check:
        if fresh != page:
            print(f"{API_PAGE} is stale: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    API_PAGE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
