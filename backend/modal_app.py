# # RYLA on Modal: the `ryla-comfyui` app
#
# The production backend, in two tiers so that idle costs (almost) nothing:
#
# - `web`: the same FastAPI app as `ryla-backend` (backend/api.py) on a small CPU
#   container. /health, /loras, /models, auth and every validation run there; a bad
#   request or a status check never wakes a GPU.
# - `ComfyUIWorker`: ComfyUI on a GPU, one prompt per container. Its `run_graph` method
#   runs one filled graph (backend/gpu_worker.py) and returns the outputs' bytes and
#   timings; the web tier spawns it per generation and polls for the result.
#
#     modal secret create huggingface-secret HF_TOKEN=hf_...
#     modal secret create ryla-api-token RYLA_API_TOKEN=...
#     modal run backend/modal_app.py::download_models      # once; fills the models Volume
#     modal deploy backend/modal_app.py                    # prints the web URL
#
# docs/deploy.md has the walk-through and the costs.
#
# The values the decorators use are module-level constants so that tests can check
# them offline (tests/modal/), where Modal itself cannot be reached.

from __future__ import annotations

import os
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import modal

# Paths, the web tier's settings and app, ComfyUI's command line, without Modal: a
# rehearsal on a machine without the `modal` package uses the same functions.
from backend import comfyui_process
from backend.settings import names_list

if TYPE_CHECKING:  # the backend is imported inside the containers, where it runs
    from fastapi import FastAPI

    from backend.graph_runner import GraphRunner
    from backend.model_download import DownloadReport
    from backend.modal_dispatch import PendingCall
    from backend.settings import Settings

APP_NAME = "ryla-comfyui"

# ## Pinned versions
#
# Upstream ComfyUI v0.12.1 (tag commit below): the version the contract recordings in
# ../shared/comfyui/, the CPU contract tests (../shared/tools/upstream-comfyui.sh) and the
# GPU rehearsal ran, with these node-pack commits. PuLID_Flux_ll patches Flux internals,
# so a ComfyUI bump is a deliberate change, made together with the node packs and
# re-tested against a re-recorded upstream.
COMFYUI_REPO = "https://github.com/comfyanonymous/ComfyUI.git"
COMFYUI_VERSION = "v0.12.1"
COMFYUI_COMMIT = "3be017516643d9a8d8ed85904512ed4b240ef8c6"
INSTANTID_REPO = "https://github.com/cubiq/ComfyUI_InstantID.git"
INSTANTID_COMMIT = "1ef34ef573581bd9727c1e0ac05aa956b356a510"
PULID_REPO = "https://github.com/lldacing/ComfyUI_PuLID_Flux_ll.git"
PULID_COMMIT = "ba90657fe6ffa8072ac169a949bfa5e4153bf48a"

# Every Python package of both images is listed here; each image installs its lists in
# one pip resolve. tests/modal/test_image_packages.py installs the same lists, GPU stack
# aside, into clean virtualenvs and builds what each image runs from them.
#
# torch 2.11.0 with its matching torchvision and torchaudio (ComfyUI's requirements name
# all three; 2.11 is the newest torch with a torchaudio build on PyPI, and the torch the
# GPU rehearsal machine runs). PyPI's Linux wheels are built for CUDA 13.0: the GPU
# driver must be 580 or newer.
TORCH_PACKAGES = ("torch==2.11.0", "torchvision==0.26.0", "torchaudio==2.11.0")
# ComfyUI's requirements.txt at COMFYUI_COMMIT, pinned (the file says how).
COMFYUI_REQUIREMENTS = "comfyui_requirements.txt"  # in backend/, shipped with the package


def read_requirements(name: str = COMFYUI_REQUIREMENTS) -> tuple[str, ...]:
    """The requirement lines of a requirements file in backend/, comments left out."""
    text = resources.files("backend").joinpath(name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))


COMFYUI_PACKAGES = read_requirements()
# The node packs' requirements.txt, pinned. insightface 2.1 is a pure-Python wheel (no
# compiler, no cython), the version the CPU and GPU rehearsals ran.
CUSTOM_NODE_PACKAGES = (
    "insightface==2.1",
    "facexlib==0.3.0",
    "ftfy==6.3.1",
    "timm==1.0.31",
)
# insightface requires the CPU `onnxruntime`, which provides the same module as the GPU
# build: the image swaps it for this one after the resolve, so the CUDA provider that the
# graphs ask for is there (a CUDA 13 build, as torch's).
ONNXRUNTIME_GPU = "onnxruntime-gpu==1.31.1"
# What backend/ and workflows/ import, in pyproject.toml's ranges (a test checks).
BACKEND_PACKAGES = (
    "fastapi>=0.160,<1",
    "pydantic>=2.10,<3",
    "python-multipart>=0.0.20,<0.1",
    "requests>=2.32,<3",
    "pillow>=11,<13",
    "websocket-client>=1.8,<2",
    "httpx>=0.28,<1",
    "websockets>=13,<18",
    "posthog>=6,<8",
    "safetensors>=0.8,<0.9",
    "numpy>=2,<3",
)
HUB_PACKAGES = ("huggingface_hub==2.4.0", "hf_xet==1.8.0")
# This project's packages, added to both images as source (data files included).
LOCAL_PACKAGES = ("backend", "workflows")
# The GPU image (ComfyUIWorker) and the CPU image (web tier, downloads).
IMAGE_PACKAGES = (*TORCH_PACKAGES, *COMFYUI_PACKAGES, *CUSTOM_NODE_PACKAGES,
                  *BACKEND_PACKAGES, *HUB_PACKAGES)
CPU_IMAGE_PACKAGES = (*BACKEND_PACKAGES, *HUB_PACKAGES)
# What a machine without a GPU cannot usefully install (gigabytes of CUDA libraries).
GPU_PACKAGES = (*TORCH_PACKAGES, ONNXRUNTIME_GPU)

# ## Paths
#
# The models Volume is mounted as ComfyUI's own models directory: the InstantID and
# PuLID nodes open models_dir/instantid, models_dir/pulid and models_dir/insightface
# directly, which an extra_model_paths.yaml would not redirect. The backend reads the
# same Volume at the same path: it finds there the files ComfyUI never lists
# (antelopev2's .onnx).
# The LoRA Volume is mounted beside it, at /loras, not inside it (Modal does not promise
# nested Volume mounts); extra_model_paths.yaml adds /loras to ComfyUI's "loras" folder,
# so LoraLoaderModelOnly lists what the backend's LoraStore writes there.
LAYOUT = comfyui_process.ContainerLayout()  # the containers' paths and ComfyUI's port
COMFYUI_DIR = str(LAYOUT.comfyui_dir)
MODELS_DIR = str(LAYOUT.models_dir)
LORA_DIR = str(LAYOUT.lora_dir)
EXTRA_MODEL_PATHS = str(LAYOUT.extra_model_paths)
# Job records and outputs: on the `ryla-data` Volume, mounted on the web tier (which
# writes them) and committed after each generation, so they outlive the container.
DATA_DIR = str(LAYOUT.data_dir)
COMFYUI_PORT = LAYOUT.comfyui_port
COMFYUI_URL = LAYOUT.comfyui_url  # ComfyUI is only reachable inside the container

MODELS_VOLUME_NAME = "ryla-models"
LORA_VOLUME_NAME = "ryla-loras"
DATA_VOLUME_NAME = "ryla-data"
HF_SECRET_NAME = "huggingface-secret"  # HF_TOKEN
API_SECRET_NAME = comfyui_process.API_SECRET_NAME  # "ryla-api-token": RYLA_API_TOKEN
HEARTBEAT_DICT_NAME = "ryla-gpu-heartbeats"

# ## Scaling
#
# Set at deploy time, e.g. `RYLA_MODAL_GPU=A100-80GB modal deploy backend/modal_app.py`.
# An 80 GB card holds Flux Dev (fp16, 24 GB) with T5 and the face models at once.
GPU = os.environ.get("RYLA_MODAL_GPU", "H100")
# ComfyUI runs one prompt at a time, so a GPU container takes one input at a time: a
# second request gets a container of its own from Modal's autoscaler (a 5-request burst
# or a character sheet's images run side by side) instead of queueing in this one.
GPU_INPUTS_PER_CONTAINER = 1
# The most GPU containers at once: the ceiling of the bill. Requests past it wait.
MAX_CONTAINERS = int(os.environ.get("RYLA_MODAL_MAX_CONTAINERS", "5"))
MIN_CONTAINERS = int(os.environ.get("RYLA_MODAL_MIN_CONTAINERS", "0"))  # 1 = always warm, billed
# Idle seconds before a GPU container stops; they are billed as GPU time.
SCALEDOWN_WINDOW_S = int(os.environ.get("RYLA_MODAL_SCALEDOWN_S", "300"))
REQUEST_TIMEOUT_S = 15 * 60  # above the backend's 600 s generation deadline
STARTUP_TIMEOUT_S = 10 * 60
COMFYUI_READY_TIMEOUT_S = 300.0
DOWNLOAD_TIMEOUT_S = 4 * 60 * 60  # the whole manifest is ~100 GB on a first run
# GPU memory snapshots are alpha on Modal; RYLA_MODAL_GPU_SNAPSHOT=0 deploys without
# them (cold starts then pay for torch import and node loading, ~30-60 s more).
GPU_SNAPSHOT = os.environ.get("RYLA_MODAL_GPU_SNAPSHOT", "1") != "0"

# The web tier: half a core is plenty for routing, validation and moving base64 images,
# and many requests share one container (they mostly wait on a GPU).
WEB_CPU = 0.5
WEB_MEMORY_MB = 1024  # Pillow decodes a reference image of up to 40 MP here
WEB_MAX_INPUTS = 100
WEB_SCALEDOWN_S = 60

# What /health says a cold GPU adds to the next generation, in seconds: a container
# start, ComfyUI's start and the first load of the weights. The GPU rehearsal's cold
# start to the first Flux Dev image (2026-11-26, H100s, page cache dropped, without
# Modal) was 50-52 s on three machines and 63 s on a fourth (docs/performance.md); 62 is
# near the slow end. Replace it with the cold start measured on Modal, where a GPU
# snapshot restore should cut it.
COLD_START_S = 62
# The warm-ups the GPU container's snapshot step runs, comma-separated (backend/warmup.py):
# `flux-dev` (default), `flux-schnell`, and `flux-dev-fast`, which compiles fast mode at
# 1024x1024 so that the snapshot holds the compiled model (without snapshots every
# container start then pays that compile, ~40 s with the shared cache).
WARM_UPS = tuple(names_list(os.environ.get("RYLA_MODAL_WARM_UP", "flux-dev")))
# Fast mode's torch.compile keeps inductor's artefacts (kernels, graphs) on the models
# Volume, so that only the first container ever compiles from scratch (85 s on the H100
# rehearsal; 44 s in a new process with this cache, most of it tracing the model again).
COMPILE_CACHE_DIR = f"{MODELS_DIR}/.torch-compile-cache"
# GPU containers write a heartbeat this often; older than HEARTBEAT_STALE_S means gone.
HEARTBEAT_INTERVAL_S = 10.0
HEARTBEAT_STALE_S = 3 * HEARTBEAT_INTERVAL_S

# ## The image

EXTRA_MODEL_PATHS_YAML = comfyui_process.extra_model_paths_yaml(LAYOUT)
NODEPACK_PATCHES = "/root/nodepack_patches.py"


def git_checkout_commands(repo: str, commit: str, dest: str) -> list[str]:
    """Shell steps that put `repo` at exactly `commit` in `dest` (no branch, no tag)."""
    return [
        f"git init -q {dest}",
        f"git -C {dest} remote add origin {repo}",
        f"git -C {dest} fetch -q --depth 1 origin {commit}",
        f"git -C {dest} checkout -q FETCH_HEAD",
        # Fail the build if what was checked out is not the pinned commit.
        f'test "$(git -C {dest} rev-parse HEAD)" = "{commit}"',
    ]


image = (
    modal.Image.debian_slim(python_version="3.11")
    # opencv (insightface) and video; gcc because torch.compile's Triton builds its kernel
    # launchers with the C compiler (fast mode)
    .apt_install("git", "libgl1", "libglib2.0-0", "ffmpeg", "gcc")
    .run_commands(
        *git_checkout_commands(COMFYUI_REPO, COMFYUI_COMMIT, COMFYUI_DIR),
        *git_checkout_commands(INSTANTID_REPO, INSTANTID_COMMIT,
                               f"{COMFYUI_DIR}/custom_nodes/ComfyUI_InstantID"),
        *git_checkout_commands(PULID_REPO, PULID_COMMIT,
                               f"{COMFYUI_DIR}/custom_nodes/ComfyUI_PuLID_Flux_ll"),
    )
    # The pinned PuLID pack predates v0.12.1's sampler signature: fixed at build time
    # (backend/nodepack_patches.py says what and why; the build fails if it no longer fits).
    .add_local_file(Path(__file__).with_name("nodepack_patches.py"), NODEPACK_PATCHES, copy=True)
    .run_commands(f"python {NODEPACK_PATCHES} {COMFYUI_DIR}/custom_nodes",
                  # ComfyUI's own modules byte-compiled once here, not at every cold start
                  # (pip already does this for the packages below)
                  f"python -m compileall -q {COMFYUI_DIR}")
    # One resolve for everything, so pip picks versions that fit all the lists at once.
    .pip_install(*IMAGE_PACKAGES)
    .run_commands("pip uninstall -y onnxruntime",
                  f"pip install --no-deps --force-reinstall {ONNXRUNTIME_GPU}")
    .run_commands(
        # Volumes mount on a path that is absent or empty: ComfyUI ships a models tree.
        f"rm -rf {MODELS_DIR}",
        # printf turns the \n back into newlines: a Dockerfile RUN line cannot hold one.
        f"printf '{EXTRA_MODEL_PATHS_YAML.replace(chr(10), chr(92) + 'n')}' > {EXTRA_MODEL_PATHS}",
    )
    .env({"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
          "TORCHINDUCTOR_CACHE_DIR": COMPILE_CACHE_DIR})
    # This project's code last: editing it rebuilds nothing, it is added at start.
    .add_local_python_source(*LOCAL_PACKAGES, ignore=["**/__pycache__/**", "**/*.pyc"])
)

# The web tier and the download function need no GPU stack: a small image starts in
# seconds.
cpu_image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(*CPU_IMAGE_PACKAGES)
    .env({"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    .add_local_python_source(*LOCAL_PACKAGES, ignore=["**/__pycache__/**", "**/*.pyc"])
)

app = modal.App(APP_NAME, image=image)

models_volume = modal.Volume.from_name(MODELS_VOLUME_NAME, create_if_missing=True)
lora_volume = modal.Volume.from_name(LORA_VOLUME_NAME, create_if_missing=True)
data_volume = modal.Volume.from_name(DATA_VOLUME_NAME, create_if_missing=True)
hf_secret = modal.Secret.from_name(HF_SECRET_NAME, required_keys=["HF_TOKEN"])
api_secret = modal.Secret.from_name(API_SECRET_NAME, required_keys=["RYLA_API_TOKEN"])
# GPU containers' heartbeats, which the web tier's /health reads (see ComfyUIWorker)
gpu_heartbeats = modal.Dict.from_name(HEARTBEAT_DICT_NAME, create_if_missing=True)

# Both tiers mount both Volumes at the same paths: the web tier validates against the
# files ComfyUI will find and writes uploaded LoRAs where ComfyUI reads them.
VOLUMES = {MODELS_DIR: models_volume, LORA_DIR: lora_volume}
WEB_VOLUMES = {**VOLUMES, DATA_DIR: data_volume}

# ## Models on the Volume
#
# `modal run backend/modal_app.py::download_models [--pipelines flux-schnell,pulid]`
# fetches what is missing (right-size files are left alone), checks every size and
# commits the Volume. Containers only read it: a restart never downloads again.


@app.function(image=cpu_image, volumes={MODELS_DIR: models_volume},
              secrets=[hf_secret], timeout=DOWNLOAD_TIMEOUT_S, cpu=4)
def download_models(pipelines: str = "") -> dict[str, object]:
    report = fill_models_volume(Path(MODELS_DIR), os.environ, pipelines)
    models_volume.commit()
    print(report.summary())
    if not report.ok:
        raise RuntimeError(f"{len(report.failed)} model file(s) failed; see the list above")
    return report.as_dict()


def fill_models_volume(models_dir: Path, env: Mapping[str, str], pipelines: str = "",
                       hub_download: object | None = None) -> "DownloadReport":
    from backend.model_download import download_missing, select
    from workflows.manifest import MODEL_MANIFEST, USER_FOLDERS

    wanted = names_list(pipelines)
    entries = [e for e in select(MODEL_MANIFEST, wanted) if e.folder not in USER_FOLDERS]
    return download_missing(entries, models_dir, hub_download=hub_download,  # type: ignore[arg-type]
                            token=env.get("HF_TOKEN") or None)


# ## The backend's settings in the web tier
#
# Built explicitly from the mount paths above, not from environment defaults, so the
# API and ComfyUI always agree on where models and LoRAs live (backend/comfyui_process.py).


def deployment_settings(env: Mapping[str, str]) -> "Settings":
    return comfyui_process.deployment_settings(env, LAYOUT)


# ## The GPU tier
#
# No web endpoint here and no API token: only the web tier calls this class.
#
# Cold starts (measured on the GPU rehearsal, docs/performance.md): ComfyUI's own start
# takes 14.5-22.6 s (imports: torch, torch._dynamo, transformers, the node packs; the image
# byte-compiles ComfyUI so that none of it is compiled at start) and the first Flux Dev
# image after it 33-39 s more, nearly all of it reading 32 GB of weights (Flux Dev + T5)
# and moving them to the GPU. So the `snap=True` step starts ComfyUI while other threads
# read the warm-ups' files into the page cache (backend/warmup.py), then runs each
# warm-up's one-step prompt, which puts its models in GPU memory (and, for
# `flux-dev-fast`, compiles fast mode).
#
# With GPU memory snapshots (alpha) that step runs once at deploy time and Modal saves
# the whole process tree: the imported ComfyUI, the CUDA context and the ~32 GB of Flux
# Dev and T5 in GPU memory (plus their host copies). A restore then replaces the 60 s
# above with reading that snapshot back, which Modal does not promise a speed for; at the
# 1.8-1.9 GB/s this disk gave it would be ~20 s, and Schnell, PuLID and LoRAs still load
# on first use. Without snapshots (RYLA_MODAL_GPU_SNAPSHOT=0) both steps simply run on
# every start (41-44 s before the container takes its first input, which then takes 5 s).
# RYLA_MODAL_WARM_UP= (empty) skips the warm-up: a smaller snapshot, a slow first image.


def comfyui_command() -> list[str]:
    return comfyui_process.comfyui_command(LAYOUT)


def uses_loras(graph: Mapping[str, Any]) -> bool:
    """Whether a graph loads a LoRA file: then this container's view of the LoRA Volume
    must include uploads committed since it started."""
    return any(isinstance(node, dict) and "lora_name" in (node.get("inputs") or {})
               for node in graph.values())


def compiles(graph: Mapping[str, Any]) -> bool:
    """Whether a graph runs torch.compile (fast mode): its artefacts then go to the Volume."""
    return any(isinstance(node, dict) and node.get("class_type") == "TorchCompileModel"
               for node in graph.values())


@app.cls(
    gpu=GPU,
    volumes=VOLUMES,
    min_containers=MIN_CONTAINERS,
    max_containers=MAX_CONTAINERS,
    scaledown_window=SCALEDOWN_WINDOW_S,
    timeout=REQUEST_TIMEOUT_S,
    startup_timeout=STARTUP_TIMEOUT_S,
    enable_memory_snapshot=GPU_SNAPSHOT,
    experimental_options={"enable_gpu_snapshot": True} if GPU_SNAPSHOT else {},
)
@modal.concurrent(max_inputs=GPU_INPUTS_PER_CONTAINER)
class ComfyUIWorker:
    # Without snapshots both enter steps simply run in order on every start.
    @modal.enter(snap=GPU_SNAPSHOT)
    def start_comfyui(self) -> None:
        from backend import warmup
        from backend.gpu_worker import ComfyUIProcess

        self.comfyui = ComfyUIProcess(comfyui_command(), cwd=COMFYUI_DIR, url=COMFYUI_URL)
        self.compile_cache_saved = False  # torch.compile's cache committed to the Volume
        names = warmup.warm_up_names(WARM_UPS)
        reading = warmup.BackgroundPrefetch(warmup.warm_up_pipelines(names), Path(MODELS_DIR)) if names else None
        self.comfyui.start(COMFYUI_READY_TIMEOUT_S)
        for name, seconds in warmup.warm_up_comfyui(COMFYUI_URL, Path(MODELS_DIR), Path(LORA_DIR), names).items():
            print(f"warm-up {name}: in GPU memory after {seconds:.1f} s")
        if "flux-dev-fast" in names:
            self.compile_cache_saved = _commit_compile_cache()
        if reading is not None:
            reading.join()

    @modal.enter(snap=False)
    def after_restore(self) -> None:
        # Every container start, after a restore too: the heartbeat thread and the
        # container's id belong to this container, not to the snapshot.
        from backend.gpu_worker import GpuWorker, Heartbeat

        self.comfyui.wait_ready(60.0)
        self.worker = GpuWorker(COMFYUI_URL, models_dir=Path(MODELS_DIR), lora_dir=Path(LORA_DIR))
        key = os.environ.get("MODAL_TASK_ID") or uuid.uuid4().hex
        self.heartbeat = Heartbeat(gpu_heartbeats.put, gpu_heartbeats.pop, key, HEARTBEAT_INTERVAL_S)
        self.heartbeat.start()

    @modal.exit()
    def stop_comfyui(self) -> None:
        self.heartbeat.stop()
        self.comfyui.stop()

    @modal.method()
    async def run_graph(self, job: dict[str, Any]) -> dict[str, Any]:
        """One filled graph (backend.graph_job wire format) -> its outputs or its error."""
        import asyncio

        if uses_loras(job.get("graph") or {}):
            await asyncio.to_thread(_reload_loras)
        await asyncio.to_thread(self.heartbeat.set_busy, True)
        try:
            return await self.worker.run(job)
        finally:
            await asyncio.to_thread(self.heartbeat.set_busy, False)
            # Once per container, after its first compile: other containers read it from then on.
            if compiles(job.get("graph") or {}) and not self.compile_cache_saved:
                self.compile_cache_saved = await asyncio.to_thread(_commit_compile_cache)


def _reload_loras() -> None:
    try:
        lora_volume.reload()
    except RuntimeError as exc:  # open files on the Volume: this container's view stays
        print(f"LoRA Volume not reloaded: {exc}")


def _commit_compile_cache() -> bool:
    """Publish torch.compile's artefacts (COMPILE_CACHE_DIR) on the models Volume."""
    try:
        models_volume.commit()
        return True
    except RuntimeError as exc:  # retried after the next compile; until then others compile
        print(f"compile cache not committed to the models Volume: {exc}")
        return False


def _reload_models() -> None:
    try:
        models_volume.reload()
    except RuntimeError as exc:
        print(f"models Volume not reloaded: {exc}")


# ## The web tier
#
# Modal's objects behind the three small interfaces of backend/modal_dispatch.py, which
# holds the logic (and its offline tests, tests/modal/test_dispatch.py).


class ModalPendingCall:
    def __init__(self, call: modal.FunctionCall) -> None:
        self.call = call
        self.call_id = call.object_id

    async def get(self, timeout_s: float) -> Any:
        from backend.errors import DeadlineExceeded

        try:
            return await self.call.get.aio(timeout=timeout_s)  # TimeoutError: not done yet
        except modal.exception.FunctionTimeoutError as exc:
            raise DeadlineExceeded(f"the GPU function ran past its {REQUEST_TIMEOUT_S} s "
                                   f"limit ({exc})") from exc

    async def cancel(self) -> None:
        await self.call.cancel.aio()


class ModalGpuFunction:
    async def spawn(self, wire_job: dict[str, Any]) -> "PendingCall":
        return ModalPendingCall(await ComfyUIWorker().run_graph.spawn.aio(wire_job))


class ModalHeartbeats:
    async def read(self) -> dict[str, Any]:
        return {key: value async for key, value in gpu_heartbeats.items.aio()}


def web_runner(settings: "Settings") -> "GraphRunner":
    from backend.modal_dispatch import ModalGraphRunner
    from backend.snapshot_validation import SnapshotValidator

    validator = SnapshotValidator(settings.models_dir, settings.lora_dir, refresh=_reload_models)
    return ModalGraphRunner(ModalGpuFunction(), ModalHeartbeats(), validator,
                            cold_start_s=COLD_START_S, heartbeat_stale_s=HEARTBEAT_STALE_S)


def build_asgi_app(settings: "Settings", runner: "GraphRunner") -> "FastAPI":
    """The same app as `ryla-backend` with `runner` behind it, plus Volume bookkeeping:
    other containers see an uploaded LoRA only after a commit here and a reload there,
    and a download may have changed the models Volume since this container started."""
    return comfyui_process.build_app(settings, runner, before_lora_read=_reload_loras,
                                     before_models_read=_reload_models,
                                     after_lora_write=lora_volume.commit,
                                     after_job=_commit_data)


def _commit_data() -> None:
    try:
        data_volume.commit()
    except Exception as exc:  # noqa: BLE001 - Modal's control plane; the next commit retries
        print(f"data Volume not committed: {type(exc).__name__}: {exc}")


@app.function(
    image=cpu_image,
    volumes=WEB_VOLUMES,
    secrets=[api_secret],
    cpu=WEB_CPU,
    memory=WEB_MEMORY_MB,
    scaledown_window=WEB_SCALEDOWN_S,
    # Modal answers the caller 303 after 150 s (ui/client.py follows it); the request
    # itself goes on up to this limit, above the generation deadline.
    timeout=REQUEST_TIMEOUT_S,
)
@modal.concurrent(max_inputs=WEB_MAX_INPUTS)
@modal.asgi_app(label=APP_NAME)
def web() -> "FastAPI":
    settings = deployment_settings(os.environ)
    return build_asgi_app(settings, web_runner(settings))
