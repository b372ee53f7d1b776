"""Errors that the API answers with: each has its HTTP status and SPEC error code.

Raise a subclass anywhere in the backend; api.py renders it as
`{"error": {"code", "message", "field"}}`. Messages are written for the person who
sent the request: what was wrong and what to do about it.
"""

from __future__ import annotations


class ApiError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, dict[str, str | None]]:
        field = None if self.field is None else utf8_text(self.field)
        return {"error": {"code": self.code, "message": utf8_text(self.message), "field": field}}


def utf8_text(text: str) -> str:
    """`text` with anything UTF-8 cannot hold (a lone surrogate quoted from the request)
    written as a backslash escape, so that the error itself can always be sent."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class InvalidImage(ApiError):
    status, code = 400, "invalid_image"


class InvalidWorkflow(ApiError):
    status, code = 400, "invalid_workflow"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class LoraNotFound(ApiError):
    status, code = 404, "lora_not_found"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class HeadersTooLarge(ApiError):
    status, code = 431, "headers_too_large"


class ComfyUIJobFailed(ApiError):
    status, code = 502, "comfyui_job_failed"


class ComfyUIUnavailable(ApiError):
    status, code = 503, "comfyui_unavailable"


class ModelNotInstalled(ApiError):
    status, code = 503, "model_not_installed"


class DeadlineExceeded(ApiError):
    status, code = 504, "deadline_exceeded"


class InternalError(ApiError):
    """A bug: the last resort of api.CatchAllMiddleware, never raised on purpose."""

    status, code = 500, "internal_error"


# status -> error class, for errors that Starlette raises itself (unknown route, ...)
BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def error_for_code(code: str, message: str, field: str | None = None) -> ApiError:
    """The API error with this SPEC code (one raised on the other side of a process or
    container boundary); an unknown code is a failed job, its message kept."""
    by_code = {cls.code: cls for cls in _subclasses(ApiError)}
    cls = by_code.get(code)
    if cls is None:
        return ComfyUIJobFailed(f"{code or 'error'}: {message}", field)
    return cls(message, field)


def _subclasses(cls: type[ApiError]) -> list[type[ApiError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found
