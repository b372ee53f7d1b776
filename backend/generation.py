"""One generation from request to response: prepare the graph (LoRA, reference image,
user images), check it, run it through a GraphRunner (a ComfyUI, or a GPU function on
Modal), save the record and outputs, measure it."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from backend.analytics import Analytics
from backend.comfyui_client import OutputFile, new_prompt_id
from backend.errors import ApiError, DeadlineExceeded, InvalidImage
from backend.graph_runner import GraphRunner
from backend.images import (REFERENCE_MAX_SIDE, content_name, convert_format,
                            decode_base64_image, to_png)
from backend.lora_store import LoraStore
from backend.records import JobRecords
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
                 records: JobRecords, analytics: Analytics) -> None:
        self.settings = settings
        self.runner = runner
        self.loras = loras
        self.records = records
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
        r: Any = body
        if pipeline.needs(REFERENCE_IMAGE):
            png = await self._png_of(r.reference_image, "reference_image", REFERENCE_MAX_SIDE)
            extras["reference_image"] = content_name(png)
            uploads[extras["reference_image"]] = png
        if pipeline.needs(LORA_FILE):
            info = await asyncio.to_thread(self.loras.get, r.lora_id)
            self.analytics.lora_loaded(route.path, request_id, r.lora_id)
            trigger = r.trigger_word if r.trigger_word is not None else info.trigger_word
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

    async def generate(self, endpoint: str, body: BaseModel) -> Generation:
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        route = ROUTES[endpoint]
        explicit_seed = getattr(body, "seed", None)
        seed = explicit_seed if explicit_seed is not None else secrets.randbelow(RANDOM_SEED_LIMIT)
        if route.user_graph:
            seed = _workflow_seed(body.workflow)  # type: ignore[attr-defined]
        dumped = body.model_dump(mode="json")
        # Recorded before anything is queued: after a crash, the restarted backend finds
        # the job in ComfyUI by this id (backend/recovery.py).
        prompt_id = new_prompt_id()
        await asyncio.to_thread(self.records.start, request_id, endpoint, dumped, seed, prompt_id)
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
                                       "deadline; ComfyUI may be overloaded") from None
            timings["prepare_ms"] = (time.monotonic() - started) * 1000
            remaining = deadline - (time.monotonic() - started)
            result = await self.runner.run(graph, images, user_graph=user_graph,
                                           timeout_s=max(remaining, 0.001), prompt_id=prompt_id)
            timings.update(result.timings)
            outputs = await in_format(result.outputs, getattr(body, "format", None))
            paths = await asyncio.to_thread(self.records.save_outputs, request_id,
                                            [(o.data, o.extension) for o in outputs])
            timings["total_ms"] = (time.monotonic() - started) * 1000
            await asyncio.to_thread(self.records.finish, request_id, status="succeeded",
                                    outputs=paths, timings=timings, prompt_id=prompt_id)
        except ApiError as exc:
            exc.request_id = request_id  # type: ignore[attr-defined]
            await self._failed(endpoint, request_id, exc.to_body()["error"], timings, started,
                               prompt_id)
            raise
        except Exception as exc:
            error = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
            await self._failed(endpoint, request_id, error, timings, started, prompt_id)
            raise
        self.analytics.completed(route, request_id, timings)
        return Generation(request_id, seed, outputs, timings, paths)

    async def _failed(self, endpoint: str, request_id: str, error: dict[str, Any],
                      timings: dict[str, float], started: float, prompt_id: str) -> None:
        timings["total_ms"] = (time.monotonic() - started) * 1000
        await asyncio.to_thread(self.records.finish, request_id, status="failed", error=error,
                                timings=timings, prompt_id=prompt_id)
        self.analytics.failed(endpoint, request_id, str(error.get("code")), timings)


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


__all__ = ["Generation", "Generator", "in_format", "json_body"]
