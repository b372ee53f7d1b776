"""Start ComfyUI and the API on the GPU machine the way backend/modal_app.py runs them, with
the container's paths replaced by the rehearsal's and Modal's transport by an in-process
call. Prints one JSON line of start figures, then serves the API until killed.

  - ComfyUI: `backend.deploy.comfyui.comfyui_command(layout)`, the GPU container's command line
    (plus the rehearsal's `--front-end-root`, since the frontend package is not carried);
  - the API: the web tier's app (`build_app` with `ModalGraphRunner`: validation against the
    shipped object_info and the models folder, dispatch, deadlines), whose GPU function is
    the GPU container's own body (`gpu_worker.GpuWorker.run`), called here in-process; the
    job channel (progress, previews, cancel) is in memory instead of a modal.Queue, and
    runs the same relay;
  - optional start-up work of backend/warmup.py (`--prefetch`, `--warm-up`).

    python -m benchmarks.rehearsal.stack --comfyui-dir /tmp/cu/ComfyUI --lora-dir L \
        --data-dir D --front-end-root FE --log comfy.log [--comfyui-arg=--cache-lru ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import uvicorn

from backend import warmup
from backend.deploy.comfyui import ComfyUIProcess
from backend.deploy.layout import ContainerLayout, write_extra_model_paths
from backend.deploy.options import MEASURED_COLD_START_S
from backend.deploy.web import build_app, deployment_settings
from backend.gpu_worker import GpuWorker
from backend.modal_dispatch import InMemoryJobChannel, ModalGraphRunner
from backend.settings import names_list
from backend.snapshot_validation import SnapshotValidator
from benchmarks.rehearsal.warm_start import RehearsalHeartbeats, WarmUpOnStart


class InProcessCall:
    """A GPU call as ModalPendingCall behaves: get() raises TimeoutError while it runs."""

    def __init__(self, task: asyncio.Task[Any], n: int) -> None:
        self.task, self.call_id = task, f"in-process-{n}"

    async def get(self, timeout_s: float) -> Any:
        return await asyncio.wait_for(asyncio.shield(self.task), timeout_s)

    async def cancel(self) -> None:
        self.task.cancel()


class InProcessGpuFunction:
    """ComfyUIWorker.run_graph without Modal: one call at a time, as max_inputs=1 does."""

    def __init__(self, worker: GpuWorker) -> None:
        self.worker, self.calls, self.lock = worker, 0, asyncio.Lock()

    async def spawn(self, wire_job: dict[str, Any]) -> InProcessCall:
        async def one() -> Any:
            async with self.lock:
                return await self.worker.run(wire_job)
        self.calls += 1
        return InProcessCall(asyncio.create_task(one()), self.calls)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--comfyui-dir", type=Path, required=True)
    p.add_argument("--lora-dir", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--front-end-root", type=Path, required=True)
    p.add_argument("--comfyui-arg", action="append", default=[])
    p.add_argument("--log", type=Path, required=True)
    p.add_argument("--prefetch", default="", help="pipelines (comma-separated) whose files are read while ComfyUI starts")
    p.add_argument("--prefetch-threads", type=int, default=warmup.READ_THREADS)
    p.add_argument("--prefetch-chunk-mb", type=int, default=warmup.READ_CHUNK // 2**20)
    p.add_argument("--warm-up", default="", help="warm-ups (comma-separated, backend/warmup.py) run once ComfyUI is up")
    a = p.parse_args(argv)

    layout = ContainerLayout(comfyui_dir=a.comfyui_dir, models_dir=a.comfyui_dir / "models",
                             lora_dir=a.lora_dir, data_dir=a.data_dir)
    write_extra_model_paths(layout)
    comfy = ComfyUIProcess.for_layout(layout, ["--front-end-root", str(a.front_end_root), *a.comfyui_arg])
    start_epoch, t0 = time.time(), time.monotonic()
    prefetch = names_list(a.prefetch)
    prefetching = warmup.BackgroundPrefetch(prefetch, layout.models_dir, a.prefetch_threads,
                                            a.prefetch_chunk_mb * 2**20) if prefetch else None
    comfy.start(600, stdout=open(a.log, "wb"), stderr=subprocess.STDOUT)
    figures: dict[str, Any] = {"comfyui_ready_s": round(time.monotonic() - t0, 2), "start_epoch": start_epoch}
    if a.warm_up:
        seconds = warmup.warm_up_comfyui(layout.comfyui_url, layout.models_dir, layout.lora_dir,
                                         warmup.warm_up_names(names_list(a.warm_up)))
        figures["warm_up_s"] = round(sum(seconds.values()), 2)
        figures.update({f"warm_up_{name}_s": round(s, 2) for name, s in seconds.items()})
    report = prefetching.join() if prefetching is not None else None
    if report is not None:
        figures.update(prefetch_s=round(report.seconds, 2), prefetch_gb_per_s=round(report.gb_per_s, 2))
    figures["ready_for_requests_s"] = round(time.monotonic() - t0, 2)
    figures["command"] = comfy.command

    settings = deployment_settings(dict(os.environ, RYLA_API_TOKEN=os.environ.get("RYLA_API_TOKEN", "rehearsal")),
                                   layout)
    channel = InMemoryJobChannel()
    worker = GpuWorker(layout.comfyui_url, models_dir=layout.models_dir, lora_dir=layout.lora_dir,
                       channel=channel)
    # POST /warm runs the container's warm-up prompt on this ComfyUI (warm_start.py says why);
    # the one "container" counts as warm once a warm-up has loaded the models.
    beats = RehearsalHeartbeats()
    if a.warm_up:
        beats.beat()
    gpu = WarmUpOnStart(InProcessGpuFunction(worker), layout.comfyui_url, beats,
                        models_dir=layout.models_dir, lora_dir=layout.lora_dir)
    runner = ModalGraphRunner(gpu, beats, SnapshotValidator(settings.models_dir, settings.lora_dir),
                              cold_start_s=MEASURED_COLD_START_S, heartbeat_stale_s=60.0,
                              channel=channel)
    app = build_app(settings, runner)
    print(json.dumps(figures), flush=True)
    try:
        uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning")
    finally:
        comfy.stop()


if __name__ == "__main__":
    main()
