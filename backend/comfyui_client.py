"""The ComfyUI client: upload input images, queue a graph, follow it on /ws (progress and
previews), fetch its outputs; stop it in ComfyUI when cancelled or past its deadline, and
end it as ComfyUI says it ended.

Everything is asyncio (httpx + websockets), so one event loop serves many concurrent
API requests while ComfyUI works through its queue one job at a time. A dropped socket
falls back to polling /history, so a finished output is never lost.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import mimetypes
import struct
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import httpx
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from backend.errors import (ApiError, ComfyUIJobFailed, ComfyUIUnavailable, DeadlineExceeded,
                            JobCancelled, ModelNotInstalled)
from backend.graph_errors import (install_hint, is_missing_model, problems_from_comfyui,
                                  to_api_error)
from backend.snapshot_validation import snapshot_object_info
from workflows.object_info import (FOLDER_ALIASES, IMPLICIT_MODEL_FILES, comfyui_lists,
                                   load_object_info, with_input_images)
from workflows.validate import nodes_to_execute, output_node_classes, validate_graph

log = logging.getLogger(__name__)

OBJECT_INFO_TTL_S = 60.0
POLL_START_S, POLL_MAX_S = 0.1, 1.0
# Stopping: each request gets a short timeout and is asked again with backoff while
# ComfyUI does not answer, for up to CANCEL_WATCH_S, until /queue and /history say how
# the prompt ended (a POST /prompt that timed out may still land in ComfyUI's queue).
CANCEL_REQUEST_TIMEOUT_S = 2.0
CANCEL_WATCH_S = 600.0
CANCEL_WATCH_MAX_INTERVAL_S = 2.0
HEALTH_TIMEOUT_S = 1.0  # /health answers within about this, whatever ComfyUI does
HEALTH_SHARED_S = 0.5  # /health callers within this of a probe's start share its answer
UNREACHABLE_POLLS = 5  # consecutive failed history polls before ComfyUI counts as gone
OUTPUT_KINDS = ("images", "gifs", "videos", "video", "animated_images", "files")
PREVIEW_INTERVAL_S = 0.5  # at most one preview per job this often; the newest wins
PREVIEW_MAX_SIDE = 384  # previews are re-encoded this small (ComfyUI sends up to 512 px)
PREVIEW_JPEG_QUALITY = 75
# ComfyUI's binary /ws frames (its protocol.BinaryEventTypes): a big-endian uint32 event
# type, then for PREVIEW_IMAGE a uint32 image type (1 JPEG, 2 PNG) and the image; for
# PREVIEW_IMAGE_WITH_METADATA a uint32 length, that much JSON (prompt_id, node_id,
# image_type) and the image.
PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA = 1, 4
# The first message a client may send on /ws: ComfyUI then sends previews with metadata.
FEATURE_FLAGS = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}


@dataclass(frozen=True)
class JobProgress:
    """ComfyUI's progress, normalized for the whole graph."""

    fraction: float  # 0..1 over every node the prompt executes (cached nodes count as done)
    step: int | None = None  # the current sampler step (ComfyUI `progress` value) or None
    steps: int | None = None  # its max, or None
    node: str | None = None  # the node executing now


@dataclass(frozen=True)
class JobPreview:
    """A latent preview ComfyUI sent (binary /ws frame), throttled."""

    step: int | None
    jpeg: bytes  # always JPEG (re-encoded if ComfyUI sent PNG), small


JobEventSink = Callable[[JobProgress | JobPreview], None]  # called on the event loop, must not block


@dataclass(frozen=True)
class OutputFile:
    node_id: str
    filename: str
    content_type: str
    data: bytes

    @property
    def extension(self) -> str:
        return Path(self.filename).suffix.lstrip(".").lower() or "bin"


@dataclass
class JobResult:
    prompt_id: str
    outputs: list[OutputFile]
    followed_by: str  # "websocket" or "history": how the end of the job was seen
    timings: dict[str, float] = field(default_factory=dict)
    # stopped (cancel or deadline) while a node that cannot be interrupted ran, and
    # ComfyUI finished the job anyway: these are its outputs
    stopped_late: bool = False


def new_prompt_id() -> str:
    """A prompt id chosen by the backend: recorded before queueing, sent in POST /prompt
    (ComfyUI takes a client's `prompt_id`), so a job can be found and cancelled even when
    ComfyUI's answer never arrives."""
    return str(uuid.uuid4())


def queue_ids(queue: Any) -> tuple[set[str], set[str]]:
    """(running, pending) prompt ids of a GET /queue answer."""
    def ids(key: str) -> set[str]:
        items = queue.get(key) if isinstance(queue, dict) else None
        return {str(item[1]) for item in items or [] if isinstance(item, list) and len(item) > 1}

    return ids("queue_running"), ids("queue_pending")


def _ws_url(base_url: str, client_id: str) -> str:
    scheme = "wss" if base_url.startswith("https") else "ws"
    return f"{scheme}://{base_url.split('://', 1)[1].rstrip('/')}/ws?clientId={client_id}"


def history_error(entry: dict[str, Any]) -> str:
    """ComfyUI's message for a failed job from its history entry (both message forms)."""
    if _interruption(entry) is not None:
        return (f"ComfyUI interrupted the job at {_interrupted_at(entry)}; someone called "
                "/interrupt on it")
    for message in (entry.get("status") or {}).get("messages") or []:
        if isinstance(message, str) and message.startswith("execution_error"):
            return message.partition(":")[2].strip() or message
        if isinstance(message, list) and message and message[0] == "execution_error":
            data = message[1] if len(message) > 1 and isinstance(message[1], dict) else {}
            return _describe_execution_error(data)
    return "ComfyUI reported the job as failed without a message"


def _describe_execution_error(data: dict[str, Any]) -> str:
    where = f"node {data.get('node_id')} ({data.get('node_type')})" if data.get("node_id") else "a node"
    kind = data.get("exception_type") or "error"
    text = str(data.get("exception_message") or "").strip()
    return f"{where} failed with {kind}: {text}"


def decode_preview_frame(frame: bytes) -> tuple[str | None, str | None, bytes] | None:
    """(prompt id, node id, image bytes) of a ComfyUI preview frame; the ids are None in
    the older PREVIEW_IMAGE form. None for any other binary event."""
    if len(frame) < 8:
        return None
    (event,) = struct.unpack(">I", frame[:4])
    if event == PREVIEW_IMAGE:
        return None, None, frame[8:]
    if event == PREVIEW_IMAGE_WITH_METADATA:
        (length,) = struct.unpack(">I", frame[4:8])
        try:
            meta = json.loads(frame[8:8 + length])
        except ValueError:
            return None
        if not isinstance(meta, dict):
            return None
        node = meta.get("node_id")
        return (str(meta.get("prompt_id")) if meta.get("prompt_id") is not None else None,
                str(node) if node is not None else None, frame[8 + length:])
    return None


def small_jpeg(image_bytes: bytes) -> bytes:
    """The preview as a small JPEG, whatever ComfyUI encoded it as."""
    with Image.open(io.BytesIO(image_bytes)) as image:
        image.draft("RGB", (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        rgb = image.convert("RGB")
    rgb.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=PREVIEW_JPEG_QUALITY)
    return out.getvalue()


def _node_weight(node: Any) -> int:
    """A node's share of the progress: a sampler counts its steps (ComfyUI reports each,
    and they take most of the time), any other node 1."""
    steps = node.get("inputs", {}).get("steps") if isinstance(node, dict) else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else 1


class _Progress:
    """Follows one prompt's /ws messages the way ComfyUI executes it, and tells the sink.

    ComfyUI sends `execution_cached` (nodes it will not run again), `executing` as each
    node starts, `progress` (value/max) inside nodes that report steps, and previews as
    binary frames during sampler steps. `fraction` counts finished nodes (a node is
    finished when the next one starts) plus the running node's share of its steps, over
    the nodes the prompt executes: a graph without a sampler moves node by node."""

    def __init__(self, graph: dict[str, Any], nodes: set[str], sink: JobEventSink | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.weights = {node_id: _node_weight(graph.get(node_id)) for node_id in nodes}
        self.total = sum(self.weights.values()) or 1
        self.sink = sink
        self.clock = clock
        self.done: set[str] = set()
        self.current: str | None = None
        self.share = 0.0  # of the running node, 0..1
        self.step: int | None = None
        self.steps: int | None = None
        self.step_of: dict[str, int] = {}  # the latest step each node reported
        self.told: JobProgress | None = None
        self._preview_at = -PREVIEW_INTERVAL_S
        self._held: tuple[int | None, bytes] | None = None  # the newest preview, waiting
        self._timer: asyncio.TimerHandle | None = None

    def message(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "execution_cached":
            self.done.update(str(n) for n in data.get("nodes") or [])
        elif kind == "executing":
            self._start(data.get("node"))
        elif kind == "executed" and data.get("node") is not None:
            self.done.add(str(data["node"]))
        elif kind == "progress":
            self._progress(data)
        elif kind == "progress_state":
            # sent before a PREVIEW_IMAGE_WITH_METADATA frame: it says that frame's step
            for node_id, state in (data.get("nodes") or {}).items():
                value = state.get("value") if isinstance(state, dict) else None
                if isinstance(value, (int, float)) and state.get("state") == "running":
                    self.step_of[str(node_id)] = int(value)
            return
        else:
            return
        self._tell()

    def _start(self, node: Any) -> None:
        if node is None:
            return
        if self.current is not None:
            self.done.add(self.current)
        self.current, self.share, self.step, self.steps = str(node), 0.0, None, None

    def _progress(self, data: dict[str, Any]) -> None:
        value, maximum = data.get("value"), data.get("max")
        if not isinstance(value, (int, float)) or not isinstance(maximum, (int, float)) or maximum <= 0:
            return
        node = str(data["node"]) if data.get("node") is not None else self.current
        if node != self.current:
            self._start(node)
        self.share = min(1.0, value / maximum)
        self.step, self.steps = int(value), int(maximum)
        self.step_of[str(node)] = int(value)

    def fraction(self) -> float:
        finished = sum(self.weights.get(n, 0) for n in self.done)
        running = 0.0 if self.current in self.done else self.weights.get(self.current, 0) * self.share
        return min(1.0, (finished + running) / self.total)

    def _tell(self, fraction: float | None = None) -> None:
        previous = self.told.fraction if self.told else 0.0
        # never backwards: a node ComfyUI adds while running (an expanded subgraph) is not counted
        update = JobProgress(max(previous, fraction if fraction is not None else self.fraction()),
                             self.step, self.steps, self.current)
        if update != self.told:
            self.told = update
            self._send(update)

    def close(self) -> None:
        """No more previews: a held one is dropped."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held = None

    def finish(self) -> None:
        """The prompt succeeded: everything is done."""
        self.close()
        self.current, self.step, self.steps = None, None, None
        self._tell(1.0)

    def binary(self, frame: bytes, prompt_id: str) -> None:
        decoded = decode_preview_frame(frame)
        if decoded is None or self.sink is None:
            return
        frame_prompt, node, image = decoded
        # The older frame names no prompt. It is still this prompt's: ComfyUI sends
        # previews only to the socket of the client_id that queued the running prompt
        # (server.client_id), and each run opens its own socket with a fresh client_id.
        if frame_prompt is not None and frame_prompt != prompt_id:
            return
        step = self.step_of.get(node) if node is not None else self.step
        self._held = (step, image)
        wait = self._preview_at + PREVIEW_INTERVAL_S - self.clock()
        if wait <= 0:
            self._release()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._release)

    def _release(self) -> None:
        self._timer = None
        if self._held is None:
            return
        (step, image), self._held = self._held, None
        self._preview_at = self.clock()
        try:
            jpeg = small_jpeg(image)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            log.info("skipped a preview ComfyUI sent that Pillow cannot read: %s", exc)
            return
        self._send(JobPreview(step, jpeg))

    def _send(self, event: JobProgress | JobPreview) -> None:
        if self.sink is None:
            return
        try:
            self.sink(event)
        except Exception:  # a listener's bug must not fail the job: ComfyUI's work goes on
            log.exception("the job's event listener failed on %s", type(event).__name__)


@dataclass
class _Submission:
    """How far one run got: what its ending can and cannot claim."""

    sent: bool = False  # POST /prompt went out: from here on, ComfyUI may run the job
    queued: bool = False  # ComfyUI answered it: the job is in its queue
    queued_at: float = 0.0
    progress: _Progress | None = None


@dataclass
class _Stopping:
    """A prompt being stopped in ComfyUI until it says how it ended."""

    task: asyncio.Task[tuple[str, dict[str, Any] | None]]
    requested: asyncio.Event  # set once ComfyUI was asked (delete, and interrupt if it runs)


def stop_outcome(entry: dict[str, Any]) -> str:
    """"success", "interrupted" or "error": how a history entry says the prompt ended."""
    status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
    if status.get("status_str") == "success" or status.get("completed"):
        return "success"
    if status.get("status_str") is None and not status.get("messages"):
        return "success"  # a ComfyUI that writes no status records only finished prompts
    return "interrupted" if _interruption(entry) is not None else "error"


def _interruption(entry: dict[str, Any]) -> dict[str, Any] | None:
    for message in (entry.get("status") or {}).get("messages") or []:
        if isinstance(message, list) and message and message[0] == "execution_interrupted":
            return message[1] if len(message) > 1 and isinstance(message[1], dict) else {}
        if isinstance(message, str) and message.startswith("execution_interrupted"):
            return {}
    return None


def _interrupted_at(entry: dict[str, Any]) -> str:
    data = _interruption(entry) or {}
    return f"node {data['node_id']} ({data.get('node_type')})" if data.get("node_id") else "a node"


@lru_cache(maxsize=1)
def _snapshot_output_classes() -> frozenset[str]:
    return output_node_classes(load_object_info())


class ComfyUIClient:
    def __init__(self, base_url: str, *, models_dir: Path, lora_dir: Path,
                 http_timeout_s: float = 30.0, cancel_watch_s: float = CANCEL_WATCH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self.models_dir = Path(models_dir)
        self.lora_dir = Path(lora_dir)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=http_timeout_s,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        self._clock = clock
        self._object_info: dict[str, Any] | None = None
        self._object_info_at = 0.0
        self._object_info_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self.cancel_watch_s = cancel_watch_s
        self._watched: dict[str, _Stopping] = {}
        self._health_probe: asyncio.Task[dict[str, Any]] | None = None
        self._health_probe_at = 0.0

    async def aclose(self) -> None:
        for stopping in list(self._watched.values()):
            stopping.task.cancel()
        if self._background:
            # sockets still closing get a moment, then go: shutdown must not hang on them
            _, slow = await asyncio.wait(set(self._background), timeout=0.5)
            for task in slow:
                task.cancel()
        await self._http.aclose()

    # --- plain HTTP ---------------------------------------------------------------
    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                httpx.ReadError) as exc:
            raise ComfyUIUnavailable(
                f"ComfyUI at {self.base_url} is not reachable ({type(exc).__name__}); "
                "start it, or point the backend at it with --comfyui-url / RYLA_COMFYUI_URL"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ComfyUIUnavailable(
                f"ComfyUI at {self.base_url} did not answer {method} {path} in time") from exc

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise ComfyUIJobFailed(
                f"ComfyUI answered {method} {path} with HTTP {response.status_code}: "
                f"{response.text[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise ComfyUIJobFailed(f"ComfyUI answered {method} {path} with non-JSON") from exc

    async def health(self) -> dict[str, Any]:
        """Reachability, queue length and version; never raises. Callers share one probe
        (the one in flight, or one started under HEALTH_SHARED_S ago): a burst of /health
        calls is one pair of requests to ComfyUI, not a crowd that times itself out."""
        probe = self._health_probe
        if (probe is None or probe.get_loop() is not asyncio.get_running_loop()
                or (probe.done() and self._clock() - self._health_probe_at > HEALTH_SHARED_S)):
            self._health_probe_at = self._clock()
            probe = self._health_probe = asyncio.create_task(self._probe_health())
        return dict(await asyncio.shield(probe))  # one caller leaving does not end it

    async def _probe_health(self) -> dict[str, Any]:
        result: dict[str, Any] = {"url": self.base_url, "reachable": False,
                                  "queue_remaining": None, "version": None}
        started = self._clock()
        try:
            # one budget for both requests: a frozen ComfyUI must not freeze /health
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                queue = await self._json("GET", "/queue", timeout=HEALTH_TIMEOUT_S)
                result["reachable"] = True
                running, pending = queue_ids(queue)
                result["queue_remaining"] = len(running) + len(pending)
                stats = await self._json("GET", "/system_stats", timeout=HEALTH_TIMEOUT_S)
                system = stats.get("system") if isinstance(stats, dict) else None
                result["version"] = system.get("comfyui_version") if isinstance(system, dict) else None
        except TimeoutError:
            result["reachable"] = False
            result["error"] = (f"ComfyUI did not answer within {HEALTH_TIMEOUT_S:.0f} s: it is "
                               "frozen or overloaded")
        except ApiError as exc:
            result["reachable"] = result["reachable"] and not isinstance(exc, ComfyUIUnavailable)
            result["error"] = exc.message
        result["answered_in_ms"] = round((self._clock() - started) * 1000)
        return result

    # --- validation ---------------------------------------------------------------
    async def object_info(self, refresh: bool = False) -> tuple[dict[str, Any], bool]:
        """(object_info, live): ComfyUI's own, cached for a minute; else the shipped
        snapshot with the files installed under models_dir / lora_dir."""
        async with self._object_info_lock:
            fresh = self._clock() - self._object_info_at < OBJECT_INFO_TTL_S
            if self._object_info is not None and fresh and not refresh:
                return self._object_info, True
            try:
                info = await self._json("GET", "/object_info")
            except ComfyUIUnavailable:
                raise  # nothing could be queued either: say so, not "model missing"
            except ApiError as exc:
                log.info("using the shipped object_info snapshot: %s", exc.message)
                return await asyncio.to_thread(self._snapshot_info), False
            if not isinstance(info, dict) or not info:
                return await asyncio.to_thread(self._snapshot_info), False
            self._object_info, self._object_info_at = info, self._clock()
            return info, True

    def _output_classes(self) -> frozenset[str]:
        """Output node classes, from ComfyUI's object_info when it was read (check_graph
        reads it), else from the shipped snapshot: no request on the way to queueing."""
        if self._object_info is not None:
            return output_node_classes(self._object_info)
        return _snapshot_output_classes()

    def invalidate_object_info(self) -> None:
        self._object_info = None

    def _snapshot_info(self) -> dict[str, Any]:
        return snapshot_object_info(self.models_dir, self.lora_dir)

    async def check_graph(self, graph: dict[str, Any], *, user_graph: bool,
                          input_images: Iterable[str] = ()) -> None:
        """Raise the API error ComfyUI's validation would lead to, before queueing."""
        images = list(input_images)
        info, live = await self.object_info()
        problems = validate_graph(graph, with_input_images(info, images))
        if problems and live and any(is_missing_model(p) for p in problems):
            # the cache may predate a file that was just installed: ask once more
            info, live = await self.object_info(refresh=True)
            problems = validate_graph(graph, with_input_images(info, images))
        if problems:
            raise to_api_error(problems, user_graph=user_graph, models_dir=self.models_dir)
        await self._check_implicit_files(graph)

    async def _check_implicit_files(self, graph: dict[str, Any]) -> None:
        """Files that nodes load without naming them (insightface, EVA-CLIP, facexlib).
        ComfyUI's GET /models/<folder> is asked for those it lists; it never lists the
        rest (antelopev2's .onnx: not a model extension), so those are looked for in the
        models directory the backend shares with ComfyUI (on Modal one Volume, mounted at
        the same path for both)."""
        needed = {pair for node in graph.values()
                  if isinstance(node, dict) and isinstance(node.get("class_type"), str)
                  for pair in IMPLICIT_MODEL_FILES.get(node["class_type"], ())}
        listed: dict[str, set[str] | None] = {}
        for folder, name in sorted(needed):
            if comfyui_lists(name):
                if folder not in listed:
                    listed[folder] = await self._listed_model_files(folder)
                present = listed[folder]
                # a ComfyUI without that folder or route: the shared directory decides
                found = name in present if present is not None else self._on_disk(folder, name)
                where = ""
            else:
                found = self._on_disk(folder, name)
                where = (f" (ComfyUI does not list {PurePosixPath(name).suffix} files, so the "
                         f"backend looked in {self.models_dir / folder}: its models directory "
                         "must be ComfyUI's, set by RYLA_MODELS_DIR / --models-dir)")
            if not found:
                raise ModelNotInstalled(
                    f"model file {name!r} is not installed in ComfyUI's models/{folder}{where}: "
                    f"{install_hint(folder, name, self.models_dir)}", field=folder)

    async def _listed_model_files(self, folder: str) -> set[str] | None:
        """ComfyUI's GET /models/<folder>; None when it has no such folder or route."""
        response = await self._request("GET", f"/models/{folder}")
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        return set(body) if isinstance(body, list) else None

    def _on_disk(self, folder: str, name: str) -> bool:
        return any((self.models_dir / f / name).is_file()
                   for f in (folder, *FOLDER_ALIASES.get(folder, ())))

    # --- the job ------------------------------------------------------------------
    async def upload_image(self, data: bytes, name: str) -> str:
        files = {"image": (name, data, "image/png")}
        # No overwrite: names are content hashes, so ComfyUI finds an identical file and
        # leaves it alone instead of rewriting it under a job that is reading it.
        body = await self._json("POST", "/upload/image", files=files, data={"type": "input"})
        stored = f"{body.get('subfolder')}/{body.get('name')}" if body.get("subfolder") else body.get("name")
        if stored != name:
            # the graph names `name`; ComfyUI renaming it would run the wrong image
            raise ComfyUIJobFailed(f"ComfyUI stored the input image {name!r} as {stored!r}")
        return name

    async def run(self, graph: dict[str, Any], timeout_s: float, *, prompt_id: str | None = None,
                  user_graph: bool = False, on_event: JobEventSink | None = None,
                  cancel: asyncio.Event | None = None) -> JobResult:
        """Queue `graph` as `prompt_id`, wait for it, return its outputs; `on_event` hears
        its progress and previews. When `cancel` is set or `timeout_s` passes, the prompt is
        stopped in ComfyUI and the ending is what ComfyUI says (see `_stopped`): JobCancelled
        or DeadlineExceeded once it confirms, a JobResult with `stopped_late` when it finished
        the job anyway. When the calling task is cancelled, the prompt is stopped too."""
        started = self._clock()
        prompt_id = prompt_id or new_prompt_id()
        state = _Submission()
        work = asyncio.create_task(self._execute(graph, prompt_id, user_graph, on_event, state))
        asked = asyncio.create_task(cancel.wait()) if cancel is not None else None
        try:
            await asyncio.wait([t for t in (work, asked) if t is not None], timeout=timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            await self._stop_for_cancelled_caller(prompt_id, state)
            raise
        finally:
            if asked is not None:
                asked.cancel()
        if work.done():
            # it ended on its own, even if the stop was asked for at the same moment
            return work.result()
        work.cancel()
        await asyncio.wait([work])
        if not work.cancelled() and work.exception() is None:
            return work.result()  # it finished as it was being cancelled
        by_user = cancel is not None and cancel.is_set()
        result = await self._stopped(graph, prompt_id, state, timeout_s, by_user=by_user)
        result.timings = {"queue_ms": (state.queued_at - started) * 1000,
                          "comfyui_ms": (self._clock() - state.queued_at) * 1000}
        if state.progress is not None:
            state.progress.finish()
        return result

    async def _execute(self, graph: dict[str, Any], prompt_id: str, user_graph: bool,
                       on_event: JobEventSink | None, state: _Submission) -> JobResult:
        started = self._clock()
        client_id = uuid.uuid4().hex
        ws: ClientConnection | None = None
        try:
            # the socket opens before queueing so that no message of the job is missed
            ws = await self._open_ws(client_id)
            state.sent = True
            answer = await self._queue(graph, client_id, prompt_id, user_graph=user_graph)
            state.queued, state.queued_at = True, self._clock()
            skipped = {o for entry in (answer.get("node_errors") or {}).values()
                       if isinstance(entry, dict) for o in entry.get("dependent_outputs") or []}
            executed = nodes_to_execute(graph, self._output_classes(), skipped)
            state.progress = _Progress(graph, executed, on_event, self._clock)
            done_by_ws = await self._follow(ws, prompt_id, state.progress) if ws else False
            entry = await self._poll_history(prompt_id)
            outputs = await self.fetch_outputs(graph, entry)
        except ComfyUIUnavailable as exc:
            if state.sent and not isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout)):
                # POST /prompt (or a later request) went out and its answer was lost:
                # ComfyUI may still hold the job, and nobody waits for it any more
                self._watch_cancel(prompt_id, queued=state.queued)
            raise
        finally:
            if ws is not None:
                self._close_later(ws)
            if state.progress is not None:
                state.progress.close()
        state.progress.finish()
        finished = self._clock()
        return JobResult(prompt_id, outputs, "websocket" if done_by_ws else "history",
                         {"queue_ms": (state.queued_at - started) * 1000,
                          "comfyui_ms": (finished - state.queued_at) * 1000})

    async def _stopped(self, graph: dict[str, Any], prompt_id: str, state: _Submission,
                       timeout_s: float, *, by_user: bool) -> JobResult:
        """The ending of a job stopped by `cancel` or its deadline, as ComfyUI tells it."""
        error: type[JobCancelled | DeadlineExceeded] = JobCancelled if by_user else DeadlineExceeded
        why = "the job was cancelled" if by_user else \
            f"the job did not finish within the {timeout_s:.0f} s deadline"
        if not state.sent:
            raise error(f"{why}; it was never queued in ComfyUI")
        if not state.queued:
            # POST /prompt is unanswered: ComfyUI may still queue it, so nothing it says
            # now can confirm the stop
            self._watch_cancel(prompt_id, queued=False)
            raise error(
                f"{why} (ComfyUI prompt {prompt_id}); ComfyUI did not answer its queueing in "
                "time, so whether it runs is unknown; the backend keeps removing it from "
                f"ComfyUI's queue for {self.cancel_watch_s:.0f} s", confirmed=False)
        # shielded: a caller cancelled meanwhile leaves the stop going in the background
        outcome, entry = await asyncio.shield(self._watch_cancel(prompt_id, queued=True).task)
        if outcome == "success":
            # a node that cannot be interrupted was running: ComfyUI finished the job
            log.info("prompt %s finished in ComfyUI although it was stopped; keeping its "
                     "outputs", prompt_id)
            outputs = await self.fetch_outputs(graph, entry or {})
            return JobResult(prompt_id, outputs, "history", stopped_late=True)
        if outcome == "error":
            raise ComfyUIJobFailed(f"ComfyUI failed the job: {history_error(entry or {})}")
        how = ("taken off its queue before it started" if outcome == "removed" else
               f"interrupted at {_interrupted_at(entry or {})}")
        raise error(f"{why} (ComfyUI prompt {prompt_id}); it was cancelled in ComfyUI: {how}")

    async def _stop_for_cancelled_caller(self, prompt_id: str, state: _Submission) -> None:
        """The calling task was cancelled (its caller went away, Modal cancelled the
        function call): stop the prompt in ComfyUI so the next job does not queue behind
        it. Shielded, the caller waits until the stop was asked of ComfyUI (delete, and
        interrupt if it runs), not for the confirmation, which a node that cannot be
        interrupted may hold back for minutes; that goes on in the background."""
        if not state.sent:
            return
        stopping = self._watch_cancel(prompt_id, queued=state.queued)
        asked = asyncio.create_task(stopping.requested.wait())
        try:
            await asyncio.shield(asyncio.wait([stopping.task, asked],
                                              return_when=asyncio.FIRST_COMPLETED))
        finally:
            asked.cancel()

    def _close_later(self, ws: ClientConnection) -> None:
        # The close handshake can take up to close_timeout; the caller need not wait.
        task = asyncio.create_task(ws.close())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _open_ws(self, client_id: str) -> ClientConnection | None:
        try:
            ws = await connect(_ws_url(self.base_url, client_id), max_size=None,
                               open_timeout=10, ping_interval=20, ping_timeout=20,
                               close_timeout=2)
            # ComfyUI reads a first message of feature flags: with this one its previews
            # carry their prompt id (PREVIEW_IMAGE_WITH_METADATA)
            await ws.send(json.dumps(FEATURE_FLAGS))
            return ws
        except (OSError, WebSocketException, TimeoutError) as exc:
            # no socket is no reason to fail: history polling still sees the job end
            log.warning("ComfyUI /ws unavailable (%s); following the job by polling", exc)
            return None

    async def _queue(self, graph: dict[str, Any], client_id: str, prompt_id: str, *,
                     user_graph: bool) -> dict[str, Any]:
        """POST /prompt; ComfyUI's answer (its `node_errors` name outputs that will not run)."""
        response = await self._request(
            "POST", "/prompt", json={"prompt": graph, "client_id": client_id, "prompt_id": prompt_id})
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 400 and isinstance(body, dict):
            raise to_api_error(problems_from_comfyui(body), user_graph=user_graph,
                               models_dir=self.models_dir)
        if response.status_code != 200 or not isinstance(body, dict) or "prompt_id" not in body:
            raise ComfyUIJobFailed(
                f"ComfyUI did not queue the graph: HTTP {response.status_code} "
                f"{response.text[:300]!r}")
        if str(body["prompt_id"]) != prompt_id:
            # a ComfyUI that ignores a client's prompt_id could not be cancelled reliably
            self._watch_cancel(str(body["prompt_id"]))
            raise ComfyUIJobFailed(
                f"ComfyUI queued the job as {body['prompt_id']!r}, not as the prompt id "
                f"{prompt_id!r} the backend chose; this ComfyUI is too old (v0.12.1 or newer "
                "takes a client's prompt_id)")
        return body

    async def _follow(self, ws: ClientConnection, prompt_id: str, progress: _Progress) -> bool:
        """True when the socket saw the job succeed; False when it dropped first.
        Raises ComfyUIJobFailed when the job fails."""
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    progress.binary(raw, prompt_id)
                    continue
                message = json.loads(raw)
                kind, data = message.get("type"), message.get("data") or {}
                if not isinstance(data, dict) or data.get("prompt_id") != prompt_id:
                    continue
                if kind == "execution_success":
                    return True
                if kind == "execution_error":
                    raise ComfyUIJobFailed(f"ComfyUI failed the job: {_describe_execution_error(data)}")
                if kind == "execution_interrupted":
                    raise ComfyUIJobFailed(
                        f"ComfyUI interrupted the job at node {data.get('node_id')} "
                        f"({data.get('node_type')}); someone called /interrupt on it")
                if kind == "executing" and data.get("node") is None:
                    return True  # older ComfyUI: node None ends the job
                progress.message(kind, data)
        except (WebSocketException, OSError, json.JSONDecodeError) as exc:
            log.warning("ComfyUI socket dropped while following %s (%s); polling history",
                        prompt_id, exc)
        return False

    async def _poll_history(self, prompt_id: str) -> dict[str, Any]:
        """The history entry of the finished job; raises when it failed."""
        delay, failures = POLL_START_S, 0
        while True:
            try:
                history = await self._json("GET", f"/history/{prompt_id}")
                failures = 0
            except ComfyUIUnavailable:
                failures += 1
                if failures >= UNREACHABLE_POLLS:
                    raise
                history = {}
            entry = history.get(prompt_id) if isinstance(history, dict) else None
            status = (entry or {}).get("status") or {}
            if status.get("status_str") == "error":
                raise ComfyUIJobFailed(f"ComfyUI failed the job: {history_error(entry or {})}")
            if entry and (status.get("completed") or status.get("status_str") == "success"):
                return entry
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)

    async def wait_for(self, prompt_id: str) -> dict[str, Any]:
        """The history entry of `prompt_id` once it ends (by polling); raises when it failed."""
        return await self._poll_history(prompt_id)

    async def job_state(self, prompt_id: str) -> tuple[str, dict[str, Any] | None]:
        """("queued" | "running" | "done" | "unknown", history entry when done). Asked of
        /queue before /history, so a job that ends in between is seen in the history."""
        running, pending = queue_ids(await self._json("GET", "/queue"))
        if prompt_id in running:
            return "running", None
        if prompt_id in pending:
            return "queued", None
        history = await self._json("GET", f"/history/{prompt_id}")
        entry = history.get(prompt_id) if isinstance(history, dict) else None
        return ("done", entry) if isinstance(entry, dict) else ("unknown", None)

    async def fetch_outputs(self, graph: dict[str, Any], entry: dict[str, Any]) -> list[OutputFile]:
        refs: list[tuple[str, dict[str, Any]]] = []
        outputs = entry.get("outputs") or {}
        # graph order, so that "the first output" is stable
        order = {node_id: i for i, node_id in enumerate(graph)}
        for node_id in sorted(outputs, key=lambda n: order.get(n, len(order))):
            for kind in OUTPUT_KINDS:
                for item in outputs[node_id].get(kind) or []:
                    if isinstance(item, dict) and item.get("filename"):
                        refs.append((node_id, item))
        saved = [r for r in refs if r[1].get("type") != "temp"] or refs
        if not saved:
            raise ComfyUIJobFailed("ComfyUI finished the job but it produced no output file; "
                                   "does the graph end in SaveImage or another save node?")
        files = await asyncio.gather(*(self._view(node_id, item) for node_id, item in saved))
        return list(files)

    async def _view(self, node_id: str, item: dict[str, Any]) -> OutputFile:
        params = {"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                  "type": item.get("type", "output")}
        response = await self._request("GET", "/view", params=params)
        if response.status_code != 200:
            raise ComfyUIJobFailed(f"ComfyUI could not serve output {item['filename']!r}: "
                                   f"HTTP {response.status_code}")
        content_type = (response.headers.get("content-type", "").split(";")[0]
                        or mimetypes.guess_type(item["filename"])[0] or "application/octet-stream")
        if content_type in ("application/octet-stream", "") :
            content_type = mimetypes.guess_type(item["filename"])[0] or content_type
        return OutputFile(node_id, item["filename"], content_type, response.content)

    async def _stop(self, prompt_id: str, *, queued: bool,
                    requested: asyncio.Event) -> tuple[str, dict[str, Any] | None]:
        """Stop `prompt_id` and wait for ComfyUI's word on how it ended: ("removed", None)
        taken off the queue before it started; ("interrupted" | "success" | "error",
        history entry). Asks again with backoff while ComfyUI does not answer; past
        cancel_watch_s raises ComfyUIUnavailable, the outcome unknown. `queued`: ComfyUI
        answered its POST /prompt; if not, the prompt may still arrive, so its absence
        from the queue and the history proves nothing and only its history entry ends this."""
        give_up = self._clock() + self.cancel_watch_s
        delay = 0.05
        while True:
            try:
                outcome = await self._stop_round(prompt_id, queued=queued)
                requested.set()
                if outcome is not None:
                    return outcome
            except ApiError as exc:  # frozen or gone: the next round asks again
                log.info("stopping prompt %s: %s", prompt_id, exc.message)
            if self._clock() >= give_up:
                raise ComfyUIUnavailable(
                    f"ComfyUI did not say how prompt {prompt_id} ended within "
                    f"{self.cancel_watch_s:.0f} s of stopping it; its outcome is unknown (see "
                    f"ComfyUI's /history/{prompt_id})")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, CANCEL_WATCH_MAX_INTERVAL_S)

    async def _stop_round(self, prompt_id: str, *,
                          queued: bool) -> tuple[str, dict[str, Any] | None] | None:
        """One attempt; the outcome once ComfyUI tells it, else None.

        Delete first: a prompt deleted while pending can never start. Then read /queue:
        after the delete the prompt is either gone or running, and a running one is
        interrupted (by id: ComfyUI interrupts only that prompt) and asked about again on
        the next round. ComfyUI checks an interrupt only before each node and inside
        sampler steps, so the node running now may finish, and with it the prompt: only
        its history entry says which. A prompt ComfyUI takes off /queue is in its history
        at that moment (one lock), so one that is in neither was deleted while pending."""
        timeout = CANCEL_REQUEST_TIMEOUT_S
        await self._request("POST", "/queue", json={"delete": [prompt_id]}, timeout=timeout)
        running, pending = queue_ids(await self._json("GET", "/queue", timeout=timeout))
        if prompt_id in running:
            await self._request("POST", "/interrupt", json={"prompt_id": prompt_id},
                                timeout=timeout)
            return None
        if prompt_id in pending:
            return None  # a stale read: the next round deletes it again
        history = await self._json("GET", f"/history/{prompt_id}", timeout=timeout)
        entry = history.get(prompt_id) if isinstance(history, dict) else None
        if isinstance(entry, dict):
            return stop_outcome(entry), entry
        return ("removed", None) if queued else None

    async def cancel(self, prompt_id: str) -> None:
        """Stop `prompt_id` in the background, pending, running or still on its way to
        ComfyUI (its POST /prompt unanswered); ComfyUI's history says how it ended."""
        self._watch_cancel(prompt_id, queued=False)

    def _watch_cancel(self, prompt_id: str, *, queued: bool = False,
                      ) -> _Stopping:
        """Stop `prompt_id` in a task of its own (see `_stop`), which outlives its caller
        (shield it to wait); one per prompt; its outcome is logged."""
        if prompt_id not in self._watched:
            requested = asyncio.Event()
            task = asyncio.create_task(self._stop(prompt_id, queued=queued, requested=requested))
            self._watched[prompt_id] = _Stopping(task, requested)
            task.add_done_callback(lambda done: self._stopped_watching(prompt_id, done))
        return self._watched[prompt_id]

    def _stopped_watching(self, prompt_id: str,
                          done: asyncio.Task[tuple[str, dict[str, Any] | None]]) -> None:
        self._watched.pop(prompt_id, None)
        if done.cancelled():
            return
        if done.exception() is not None:
            log.warning("gave up stopping prompt %s: %s", prompt_id, done.exception())
            return
        log.info("prompt %s, stopped, ended in ComfyUI as: %s", prompt_id, done.result()[0])

    def watching(self) -> set[str]:
        """Prompt ids still being stopped in the background."""
        return set(self._watched)
