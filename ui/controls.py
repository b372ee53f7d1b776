"""A request model's field as a control: the one reading of workflows/request_models.py
that the studio's components (ui/studio/fields.py) and the CLI's options
(ui/cli/options.py) are both built from.

Optional, Annotated and Literal are unwrapped and the ge/le bounds read here, once; a
new field type is taught here and shows in both.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

# text: free text; int, float: numbers; choice: one of `choices`; flag: true or false;
# structured: JSON (a graph, a mapping) that neither a component nor an option shows.
ControlKind = Literal["text", "int", "float", "choice", "flag", "structured"]

# Bounds this large are the type's limit, not a range a person picks from (the seed's).
_UNBOUNDED = 2**62


@dataclass(frozen=True)
class Control:
    name: str
    kind: ControlKind
    required: bool
    default: Any = None       # None when required or absent
    low: float | None = None  # ge
    high: float | None = None  # le
    step: int | None = None   # values are multiples of it (the schema's multipleOf)
    choices: tuple[str, ...] = ()
    max_length: int | None = None  # text: characters
    pattern: str | None = None     # text: a regular expression it must match
    title: str | None = None
    help: str | None = None

    @property
    def parse(self) -> Callable[[str], Any]:
        """Text (an option, a form value) as the field's value type."""
        return {"int": int, "float": float, "flag": _flag}.get(self.kind, str)

    def value(self, raw: Any) -> Any:
        """A form's value (text, or a number a component gives as float) as the request
        takes it; blank is absent."""
        if raw is None or raw == "":
            return None
        if self.kind in ("int", "float") or (self.kind == "flag" and isinstance(raw, str)):
            return self.parse(raw)
        return raw

    @property
    def bounded(self) -> bool:
        """Both bounds are a range a person picks from (a slider's, not the seed's)."""
        return self.low is not None and self.high is not None and self.high < _UNBOUNDED

    @property
    def allowed(self) -> str:
        """The allowed values in words: 'one of a, b', '256-2048, multiple of 16', '>= 0'."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.bounded:
            text = f"{self.low}-{self.high}"
        elif self.low is not None:
            text = f">= {self.low}"
        else:
            return ""
        return text + (f", multiple of {self.step}" if self.step else "")


def control(model: type[BaseModel], name: str) -> Control:
    """The control of `model`'s field `name` (KeyError when it has none)."""
    return field_control(name, model.model_fields[name])


def controls(model: type[BaseModel]) -> dict[str, Control]:
    """Every field of `model`, in the model's order."""
    return {name: field_control(name, info) for name, info in model.model_fields.items()}


def field_control(name: str, info: FieldInfo) -> Control:
    kind, choices = _kind(info.annotation)
    found: dict[str, Any] = {}
    for item in info.metadata:  # annotated_types' Ge, Le, MaxLen and pydantic's pattern
        for key in ("ge", "le", "max_length", "pattern"):
            if getattr(item, key, None) is not None:
                found[key] = getattr(item, key)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    required = info.is_required()
    return Control(name=name, kind=kind, required=required,
                   default=None if required else info.get_default(call_default_factory=True), low=found.get("ge"),
                   high=found.get("le"), step=extra.get("multipleOf"), choices=choices,
                   max_length=found.get("max_length"), pattern=found.get("pattern"),
                   title=info.title, help=info.description)


def _kind(annotation: Any) -> tuple[ControlKind, tuple[str, ...]]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # Optional
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:  # Int, Text: a type plus checks
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(annotation))
    simple: dict[Any, ControlKind] = {bool: "flag", int: "int", float: "float", str: "text"}
    return simple.get(annotation, "structured"), ()


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not true or false")
