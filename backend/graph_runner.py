"""The seam between the HTTP API and whatever runs ComfyUI graphs: one interface, two
implementations.

- `ComfyUIRunner` (here): `ryla-backend` talks to a ComfyUI it can reach directly.
- `backend.modal_dispatch.ModalGraphRunner`: the Modal web tier (a CPU container)
  validates on the spot and sends each graph to a GPU function.

The API (backend/generation.py) only ever calls a `GraphRunner`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from backend.comfyui_client import ComfyUIClient, JobEventSink, OutputFile
from backend.errors import DeadlineExceeded


@dataclass
class GraphResult:
    """What one graph produced: its outputs' bytes (graph order) and timings in ms."""
    prompt_id: str | None
    outputs: list[OutputFile]
    timings: dict[str, float] = field(default_factory=dict)
    # ComfyUI finished the job although it was asked to stop (cancel or deadline)
    stopped_late: bool = False


class GraphRunner(Protocol):
    async def check(self, graph: dict[str, Any], *, user_graph: bool,
                    input_images: Iterable[str] = ()) -> None:
        """Raise the API error the graph would fail with (400 bad graph, 503 model not
        installed), before anything is queued or any GPU is asked."""

    async def run(self, graph: dict[str, Any], images: Mapping[str, bytes], *,
                  user_graph: bool, timeout_s: float, prompt_id: str | None = None,
                  on_event: JobEventSink | None = None,
                  cancel: asyncio.Event | None = None) -> GraphResult:
        """Upload `images` (name -> PNG bytes), run the checked graph as ComfyUI prompt
        `prompt_id` (the caller recorded it first), return its outputs. `on_event` hears
        progress and previews; `cancel` set, or `timeout_s` passed, stops the job and
        the outcome is what ComfyUI confirmed: JobCancelled / DeadlineExceeded, or the
        outputs with `stopped_late` when ComfyUI finished it anyway."""

    async def health(self) -> dict[str, Any]:
        """What /health adds about generation; quick, never raises, never starts a GPU.
        Holds `generation: {"state": ...}` and `gpu` ("cold", "starting" or "warm")."""

    async def warm(self) -> dict[str, Any]:
        """POST /warm: ask for a GPU to get ready now, without waiting for it; at most one
        start in flight. `{"gpu": "cold"|"starting"|"warm", "ready_in_s": seconds or None}`."""

    def loras_changed(self) -> None:
        """A LoRA file was just written: drop anything that cached the LoRA list."""

    async def aclose(self) -> None: ...


class ComfyUIRunner:
    """A ComfyUI reachable over HTTP: validation by its live /object_info, jobs on its
    queue and WebSocket."""

    def __init__(self, comfy: ComfyUIClient) -> None:
        self.comfy = comfy

    async def check(self, graph: dict[str, Any], *, user_graph: bool,
                    input_images: Iterable[str] = ()) -> None:
        await self.comfy.check_graph(graph, user_graph=user_graph, input_images=input_images)

    async def run(self, graph: dict[str, Any], images: Mapping[str, bytes], *,
                  user_graph: bool, timeout_s: float, prompt_id: str | None = None,
                  on_event: JobEventSink | None = None,
                  cancel: asyncio.Event | None = None) -> GraphResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(timeout_s):
                for name, png in images.items():
                    await self.comfy.upload_image(png, name)
        except TimeoutError:
            raise DeadlineExceeded(f"uploading the input images took longer than the "
                                   f"{timeout_s:.0f} s left of the deadline") from None
        uploaded = loop.time()
        result = await self.comfy.run(graph, max(timeout_s - (uploaded - started), 0.001),
                                      prompt_id=prompt_id, user_graph=user_graph,
                                      on_event=on_event, cancel=cancel)
        timings = {"upload_ms": (uploaded - started) * 1000, **result.timings}
        return GraphResult(result.prompt_id, result.outputs, timings, result.stopped_late)

    async def health(self) -> dict[str, Any]:
        comfy = await self.comfy.health()
        return {"comfyui": comfy, "gpu": "warm" if comfy["reachable"] else "cold",
                "generation": {"state": "ready" if comfy["reachable"] else "unavailable"}}

    async def warm(self) -> dict[str, Any]:
        # `ryla-backend` does not start ComfyUI, so it only says whether it answers; a
        # ComfyUI that does not may never come: how soon is unknown (None).
        reachable = (await self.comfy.health())["reachable"]
        return {"gpu": "warm", "ready_in_s": 0} if reachable else {"gpu": "cold", "ready_in_s": None}

    def loras_changed(self) -> None:
        self.comfy.invalidate_object_info()  # ComfyUI's LoRA list just changed

    async def aclose(self) -> None:
        await self.comfy.aclose()
