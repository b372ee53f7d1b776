"""Start ComfyUI and the backend on the GPU machine the way backend/modal_app.py starts them
in a container (same ComfyUI command line, same deployment settings, same ASGI app), with
the container's paths replaced by the rehearsal's. Prints one JSON line of start figures.

    python -m benchmarks.rehearsal.stack --comfyui-dir /tmp/cu/ComfyUI --models-dir M \
        --lora-dir L --data-dir D --port 8000 [--comfyui-arg=--cache-lru --comfyui-arg=16]

Runs until killed: ComfyUI as a child process, the backend under uvicorn in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import uvicorn

from backend import warmup
from backend.comfyui_client import ComfyUIClient

try:
    from backend import comfyui_process as proc
except ImportError:  # TEMPORARY shim until the modal-free process module lands
    import types
    import urllib.request
    from dataclasses import dataclass

    @dataclass
    class ContainerLayout:
        comfyui_dir: Path
        models_dir: Path
        lora_dir: Path
        data_dir: Path
        comfyui_url: str = "http://127.0.0.1:8188"

    def comfyui_command(layout):
        yaml = layout.data_dir.parent / "extra_model_paths.yaml"
        yaml.parent.mkdir(parents=True, exist_ok=True)
        yaml.write_text(f"ryla_loras:\n    loras: {layout.lora_dir}\n")
        return [sys.executable, str(layout.comfyui_dir / "main.py"), "--listen", "127.0.0.1",
                "--port", "8188", "--extra-model-paths-config", str(yaml), "--disable-auto-launch"]

    def wait_for_comfyui(p, url, timeout_s):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if p.poll() is not None:
                raise RuntimeError("ComfyUI exited")
            try:
                urllib.request.urlopen(url + "/system_stats", timeout=2)
                return
            except OSError:
                time.sleep(0.25)
        raise TimeoutError("ComfyUI did not start")

    def deployment_settings(env, layout):
        from backend.settings import Settings
        return Settings(comfyui_url=layout.comfyui_url, models_dir=layout.models_dir,
                        lora_dir=layout.lora_dir, data_dir=layout.data_dir,
                        api_token=env["RYLA_API_TOKEN"])

    def build_app(settings):
        from backend.api import create_app
        return create_app(settings)

    proc = types.SimpleNamespace(ContainerLayout=ContainerLayout, comfyui_command=comfyui_command,
                                 wait_for_comfyui=wait_for_comfyui,
                                 deployment_settings=deployment_settings, build_app=build_app)


async def _warm_up(settings, pipeline: str) -> float:
    comfy = ComfyUIClient(settings.comfyui_url, models_dir=settings.models_dir, lora_dir=settings.lora_dir)
    try:
        return await warmup.warm_up(comfy, pipeline)
    finally:
        await comfy.aclose()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--comfyui-dir", type=Path, required=True)
    p.add_argument("--models-dir", type=Path, required=True)
    p.add_argument("--lora-dir", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--front-end-root", type=Path, required=True)
    p.add_argument("--comfyui-arg", action="append", default=[])
    p.add_argument("--log", type=Path, required=True)
    p.add_argument("--prefetch", default="", help="pipeline whose files are read while ComfyUI starts")
    p.add_argument("--warm-up", default="", help="pipeline whose one-step prompt runs once ComfyUI is up")
    a = p.parse_args(argv)

    layout = proc.ContainerLayout(comfyui_dir=a.comfyui_dir, models_dir=a.models_dir,
                                  lora_dir=a.lora_dir, data_dir=a.data_dir)
    # The frontend package is not carried (the API needs no UI); ComfyUI serves this folder.
    command = proc.comfyui_command(layout) + ["--front-end-root", str(a.front_end_root), *a.comfyui_arg]
    start_epoch = time.time()
    t0 = time.monotonic()
    prefetching = warmup.start_prefetch(a.prefetch, a.models_dir) if a.prefetch else None
    log = open(a.log, "wb")
    comfy = subprocess.Popen(command, cwd=a.comfyui_dir, stdout=log, stderr=subprocess.STDOUT)
    proc.wait_for_comfyui(comfy, layout.comfyui_url, timeout_s=600)
    ready = time.monotonic() - t0
    env = dict(os.environ, RYLA_API_TOKEN=os.environ.get("RYLA_API_TOKEN", "rehearsal"))
    settings = proc.deployment_settings(env, layout)
    figures = {"comfyui_ready_s": round(ready, 2), "start_epoch": start_epoch, "command": command}
    if a.warm_up:
        figures["warm_up_s"] = round(asyncio.run(_warm_up(settings, a.warm_up)), 2)
    if prefetching is not None:
        prefetching.join()
        report = prefetching.result[0]
        figures.update(prefetch_s=round(report.seconds, 2), prefetch_gb_per_s=round(report.gb_per_s, 2))
    figures["ready_for_requests_s"] = round(time.monotonic() - t0, 2)
    app = proc.build_app(settings)
    print(json.dumps(figures), flush=True)
    try:
        uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning")
    finally:
        comfy.terminate()


if __name__ == "__main__":
    sys.exit(main())
