"""One generation: prepare the graph (LoRA, reference image, user images), check it, run
it through a GraphRunner (a ComfyUI, or a GPU function on Modal), measure it.

What a generation is as a job (its record, status, outputs on disk, events) is
backend/jobs.py's; this module only makes the outputs."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from backend.analytics import Analytics
from backend.comfyui_client import JobEventSink, OutputFile
from backend.errors import ApiError, DeadlineExceeded, InvalidImage, JobCancelled
from backend.graph_runner import GraphRunner
from backend.images import (REFERENCE_MAX_SIDE, content_name, convert_format,
                            decode_base64_image, to_png)
from backend.lora_store import LoraStore
from backend.settings import Settings
from workflows.registry import LORA_FILE, REFERENCE_IMAGE, ROUTES, Route
from workflows.render import render_workflow
from workflows.request_models import RANDOM_SEED_LIMIT, WorkflowRequest

IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SEED_INPUTS = ("seed", "noise_seed")
NO_SEED = -1  # X-Seed of a user workflow that names no seed
# Images decoded at once: a decode of a large image can take a few hundred MB at its
# peak, so concurrent requests queue for a slot instead of adding up.
DECODE_SLOTS = 2


@dataclass
class Generation:
    request_id: str
    seed: int
    outputs: list[OutputFile]
    timings: dict[str, float] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    # ComfyUI finished the job after it was asked to stop (a node it could not
    # interrupt): the outputs are real and kept, the answer says so
    stopped_late: bool = False


def choose_seed(route: Route, body: BaseModel) -> int:
    """The request's seed, a random one when it names none, or the one a user graph
    carries (NO_SEED when it has none)."""
    if isinstance(body, WorkflowRequest):
        return _workflow_seed(body.workflow)
    explicit = getattr(body, "seed", None)
    return explicit if isinstance(explicit, int) else secrets.randbelow(RANDOM_SEED_LIMIT)


def _text_field(body: BaseModel, name: str) -> str | None:
    """A text field the pipeline's slots need; the registry pairs each pipeline with
    request models that have it, so a missing one is a registry mistake."""
    value = getattr(body, name)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{type(body).__name__}.{name} is {type(value).__name__}, not text")
    return value


def _workflow_seed(graph: dict[str, Any]) -> int:
    for node in graph.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue  # validation names this node's problem
        for name in SEED_INPUTS:
            value = inputs.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return NO_SEED


def _rename_images(graph: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """The graph with every string input naming an uploaded image renamed to its
    content-hash name (distinct users' 'face.png' must not overwrite each other)."""
    out: dict[str, Any] = {}
    for node_id, node in graph.items():
        if isinstance(node, dict) and isinstance(node.get("inputs"), dict):
            inputs = {k: renames.get(v, v) if isinstance(v, str) else v
                      for k, v in node["inputs"].items()}
            node = {**node, "inputs": inputs}
        out[node_id] = node
    return out


class Generator:
    def __init__(self, settings: Settings, runner: GraphRunner, loras: LoraStore,
                 analytics: Analytics) -> None:
        self.settings = settings
        self.runner = runner
        self.loras = loras
        self.analytics = analytics
        self._decode_slots = asyncio.Semaphore(DECODE_SLOTS)

    async def _png_of(self, value: str, field_name: str, max_side: int | None = None) -> bytes:
        raw = decode_base64_image(value, field_name)
        async with self._decode_slots:
            # Pillow decoding is CPU work: off the event loop
            return await asyncio.to_thread(to_png, raw, field_name,
                                           self.settings.max_image_pixels, max_side)

    async def _prepare(self, route: Route, body: BaseModel, seed: int,
                       request_id: str) -> tuple[dict[str, Any], dict[str, bytes], bool]:
        """(graph, input images to upload by name, user_graph). Uploads wait for the
        runner, after validation, so a refused graph leaves nothing in ComfyUI."""
        if route.user_graph:
            return await self._user_graph(body)  # type: ignore[arg-type]
        pipeline = route.pipeline_for(body)
        extras: dict[str, str] = {}
        uploads: dict[str, bytes] = {}
        if pipeline.needs(REFERENCE_IMAGE):
            png = await self._png_of(_text_field(body, "reference_image") or "",
                                     "reference_image", REFERENCE_MAX_SIDE)
            extras["reference_image"] = content_name(png)
            uploads[extras["reference_image"]] = png
        if pipeline.needs(LORA_FILE):
            lora_id = _text_field(body, "lora_id") or ""
            info = await asyncio.to_thread(self.loras.get, lora_id)
            self.analytics.lora_loaded(route.path, request_id, lora_id)
            given_trigger = _text_field(body, "trigger_word")
            trigger = given_trigger if given_trigger is not None else info.trigger_word
            body = body.model_copy(update={"trigger_word": trigger or None})
            extras["lora_file"] = info.file
        return render_workflow(pipeline.name, body, seed=seed, **extras,
                               compile_fast_mode=self.settings.fast_mode_compile), uploads, False

    async def _user_graph(self, body: WorkflowRequest
                          ) -> tuple[dict[str, Any], dict[str, bytes], bool]:
        renames: dict[str, str] = {}
        uploads: dict[str, bytes] = {}
        for name, value in body.images.items():
            if not IMAGE_NAME_RE.fullmatch(name):
                raise InvalidImage(f"image name {name!r} is not allowed: use letters, digits, "
                                   "'_', '-' and '.', no folders", field=f"images.{name}")
            png = await self._png_of(value, f"images.{name}")
            renames[name] = content_name(png)
            uploads[renames[name]] = png
        return _rename_images(body.workflow, renames), uploads, True

    async def generate(self, endpoint: str, body: BaseModel, *, request_id: str, seed: int,
                       prompt_id: str, on_event: JobEventSink | None = None,
                       cancel: asyncio.Event | None = None) -> Generation:
        """Run one request as ComfyUI prompt `prompt_id` (recorded by the caller first:
        after a crash, the restarted backend finds the job in ComfyUI by this id)."""
        started = time.monotonic()
        route = ROUTES[endpoint]
        self.analytics.requested(route, request_id)
        timings: dict[str, float] = {}
        try:
            deadline = self.settings.deadline_s
            try:
                async with asyncio.timeout(deadline):
                    graph, images, user_graph = await self._prepare(route, body, seed, request_id)
                    await self.runner.check(graph, user_graph=user_graph, input_images=images)
            except TimeoutError:
                raise DeadlineExceeded(f"preparing the job took longer than the {deadline:.0f} s "
                                       "deadline; ComfyUI may be overloaded; nothing was queued "
                                       "in ComfyUI") from None
            if cancel is not None and cancel.is_set():
                # nothing was sent to ComfyUI yet: stopping here is confirmed by definition
                raise JobCancelled("the job was cancelled before it was queued in ComfyUI")
            timings["prepare_ms"] = (time.monotonic() - started) * 1000
            remaining = deadline - (time.monotonic() - started)
            result = await self.runner.run(graph, images, user_graph=user_graph,
                                           timeout_s=max(remaining, 0.001), prompt_id=prompt_id,
                                           on_event=on_event, cancel=cancel)
            timings.update(result.timings)
            outputs = await in_format(result.outputs, getattr(body, "format", None))
            timings["total_ms"] = (time.monotonic() - started) * 1000
        except ApiError as exc:
            exc.request_id = request_id  # type: ignore[attr-defined]
            self._failed(endpoint, request_id, exc.code, timings, started)
            raise
        except Exception:
            self._failed(endpoint, request_id, "internal_error", timings, started)
            raise
        self.analytics.completed(route, request_id, timings)
        return Generation(request_id, seed, outputs, timings, stopped_late=result.stopped_late)

    def _failed(self, endpoint: str, request_id: str, code: str, timings: dict[str, float],
                started: float) -> None:
        timings["total_ms"] = (time.monotonic() - started) * 1000
        self.analytics.failed(endpoint, request_id, code, timings)


async def in_format(outputs: list[OutputFile], fmt: str | None) -> list[OutputFile]:
    """The outputs with the first re-encoded as the request's `format` asked."""
    if not fmt or not outputs:
        return outputs
    first = outputs[0]
    data = await asyncio.to_thread(convert_format, first.data, fmt)
    if data is first.data:
        return outputs
    return [OutputFile(first.node_id, f"{first.filename.rsplit('.', 1)[0]}.jpg", "image/jpeg",
                       data), *outputs[1:]]


def json_body(gen: Generation) -> dict[str, Any]:
    return {"images": [base64.b64encode(o.data).decode("ascii") for o in gen.outputs],
            "content_types": [o.content_type for o in gen.outputs],
            "seed": gen.seed, "timings": gen.timings, "request_id": gen.request_id,
            "outputs": gen.paths}


__all__ = ["Generation", "Generator", "choose_seed", "in_format", "json_body"]
