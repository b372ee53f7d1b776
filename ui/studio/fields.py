"""A studio tab's fields, each said once.

A `Field` names a value of a tab. Its widget, default, range, label and help come from
the request model field of the same name (workflows/request_models.py, read through
ui/controls.py as the CLI reads it) unless the field overrides them; studio-only fields (batch count, random seed, the pass threshold) give
their own. From a tab's tuple of fields come, by name: its components (`place`), its
event inputs (`by_name`), the history parameters of a run (`stored`), the request
values (`request_values`) and "use these settings again" (`restored`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import gradio as gr
from pydantic import BaseModel

from ui.controls import Control, control
from ui.studio.history import HistoryItem

# "slider" is a number with a range a person picks from, "number" one without (ui/controls.py's
# `bounded`); both are shown as a number box (see `component`).
Widget = Literal["text", "slider", "number", "checkbox", "radio", "dropdown", "image", "files"]
NUMBER_WIDGETS = ("slider", "number")
Components = dict[str, Any]  # field name -> Gradio component
Values = dict[str, Any]      # field name -> value


class _Unchanged:
    """A restored value that leaves its component as it is."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()
_NO_DEFAULT: Any = object()


class FieldProblem(Exception):
    """A value a creator typed that cannot be used; `field` is the studio field's name.
    Shown beside that field (ui/studio/problems.py)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def widget_for(spec: Control) -> Widget:
    """The component a request field gets when its tab does not choose one."""
    if spec.kind in ("int", "float"):
        return "slider" if spec.bounded else "number"
    widgets: dict[str, Widget] = {"flag": "checkbox", "choice": "radio"}
    return widgets.get(spec.kind, "text")


@dataclass(frozen=True)
class Field:
    name: str                  # the request field it fills, or a studio-only name
    widget: Widget | None = None  # None: widget_for the model field's control
    model: type[BaseModel] | None = None  # default, range, label and help from its field `name`
    label: str | None = None
    help: str | None = None
    value: Any = _NO_DEFAULT   # the component's initial value; else the model's default
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: Sequence[str] | None = None  # else a Literal's values
    cast: Callable[[Any], Any] | None = None  # else from the model field's type
    row: str | None = None     # fields of one row name sit side by side
    section: str = "main"      # where the tab places it (e.g. a second column)
    elem: str | None = None    # elem_id after the tab's prefix; default the name, '-' for '_'
    options: Mapping[str, Any] = field(default_factory=dict)  # more Gradio arguments
    kept: bool = True          # part of a run's settings: stored and restored
    store: Callable[[Any], Values] | None = None           # value -> history parameters
    restore: Callable[[HistoryItem], Any] | None = None    # history item -> value

    def __post_init__(self) -> None:
        if self.widget is None:
            if self.spec is None:
                raise ValueError(f"field {self.name!r}: a widget, or a model with that field")
            object.__setattr__(self, "widget", widget_for(self.spec))

    @property
    def spec(self) -> Control | None:
        """The request model field's control (ui/controls.py), when the field fills one."""
        if self.model is None or self.name not in self.model.model_fields:
            return None
        return control(self.model, self.name)

    @property
    def low(self) -> float | None:
        if self.minimum is not None:
            return self.minimum
        return self.spec.low if self.spec is not None else None

    @property
    def high(self) -> float | None:
        if self.maximum is not None:
            return self.maximum
        return self.spec.high if self.spec is not None else None

    @property
    def default(self) -> Any:
        if self.value is not _NO_DEFAULT:
            return self.value
        value = self.spec.default if self.spec is not None else None
        return "" if value is None and self.widget == "text" else value

    @property
    def text(self) -> str:
        title = self.spec.title if self.spec is not None else None
        return self.label or title or self.name.replace("_", " ").capitalize()

    @property
    def bounded(self) -> bool:
        """A range a person picks from: the field's own, or its model field's (not the seed's)."""
        return (self.low is not None and self.high is not None
                and (self.maximum is not None or (self.spec is not None and self.spec.bounded)))

    @property
    def range_text(self) -> str:
        """A bounded number's range in words ('1 to 100'); empty for others."""
        if self.widget not in NUMBER_WIDGETS or not self.bounded:
            return ""
        return f"{_number_text(self.low)} to {_number_text(self.high)}"

    @property
    def info(self) -> str | None:
        """The help line; a bounded number's says its range, which its box does not hold."""
        text = self.help or (self.spec.help if self.spec is not None else None)
        if not self.range_text:
            return text
        return f"{text}, {self.range_text}" if text else self.range_text

    @property
    def allowed(self) -> list[str]:
        if self.choices is not None:
            return list(self.choices)
        return list(self.spec.choices) if self.spec is not None else []

    def convert(self, value: Any) -> Any:
        """A component's value as the request and history take it; a number out of its
        range, or missing where the field has a default, is a FieldProblem."""
        if self.widget in NUMBER_WIDGETS:
            return self._number(value)
        return self._converted(value)

    def _number(self, value: Any) -> Any:
        wanted = f"a number from {self.range_text}, please" if self.range_text else "a number, please"
        if value is None or value == "":
            if self.default is None:  # an optional number left blank is absent
                return None
            raise FieldProblem(self.name, wanted)
        try:
            number = float(value)  # the value typed, before a cast rounds or replaces it
        except (TypeError, ValueError):
            raise FieldProblem(self.name, wanted) from None
        if self.low is not None and number < self.low:
            raise FieldProblem(self.name, f"at least {_number_text(self.low)}")
        if self.high is not None and number > self.high:
            raise FieldProblem(self.name, f"at most {_number_text(self.high)}")
        return self._converted(value)

    def _converted(self, value: Any) -> Any:
        if self.cast is not None:
            return self.cast(value)
        if self.widget == "text":
            return value or ""
        if self.widget == "checkbox":
            return bool(value)
        if self.spec is not None:
            return self.spec.value(value)
        return None if value == "" else value


def _number_text(number: float) -> str:
    """1 not 1.0, 0.05 as typed."""
    return str(int(number)) if float(number).is_integer() else str(number)


# -- components ------------------------------------------------------------------------


def component(f: Field, prefix: str) -> Any:
    """The Gradio component of one field (call inside a Blocks context)."""
    common: dict[str, Any] = {"label": f.text, "elem_id": f"{prefix}-{f.elem or f.name.replace('_', '-')}"}
    if f.info and f.widget not in ("checkbox", "image", "files"):
        common["info"] = f.info
    options = dict(f.options)
    if f.widget == "text":
        return gr.Textbox(value=f.default, **common, **options)
    if f.widget in NUMBER_WIDGETS:
        # A number box without Gradio's bounds, its range in the help line: a gr.Slider's
        # box clamps a typed 5000 to its maximum without a word, and gr.Number's bounds
        # refuse in a passing toast; `Field.convert` refuses it by its field instead.
        whole = f.spec.kind == "int" if f.spec is not None else float(f.step or 1).is_integer()
        return gr.Number(value=f.default, precision=0 if whole else None, step=f.step or 1,
                         **common, **options)
    if f.widget == "checkbox":
        return gr.Checkbox(value=f.default, **common, **options)
    if f.widget == "radio":
        allowed = f.allowed
        return gr.Radio(allowed, value=f.default if f.default is not None else allowed[0],
                        **common, **options)
    if f.widget == "dropdown":
        # Custom values let "use these settings again" restore a value not in the list.
        return gr.Dropdown(f.allowed, value=f.default, allow_custom_value=True, **common, **options)
    if f.widget == "image":
        from ui.studio.image_input import ImageInput

        return ImageInput(type="filepath", **common, **options)
    if f.widget == "files":
        return gr.File(file_count="multiple", **common, **options)
    raise ValueError(f"field {f.name!r}: unknown widget {f.widget!r}")


def place(fields: Sequence[Field], prefix: str, section: str = "main",
          extras: Mapping[str, Callable[[], None]] | None = None) -> Components:
    """The fields of `section` in spec order; fields that share a row name sit in one
    gr.Row, placed where the row's first field is. `extras[row]` adds more to that row."""
    made: Components = {}
    for f in fields:
        if f.section != section or f.name in made:
            continue
        if f.row is None:
            made[f.name] = component(f, prefix)
            continue
        with gr.Row():
            for g in fields:
                if g.section == section and g.row == f.row:
                    made[g.name] = component(g, prefix)
            if extras and f.row in extras:
                extras[f.row]()
    return made


# -- values by name --------------------------------------------------------------------


def by_name(fn: Callable[..., Any], names: Sequence[str], *,
            session: bool = False) -> Callable[..., Any]:
    """`fn(values, progress)` as a Gradio function of one parameter per name (the event's
    inputs, in this order), so that callbacks and the API name every value. `session`:
    `fn(values, progress, session)` with the page's Gradio session id (what its Stop
    button finds the running action by)."""
    parameters = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    parameters.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=gr.Progress()))
    if session:
        parameters.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=None, annotation=gr.Request))
    signature = inspect.Signature(parameters)

    def split(args: tuple, kwargs: dict) -> tuple[Values, tuple[Any, ...]]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        extra: tuple[Any, ...] = (values.pop("progress"),)
        if session:
            request = values.pop("request")
            extra += (getattr(request, "session_hash", None),)
        return values, extra

    if inspect.isgeneratorfunction(fn):
        def call(*args: Any, **kwargs: Any) -> Iterator[Any]:
            values, extra = split(args, kwargs)
            yield from fn(values, *extra)
    else:
        def call(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            values, extra = split(args, kwargs)
            return fn(values, *extra)

    call.__signature__ = signature  # type: ignore[attr-defined]
    if session:  # Gradio finds gr.Request by the annotation
        call.__annotations__ = {"request": gr.Request}
    call.__name__ = getattr(fn, "__name__", "call")
    return call


def inputs(fields: Sequence[Field], made: Components) -> list[Any]:
    return [made[f.name] for f in fields]


def stored(fields: Sequence[Field], values: Values) -> Values:
    """History parameters of a run from its field values."""
    params: Values = {}
    for f in fields:
        if f.kept:
            params.update(f.store(values[f.name]) if f.store else {f.name: f.convert(values[f.name])})
    return params


def request_values(params: Values, model: type[BaseModel], skip: Sequence[str] = ()) -> Values:
    """The request fields of `model` found in `params`; an empty text where the model's
    default is None (an optional field left blank) is left out."""
    found: Values = {}
    for name, mf in model.model_fields.items():
        if name in skip or name not in params:
            continue
        if params[name] == "" and mf.default is None:
            continue
        found[name] = params[name]
    return found


def restored(fields: Sequence[Field], item: HistoryItem) -> Values:
    """The field values that repeat a stored run; UNCHANGED ones are left as they are."""
    return {f.name: f.restore(item) if f.restore else item.params.get(f.name, f.default)
            for f in fields if f.kept}


def first_seed(item: HistoryItem) -> Any:
    """The seed the run's first image got, so that a random-seed run repeats exactly."""
    return next((o.get("seed") for o in item.outputs if o.get("seed") is not None),
                item.params.get("seed"))
