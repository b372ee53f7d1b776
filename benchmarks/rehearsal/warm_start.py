"""What POST /warm starts on the rehearsal machine, where there is no Modal to start a GPU
container.

On Modal, /warm has one GPU container start: its start-up runs ComfyUI and then the
warm-up prompt of backend/warmup.py, which loads Flux Dev and T5 into GPU memory. On the
rehearsal machine ComfyUI is already running when the API answers (stack.py starts it
first), so "starting a GPU" is the rest of that start-up: the same warm-up prompt, run on
that ComfyUI. A generation asked meanwhile waits for it, as it would wait for a starting
container (one input at a time).

The stack plugs these two into backend/modal_dispatch.py's runner in place of its
always-warm heartbeats:

    beats = RehearsalHeartbeats()
    gpu = WarmUpOnStart(InProcessGpuFunction(worker), layout.comfyui_url, beats,
                        models_dir=layout.models_dir, lora_dir=layout.lora_dir)
    runner = ModalGraphRunner(gpu, beats, validator, cold_start_s=..., heartbeat_stale_s=60.0)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Protocol

from backend import warmup
from backend.comfyui_client import ComfyUIClient
from backend.modal_dispatch import STARTING_KEY, PendingCall


class InProcessGpu(Protocol):
    """stack.InProcessGpuFunction: the GPU container's body, one call at a time."""
    lock: asyncio.Lock

    async def spawn(self, wire_job: dict[str, Any]) -> PendingCall: ...


class RehearsalHeartbeats:
    """The heartbeat store in memory: the one "container" beats once its warm-up has loaded
    the models, so that /warm on a fresh stack is cold and starts loading, once."""

    def __init__(self) -> None:
        self.loaded = False
        self.marker: dict[str, Any] | None = None

    def beat(self) -> None:
        self.loaded = True

    async def read(self) -> dict[str, Any]:
        beats: dict[str, Any] = {"rehearsal": {"at": time.time(), "busy": False}} if self.loaded else {}
        if self.marker is not None:
            beats[STARTING_KEY] = self.marker
        return beats

    async def mark_starting(self, since: float) -> bool:
        if self.marker is not None:
            return False
        self.marker = {"since": since}
        return True

    async def clear_starting(self) -> None:
        self.marker = None


class WarmUpOnStart:
    """The in-process GPU function plus `start_container`: the warm-up prompt (`flux-dev`
    by default), in the background, holding the GPU's one-call lock while it runs."""

    def __init__(self, gpu: InProcessGpu, comfyui_url: str, beats: RehearsalHeartbeats, *,
                 models_dir: Path, lora_dir: Path, warm_up: str = "flux-dev") -> None:
        self.gpu, self.comfyui_url, self.beats = gpu, comfyui_url, beats
        self.models_dir, self.lora_dir = models_dir, lora_dir
        self.warm_up = warmup.warm_up_names([warm_up])[0]
        self.loading: asyncio.Task[float] | None = None

    async def spawn(self, wire_job: dict[str, Any]) -> PendingCall:
        return await self.gpu.spawn(wire_job)

    async def start_container(self) -> None:
        self.loading = asyncio.create_task(self._load())

    async def _load(self) -> float:
        comfy = ComfyUIClient(self.comfyui_url, models_dir=self.models_dir, lora_dir=self.lora_dir)
        try:
            async with self.gpu.lock:
                seconds = await warmup.warm_up(comfy, self.warm_up)
        finally:
            await comfy.aclose()
        self.beats.beat()
        return seconds
