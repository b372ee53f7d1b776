"""The HTTP API: routes, error shapes, auth, body limits, generation headers.

Same app locally (`ryla-backend`) and on Modal. Every error is
`{"error": {"code", "message", "field"}}`; never a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.analytics import Analytics
from backend.comfyui_client import ComfyUIClient
from backend.errors import (BY_STATUS, ApiError, InternalError, InvalidRequest, MethodNotAllowed,
                            NotFound, PayloadTooLarge, Unauthorized)
from backend.openapi import document_api
from backend.generation import Generation, Generator, json_body
from backend.graph_runner import ComfyUIRunner, GraphRunner
from backend.jobs import (JobManager, job_view, parse_last_event_id, parse_list_query,
                          prefers_async)
from backend.lora_store import LoraStore
from backend.memory import pin_mmap_threshold
from backend.records import JobRecords
from backend.recovery import Recovery
from backend.request_errors import to_invalid_request
from backend.settings import Settings
from backend.warmup import installed_file, pipeline_readiness
from workflows.manifest import MODEL_MANIFEST
from workflows.registry import ROUTES, Route

log = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/health"})


def _error_response(exc: ApiError, status: int | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    request_id = getattr(exc, "request_id", None)
    if request_id:
        headers["X-Request-Id"] = request_id
    return JSONResponse(exc.to_body(), status_code=status or exc.status, headers=headers)


async def _send_error(send: Send, exc: ApiError) -> None:
    response = _error_response(exc)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class BodyTooLarge(StarletteHTTPException):
    """Raised from inside receive(); an HTTPException so that FastAPI's body parsing
    lets it through instead of calling it a parse error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit}-byte limit")


class BodyLimitMiddleware:
    """413 before a too-large body is read: by Content-Length up front, else counted as
    it streams in."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _send_error(send, InvalidRequest("the Content-Length header is not a number"))
                return
            if int(length) > limit:
                await _send_error(send, PayloadTooLarge(
                    f"the request body is {int(length)} bytes; the limit for {scope['path']} "
                    f"is {limit} bytes"))
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


class CatchAllMiddleware:
    """An unexpected exception becomes the SPEC's 500 body, and the exception stops here.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then drops
    the keep-alive connection without a word, so a pooled client's next request fails.
    Stopping the exception here keeps the connection usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last resort, logged in full
            if started:
                raise  # half a response is out: only closing the connection is honest
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await _send_error(send, InternalError(
                f"unexpected {type(exc).__name__}; the server log has the details"))


class BearerAuthMiddleware:
    """With RYLA_API_TOKEN set, every path but /health needs `Authorization: Bearer`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        # constant time: the comparison must not reveal how much of a guess was right
        if not hmac.compare_digest(given, self.expected):
            why = "missing" if not given else "wrong"
            await _send_error(send, Unauthorized(
                f"the Authorization header is {why}: send `Authorization: Bearer <RYLA_API_TOKEN>`"))
            return
        await self.app(scope, receive, send)


def _backend_version() -> str:
    try:
        return version("ryla-studio")
    except PackageNotFoundError:
        return "unknown"


def _generation_response(request: Request, gen: Generation) -> Response:
    headers = {"X-Request-Id": gen.request_id, "X-Seed": str(gen.seed),
               "X-Generation-Time-Ms": str(round(gen.timings.get("total_ms", 0.0)))}
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(json_body(gen), headers=headers)
    first = gen.outputs[0]
    return Response(first.data, media_type=first.content_type, headers=headers)


def create_app(settings: Settings | None = None, runner: GraphRunner | None = None) -> FastAPI:
    """The API. `runner` runs the graphs: by default a ComfyUI at settings.comfyui_url
    (`ryla-backend`); the Modal web tier passes one that calls a GPU function."""
    settings = settings or Settings.from_env()
    pin_mmap_threshold()  # large image buffers go back to the system when freed
    if runner is None:
        runner = ComfyUIRunner(ComfyUIClient(settings.comfyui_url, models_dir=settings.models_dir,
                                             lora_dir=settings.lora_dir))
    loras = LoraStore(settings.lora_dir)
    analytics = Analytics(settings.posthog_api_key, settings.posthog_host)
    records = JobRecords(settings.data_dir)
    generator = Generator(settings, runner, loras, analytics)
    jobs = JobManager(generator, records, deadline_s=settings.deadline_s)

    # Only a ComfyUI this process can reach can say what became of jobs an earlier process
    # left running (on Modal each GPU container's ComfyUI goes with the container).
    recovery = Recovery(records, runner.comfy) if isinstance(runner, ComfyUIRunner) else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settling = None
        if recovery is not None:
            # Taken before the first request: only records an earlier process left running.
            left = await asyncio.to_thread(records.left_running)
            settling = asyncio.create_task(recovery.run(left))
        yield
        if settling is not None:
            settling.cancel()
        await jobs.aclose()
        await runner.aclose()
        await asyncio.to_thread(analytics.shutdown)

    app = FastAPI(title="RYLA Studio backend", version=_backend_version(), lifespan=lifespan)
    document_api(app)

    def limit_for(path: str) -> int:
        return settings.max_lora_bytes if path == "/loras" else settings.max_body_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    if settings.api_token:
        app.add_middleware(BearerAuthMiddleware, token=settings.api_token)
    app.add_middleware(CatchAllMiddleware)  # added last: the outermost of ours
    _add_error_handlers(app)
    for route in ROUTES.values():
        _add_generation_route(app, route, jobs)
    _add_job_routes(app, jobs)
    _add_info_routes(app, settings, runner, loras)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as the SPEC's body: ours, pydantic's (400 naming the field), Starlette's
    404/405 (with Allow); anything unexpected is CatchAllMiddleware's (500, no traceback)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        route = ROUTES.get(request.url.path)
        model = route.request_model if route is not None else None
        return _error_response(to_invalid_request(list(exc.errors()), model))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error: ApiError = BY_STATUS[404](
                f"no route {request.method} {request.url.path}; the routes are "
                f"{', '.join(sorted(ROUTES))}, /jobs, /loras, /models, /health, /warm")
        elif exc.status_code == 405:
            allow = _allowed_methods(app, request.url.path)
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}; "
                                     f"use {' or '.join(allow)}")
            response = _error_response(error)
            response.headers["Allow"] = ", ".join(allow)
            return response
        else:
            error = BY_STATUS.get(exc.status_code, InvalidRequest)(str(exc.detail))
        return _error_response(error, status=exc.status_code)


def _add_generation_route(app: FastAPI, route: Route, jobs: JobManager) -> None:
    """POST route.path with route.request_model as its body: one OpenAPI operation per
    route, named after its `ryla` command, its request model as the body schema.

    Every call is a job owned by `jobs`, not by this request: a caller that goes away
    loses nothing. `Prefer: respond-async` (RFC 7240) answers 202 at once; without it the
    request waits for its job and answers as it always has."""

    async def endpoint(body: BaseModel, request: Request) -> Response:
        job = await jobs.submit(route, body)
        if prefers_async(request.headers.get("prefer")):
            return JSONResponse(job_view(job.record), status_code=202, headers={
                "Location": f"/jobs/{job.id}", "Preference-Applied": "respond-async",
                "X-Request-Id": job.id})
        return _generation_response(request, await jobs.outcome(job))

    # FastAPI reads the body's model from the signature: give it this route's model.
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=route.request_model),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
    ], return_annotation=Response)
    app.add_api_route(route.path, endpoint, methods=["POST"], name=route.command.replace("-", "_"),
                      summary=route.help, description=inspect.cleandoc(route.request_model.__doc__ or ""))


def _add_job_routes(app: FastAPI, jobs: JobManager) -> None:
    """GET /jobs, GET/DELETE /jobs/{id}, its events and outputs (SPEC "Jobs"). Query and
    path values are plain strings checked here, so that a bad one is a 400 (or 404)
    naming it, in the SPEC's words, rather than FastAPI's 422."""

    @app.get("/jobs")
    async def list_jobs(status: str | None = None, limit: str | None = None) -> dict[str, Any]:
        wanted, count = parse_list_query(status, limit)
        return {"jobs": await jobs.list(wanted, count)}

    @app.get("/jobs/{job_id}")
    async def get_job(job_id: str) -> dict[str, Any]:
        return await jobs.get(job_id)

    @app.delete("/jobs/{job_id}", status_code=202)
    async def cancel_job(job_id: str) -> JSONResponse:
        # 202: the cancel is asked for; the status follows what ComfyUI confirms
        return JSONResponse(await jobs.cancel(job_id), status_code=202)

    @app.get("/jobs/{job_id}/outputs/{n}")
    async def job_output(job_id: str, n: str) -> Response:
        if not n.isdigit():
            raise NotFound(f"output {n!r} of job {job_id}: outputs are numbered from 0",
                           field="n")
        path, media_type = await jobs.output(job_id, int(n))
        if not await asyncio.to_thread(path.is_file):
            raise NotFound(f"output {n} of job {job_id} is no longer on disk ({path.name}); "
                           "was RYLA_DATA_DIR cleaned?", field="n")
        return FileResponse(path, media_type=media_type)

    @app.get("/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request) -> EventSourceResponse:
        after = parse_last_event_id(request.headers.get("last-event-id"))
        await jobs.get(job_id)  # an unknown id is a 404 before the stream starts

        async def stream() -> AsyncIterator[ServerSentEvent]:
            async for event in jobs.events(job_id, after):
                yield ServerSentEvent(data=json.dumps(event.data), event=event.event,
                                      id=str(event.id))

        # sse-starlette frames the events and sends a comment every 15 s, so that proxies
        # keep a quiet stream (a long sampler step) open
        return EventSourceResponse(stream(), ping=15)


def _add_info_routes(app: FastAPI, settings: Settings, runner: GraphRunner,
                     loras: LoraStore) -> None:
    """The LoRA store, the model files and health."""

    @app.get("/loras")
    async def list_loras() -> list[dict[str, Any]]:
        return [info.__dict__ for info in await asyncio.to_thread(loras.list)]

    @app.post("/loras")
    async def upload_lora(id: str = Form(...), file: UploadFile = File(...),
                          trigger_word: str = Form("")) -> dict[str, Any]:
        info = await asyncio.to_thread(loras.save, id, file.file, trigger_word)
        runner.loras_changed()
        return info.__dict__

    @app.get("/models")
    async def models() -> list[dict[str, Any]]:
        return await asyncio.to_thread(_models_report, settings)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        # never runs a graph: the studio asks this every few seconds, and on Modal it
        # must not wake a GPU (the runner reads a heartbeat instead)
        # pipelines: which have every model file installed (a deployment may hold a subset)
        return {"status": "ok", "version": _backend_version(), **await runner.health(),
                "pipelines": await asyncio.to_thread(pipeline_readiness, settings.models_dir)}

    # HEAD for uptime checkers: the same answer without its body, left out of the schema
    # (one operation per path and method there)
    app.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)

    @app.post("/warm", status_code=202, summary="Ask for a GPU to get ready now")
    async def warm() -> dict[str, Any]:
        # the studio calls this when a creator opens it or starts typing, so that a cold GPU
        # starts meanwhile; nothing waits for it (locally it only reports ComfyUI's state)
        return await runner.warm()


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route takes on `path` (GET and POST /loras are two routes)."""
    methods: set[str] = set()
    for route in app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _models_report(settings: Settings) -> list[dict[str, Any]]:
    report = []
    for entry in MODEL_MANIFEST:
        found = installed_file(entry, settings.models_dir)
        report.append({
            "repo_id": entry.repo_id, "filename": entry.filename, "folder": entry.folder,
            "local_name": entry.local_name, "size_bytes": entry.size_bytes,
            "gated": entry.gated, "pipelines": list(entry.pipelines),
            "status": "present" if found else "missing", "present": found is not None,
            "path": str(found) if found else str(settings.models_dir / entry.folder / entry.local_name),
            "installed_bytes": found.stat().st_size if found else 0,
        })
    return report


