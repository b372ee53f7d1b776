"""Command-line options from the request models, and their values back into requests.

Generation options come from the same pydantic models the backend validates with
(workflows/request_models.py), read through ui/controls.py as the studio reads them: each
field's range, default and help are written once, there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ui.client import RylaClient, image_data_url
from ui.controls import control, controls

# Fields whose option takes something other than the field's own value.
_FILE_FIELDS = {"reference_image", "workflow", "images"}


class UsageError(Exception):
    """Bad options: reported like argparse's own errors, exit 2."""


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_model_options(parser: argparse._ActionsContainer, model: type[BaseModel],
                      *, skip: Sequence[str] = (), all_optional: bool = False) -> list[str]:
    """One option per field of `model`; returns the field names added.

    Defaults stay unset so that pydantic, not argparse, fills them: the help text shows
    the model's default and range, and one set of rules applies everywhere.
    """
    added = []
    for name, spec in controls(model).items():
        if name in skip or name in _FILE_FIELDS or spec.kind == "structured":
            continue
        parts = [spec.help or name.replace("_", " ")]
        if spec.allowed and not spec.choices:  # argparse lists the choices itself
            parts.append(spec.allowed)
        if spec.default not in (None, ""):
            parts.append(f"default {spec.default}")
        required = spec.required and not all_optional
        how: dict[str, Any] = ({"action": argparse.BooleanOptionalAction} if spec.kind == "flag"
                               else {"type": spec.parse, "choices": spec.choices or None})
        parser.add_argument(option_name(name), dest=name, required=required, default=None,
                            help="; ".join(parts) + (" (required)" if required else ""), **how)
        added.append(name)
    return added


def _allowed_for(model: type[BaseModel], name: str) -> str:
    if name not in model.model_fields:
        return ""
    spec = control(model, name)
    if spec.choices or not spec.allowed:
        return spec.allowed
    return f"allowed {spec.allowed}"


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
