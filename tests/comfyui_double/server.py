"""The ComfyUI test double's HTTP + WebSocket server (aiohttp, as ComfyUI itself). Test tool only.

`ComfyUIDouble` runs the server on a free loopback port in a background thread with its
own event loop, keeps the queue (one job at a time, in queue order, like ComfyUI; or up to
`workers` at once, see below), the history, the input/output folders and the "installed"
model files, and offers the fault injection the tests use. Routes and answers follow
tests/data/comfyui/api_examples.md.

`workers` (default 1) stands for a deployment with that many GPU containers behind one
URL: Modal scales the ComfyUI class out under load, and each container runs one ComfyUI
job at a time. With workers=N the first N queued jobs run at once (a hung job holds one
worker); it exists so tests can check that the API and its clients do not serialize
concurrent requests. /queue lists every running job in `queue_running`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import mimetypes
import platform
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.builders import free_port
from tests.comfyui_double import wire
from tests.comfyui_double.executor import (
    ExecutionFailed,
    JobContext,
    Stopped,
    run_job,
)
from workflows.manifest import MODEL_MANIFEST, installed_by_folder
from workflows.object_info import (FOLDER_ALIASES, comfyui_lists, load_object_info,
                                   with_installed_files)
from workflows.validate import PROMPT_LEVEL_KINDS, failed_outputs, validate_graph

COMFYUI_VERSION = "0.12.1"
# GET /models as upstream ComfyUI v0.12.1 with both node packs answers (api_examples.md).
MODEL_FOLDERS = [
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
    "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
    "gligen", "upscale_models", "latent_upscale_models", "custom_nodes", "hypernetworks",
    "photomaker", "classifiers", "model_patches", "audio_encoders", "instantid", "pulid",
    "insightface", "facexlib",
]
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}
MAX_WORKERS = 64  # the job thread pool's size; `workers` may not exceed it
_CLOSE = object()  # outbox sentinel: the server closes that socket


def default_installed() -> dict[str, list[str]]:
    """Every file of the model manifest, by ComfyUI folder."""
    installed: dict[str, list[str]] = {}
    for model in MODEL_MANIFEST:
        installed.setdefault(model.folder, []).append(model.local_name)
    return installed


@dataclass
class Job:
    """One queued prompt, as the tests see it in `double.jobs`."""

    prompt_id: str
    number: int
    graph: dict
    client_id: str | None
    outputs_to_run: list[str]
    create_time: int
    fail_message: str | None = None
    hang: bool = False
    drop_socket: bool = False
    hold: tuple[str, threading.Event] | None = None  # see ComfyUIDouble.hold_next
    status: str = "pending"  # pending, running, success, error, interrupted
    interrupt: threading.Event = field(default_factory=threading.Event, repr=False)
    running_node: list[str] = field(default_factory=list)  # [node id] while one runs


def _safe_join(root: Path, *parts: str) -> Path | None:
    """root/parts, or None when the parts climb out of root."""
    path = root.joinpath(*[p for p in parts if p]).resolve()
    return path if path.is_relative_to(root.resolve()) else None


class ComfyUIDouble:
    """A running ComfyUI test double. Not a ComfyUI: no model runs (see executor.py)."""

    def __init__(self, base_dir: Path | None = None, *, workers: int = 1,
                 extra_model_dirs: Mapping[str, Iterable[Path]] | None = None,
                 port: int | None = None) -> None:
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="comfyui-double-"))
        # ComfyUI's models directory: the backend fixtures share it, as the deployment's
        # backend and ComfyUI share the models Volume.
        self.models_dir = self.base_dir / "models"
        self.input_dir = self.base_dir / "input"
        self.output_dir = self.base_dir / "output"
        self.temp_dir = self.base_dir / "temp"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.step_delay = 0.0  # seconds per node and per sampler step, to watch concurrency
        # sampler steps send latent previews, as a ComfyUI started with --preview-method
        self.previews = True
        self.jobs: list[Job] = []
        self._snapshot = load_object_info()
        self._workers = 1
        self.workers = workers
        # Like ComfyUI's extra_model_paths.yaml: configuration, so reset() keeps them.
        self.extra_model_dirs: dict[str, list[Path]] = {}
        for folder, paths in (extra_model_dirs or {}).items():
            for path in paths:
                self.add_model_dir(folder, path)
        # Threads start lazily, so a pool of MAX_WORKERS costs nothing at workers=1.
        self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS,
                                        thread_name_prefix="comfyui-double-job")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="comfyui-double")
        self._runner: web.AppRunner | None = None
        self._clear_state()

    # --- lifecycle ----------------------------------------------------------------------

    def _clear_state(self) -> None:
        for folder in (self.input_dir, self.output_dir, self.temp_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
        self.set_installed(default_installed())
        self.history: dict[str, dict] = {}
        self.pending: collections.deque[Job] = collections.deque()
        self.running_jobs: list[Job] = []  # in start order
        self._tasks: set[asyncio.Task] = set()
        self.sockets: dict[str, tuple[web.WebSocketResponse, asyncio.Queue]] = {}
        # client ids that sent feature flags with supports_preview_metadata
        self.preview_metadata: set[str] = set()
        self._faults = {"fail": None, "hang": False, "drop": False, "hold": None}
        # one-shot faults of the server itself (not of a job); see freeze_next_prompt and
        # start_pending_during_next_queue_read
        self._freeze_next_prompt_s = 0.0
        self._stale_next_queue_read = False
        self._number = 0

    def start(self) -> ComfyUIDouble:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)
        return self

    async def _serve(self) -> None:
        self._wakeup = asyncio.Event()
        self._runner = web.AppRunner(build_app(self), handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._worker = asyncio.create_task(self._work())

    def stop(self) -> None:
        self._interrupt_everything()
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    async def _shutdown(self) -> None:
        self._worker.cancel()
        await self._drain()  # jobs were interrupted: they end at their next step
        for ws, _ in list(self.sockets.values()):
            await ws.close()
        await self._runner.cleanup()

    def reset(self) -> None:
        """Back to a fresh double: no jobs, history, files or faults; every manifest model
        file installed (an empty placeholder); one worker. Extra model dirs stay (they are
        the deployment's configuration)."""
        self._interrupt_everything()
        if self._thread.is_alive():
            # Interrupted jobs end at their next step; wait, so none lands in the new history.
            asyncio.run_coroutine_threadsafe(self._drain(), self._loop).result(timeout=30)

        def clear() -> None:
            self.jobs.clear()
            self._clear_state_keep_sockets()

        self._call_in_loop(clear)
        self.step_delay = 0.0
        self.previews = True
        self.workers = 1

    async def _drain(self) -> None:
        while self._tasks:
            # Interrupt again each round: a job may have started since the last one.
            for job in self.running_jobs:
                job.interrupt.set()
            await asyncio.wait(set(self._tasks))

    def _clear_state_keep_sockets(self) -> None:
        sockets, tasks, flags = self.sockets, self._tasks, self.preview_metadata
        self._clear_state()
        self.sockets, self._tasks, self.preview_metadata = sockets, tasks, flags

    def _interrupt_everything(self) -> None:
        def stop_jobs() -> None:
            for job in self.pending:
                job.status = "interrupted"
            self.pending.clear()
            for job in self.running_jobs:
                job.interrupt.set()

        self._call_in_loop(stop_jobs)

    def _call_in_loop(self, fn: Any) -> None:
        if not self._thread.is_alive():
            fn()
            return

        async def call() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    # --- what tests set -----------------------------------------------------------------

    @property
    def workers(self) -> int:
        """How many queued jobs run at once (GPU containers of one deployment)."""
        return self._workers

    @workers.setter
    def workers(self, count: int) -> None:
        if not 1 <= count <= MAX_WORKERS:
            raise ValueError(f"workers must be 1..{MAX_WORKERS}, got {count}")
        self._workers = count
        if getattr(self, "_wakeup", None) is not None and self._thread.is_alive():
            # More workers may start pending jobs now.
            self._loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def running(self) -> Job | None:
        """The first running job (the only one at workers=1), or None."""
        return self.running_jobs[0] if self.running_jobs else None

    def add_model_dir(self, folder: str, path: Path) -> None:
        """List the model files under `path` in models folder `folder`, read at each
        request (as ComfyUI's extra_model_paths.yaml adds a directory to a folder)."""
        if folder not in MODEL_FOLDERS:
            raise ValueError(f"{folder!r} is not a ComfyUI models folder")
        paths = self.extra_model_dirs.setdefault(folder, [])
        if Path(path) not in paths:
            paths.append(Path(path))

    def model_files(self) -> dict[str, list[str]]:
        """What GET /models/<folder> lists, by folder: the files with a model extension
        (never antelopev2's .onnx) in models_dir/<folder>, its legacy directory
        (models/clip for text_encoders, models/unet for diffusion_models) and the extra
        dirs, read now, as upstream ComfyUI's folder_paths does."""
        files: dict[str, list[str]] = {}
        for folder in MODEL_FOLDERS:
            dirs = [self.models_dir / name for name in (folder, *FOLDER_ALIASES.get(folder, ()))]
            dirs += self.extra_model_dirs.get(folder, [])
            files[folder] = sorted({p.relative_to(d).as_posix() for d in dirs if d.is_dir()
                                    for p in d.rglob("*")
                                    if p.is_file() and comfyui_lists(p.name)})
        return files

    @property
    def installed(self) -> dict[str, list[str]]:
        """Every file in models_dir by folder, .onnx included (what set_installed wrote)."""
        return {folder: names for folder, names in installed_by_folder(self.models_dir).items()
                if names}

    def fail_next(self, message: str = "simulated failure") -> None:
        """The next queued job fails while executing (`execution_error` with this message)."""
        self._faults["fail"] = message

    def hang_next(self) -> None:
        """The next queued job never finishes until POST /interrupt (it holds a worker:
        at workers=1 it blocks the queue)."""
        self._faults["hang"] = True

    def hold_next(self, class_type: str) -> threading.Event:
        """In the next queued job, nodes of `class_type` run until the returned event is
        set and cannot be interrupted meanwhile, like a ComfyUI node that never checks
        (SaveAnimatedPNG compressing, a large EmptyImage): ComfyUI looks for an interrupt
        only before a node starts and inside sampler steps."""
        release = threading.Event()
        self._faults["hold"] = (class_type, release)
        return release

    def drop_socket_next(self) -> None:
        """The server closes the websocket of the next job's client mid-job; the job still
        finishes and lands in /history."""
        self._faults["drop"] = True

    def freeze(self, seconds: float) -> None:
        """Block the server's event loop for `seconds`, as a ComfyUI stuck in a long
        synchronous call: connections are accepted by the kernel, nothing is answered."""
        self._loop.call_soon_threadsafe(time.sleep, seconds)

    def freeze_next_prompt(self, seconds: float) -> None:
        """The next POST /prompt freezes the whole server for `seconds` before it queues
        the job and answers (too late for a client with a shorter deadline)."""
        self._freeze_next_prompt_s = seconds

    def start_pending_during_next_queue_read(self) -> None:
        """The next GET /queue answers what the queue held when it was asked, but before the
        answer goes out the first pending job starts (one more worker): the answer is stale,
        as when a job starts between a client's read of /queue and its next request."""
        self._stale_next_queue_read = True

    def set_installed(self, installed: Mapping[str, Iterable[str]]) -> None:
        """Replace the installed model files (ComfyUI folder -> file names) with empty
        placeholders of those names in models_dir."""
        shutil.rmtree(self.models_dir, ignore_errors=True)
        self.models_dir.mkdir(parents=True)
        for folder, names in installed.items():
            for name in names:
                path = self.models_dir / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()

    def input_images(self) -> list[str]:
        return sorted(str(p.relative_to(self.input_dir)) for p in self.input_dir.rglob("*")
                      if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)

    def object_info(self) -> dict:
        """The snapshot as this double's installed files and uploads make it."""
        return with_installed_files(self._snapshot, self.model_files(), self.input_images())

    # --- queue (runs on the event loop) --------------------------------------------------

    def enqueue(self, graph: dict, client_id: str | None, prompt_id: str,
                outputs_to_run: list[str]) -> Job:
        job = Job(prompt_id=prompt_id, number=self._number, graph=graph, client_id=client_id,
                  outputs_to_run=outputs_to_run, create_time=wire.now_ms(),
                  fail_message=self._faults["fail"], hang=self._faults["hang"],
                  drop_socket=self._faults["drop"], hold=self._faults["hold"])
        self._faults = {"fail": None, "hang": False, "drop": False, "hold": None}
        self._number += 1
        self.jobs.append(job)
        self.pending.append(job)
        self.broadcast(wire.status_msg(self.queue_remaining()))
        self._wakeup.set()
        return job

    def queue_remaining(self) -> int:
        return len(self.pending) + len(self.running_jobs)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """No prompt_id: every running job; else that one, if it runs."""
        for job in self.running_jobs:
            if prompt_id is None or prompt_id == job.prompt_id:
                job.interrupt.set()

    async def _work(self) -> None:
        # The dispatcher: starts pending jobs in queue order while a worker is free.
        while True:
            if not self.pending or len(self.running_jobs) >= self.workers:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            job = self.pending.popleft()
            self.running_jobs.append(job)
            job.status = "running"
            task = self._loop.create_task(self._run_one(job))
            self._tasks.add(task)

    async def _run_one(self, job: Job) -> None:
        try:
            await self._run(job)
        finally:
            # reset() may have cleared the list while the job ran.
            if job in self.running_jobs:
                self.running_jobs.remove(job)
            self._tasks.discard(asyncio.current_task())
            self.broadcast(wire.status_msg(self.queue_remaining()))
            self._wakeup.set()

    async def _run(self, job: Job) -> None:
        self.broadcast(wire.status_msg(self.queue_remaining()))
        emit = self._job_emitter(job)
        # ComfyUI's history keeps [type, data] of these messages, in order.
        kept = [wire.execution_start(job.prompt_id), wire.execution_cached(job.prompt_id)]
        for message in kept:
            emit(message)
        ctx = JobContext(prompt_id=job.prompt_id, graph=job.graph,
                         outputs_to_run=job.outputs_to_run, object_info=self._snapshot,
                         input_dir=self.input_dir, output_dir=self.output_dir,
                         temp_dir=self.temp_dir, emit=emit, interrupt=job.interrupt,
                         preview=self._previewer(job, emit) if self.previews else None,
                         step_delay=self.step_delay, fail_message=job.fail_message,
                         hang=job.hang, hold=job.hold, running_node=job.running_node)
        try:
            result = await self._loop.run_in_executor(self._pool, run_job, ctx)
        except Stopped as stopped:
            # Upstream keeps what the output nodes saved before the failure or interrupt,
            # and writes status_str "error", completed false, for both.
            outputs = stopped.outputs
            meta = {node_id: wire.output_meta(node_id) for node_id in outputs}
            if isinstance(stopped.cause, ExecutionFailed):
                failed = stopped.cause
                job.status = "error"
                node_inputs = job.graph[failed.node_id]["inputs"]
                final = wire.execution_error(
                    job.prompt_id, failed.node_id, failed.node_type, [], failed.message,
                    failed.exception_type,
                    [f'  File "<comfyui-double>/executor.py", in {failed.node_type}\n'],
                    {k: [v] for k, v in node_inputs.items() if not isinstance(v, list)},
                    list(dict.fromkeys(job.outputs_to_run + [failed.node_id])))
            else:
                job.status = "interrupted"
                final = wire.execution_interrupted(job.prompt_id, stopped.cause.node_id,
                                                   stopped.cause.node_type, [])
            self._record(job, outputs, "error", kept + [final], meta)
            emit(final)
        else:
            job.status = "success"
            meta = {node_id: wire.output_meta(node_id) for node_id in result.outputs}
            final = wire.execution_success(job.prompt_id)
            self._record(job, result.outputs, "success", kept + [final], meta)
            emit(final)
        # upstream's prompt worker ends every prompt so, whatever its outcome
        emit(wire.executing(job.prompt_id, None))

    def _record(self, job: Job, outputs: dict, status_str: str, messages: list[dict],
                meta: dict) -> None:
        # Stored before the final message goes out, so a client that reads /history on
        # execution_success always finds the job.
        self.history[job.prompt_id] = wire.history_entry(
            job.number, job.prompt_id, job.graph, job.client_id, job.create_time,
            job.outputs_to_run, outputs, status_str, messages, meta)

    # --- websocket messages ----------------------------------------------------------------

    def _job_emitter(self, job: Job):  # noqa: ANN202 - a closure
        dropped = False

        def put() -> None:
            nonlocal dropped
            message = pending_message.popleft()
            self.send_to(job.client_id, message)
            if (job.drop_socket and not dropped and isinstance(message, dict)
                    and message["type"] == "executing"):
                dropped = True
                self.close_socket(job.client_id)

        pending_message: collections.deque[dict | bytes] = collections.deque()

        def emit(message: dict | bytes) -> None:
            # Any thread: queued in order onto the loop.
            pending_message.append(message)
            self._loop.call_soon_threadsafe(put)

        return emit

    def _previewer(self, job: Job, emit):  # noqa: ANN202 - a closure
        """Frames a step's preview for the job's client: with its prompt id when the
        client asked for metadata, else the older frame; both in the job's message order."""

        def preview(node_id: str, jpeg: bytes) -> None:
            if job.client_id in self.preview_metadata:
                emit(wire.preview_frame_with_metadata(jpeg, job.prompt_id, node_id))
            else:
                emit(wire.preview_frame(jpeg))

        return preview

    def send_to(self, client_id: str | None, message: dict | bytes) -> None:
        if client_id in self.sockets:
            self.sockets[client_id][1].put_nowait(message)

    def close_socket(self, client_id: str | None) -> None:
        entry = self.sockets.pop(client_id, None)
        if entry is not None:
            entry[1].put_nowait(_CLOSE)

    def broadcast(self, message: dict) -> None:
        # Through call_soon like the job messages, so every socket sees one order.
        def put() -> None:
            for _, outbox in self.sockets.values():
                outbox.put_nowait(message)

        self._loop.call_soon_threadsafe(put)


# --- routes --------------------------------------------------------------------------------

def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def build_app(double: ComfyUIDouble) -> web.Application:
    routes = web.RouteTableDef()

    @routes.post("/prompt")
    async def post_prompt(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
        except ValueError:
            # ComfyUI lets the decode error escape: aiohttp's plain-text 500.
            return web.Response(status=500, text="500 Internal Server Error\n\n"
                                                 "Server got itself in trouble")
        if not isinstance(body, dict) or "prompt" not in body:
            return _json(wire.no_prompt_body(), 400)
        if double._freeze_next_prompt_s:
            seconds, double._freeze_next_prompt_s = double._freeze_next_prompt_s, 0.0
            time.sleep(seconds)  # blocks the loop: every request waits, as in a frozen ComfyUI
        graph = body["prompt"]
        problems = validate_graph(graph, double.object_info())
        outputs = [n for n, node in graph.items()
                   if double._snapshot[node["class_type"]].get("output_node") is True] \
            if not any(p.kind in PROMPT_LEVEL_KINDS for p in problems) else []
        to_run = [o for o in outputs if o not in failed_outputs(problems)]
        if not to_run:
            return _json(wire.validation_failure_body(problems), 400)
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        job = double.enqueue(graph, body.get("client_id"), prompt_id, to_run)
        return _json(wire.queued_body(prompt_id, job.number, problems))

    @routes.get("/ws")
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        outbox: asyncio.Queue = asyncio.Queue()
        double.sockets[sid] = (ws, outbox)
        outbox.put_nowait(wire.status_msg(double.queue_remaining(), sid=sid))

        async def send_all() -> None:
            while True:
                message = await outbox.get()
                if message is _CLOSE:
                    await ws.close()
                    return
                if isinstance(message, bytes):
                    await ws.send_bytes(message)  # a preview frame
                else:
                    await ws.send_str(json.dumps(message))

        sender = asyncio.create_task(send_all())
        first = True
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
                if message.type == WSMsgType.TEXT and first:
                    # upstream reads feature flags from a client's first message only
                    first = False
                    try:
                        data = json.loads(message.data)
                    except ValueError:
                        continue
                    if isinstance(data, dict) and data.get("type") == "feature_flags":
                        flags = data.get("data") if isinstance(data.get("data"), dict) else {}
                        if flags.get("supports_preview_metadata") is True:
                            double.preview_metadata.add(sid)
                        outbox.put_nowait(wire.server_feature_flags())
        finally:
            sender.cancel()
            if double.sockets.get(sid, (None,))[0] is ws:
                del double.sockets[sid]
                double.preview_metadata.discard(sid)
        return ws

    @routes.get("/history")
    async def history_all(request: web.Request) -> web.Response:
        items = list(double.history.items())
        max_items = request.query.get("max_items", "")
        if max_items.isdigit():
            items = items[-int(max_items):] if int(max_items) else []
        return _json(dict(items))

    @routes.get("/history/{prompt_id}")
    async def history_one(request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = double.history.get(prompt_id)
        return _json({prompt_id: entry} if entry is not None else {})

    @routes.get("/view")
    async def view(request: web.Request) -> web.StreamResponse:
        roots = {"input": double.input_dir, "output": double.output_dir,
                 "temp": double.temp_dir}
        root = roots.get(request.query.get("type", "output"))
        filename = request.query.get("filename", "")
        path = _safe_join(root, request.query.get("subfolder", ""), filename) \
            if root is not None and filename else None
        if path is None or not path.is_file():
            return web.Response(status=404)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return web.Response(body=path.read_bytes(), content_type=content_type)

    @routes.post("/upload/image")
    async def upload_image(request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if image is None or not hasattr(image, "file"):
            return web.Response(status=400)
        kind = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        root = {"input": double.input_dir, "temp": double.temp_dir,
                "output": double.output_dir}.get(kind, double.input_dir)
        folder = _safe_join(root, subfolder)
        if folder is None:
            return web.Response(status=400)
        folder.mkdir(parents=True, exist_ok=True)
        data = image.file.read()
        name = Path(image.filename).name
        overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
        path = folder / name
        duplicate = False
        if not overwrite:
            # ComfyUI keeps an identical file untouched (a job may be reading it) and
            # renames a different one "name (1).ext".
            stem, suffix, index = path.stem, path.suffix, 1
            while path.exists():
                if path.read_bytes() == data:
                    duplicate = True
                    break
                path = folder / f"{stem} ({index}){suffix}"
                index += 1
        if not duplicate:
            path.write_bytes(data)
        return _json({"name": path.name, "subfolder": subfolder, "type": kind})

    @routes.get("/object_info")
    async def object_info(request: web.Request) -> web.Response:
        return _json(double.object_info())

    @routes.get("/object_info/{node_class}")
    async def object_info_one(request: web.Request) -> web.Response:
        node_class = request.match_info["node_class"]
        info = double.object_info()
        return _json({node_class: info[node_class]} if node_class in info else {})

    @routes.get("/queue")
    async def queue(request: web.Request) -> web.Response:
        def entry(job: Job) -> list:
            return [job.number, job.prompt_id, job.graph,
                    {"client_id": job.client_id, "create_time": job.create_time},
                    job.outputs_to_run]

        answer = {"queue_running": [entry(job) for job in double.running_jobs],
                  "queue_pending": [entry(job) for job in double.pending]}
        if double._stale_next_queue_read and double.pending:
            double._stale_next_queue_read = False
            starting = double.pending[0]
            double.workers = len(double.running_jobs) + 1
            while starting.status == "pending" and starting in double.pending:
                await asyncio.sleep(0.005)  # the dispatcher starts it
        return _json(answer)

    @routes.post("/queue")
    async def edit_queue(request: web.Request) -> web.Response:
        # ComfyUI: {"clear": true} empties the pending queue, {"delete": [ids]} takes those
        # pending prompts off it. A running prompt is left alone (that is /interrupt).
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        doomed = set(body.get("delete") or [])
        keep = [job for job in double.pending
                if not body.get("clear") and job.prompt_id not in doomed]
        double.pending.clear()
        double.pending.extend(keep)
        return web.Response(status=200)

    @routes.post("/interrupt")
    async def interrupt(request: web.Request) -> web.Response:
        body: dict = {}
        if request.can_read_body:
            try:
                body = json.loads(await request.text() or "{}")
            except ValueError:
                body = {}
        double.interrupt(body.get("prompt_id") if isinstance(body, dict) else None)
        return web.Response(status=200)

    @routes.get("/system_stats")
    async def system_stats(request: web.Request) -> web.Response:
        return _json({
            "system": {"os": platform.system().lower(), "python_version": platform.python_version(),
                       "embedded_python": False, "comfyui_version": COMFYUI_VERSION,
                       "pytorch_version": "none (ComfyUI test double)", "argv": ["--cpu"],
                       "ram_total": 0, "ram_free": 0},
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 0,
                         "vram_free": 0, "torch_vram_total": 0, "torch_vram_free": 0}],
        })

    @routes.get("/models")
    async def models(request: web.Request) -> web.Response:
        return _json(MODEL_FOLDERS)

    @routes.get("/models/{folder}")
    async def models_in(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        return _json(sorted(double.model_files().get(folder, [])))

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(routes)
    return app
