"""Errors that the API answers with: each has its HTTP status and error code, and its
docstring says when (docs/api.md's error table is generated from them).

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
    """A missing, unknown or out-of-range field; the message gives the allowed values."""

    status, code = 400, "invalid_request"


class InvalidImage(ApiError):
    """An image that is not base64 of a JPEG, PNG or WebP, or is damaged."""

    status, code = 400, "invalid_image"


class InvalidWorkflow(ApiError):
    """A `/workflow` graph that ComfyUI would refuse: every problem listed (node, input,
    allowed values)."""

    status, code = 400, "invalid_workflow"


class Unauthorized(ApiError):
    """A missing or wrong `Authorization: Bearer` token while RYLA_API_TOKEN is set."""

    status, code = 401, "unauthorized"


class LoraNotFound(ApiError):
    """No LoRA with that id in the store (`GET /loras` lists them)."""

    status, code = 404, "lora_not_found"


class NotFound(ApiError):
    """No such route or resource."""

    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    """A wrong method on a known route; the `Allow` header names the right ones."""

    status, code = 405, "method_not_allowed"


class JobAlreadyEnded(ApiError):
    """`DELETE /jobs/{id}` of a job that has already ended (its status stays), or that an
    earlier backend process started and this one is settling from ComfyUI's history."""

    status, code = 409, "job_ended"


class PayloadTooLarge(ApiError):
    """A body over the limit (RYLA_MAX_BODY_BYTES, default 32 MiB), or an image over its
    size or pixel limit."""

    status, code = 413, "payload_too_large"


class HeadersTooLarge(ApiError):
    status, code = 431, "headers_too_large"


class ComfyUIJobFailed(ApiError):
    """ComfyUI failed the job; its message is included."""

    status, code = 502, "comfyui_job_failed"


class ComfyUIUnavailable(ApiError):
    """ComfyUI cannot be reached (or did not answer) right now."""

    status, code = 503, "comfyui_unavailable"


class ModelNotInstalled(ApiError):
    """A model file the graph needs is not installed: which file, and how to download it."""

    status, code = 503, "model_not_installed"


class LoraNotPublished(ApiError):
    """An uploaded LoRA was saved but could not be published to the other containers (a
    Modal Volume commit failed, retried); upload it again."""

    status, code = 503, "lora_not_published"


class JobStopped(ApiError):
    """A job stopped before it finished. `confirmed`: ComfyUI said so (taken off its queue
    before it started, or its history says interrupted), or it never reached ComfyUI; False
    when ComfyUI's answer could not be had, so the outcome is unknown."""

    def __init__(self, message: str, field: str | None = None, *, confirmed: bool = True) -> None:
        super().__init__(message, field)
        self.confirmed = confirmed


class DeadlineExceeded(JobStopped):
    """The job did not finish within the deadline (RYLA_DEADLINE_S) and ComfyUI stopped it
    (or, unconfirmed, could not be asked)."""

    status, code = 504, "deadline_exceeded"


class JobCancelled(JobStopped):
    """Someone cancelled the job (DELETE /jobs/{id}, Stop, Ctrl-C) and ComfyUI stopped it."""

    status, code = 409, "cancelled"


class InternalError(ApiError):
    """A bug, never raised on purpose: the last resort of api.CatchAllMiddleware, in the
    same shape, and the connection stays usable."""

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
    """The API error with this error code (one raised on the other side of a process or
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
