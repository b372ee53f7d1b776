"""The ComfyUI client: upload input images, queue a graph, follow it on /ws, fetch its
outputs, all within a deadline; past it the job is cancelled in ComfyUI.

Everything is asyncio (httpx + websockets), so one event loop serves many concurrent
API requests while ComfyUI works through its queue one job at a time. A dropped socket
falls back to polling /history, so a finished output is never lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from backend.errors import (ApiError, ComfyUIJobFailed, ComfyUIUnavailable, DeadlineExceeded,
                            ModelNotInstalled)
from backend.graph_errors import (install_hint, is_missing_model, problems_from_comfyui,
                                  to_api_error)
from backend.snapshot_validation import snapshot_object_info
from workflows.object_info import (FOLDER_ALIASES, IMPLICIT_MODEL_FILES, comfyui_lists,
                                   with_input_images)
from workflows.validate import validate_graph

log = logging.getLogger(__name__)

OBJECT_INFO_TTL_S = 60.0
POLL_START_S, POLL_MAX_S = 0.1, 1.0
# Cancelling: each request gets a short timeout (a frozen ComfyUI must not hold the 504),
# the answer waits at most CANCEL_CONFIRM_S for /queue to show the prompt gone, and a
# prompt that could not be confirmed gone is cancelled again in the background for up
# to CANCEL_WATCH_S (a POST /prompt that timed out may still land in ComfyUI's queue).
CANCEL_REQUEST_TIMEOUT_S = 2.0
CANCEL_CONFIRM_S = 5.0
CANCEL_WATCH_S = 600.0
CANCEL_WATCH_MAX_INTERVAL_S = 2.0
HEALTH_TIMEOUT_S = 1.0  # /health answers within about this, whatever ComfyUI does
HEALTH_SHARED_S = 0.5  # /health callers within this of a probe's start share its answer
UNREACHABLE_POLLS = 5  # consecutive failed history polls before ComfyUI counts as gone
OUTPUT_KINDS = ("images", "gifs", "videos", "video", "animated_images", "files")


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
        self._watched: dict[str, asyncio.Task[None]] = {}
        self._health_probe: asyncio.Task[dict[str, Any]] | None = None
        self._health_probe_at = 0.0

    async def aclose(self) -> None:
        for task in list(self._watched.values()):
            task.cancel()
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
                  user_graph: bool = False,
                  on_progress: Callable[[dict[str, Any]], None] | None = None) -> JobResult:
        """Queue `graph` as `prompt_id`, wait for it, return its outputs. Past `timeout_s`
        the job is cancelled in ComfyUI (see `cancel`) and DeadlineExceeded raised."""
        started = self._clock()
        prompt_id = prompt_id or new_prompt_id()
        client_id = uuid.uuid4().hex
        sent = False  # POST /prompt went out: from here on, ComfyUI may run the job
        queued = False  # ComfyUI answered it: the job is in its queue
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(timeout_s):
                # the socket opens before queueing so that no message of the job is missed
                ws = await self._open_ws(client_id)
                sent = True
                await self._queue(graph, client_id, prompt_id, user_graph=user_graph)
                queued, queued_at = True, self._clock()
                done_by_ws = await self._follow(ws, prompt_id, on_progress) if ws else False
                entry = await self._poll_history(prompt_id)
                outputs = await self.fetch_outputs(graph, entry)
        except TimeoutError:
            if not sent:
                raise DeadlineExceeded(f"the job did not start within the {timeout_s:.0f} s "
                                       "deadline; it was never queued in ComfyUI") from None
            gone = await self.cancel(prompt_id)
            if gone and not queued:
                # gone from /queue, but the unanswered POST /prompt may still land there
                self._watch_cancel(prompt_id)
            raise DeadlineExceeded(
                f"the job did not finish within the {timeout_s:.0f} s deadline (ComfyUI prompt "
                f"{prompt_id}); " + (
                    "it was cancelled in ComfyUI" if gone and queued else
                    "ComfyUI did not answer its queueing in time; the backend keeps removing it "
                    f"from ComfyUI's queue for {self.cancel_watch_s:.0f} s" if gone else
                    f"ComfyUI did not confirm the cancel within {CANCEL_CONFIRM_S:.0f} s, so the "
                    "backend keeps cancelling it in the background")) from None
        except ComfyUIUnavailable as exc:
            if sent and not isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout)):
                # POST /prompt (or a later request) went out and its answer was lost:
                # ComfyUI may still hold the job, and nobody waits for it any more
                self._watch_cancel(prompt_id)
            raise
        finally:
            if ws is not None:
                self._close_later(ws)
        finished = self._clock()
        return JobResult(prompt_id, outputs, "websocket" if done_by_ws else "history",
                         {"queue_ms": (queued_at - started) * 1000,
                          "comfyui_ms": (finished - queued_at) * 1000})

    def _close_later(self, ws: ClientConnection) -> None:
        # The close handshake can take up to close_timeout; the caller need not wait.
        task = asyncio.create_task(ws.close())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _open_ws(self, client_id: str) -> ClientConnection | None:
        try:
            return await connect(_ws_url(self.base_url, client_id), max_size=None,
                                 open_timeout=10, ping_interval=20, ping_timeout=20,
                                 close_timeout=2)
        except (OSError, WebSocketException, TimeoutError) as exc:
            # no socket is no reason to fail: history polling still sees the job end
            log.warning("ComfyUI /ws unavailable (%s); following the job by polling", exc)
            return None

    async def _queue(self, graph: dict[str, Any], client_id: str, prompt_id: str, *,
                     user_graph: bool) -> None:
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

    async def _follow(self, ws: ClientConnection, prompt_id: str,
                      on_progress: Callable[[dict[str, Any]], None] | None) -> bool:
        """True when the socket saw the job succeed; False when it dropped first.
        Raises ComfyUIJobFailed when the job fails."""
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue  # preview images
                message = json.loads(raw)
                kind, data = message.get("type"), message.get("data") or {}
                if data.get("prompt_id") != prompt_id:
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
                if on_progress and kind in ("progress", "executing"):
                    on_progress({"type": kind, **data})
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

    async def _cancel_round(self, prompt_id: str) -> bool:
        """One attempt; True when /queue no longer lists `prompt_id`.

        Delete first: a prompt deleted while pending can never start. Then read /queue:
        after the delete the prompt is either gone or running, and a running one is
        interrupted (by id: ComfyUI interrupts only that prompt) and checked again on the
        next round. Reading /queue first and acting on it would miss a job that starts in
        between."""
        timeout = CANCEL_REQUEST_TIMEOUT_S
        await self._request("POST", "/queue", json={"delete": [prompt_id]}, timeout=timeout)
        running, pending = queue_ids(await self._json("GET", "/queue", timeout=timeout))
        if prompt_id in running:
            await self._request("POST", "/interrupt", json={"prompt_id": prompt_id},
                                timeout=timeout)
            return False
        return prompt_id not in pending

    async def cancel(self, prompt_id: str) -> bool:
        """Cancel `prompt_id`, pending or running; True once /queue shows it gone.
        Unconfirmed within CANCEL_CONFIRM_S, it is left to a background watcher."""
        delay = 0.05
        try:
            async with asyncio.timeout(CANCEL_CONFIRM_S):
                while not await self._try_cancel_round(prompt_id):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
                return True
        except TimeoutError:
            log.warning("ComfyUI did not confirm the cancel of prompt %s; retrying in the "
                        "background", prompt_id)
            self._watch_cancel(prompt_id)
            return False

    async def _try_cancel_round(self, prompt_id: str) -> bool:
        try:
            return await self._cancel_round(prompt_id)
        except ApiError as exc:
            log.info("cancel of prompt %s: %s", prompt_id, exc.message)
            return False

    def _watch_cancel(self, prompt_id: str) -> None:
        """Keep cancelling `prompt_id` until ComfyUI's history has it (it ended, or was
        interrupted) or CANCEL_WATCH_S pass: its POST /prompt may still be on its way."""
        if prompt_id in self._watched:
            return
        task = asyncio.create_task(self._watch(prompt_id))
        self._watched[prompt_id] = task
        task.add_done_callback(lambda _: self._watched.pop(prompt_id, None))

    async def _watch(self, prompt_id: str) -> None:
        give_up = self._clock() + self.cancel_watch_s
        delay = 0.25
        while self._clock() < give_up:
            await self._try_cancel_round(prompt_id)
            try:
                history = await self._json("GET", f"/history/{prompt_id}",
                                           timeout=CANCEL_REQUEST_TIMEOUT_S)
                if isinstance(history, dict) and prompt_id in history:
                    log.info("prompt %s has ended in ComfyUI; stopped watching it", prompt_id)
                    return
            except ApiError as exc:  # still frozen or gone: the next round asks again
                log.debug("watching prompt %s: %s", prompt_id, exc.message)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, CANCEL_WATCH_MAX_INTERVAL_S)
        log.warning("gave up cancelling prompt %s after %.0f s", prompt_id, self.cancel_watch_s)

    def watching(self) -> set[str]:
        """Prompt ids still being cancelled in the background."""
        return set(self._watched)
