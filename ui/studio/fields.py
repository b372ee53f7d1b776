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

Widget = Literal["text", "slider", "number", "checkbox", "radio", "dropdown", "image", "files"]
Components = dict[str, Any]  # field name -> Gradio component
Values = dict[str, Any]      # field name -> value


class _Unchanged:
    """A restored value that leaves its component as it is."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()
_NO_DEFAULT: Any = object()


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
    def info(self) -> str | None:
        return self.help or (self.spec.help if self.spec is not None else None)

    @property
    def allowed(self) -> list[str]:
        if self.choices is not None:
            return list(self.choices)
        return list(self.spec.choices) if self.spec is not None else []

    def convert(self, value: Any) -> Any:
        """A component's value as the request and history take it."""
        if self.cast is not None:
            return self.cast(value)
        if self.widget == "text":
            return value or ""
        if self.widget == "checkbox":
            return bool(value)
        if self.spec is not None:
            return self.spec.value(value)
        return None if value == "" else value


# -- components ------------------------------------------------------------------------


def component(f: Field, prefix: str) -> Any:
    """The Gradio component of one field (call inside a Blocks context)."""
    common: dict[str, Any] = {"label": f.text, "elem_id": f"{prefix}-{f.elem or f.name.replace('_', '-')}"}
    if f.info and f.widget not in ("checkbox", "image", "files"):
        common["info"] = f.info
    options = dict(f.options)
    if f.widget == "text":
        return gr.Textbox(value=f.default, **common, **options)
    if f.widget == "slider":
        return gr.Slider(f.low, f.high, value=f.default, step=f.step or 1, **common, **options)
    if f.widget == "number":
        return gr.Number(value=f.default, precision=0, minimum=f.low, **common, **options)
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
