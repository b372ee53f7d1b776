"""Start-up work that makes a container's first request fast.

A cold container pays for two things before its first image: ComfyUI's own start (torch,
CUDA, the node packs) and reading the first model's weights (Flux Dev and T5 are 32 GB in
bf16). They do not depend on each other, so `prefetch` reads the weights into the page cache
on several threads while ComfyUI imports, and `warm_up` then runs a one-step prompt of the
pipeline, which moves those weights into GPU memory from RAM, before any user waits on it.
`flux-dev-fast` warms fast mode: one 1024x1024 step, so torch.compile compiles at the size
users ask for. Measured on the GPU rehearsal (benchmarks/rehearsal/, docs/performance.md).

A warm-up whose pipeline lacks a file, or that fails, is logged and skipped: a deployment
without Flux Dev still starts, and serves Schnell and Z-Image.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from backend.comfyui_client import ComfyUIClient
from backend.errors import ApiError
from workflows.manifest import MODEL_MANIFEST, USER_FOLDERS, ModelFile, files_for
from workflows.object_info import FOLDER_ALIASES
from workflows.render import render_workflow
from workflows.request_models import (FAST_MODE, STANDARD_MODE, FluxDevRequest,
                                      FluxSchnellRequest, mode_of)

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024 * 1024
READ_THREADS = 8


def warm_up_name(pipeline: str, request: BaseModel) -> str:
    """The pipeline's name, with the request's mode when it is not the standard one."""
    mode = mode_of(request)
    return pipeline if mode == STANDARD_MODE else f"{pipeline}-{mode}"


# The smallest prompts that load every model their pipeline needs
_WARM_UPS: tuple[tuple[str, BaseModel], ...] = (
    ("flux-dev", FluxDevRequest(prompt="warm-up", width=256, height=256, steps=1)),
    ("flux-schnell", FluxSchnellRequest(prompt="warm-up", width=256, height=256, steps=1)),
    # fast mode: torch.compile specialises on the latent's size, so compile at the
    # default 1024x1024
    ("flux-dev", FluxDevRequest(prompt="warm-up", steps=1, mode=FAST_MODE)),
)
# name -> (pipeline, request): "flux-dev", "flux-schnell", "flux-dev-fast"
WARM_UP_REQUESTS: dict[str, tuple[str, BaseModel]] = {
    warm_up_name(pipeline, request): (pipeline, request) for pipeline, request in _WARM_UPS}


def compiles(name: str) -> bool:
    """Whether a warm-up runs fast mode, whose torch.compile leaves a cache to publish."""
    return mode_of(WARM_UP_REQUESTS[name][1]) == FAST_MODE


class UnknownWarmUp(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown warm-up {name!r}; known: {', '.join(WARM_UP_REQUESTS)}")


def warm_up_names(names: Iterable[str]) -> list[str]:
    """`names` (e.g. RYLA_MODAL_WARM_UP's), checked against the known warm-ups."""
    names = list(names)
    for name in names:
        if name not in WARM_UP_REQUESTS:
            raise UnknownWarmUp(name)
    return names


def warm_up_pipelines(names: Iterable[str]) -> list[str]:
    """The pipelines behind warm-ups, each once, in order: whose files to prefetch."""
    return list(dict.fromkeys(WARM_UP_REQUESTS[n][0] for n in names))


def installed_file(entry: ModelFile, models_dir: Path) -> Path | None:
    """Where a manifest file is installed under models_dir (its folder or one of the
    folder's aliases, as ComfyUI lists them), None when it is not."""
    for folder in (entry.folder, *FOLDER_ALIASES.get(entry.folder, ())):
        if (models_dir / folder / entry.local_name).is_file():
            return models_dir / folder / entry.local_name
    return None


def missing_files(pipeline: str, models_dir: Path) -> list[str]:
    """The pipeline's manifest files absent from models_dir, as folder/name (the files a
    user adds, LoRAs, are not counted)."""
    return [f"{e.folder}/{e.local_name}" for e in files_for(pipeline)
            if e.folder not in USER_FOLDERS and installed_file(e, Path(models_dir)) is None]


def pipeline_readiness(models_dir: Path) -> dict[str, bool]:
    """pipeline -> whether every file it needs is installed: a few stat calls, cheap
    enough for /health."""
    pipelines = dict.fromkeys(p for e in MODEL_MANIFEST for p in e.pipelines)
    return {p: not missing_files(p, models_dir) for p in pipelines}


@dataclass(frozen=True)
class PrefetchReport:
    files: int
    bytes_read: int
    seconds: float

    @property
    def gb_per_s(self) -> float:
        return self.bytes_read / 1e9 / self.seconds if self.seconds else 0.0


def pipeline_files(pipeline: str, models_dir: Path) -> list[Path]:
    """The installed files of a pipeline's manifest entries, largest first."""
    paths = [path for e in files_for(pipeline) if (path := installed_file(e, models_dir)) is not None]
    return sorted(paths, key=lambda p: -p.stat().st_size)


def prefetch(paths: Iterable[Path], threads: int = READ_THREADS, chunk: int = READ_CHUNK) -> PrefetchReport:
    """Read every file once, in chunks on `threads` threads, so that the kernel keeps them
    in the page cache; one stream alone reads far below what the disk gives."""
    ranges = []
    for path in paths:
        size = path.stat().st_size
        ranges += [(path, offset, min(chunk, size - offset)) for offset in range(0, size, chunk)]
    total = 0
    lock = threading.Lock()

    def read(item: tuple[Path, int, int]) -> None:
        nonlocal total
        path, offset, length = item
        fd = os.open(path, os.O_RDONLY)
        try:
            got = len(os.pread(fd, length, offset))
        finally:
            os.close(fd)
        with lock:
            total += got

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="prefetch") as pool:
        list(pool.map(read, ranges))
    return PrefetchReport(len({r[0] for r in ranges}), total, time.monotonic() - started)


class BackgroundPrefetch:
    """`prefetch` of pipelines' files on a thread of its own, so that start-up goes on."""

    def __init__(self, pipelines: Iterable[str], models_dir: Path, threads: int = READ_THREADS,
                 chunk: int = READ_CHUNK) -> None:
        self._report: PrefetchReport | None = None
        paths = list(dict.fromkeys(p for name in pipelines for p in pipeline_files(name, models_dir)))
        self._thread = threading.Thread(target=self._run, args=(paths, threads, chunk), name="prefetch",
                                        daemon=True)
        self._thread.start()

    def _run(self, paths: list[Path], threads: int, chunk: int) -> None:
        self._report = prefetch(paths, threads, chunk)

    def join(self) -> PrefetchReport | None:
        """Wait for the reads; their report (None if the thread failed)."""
        self._thread.join()
        return self._report


async def warm_up(comfy: ComfyUIClient, name: str, timeout_s: float = 600.0) -> float:
    """Run a warm-up's smallest prompt, which loads all of its models; seconds taken."""
    if name not in WARM_UP_REQUESTS:
        raise UnknownWarmUp(name)
    pipeline, request = WARM_UP_REQUESTS[name]
    started = time.monotonic()
    await comfy.run(render_workflow(pipeline, request, seed=0), timeout_s)
    return time.monotonic() - started


def ready_warm_ups(names: Iterable[str], models_dir: Path) -> list[str]:
    """The warm-ups whose pipeline has all its files; the others are logged, with what
    they lack."""
    ready = []
    for name in names:
        missing = missing_files(WARM_UP_REQUESTS[name][0], models_dir)
        if missing:
            log.warning("warm-up %s skipped: missing %s", name, ", ".join(missing))
        else:
            ready.append(name)
    return ready


def warm_up_comfyui(comfyui_url: str, models_dir: Path, lora_dir: Path, names: Iterable[str],
                    timeout_s: float = 600.0) -> dict[str, float]:
    """`warm_up` of each name whose files are there, in turn, from synchronous start-up
    code (a container's enter step); seconds per warm-up that ran. A warm-up that fails is
    logged and skipped: the container still starts, and a request names the problem."""
    async def run() -> dict[str, float]:
        comfy = ComfyUIClient(comfyui_url, models_dir=models_dir, lora_dir=lora_dir)
        seconds = {}
        try:
            for name in ready_warm_ups(names, models_dir):
                try:
                    seconds[name] = await warm_up(comfy, name, timeout_s)
                except ApiError as exc:
                    log.warning("warm-up %s failed (%s): %s", name, exc.code, exc.message)
            return seconds
        finally:
            await comfy.aclose()
    return asyncio.run(run())
