"""Errors where a creator looks: a field's problem beside that field, in plain words, and a
tab's other problems (the backend's answer, a missing model) in the tab's notice, which
leaves the outputs of earlier runs as they are (no red "Error" on outputs never tried)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
from pydantic import ValidationError

from ui.client import BackendError, BackendUnreachable
from ui.studio.fields import Components, Field, FieldProblem

# Request fields that a studio field fills under another name.
STUDIO_FIELD_OF = {"width": "size", "height": "size"}


class TabProblem(Exception):
    """A problem of the run as a whole, shown in the tab's notice; `details` (e.g. an
    operator's commands) go in a closed expander."""

    def __init__(self, title: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.title, self.message, self.details = title, message, details


def plain_message(error: Mapping[str, Any]) -> str:
    """One pydantic error in a person's words: no "Value error,", no "Input should"."""
    kind, ctx = str(error.get("type", "")), error.get("ctx") or {}
    if kind in ("less_than_equal", "less_than"):
        return f"at most {ctx.get('le', ctx.get('lt'))}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "a whole number, please"
    if kind in ("float_parsing", "float_type"):
        return "a number, please"
    if kind == "string_too_long":
        return f"too long: at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"choose one of {ctx.get('expected', 'the offered values')}"
    message = str(error.get("msg", "not valid"))
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    return re.sub(r"^Input should be ", "should be ", message)


def problems_from_validation(exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for error in exc.errors():
        loc = error.get("loc") or ("input",)
        name = str(loc[0])
        problems.append(FieldProblem(STUDIO_FIELD_OF.get(name, name), plain_message(error)))
    return problems


def field_marks(fields: Sequence[Field], made: Components,
                problems: Sequence[FieldProblem] = ()) -> dict[Any, Any]:
    """Updates that show each problem beside its field and clear the marks of the others."""
    by_field = {p.field: p.message for p in problems}
    marks: dict[Any, Any] = {}
    for f in fields:
        if f.name not in made:
            continue
        message = by_field.get(f.name)
        # A marked field's class turns its help line (or label) red (studio.css).
        classes = ["ryla-invalid"] if message else []
        if f.widget in ("image", "files", "checkbox"):  # no help line: the label says it
            label = f"{f.text} · ⚠ {message}" if message else f.text
            marks[made[f.name]] = gr.update(label=label, elem_classes=classes)
        else:
            marks[made[f.name]] = gr.update(info=f"⚠ {message}" if message else f.info,
                                            elem_classes=classes)
    return marks


def unplaced(problems: Sequence[FieldProblem], made: Components) -> list[FieldProblem]:
    """Problems of fields the tab does not show: they go to the notice instead."""
    return [p for p in problems if p.field not in made]


def backend_problem(exc: BackendError) -> TabProblem:
    """The backend's refusal as a creator reads it; operator steps behind an expander."""
    if isinstance(exc, BackendUnreachable):
        return TabProblem("The backend cannot be reached",
                          "Generation is unavailable right now; Review and History still work. "
                          "Ask an operator to start the backend.", exc.message)
    if exc.code == "model_not_installed":
        return TabProblem("A model is not installed",
                          f"This model needs files the backend does not have yet ({_missing_names(exc.message)}). "
                          "An operator must install them; the commands are below.",
                          exc.message)
    return TabProblem("The backend refused this run", _without_paths(exc.message))


def _missing_names(message: str) -> str:
    names = re.findall(r"model file '([^']+)'", message)
    return ", ".join(dict.fromkeys(names)) or "model files"


# The backend's messages name its HTTP routes (any client reads them); in the studio, the
# place that does the same.
STUDIO_WORDS_OF_ROUTE = {"GET /loras": "the LoRA tab's “Refresh list”",
                         "POST /loras": "“Upload a LoRA”"}


def _without_paths(message: str) -> str:
    """A message with absolute paths shortened to their file names, and routes in words."""
    for route, words in STUDIO_WORDS_OF_ROUTE.items():
        message = message.replace(route, words)
    return re.sub(r"(?:/[\w.-]+)+/([\w.-]+)", r"\1", message)


@dataclass
class Notice:
    """A tab's message area: a line in plain words and, when there is more, an expander."""

    message: gr.Markdown
    more: gr.Accordion
    details: gr.Markdown

    @property
    def outputs(self) -> list[Any]:
        return [self.message, self.more, self.details]

    @classmethod
    def build(cls, prefix: str) -> "Notice":
        message = gr.Markdown(elem_id=f"{prefix}-notice", elem_classes=["ryla-notice"])
        with gr.Accordion("For the operator", open=False, visible=False,
                          elem_id=f"{prefix}-notice-more") as more:
            details = gr.Markdown(elem_id=f"{prefix}-notice-details")
        return cls(message, more, details)

    def show(self, problem: TabProblem) -> dict[Any, Any]:
        text = (f"**⚠ {html.escape(problem.title, quote=False)}.** "
                f"{html.escape(problem.message, quote=False)}")
        return {self.message: text, self.more: gr.Accordion(visible=bool(problem.details)),
                self.details: problem.details or ""}

    def say(self, text: str) -> dict[Any, Any]:
        return {self.message: text, self.more: gr.Accordion(visible=False), self.details: ""}

    def clear(self) -> dict[Any, Any]:
        return self.say("")


def guarded(fields: Sequence[Field], made: Components, notice: Notice,
            work: Iterator[dict[Any, Any]]) -> Iterator[dict[Any, Any]]:
    """Run a tab's work (a generator of output updates), clearing old marks first; a
    problem is shown by its field or in the notice, and the outputs keep what they hold."""
    yield {**field_marks(fields, made), **notice.clear()}
    try:
        yield from work
    except FieldProblem as problem:
        yield _marked(fields, made, notice, [problem])
    except ValidationError as exc:
        yield _marked(fields, made, notice, problems_from_validation(exc))
    except BackendError as exc:
        name = STUDIO_FIELD_OF.get(exc.field or "", exc.field or "")
        if exc.status in (400, 422) and name in made:
            yield _marked(fields, made, notice, [FieldProblem(name, _without_paths(exc.message))])
        else:
            yield notice.show(backend_problem(exc))
    except TabProblem as problem:
        yield notice.show(problem)


def _marked(fields: Sequence[Field], made: Components, notice: Notice,
            problems: Sequence[FieldProblem]) -> dict[Any, Any]:
    elsewhere = unplaced(problems, made)
    summary = (notice.show(TabProblem("Check the settings",
                                      "; ".join(f"{p.field.replace('_', ' ')}: {p.message}"
                                                for p in elsewhere)))
               if elsewhere else notice.say("**⚠ Check the marked settings.**"))
    return {**field_marks(fields, made, problems), **summary}
