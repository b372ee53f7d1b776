"""Command-line options from the request models, and their values back into requests.

Generation options come from the same pydantic models the backend validates with
(workflows/request_models.py): each field's range, default and help are written once, there.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ui.client import RylaClient, image_data_url

# Fields whose option takes something other than the field's own value.
_FILE_FIELDS = {"reference_image", "workflow", "images"}


class UsageError(Exception):
    """Bad options: reported like argparse's own errors, exit 2."""


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _range_text(field: Any) -> str:
    low = high = None
    for item in field.metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    if low is not None and high is not None and high < 2**62:
        return f"{low}-{high}"
    if low is not None:
        return f">= {low}"
    return ""


def _scalar_type(annotation: Any) -> tuple[Callable[[str], Any] | None, list[str] | None]:
    """argparse type and choices for a field annotation (Optional, Annotated and Literal
    unwrapped)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:  # Int, Text: a type plus checks
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is typing.Literal:
        return str, [str(arg) for arg in typing.get_args(annotation)]
    if annotation in (int, float, str):
        return annotation, None
    return None, None


def add_model_options(parser: argparse._ActionsContainer, model: type[BaseModel],
                      *, skip: Sequence[str] = (), all_optional: bool = False) -> list[str]:
    """One option per field of `model`; returns the field names added.

    Defaults stay unset so that pydantic, not argparse, fills them: the help text shows
    the model's default and range, and one set of rules applies everywhere.
    """
    added = []
    for name, field in model.model_fields.items():
        if name in skip or name in _FILE_FIELDS:
            continue
        arg_type, choices = _scalar_type(field.annotation)
        if arg_type is None:
            continue
        parts = [field.description or name.replace("_", " ")]
        allowed = _range_text(field)
        if allowed:
            parts.append(allowed)
        if name in ("width", "height"):
            parts.append("multiple of 16")
        if not field.is_required() and field.default not in (None, ""):
            parts.append(f"default {field.default}")
        required = field.is_required() and not all_optional
        parser.add_argument(option_name(name), dest=name, type=arg_type, choices=choices,
                            required=required, default=None,
                            help="; ".join(parts) + (" (required)" if required else ""))
        added.append(name)
    return added


def _allowed_for(model: type[BaseModel], name: str) -> str:
    field = model.model_fields.get(name)
    if field is None:
        return ""
    arg_type, choices = _scalar_type(field.annotation)
    if choices:
        return "one of " + ", ".join(choices)
    allowed = _range_text(field)
    return f"allowed {allowed}" if allowed else ""


def validation_message(model: type[BaseModel], exc: ValidationError) -> str:
    """`--width: Input should be ... (got 100; allowed 256-2048)`, one line per problem."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        option = option_name(name) if name else "request"
        if error["type"] == "extra_forbidden":
            lines.append(f"{option}: not an option of {model.__name__}")
            continue
        detail = error["msg"].removeprefix("Value error, ")
        extras = []
        if error["type"] != "missing":
            extras.append(f"got {error['input']!r}")
        allowed = _allowed_for(model, name)
        if allowed:
            extras.append(allowed)
        lines.append(f"{option}: {detail}" + (f" ({'; '.join(extras)})" if extras else ""))
    return "\n".join(lines)


def build_request(model: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    try:
        return model(**values)
    except ValidationError as exc:
        raise UsageError(validation_message(model, exc)) from None


def field_values(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """--set FIELD=VALUE: VALUE read as JSON when it parses (numbers, true), else text."""
    values: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected FIELD=VALUE, e.g. --set steps=20")
        try:
            values[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.replace("-", "_")] = raw
    return values


def reference_value(value: str) -> str:
    """A data URL or base64 passes through; anything else is a path to read."""
    if value.startswith("data:"):
        return value
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"--reference-image: no such file {value!r}; give a JPEG/PNG/WebP path")
    return image_data_url(path)


def backend_client(args: argparse.Namespace) -> RylaClient:
    return RylaClient(args.backend_url, timeout=args.timeout, retry_budget=args.retry_budget)
