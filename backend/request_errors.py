"""FastAPI's 422 (pydantic errors) as the contract's 400 (docs/api.md): the field, what was wrong, and
the allowed values or range, taken from the request model itself."""

from __future__ import annotations

from typing import Any, Literal, Sequence, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel

from backend.errors import InvalidRequest


def allowed(model: type[BaseModel] | None, name: str) -> str:
    """'256 to 2048', "one of 'jpeg', 'png'", ... for a field of `model`; '' if unknown."""
    if model is None or name not in model.model_fields:
        return ""
    info = model.model_fields[name]
    low = high = None
    parts: list[str] = []
    for meta in info.metadata:
        if isinstance(meta, at.Ge):
            low = f"{meta.ge}"
        elif isinstance(meta, at.Gt):
            low = f"more than {meta.gt}"
        elif isinstance(meta, at.Le):
            high = f"{meta.le}"
        elif isinstance(meta, at.Lt):
            high = f"less than {meta.lt}"
        elif isinstance(meta, at.MinLen) and meta.min_length:
            parts.append(f"at least {meta.min_length} characters")
        elif isinstance(meta, at.MaxLen):
            parts.append(f"at most {meta.max_length} characters")
        elif getattr(meta, "pattern", None):
            parts.append(f"matching {meta.pattern}")
    if low is not None and high is not None:
        parts.insert(0, f"{low} to {high}")
    elif low is not None:
        parts.insert(0, f">= {low}")
    elif high is not None:
        parts.insert(0, f"<= {high}")
    annotation = info.annotation
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is Literal:
            parts.insert(0, "one of " + ", ".join(repr(v) for v in get_args(candidate)))
    return ", ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_invalid_request(errors: Sequence[dict[str, Any]], model: type[BaseModel] | None) -> InvalidRequest:
    """The first pydantic error as an InvalidRequest (the rest are counted)."""
    if not errors:
        return InvalidRequest("the request body is not valid")
    err = errors[0]
    loc = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
    kind = err.get("type", "")
    more = f" ({len(errors) - 1} more problem(s) in the body)" if len(errors) > 1 else ""
    if kind == "json_invalid":
        return InvalidRequest(f"the body is not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}")
    if not loc:
        if kind == "missing":
            return InvalidRequest("the request has no body; send a JSON object"
                                  + (f" with at least {', '.join(n for n, f in model.model_fields.items() if f.is_required())}"
                                     if model else ""))
        return InvalidRequest(f"the body must be a JSON object: {err.get('msg')}" + more)
    field = ".".join(loc)
    top = loc[0]
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields) if model else ""
        return InvalidRequest(f"unknown field {field!r}" + (f"; allowed fields: {known}" if known else "") + more,
                              field=field)
    if kind == "missing":
        return InvalidRequest(f"{field} is required" + more, field=field)
    rule = allowed(model, top)
    got = f" (got {_short(err['input'])})" if "input" in err else ""
    msg = _number_type_message(kind, err.get("input")) or str(err.get("msg", "is not valid"))
    text = f"{field}: {msg}{got}" + (f"; allowed: {rule}" if rule else "") + more
    return InvalidRequest(text, field=field)


# pydantic's strict-mode type errors of number fields, in plain words
_NUMBER_TYPES = {"int_type": "a whole number", "float_type": "a number",
                 "int_from_float": "a whole number"}


def _number_type_message(kind: str, value: Any) -> str | None:
    """"must be a number, not true/false" for a number field given something else."""
    wanted = _NUMBER_TYPES.get(kind)
    if wanted is None:
        return None
    if isinstance(value, bool):
        return f"must be {wanted}, not true/false"
    if isinstance(value, str):
        return f"must be {wanted}, not text (send it without quotes)"
    if isinstance(value, float):
        return f"must be {wanted}, not a fraction"
    return f"must be {wanted}"
