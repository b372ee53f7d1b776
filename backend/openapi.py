"""/openapi.json as the API really answers: errors are 400 (not FastAPI's 422) with the
contract's `{"error": {"code", "message", "field"}}` (docs/api.md), generation routes answer with image
or video bytes (or JSON with `Accept: application/json`), not a JSON schema of nothing,
or `202` with the job under `Prefer: respond-async`; the job routes answer the job object,
its outputs' bytes and its `text/event-stream`."""

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
_NULLABLE_INT = {"type": ["integer", "null"]}
JOB_SCHEMA: dict[str, Any] = {
    "title": "Job", "type": "object",
    "required": ["id", "route", "status", "created_at", "started_at", "ended_at", "seed",
                 "progress", "outputs", "error"],
    "properties": {
        "id": {"type": "string", "description": "unguessable; also the X-Request-Id"},
        "route": {"type": "string", "examples": ["/flux-dev"]},
        "status": {"type": "string",
                   "enum": ["queued", "running", "succeeded", "failed", "cancelled"],
                   "description": "running once ComfyUI started executing it; cancelled only "
                                  "once ComfyUI confirmed it stopped"},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "seed": _NULLABLE_INT,
        "progress": {"type": "object", "properties": {
            "fraction": {"type": "number", "minimum": 0, "maximum": 1,
                         "description": "over the whole graph"},
            "step": _NULLABLE_INT, "steps": _NULLABLE_INT, "images_done": {"type": "integer"},
            "images_total": _NULLABLE_INT}},
        "outputs": {"type": "array", "items": {"type": "string"},
                    "examples": [["/jobs/{id}/outputs/0"]]},
        "error": {"type": ["object", "null"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "status": {"type": ["integer", "null"],
                       "description": "the HTTP status the synchronous route would have answered"},
            "field": {"type": ["string", "null"]}}},
    },
}
EVENTS_DESCRIPTION = (
    "Server-Sent Events: `status` ({\"status\"}), `progress` (the job's progress object), "
    "`preview` ({\"step\", \"image\": base64 JPEG}), and last `done` (the job object). A "
    "late subscriber gets the current state first; `Last-Event-ID` resumes after that event.")
_BINARY = {"type": "string", "format": "binary"}
MEDIA_OF_ROUTE: dict[str, tuple[str, ...]] = {path: r.media_types for path, r in ROUTES.items()}
ERRORS: dict[str, str] = {
    "400": "invalid input: a missing or out-of-range field, a bad image or workflow",
    "401": "a missing or wrong `Authorization: Bearer` token (when RYLA_API_TOKEN is set)",
    "404": "an unknown LoRA, route, job or job output",
    "405": "a wrong method on a known route (the `Allow` header lists the right ones)",
    "413": "a body or image over the limit",
    "502": "ComfyUI failed the job (its message included)",
    "503": "ComfyUI or a model is not available (which model, how to install it)",
    "504": "the job did not finish within the deadline; the message says what ComfyUI "
           "confirmed, and /jobs/{id} (X-Request-Id) has the job's final status",
}
GENERATION_ONLY = ("502", "503", "504")


def _error_ref(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _job_ref(description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}}


def _document_jobs(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if path in MEDIA_OF_ROUTE:
        responses.update(_job_ref(
            "with `Prefer: respond-async` (RFC 7240): the job, at once; headers `Location: "
            "/jobs/{id}`, `Preference-Applied: respond-async`", "202"))
        operation.setdefault("parameters", []).append({
            "name": "Prefer", "in": "header", "required": False,
            "schema": {"type": "string", "examples": ["respond-async"]},
            "description": "`respond-async`: answer 202 with the job instead of waiting"})
        if "409" not in responses:
            responses["409"] = _error_ref("the job was cancelled (DELETE /jobs/{id}) and "
                                          "ComfyUI confirmed it stopped (code `cancelled`)")
    elif path == "/jobs/{job_id}" and method == "get":
        responses.update(_job_ref("the job"))
    elif path == "/jobs/{job_id}" and method == "delete":
        responses.pop("200", None)
        responses.update(_job_ref("cancel asked for: the job as it is now; its status then "
                                  "follows what ComfyUI confirms", "202"))
        responses["409"] = _error_ref("the job has already ended (code `job_ended`); its status "
                                      "stays")
    elif path == "/jobs":
        responses["200"] = {"description": "jobs, newest first", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"jobs": {
                "type": "array", "items": {"$ref": "#/components/schemas/Job"}}}}}}}
    elif path == "/jobs/{job_id}/events":
        responses["200"] = {"description": EVENTS_DESCRIPTION,
                            "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    elif path == "/jobs/{job_id}/outputs/{n}":
        responses["200"] = {"description": "output n's bytes, with the sync route's media type",
                            "content": {kind: {"schema": _BINARY}
                                        for kind in MEDIA_OF_ROUTE["/workflow"]}}


def _patch(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)  # FastAPI's 422 shapes: this API never sends them
    components["Error"] = ERROR_SCHEMA
    components["GenerationJson"] = GENERATION_JSON_SCHEMA
    components["Job"] = JOB_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            _document_jobs(path, method, operation)
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
