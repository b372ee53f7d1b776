"""A GraphRunner whose jobs the test drives, for the jobs layer (backend/jobs.py, the job
routes) on its own: each run reports one progress event and one preview through
`on_event`, as ComfyUIClient does, then holds until the test releases it or the job's
`cancel` is set. What a cancel leads to follows the runner interface: JobCancelled (ComfyUI
confirmed it stopped), or the outputs with `stopped_late` (ComfyUI finished it anyway).

The server runs in another thread with its own event loop; the test steers through
threading.Events."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from PIL import Image

from backend.comfyui_client import JobEventSink, JobPreview, JobProgress, OutputFile
from backend.errors import JobCancelled
from backend.graph_runner import GraphResult

POLL_S = 0.01


def picture(fmt: str, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format=fmt)
    return buffer.getvalue()


OUTPUT_PNG = picture("PNG", (250, 120, 10))
PREVIEW_JPEG = picture("JPEG", (20, 40, 200))
PROGRESS = JobProgress(fraction=0.5, step=1, steps=2, node="3")


class ScriptedRunner:
    def __init__(self, *, hold: bool = True) -> None:
        self.hold = hold  # False: every run ends as soon as it has reported its events
        self.finish_when_cancelled = False  # True: ComfyUI "could not interrupt" the node
        self.cancel_confirmed = True  # False: ComfyUI's word on the stop could not be had
        self.release = threading.Event()
        self.started = threading.Event()  # a run has reported its events and holds
        self.cancel_seen = threading.Event()
        self.runs = 0

    async def check(self, graph: dict[str, Any], *, user_graph: bool,
                    input_images: Iterable[str] = ()) -> None:
        return None

    async def run(self, graph: dict[str, Any], images: Mapping[str, bytes], *,
                  user_graph: bool, timeout_s: float, prompt_id: str | None = None,
                  on_event: JobEventSink | None = None,
                  cancel: asyncio.Event | None = None) -> GraphResult:
        self.runs += 1
        if on_event is not None:
            on_event(PROGRESS)
            on_event(JobPreview(step=1, jpeg=PREVIEW_JPEG))
        self.started.set()
        stopped_late = False
        while self.hold and not self.release.is_set():
            if cancel is not None and cancel.is_set():
                self.cancel_seen.set()
                if not self.finish_when_cancelled:
                    raise JobCancelled(f"prompt {prompt_id} was interrupted" if self.cancel_confirmed
                                       else "whether it runs is unknown",
                                       confirmed=self.cancel_confirmed)
                stopped_late = True
                break
            await asyncio.sleep(POLL_S)
        output = OutputFile("9", "ryla_00001_.png", "image/png", OUTPUT_PNG)
        return GraphResult(prompt_id, [output], {"comfyui_ms": 1.0}, stopped_late)

    async def health(self) -> dict[str, Any]:
        return {"generation": {"state": "ready"}}

    def loras_changed(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
