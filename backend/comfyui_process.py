"""Where the deployment's pieces live and how its backend is built, without Modal.

`backend/modal_app.py` takes its paths, the web tier's settings and its app from here;
a rehearsal on a machine without the `modal` package starts ComfyUI and the backend
with the same functions and its own paths:

    layout = ContainerLayout(comfyui_dir=Path("/opt/ComfyUI"), lora_dir=Path("/opt/loras"),
                             data_dir=Path("/opt/ryla-data"))
    write_extra_model_paths(layout)
    comfy = subprocess.Popen(comfyui_command(layout), cwd=layout.comfyui_dir)
    wait_for_comfyui(comfy, layout.comfyui_url, timeout_s=300)
    app = build_app(deployment_settings(os.environ, layout))   # then uvicorn.run(app, ...)

(ComfyUI's command line and the wait are backend/gpu_worker.py's, which the Modal GPU
class runs; `build_app` without a runner serves a local ComfyUI, as `ryla-backend` does.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backend.gpu_worker import comfyui_command as _comfyui_command
from backend.gpu_worker import wait_for_comfyui

if TYPE_CHECKING:  # fastapi is only needed where the app is built
    from fastapi import FastAPI

    from backend.graph_runner import GraphRunner
    from backend.settings import Settings

__all__ = ["API_SECRET_NAME", "ContainerLayout", "build_app", "comfyui_command",
           "deployment_settings", "extra_model_paths_yaml", "wait_for_comfyui",
           "write_extra_model_paths"]

API_SECRET_NAME = "ryla-api-token"  # the Modal Secret that holds RYLA_API_TOKEN


@dataclass(frozen=True)
class ContainerLayout:
    """Where ComfyUI, the models, the LoRAs and the job records live; the defaults are
    the Modal containers'."""

    comfyui_dir: Path = Path("/root/comfy/ComfyUI")
    # ComfyUI's own models directory, comfyui_dir/models (its command line passes no
    # --base-directory): the InstantID and PuLID nodes open models_dir/instantid, /pulid
    # and /insightface directly, which an extra_model_paths.yaml would not redirect. The
    # backend reads the same directory (the files ComfyUI cannot list, GET /models), so
    # another path (after symlinks) is refused. None: comfyui_dir/models.
    models_dir: Path = None  # type: ignore[assignment]
    # Outside models_dir: extra_model_paths.yaml adds it to ComfyUI's "loras" folder.
    lora_dir: Path = Path("/loras")
    data_dir: Path = Path("/root/ryla-data")  # job records and outputs
    comfyui_port: int = 8188
    # None: beside the ComfyUI checkout (/root/comfy/extra_model_paths.yaml on Modal)
    extra_model_paths: Path = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        own = Path(self.comfyui_dir) / "models"
        if self.models_dir is None:
            object.__setattr__(self, "models_dir", own)
        elif Path(self.models_dir).resolve() != own.resolve():
            raise ValueError(f"models_dir {self.models_dir} is not ComfyUI's models directory "
                             f"{own}: ComfyUI and the backend must read the same one")
        if self.extra_model_paths is None:
            object.__setattr__(self, "extra_model_paths",
                               Path(self.comfyui_dir).parent / "extra_model_paths.yaml")

    @property
    def comfyui_url(self) -> str:
        return f"http://127.0.0.1:{self.comfyui_port}"  # only reachable on this machine


def extra_model_paths_yaml(layout: ContainerLayout) -> str:
    """ComfyUI's extra_model_paths.yaml: the LoRA directory as a "loras" folder, so
    LoraLoaderModelOnly lists what the backend's LoraStore writes there."""
    return f"ryla_loras:\n    loras: {layout.lora_dir}\n"


def write_extra_model_paths(layout: ContainerLayout) -> None:
    """Write the layout's extra_model_paths.yaml (the Modal image has it already)."""
    layout.extra_model_paths.parent.mkdir(parents=True, exist_ok=True)
    layout.extra_model_paths.write_text(extra_model_paths_yaml(layout), encoding="utf-8")


# What the deployment asks of ComfyUI beyond its defaults, each measured on the GPU
# rehearsal (docs/performance.md):
# - no API nodes: they call paid web services this deployment never uses, and skipping
#   their import shortens every start;
# - an LRU cache of node results large enough for every pipeline's loaders: a loaded model
#   stays referenced (so resident in GPU memory while it fits, else offloaded to RAM)
#   instead of being dropped when another graph runs, so switching Dev, Schnell, LoRAs
#   and PuLID does not read a model from the Volume again.
# --preview-method taesd: live previews from TAESD when its decoder is in models/vae_approx,
# else latent2rgb (no extra model); v0.12.1's `auto` always means latent2rgb.
COMFYUI_ARGS = ("--disable-api-nodes", "--cache-lru", "128", "--preview-method", "taesd")


def comfyui_command(layout: ContainerLayout) -> list[str]:
    """ComfyUI's command line (run it with cwd=layout.comfyui_dir); the yaml it names
    must exist (write_extra_model_paths)."""
    return _comfyui_command(layout.comfyui_dir, layout.comfyui_port,
                            extra_model_paths=str(layout.extra_model_paths), extra_args=COMFYUI_ARGS)


def deployment_settings(env: Mapping[str, str], layout: ContainerLayout) -> "Settings":
    """The backend's settings, built from the layout, not from environment defaults, so
    that the API and ComfyUI always agree on where models and LoRAs live."""
    from backend.settings import Settings

    token = env.get("RYLA_API_TOKEN", "").strip()
    if not token:
        # Fail closed: a deployment without a token would be an open GPU endpoint.
        raise RuntimeError(f"RYLA_API_TOKEN is empty; set it in the Modal Secret {API_SECRET_NAME!r}")
    base = Settings.from_env(env)  # deadlines, limits, PostHog keep their env overrides
    return Settings(
        comfyui_url=layout.comfyui_url,
        models_dir=layout.models_dir,
        lora_dir=layout.lora_dir,
        data_dir=layout.data_dir,
        api_token=token,
        deadline_s=base.deadline_s,
        max_body_bytes=base.max_body_bytes,
        max_lora_bytes=base.max_lora_bytes,
        max_image_pixels=base.max_image_pixels,
        posthog_api_key=base.posthog_api_key,
        posthog_host=base.posthog_host,
        fast_mode_compile=base.fast_mode_compile,
    )


def _nothing() -> None:
    return None


def build_app(settings: "Settings", runner: "GraphRunner | None" = None, *,
              before_lora_read: Callable[[], None] = _nothing,
              before_models_read: Callable[[], None] = _nothing,
              after_lora_write: Callable[[], None] = _nothing,
              after_job: Callable[[], None] = _nothing) -> "FastAPI":
    """The same app as `ryla-backend` with `runner` behind it (None: the ComfyUI at
    settings.comfyui_url). The hooks let a deployment whose directories are shared
    between machines (Modal Volumes) refresh them before LoRAs or models are listed or
    used, and publish the LoRA directory after an upload and the data directory (job
    records, outputs) after each generation, failed ones too; they run on a thread."""
    from backend.api import create_app
    from workflows.registry import ROUTES

    web_app = create_app(settings, runner)

    @web_app.middleware("http")
    async def share_volumes(request, call_next):  # type: ignore[no-untyped-def]
        path = request.url.path.rstrip("/")
        if (path == "/loras" and request.method == "GET") or path == "/flux-lora":
            await asyncio.to_thread(before_lora_read)
        elif path == "/models":
            await asyncio.to_thread(before_models_read)  # a download may have finished since
        response = await call_next(request)
        if path == "/loras" and request.method == "POST" and response.status_code < 300:
            await asyncio.to_thread(after_lora_write)
        if path in ROUTES and request.method == "POST":
            await asyncio.to_thread(after_job)
        return response

    return web_app
