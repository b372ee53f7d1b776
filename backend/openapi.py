"""/openapi.json as the API really answers: errors are 400 (not FastAPI's 422) with the
contract's `{"error": {"code", "message", "field"}}` (docs/api.md), and generation routes
answer with image or video bytes (or JSON with `Accept: application/json`), not a JSON
schema of nothing."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from workflows.registry import ROUTES

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error", "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "field"],
        "properties": {
            "code": {"type": "string", "examples": ["invalid_request"]},
            "message": {"type": "string", "description": "what was wrong and what to do"},
            "field": {"type": ["string", "null"], "description": "the request field at fault"},
        }}},
}
GENERATION_JSON_SCHEMA: dict[str, Any] = {
    "title": "GenerationJson", "type": "object",
    "description": "the answer to `Accept: application/json`",
    "properties": {
        "images": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
        "content_types": {"type": "array", "items": {"type": "string"}},
        "seed": {"type": "integer"}, "timings": {"type": "object"},
        "request_id": {"type": "string"},
        "outputs": {"type": "array", "items": {"type": "string"},
                    "description": "where the backend saved each output"},
    },
}
_BINARY = {"type": "string", "format": "binary"}
MEDIA_OF_ROUTE: dict[str, tuple[str, ...]] = {path: r.media_types for path, r in ROUTES.items()}
ERRORS: dict[str, str] = {
    "400": "invalid input: a missing or out-of-range field, a bad image or workflow",
    "401": "a missing or wrong `Authorization: Bearer` token (when RYLA_API_TOKEN is set)",
    "404": "an unknown LoRA or route",
    "405": "a wrong method on a known route (the `Allow` header lists the right ones)",
    "413": "a body or image over the limit",
    "502": "ComfyUI failed the job (its message included)",
    "503": "ComfyUI or a model is not available (which model, how to install it)",
    "504": "the job did not finish within the deadline; it was cancelled in ComfyUI",
}
GENERATION_ONLY = ("502", "503", "504")


def _error_ref(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _patch(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)  # FastAPI's 422 shapes: this API never sends them
    components["Error"] = ERROR_SCHEMA
    components["GenerationJson"] = GENERATION_JSON_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            media = MEDIA_OF_ROUTE.get(path)
            if media:
                content = {kind: {"schema": _BINARY} for kind in media}
                content["application/json"] = {
                    "schema": {"$ref": "#/components/schemas/GenerationJson"}}
                responses["200"] = {
                    "description": "the first output's bytes; headers X-Request-Id, X-Seed, "
                                   "X-Generation-Time-Ms", "content": content}
            for status, description in ERRORS.items():
                if path == "/health" and status != "405":
                    continue
                if status in GENERATION_ONLY and not media:
                    continue
                responses.setdefault(status, _error_ref(description))
    return schema


def document_api(app: FastAPI) -> None:
    """Make app.openapi() build the corrected schema once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _patch(get_openapi(
                title=app.title, version=app.version, routes=app.routes,
                description="RYLA Studio's HTTP API; the reference is docs/api.md"))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
