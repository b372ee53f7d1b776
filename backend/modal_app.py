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
#     modal run backend/modal_app.py::check                # the first-deploy check
#
# docs/deploy.md has the walk-through and the costs. Everything that needs no Modal
# (paths, ComfyUI's command line, the web tier's app, pruning, the check) is in
# backend/deploy/, so that a rehearsal on any GPU machine runs the same code.

from __future__ import annotations

import os
import queue
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import modal

from backend.deploy import image as pins
from backend.deploy.layout import ContainerLayout, extra_model_paths_yaml
from backend.deploy.options import MEASURED_COLD_START_S, DeployOptions, container_env
from backend.deploy.web import API_SECRET_NAME

if TYPE_CHECKING:  # the backend is imported inside the containers, where it runs
    from fastapi import FastAPI

    from backend.graph_runner import GraphRunner
    from backend.model_download import DownloadReport
    from backend.modal_dispatch import PendingCall
    from backend.settings import Settings

APP_NAME = "ryla-comfyui"

# ## Settings read at deploy time
#
# `RYLA_MODAL_GPU=A100-80GB modal deploy backend/modal_app.py` (docs/deploy.md lists
# them all). This module is imported again in every container, where the deploying
# shell's variables are absent: each function below gets them as `env=CONTAINER_ENV`,
# so the container reads the same values (the warm-ups, RYLA_DEADLINE_S, ...).
OPTIONS = DeployOptions.from_env()
CONTAINER_ENV = container_env(os.environ)

# ## Paths
#
# The models Volume is mounted as ComfyUI's own models directory: the InstantID and
# PuLID nodes open models_dir/instantid, models_dir/pulid and models_dir/insightface
# directly, which an extra_model_paths.yaml would not redirect. The LoRA Volume is
# mounted beside it, at /loras (Modal does not promise nested Volume mounts), and
# extra_model_paths.yaml adds it to ComfyUI's "loras" folder. Job records and outputs
# go to a third Volume, written by the web tier (backend/deploy/layout.py).
LAYOUT = ContainerLayout()
MODELS_DIR, LORA_DIR, DATA_DIR = str(LAYOUT.models_dir), str(LAYOUT.lora_dir), str(LAYOUT.data_dir)

MODELS_VOLUME_NAME = "ryla-models"
LORA_VOLUME_NAME = "ryla-loras"
DATA_VOLUME_NAME = "ryla-data"
HF_SECRET_NAME = "huggingface-secret"  # HF_TOKEN
HEARTBEAT_DICT_NAME = "ryla-gpu-heartbeats"
JOB_CHANNEL_QUEUE_NAME = "ryla-job-channel"

# ## Scaling and timeouts
#
# ComfyUI runs one prompt at a time, so a GPU container takes one input at a time: a
# second request gets a container of its own from Modal's autoscaler (a 5-request burst
# or a character sheet's images run side by side) instead of queueing in this one.
GPU_INPUTS_PER_CONTAINER = 1
REQUEST_TIMEOUT_S = 15 * 60  # above the backend's 600 s generation deadline
STARTUP_TIMEOUT_S = 10 * 60
COMFYUI_READY_TIMEOUT_S = 300.0
DOWNLOAD_TIMEOUT_S = 4 * 60 * 60  # the whole manifest is ~100 GB on a first run
# The web tier: half a core is plenty for routing, validation and moving base64 images,
# and many requests share one container (they mostly wait on a GPU).
WEB_CPU = 0.5
WEB_MEMORY_MB = 1024  # Pillow decodes a reference image of up to 40 MP here
WEB_MAX_INPUTS = 100
WEB_SCALEDOWN_S = 60

# What /health and /warm say a cold GPU adds (backend/deploy/options.py says where it comes from).
COLD_START_S = MEASURED_COLD_START_S
# GPU containers write a heartbeat this often; older than HEARTBEAT_STALE_S means gone.
HEARTBEAT_INTERVAL_S = 10.0
HEARTBEAT_STALE_S = 3 * HEARTBEAT_INTERVAL_S

# ## The images
#
# ComfyUI and its node packs at pinned commits, and every Python package in one pip
# resolve (backend/deploy/image.py holds the pins and says why each).
NODEPACK_PATCHES = "/root/nodepack_patches.py"
CUSTOM_NODES = f"{LAYOUT.comfyui_dir}/custom_nodes"
EXTRA_MODEL_PATHS_YAML = extra_model_paths_yaml(LAYOUT)

image = (
    modal.Image.debian_slim(python_version="3.11")
    # opencv (insightface) and video; gcc because torch.compile's Triton builds its kernel
    # launchers with the C compiler (fast mode)
    .apt_install("git", "libgl1", "libglib2.0-0", "ffmpeg", "gcc")
    .run_commands(
        *pins.git_checkout_commands(pins.COMFYUI_REPO, pins.COMFYUI_COMMIT, str(LAYOUT.comfyui_dir)),
        *pins.git_checkout_commands(pins.INSTANTID_REPO, pins.INSTANTID_COMMIT,
                                    f"{CUSTOM_NODES}/ComfyUI_InstantID"),
        *pins.git_checkout_commands(pins.PULID_REPO, pins.PULID_COMMIT,
                                    f"{CUSTOM_NODES}/ComfyUI_PuLID_Flux_ll"),
    )
    # The pinned PuLID pack predates v0.12.1's sampler signature: fixed at build time
    # (backend/nodepack_patches.py says what and why; the build fails if it no longer fits).
    .add_local_file(Path(__file__).with_name("nodepack_patches.py"), NODEPACK_PATCHES, copy=True)
    .run_commands(f"python {NODEPACK_PATCHES} {CUSTOM_NODES}",
                  # ComfyUI's own modules byte-compiled once here, not at every cold start
                  # (pip already does this for the packages below)
                  f"python -m compileall -q {LAYOUT.comfyui_dir}")
    # One resolve for everything, so pip picks versions that fit all the lists at once.
    .pip_install(*pins.IMAGE_PACKAGES)
    .run_commands("pip uninstall -y onnxruntime",
                  f"pip install --no-deps --force-reinstall {pins.ONNXRUNTIME_GPU}")
    .run_commands(
        # Volumes mount on a path that is absent or empty: ComfyUI ships a models tree.
        f"rm -rf {MODELS_DIR}",
        # printf turns the \n back into newlines: a Dockerfile RUN line cannot hold one.
        f"printf '{EXTRA_MODEL_PATHS_YAML.replace(chr(10), chr(92) + 'n')}' > {LAYOUT.extra_model_paths}",
    )
    # Fast mode's torch.compile keeps inductor's artefacts on the models Volume, so that
    # only the first container ever compiles from scratch (85 s on the H100 rehearsal; 44 s
    # in a new process with this cache, most of it tracing the model again).
    .env({"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
          "TORCHINDUCTOR_CACHE_DIR": str(LAYOUT.compile_cache_dir)})
    # This project's code last: editing it rebuilds nothing, it is added at start.
    .add_local_python_source(*pins.LOCAL_PACKAGES, ignore=["**/__pycache__/**", "**/*.pyc"])
)

# The web tier, the downloads and the pruning need no GPU stack: a small image starts in
# seconds.
cpu_image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(*pins.CPU_IMAGE_PACKAGES)
    .env({"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    .add_local_python_source(*pins.LOCAL_PACKAGES, ignore=["**/__pycache__/**", "**/*.pyc"])
)

app = modal.App(APP_NAME, image=image)

# ## Volumes, Secrets, the heartbeat store and the job channel

models_volume = modal.Volume.from_name(MODELS_VOLUME_NAME, create_if_missing=True)
lora_volume = modal.Volume.from_name(LORA_VOLUME_NAME, create_if_missing=True)
data_volume = modal.Volume.from_name(DATA_VOLUME_NAME, create_if_missing=True)
hf_secret = modal.Secret.from_name(HF_SECRET_NAME, required_keys=["HF_TOKEN"])
api_secret = modal.Secret.from_name(API_SECRET_NAME, required_keys=["RYLA_API_TOKEN"])
# GPU containers' heartbeats, which the web tier's /health reads (see ComfyUIWorker)
gpu_heartbeats = modal.Dict.from_name(HEARTBEAT_DICT_NAME, create_if_missing=True)
# Each running job's channel between its GPU container and the web tier (ModalJobChannel
# below): one Queue, two partitions per job, which Modal clears on its own.
job_channel = modal.Queue.from_name(JOB_CHANNEL_QUEUE_NAME, create_if_missing=True)

# Both tiers mount both Volumes at the same paths: the web tier validates against the
# files ComfyUI will find and writes uploaded LoRAs where ComfyUI reads them.
VOLUMES = {MODELS_DIR: models_volume, LORA_DIR: lora_volume}
WEB_VOLUMES = {**VOLUMES, DATA_DIR: data_volume}

# ## Models on the Volume
#
# `@app.function` declares a function Modal runs in a container of its own: here on the
# CPU image with the models Volume and the Hugging Face token.
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
    from backend.settings import names_list
    from workflows.manifest import MODEL_MANIFEST, USER_FOLDERS

    wanted = names_list(pipelines)
    entries = [e for e in select(MODEL_MANIFEST, wanted) if e.folder not in USER_FOLDERS]
    return download_missing(entries, models_dir, hub_download=hub_download,  # type: ignore[arg-type]
                            token=env.get("HF_TOKEN") or None)


# ## The GPU tier
#
# No web endpoint here and no API token: only the web tier calls this class.
#
# Cold starts (measured on the GPU rehearsal, docs/performance.md): ComfyUI's own start
# takes 14.5-22.6 s and the first Flux Dev image after it 33-39 s more, nearly all of it
# reading 32 GB of weights (Flux Dev + T5) and moving them to the GPU. So the first enter
# step starts ComfyUI while other threads read the warm-ups' files into the page cache,
# then runs each warm-up's one-step prompt, which puts its models in GPU memory (and, for
# fast mode, compiles it). A warm-up whose pipeline lacks files is skipped and logged:
# a deployment without Flux Dev still serves Schnell and Z-Image (backend/warmup.py).
#
# With GPU memory snapshots (alpha) that step runs once and Modal saves the whole process
# tree: the imported ComfyUI, the CUDA context and the weights in GPU memory. A restore
# then replaces the 60 s above with reading that snapshot back. Without snapshots
# (RYLA_MODAL_GPU_SNAPSHOT=0) both enter steps simply run on every start.
#
# `@app.cls` declares a class whose containers live across calls: `gpu=` the card,
# `min/max_containers` the autoscaler's bounds, `scaledown_window` the idle seconds before
# one stops, `enable_memory_snapshot` (+ the GPU option) the snapshot above.
# `@modal.concurrent(max_inputs=1)`: one call per container at a time.
# `@modal.enter(snap=True)` runs before the snapshot, `@modal.enter(snap=False)` after
# every start or restore, `@modal.exit` when the container stops, and `@modal.method`
# is what callers call.


def uses_loras(graph: Mapping[str, Any]) -> bool:
    """Whether a graph loads a LoRA file: then this container's view of the LoRA Volume
    must include uploads committed since it started."""
    return any(isinstance(node, dict) and "lora_name" in (node.get("inputs") or {})
               for node in graph.values())


def compiles(graph: Mapping[str, Any]) -> bool:
    """Whether a graph runs torch.compile (fast mode's node, workflows/render.py): its
    artefacts then go to the Volume. The GPU side gets graphs, not requests."""
    return any(isinstance(node, dict) and node.get("class_type") == "TorchCompileModel"
               for node in graph.values())


@app.cls(
    gpu=OPTIONS.gpu,
    volumes=VOLUMES,
    env=CONTAINER_ENV,
    min_containers=OPTIONS.min_containers,
    max_containers=OPTIONS.max_containers,
    scaledown_window=OPTIONS.scaledown_s,
    timeout=REQUEST_TIMEOUT_S,
    startup_timeout=STARTUP_TIMEOUT_S,
    enable_memory_snapshot=OPTIONS.gpu_snapshot,
    experimental_options={"enable_gpu_snapshot": True} if OPTIONS.gpu_snapshot else {},
)
@modal.concurrent(max_inputs=GPU_INPUTS_PER_CONTAINER)
class ComfyUIWorker:
    # Set by the enter steps; None until then, so that the exit step can run after an
    # enter step that failed part way.
    comfyui = None
    heartbeat = None

    @modal.enter(snap=OPTIONS.gpu_snapshot)
    def start_comfyui(self) -> None:
        from backend import warmup
        from backend.deploy.check import container_identity
        from backend.deploy.comfyui import ComfyUIProcess

        self.started_in = container_identity()  # after a restore, another container's
        self.comfyui = ComfyUIProcess.for_layout(LAYOUT)
        self.compile_cache_saved = False  # torch.compile's cache committed to the Volume
        names = warmup.ready_warm_ups(warmup.warm_up_names(OPTIONS.warm_up), LAYOUT.models_dir)
        reading = (warmup.BackgroundPrefetch(warmup.warm_up_pipelines(names), LAYOUT.models_dir)
                   if names else None)
        self.startup = {"ComfyUI start": self.comfyui.start(COMFYUI_READY_TIMEOUT_S)}
        warmed = warmup.warm_up_comfyui(LAYOUT.comfyui_url, LAYOUT.models_dir, LAYOUT.lora_dir, names)
        for name, seconds in warmed.items():
            print(f"warm-up {name}: in GPU memory after {seconds:.1f} s")
            self.startup[f"warm-up {name}"] = seconds
        if any(warmup.compiles(name) for name in warmed):
            self.compile_cache_saved = _commit_compile_cache()
        if reading is not None:
            reading.join()

    @modal.enter(snap=False)
    def after_restore(self) -> None:
        # Every container start, after a restore too: the heartbeat thread and the
        # container's id belong to this container, not to the snapshot.
        from backend.deploy.check import container_identity
        from backend.gpu_worker import GpuWorker, Heartbeat

        self.restored = container_identity() != self.started_in if OPTIONS.gpu_snapshot else None
        self.comfyui.wait_ready(60.0)
        self.worker = GpuWorker(LAYOUT.comfyui_url, models_dir=LAYOUT.models_dir, lora_dir=LAYOUT.lora_dir,
                                channel=ModalJobChannel())
        key = os.environ.get("MODAL_TASK_ID") or uuid.uuid4().hex
        self.heartbeat = Heartbeat(gpu_heartbeats.put, gpu_heartbeats.pop, key, HEARTBEAT_INTERVAL_S)
        self.heartbeat.start()

    @modal.exit()
    def stop_comfyui(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.comfyui is not None:
            self.comfyui.stop()

    # An async method: Modal's FunctionCall.cancel cancels its task (modal 1.6's container
    # entrypoint turns the cancellation into task.cancel() for async functions), and
    # GpuWorker.run then stops the prompt in ComfyUI before the CancelledError goes on.
    # The usual stop comes over the job channel instead, so that ComfyUI's word on it
    # comes back as the call's answer.
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

    @modal.method()
    def warm(self) -> None:
        """Nothing: POST /warm spawns this so that Modal starts a container, whose enter
        steps load the models (backend/modal_dispatch.py allows one such start at a time)."""

    @modal.method()
    def check(self) -> dict[str, Any]:
        """The first-deploy check's facts, from this container (backend/deploy/check.py)."""
        from backend.deploy.check import driver_version, run_check, torch_probe

        _reload_loras()
        report = run_check(LAYOUT.comfyui_url, LAYOUT.models_dir, LAYOUT.lora_dir,
                           torch=torch_probe(), driver=driver_version(),
                           restored_from_snapshot=self.restored, startup=self.startup)
        return {**report.as_dict(), "text": report.text()}


def _reload_loras() -> None:
    try:
        lora_volume.reload()
    except RuntimeError as exc:  # open files on the Volume: this container's view stays
        print(f"LoRA Volume not reloaded: {exc}")


def _commit_compile_cache() -> bool:
    """Publish torch.compile's artefacts (LAYOUT.compile_cache_dir) on the models Volume."""
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


# ## The first-deploy check
#
# `@app.local_entrypoint` runs on the machine that typed `modal run`: right after
# `modal deploy`, `modal run backend/modal_app.py::check` asks one container of the
# deployed GPU class what it finds, prints it, and exits non-zero if anything failed
# (docs/deploy.md says what to do for each).


@app.local_entrypoint()
def check() -> None:
    worker = modal.Cls.from_name(APP_NAME, "ComfyUIWorker")()
    report = worker.check.remote()
    print(report["text"])
    if not report["ok"]:
        raise SystemExit(1)


# ## Retention on the data Volume
#
# `schedule=modal.Period(days=1)`: Modal runs the function once a day while the app is
# deployed. It deletes job records and outputs older than RYLA_RETENTION_DAYS (30 by
# default; set it at deploy time) and prints what it removed and what is kept.
PRUNE_TIMEOUT_S = 30 * 60


@app.function(image=cpu_image, volumes={DATA_DIR: data_volume}, env=CONTAINER_ENV,
              schedule=modal.Period(days=1), timeout=PRUNE_TIMEOUT_S)
def prune_data() -> dict[str, int]:
    from backend.deploy.retention import prune
    from backend.settings import Settings

    data_volume.reload()
    report = prune(LAYOUT.data_dir, Settings.from_env(os.environ).retention_days)
    data_volume.commit()
    print(report.summary())
    return report.__dict__


# ## Working hours
#
# With RYLA_WARM_HOURS set at deploy time (e.g. `Mon-Fri 09:00-18:00 Europe/Berlin`), one
# GPU container is kept warm in those hours and none outside them: every 5 minutes this
# function sets the GPU class's autoscaler (`update_autoscaler(min_containers=...)`),
# switching on a cold start ahead of the hour. It sets the value on every run because a
# `modal deploy` resets the autoscaler to the decorator's values. docs/warm.md has the cost.
WARM_HOURS_EVERY_S = 5 * 60
WARM_HOURS_EVERY = modal.Period(seconds=WARM_HOURS_EVERY_S)

if OPTIONS.warm_hours:
    @app.function(image=cpu_image, env=CONTAINER_ENV, schedule=WARM_HOURS_EVERY)
    def keep_warm_in_hours() -> str:
        from datetime import datetime, timezone

        from backend.warm_hours import apply_warm_hours, parse_warm_hours

        decision = apply_warm_hours(parse_warm_hours(OPTIONS.warm_hours), datetime.now(timezone.utc),
                                    ComfyUIWorker().update_autoscaler,
                                    ahead_s=WARM_HOURS_EVERY_S + COLD_START_S)
        print(decision.describe())
        return decision.describe()


# ## The web tier
#
# Modal's objects behind the small interfaces of backend/modal_dispatch.py, which holds
# the logic (and its offline tests, tests/modal/test_dispatch.py).

# A job's partitions live this long after their last write: past the longest GPU call, so
# that nothing of a running job expires, and Modal clears them without anyone asking.
JOB_CHANNEL_TTL_S = 2 * REQUEST_TIMEOUT_S
JOB_CHANNEL_PUT_TIMEOUT_S = 5.0
EVENTS_PER_READ = 100


def events_partition(job_key: str) -> str:
    return f"events-{job_key}"  # a partition key is at most 64 bytes; a job key is 32


def cancel_partition(job_key: str) -> str:
    return f"cancel-{job_key}"


class ModalJobChannel:
    """backend/modal_dispatch.py's JobChannel on the `ryla-job-channel` Queue: a job's
    events in one partition (FIFO; the web tier's container reads them), its cancel
    request in another (the GPU container reads it). Modal's limits fit: 5,000 items a
    partition (the GPU side batches; the web tier drains), 1 MiB an item (a preview is a
    small JPEG), 100,000 partitions (two per job running in the last 30 minutes)."""

    async def publish(self, job_key: str, events: list[dict[str, Any]]) -> None:
        await job_channel.put_many.aio(events, timeout=JOB_CHANNEL_PUT_TIMEOUT_S,
                                       partition=events_partition(job_key),
                                       partition_ttl=JOB_CHANNEL_TTL_S)

    async def events(self, job_key: str, wait_s: float) -> list[dict[str, Any]]:
        try:
            return await job_channel.get_many.aio(EVENTS_PER_READ, block=wait_s > 0,
                                                  timeout=wait_s if wait_s > 0 else None,
                                                  partition=events_partition(job_key))
        except queue.Empty:
            return []

    async def request_cancel(self, job_key: str) -> None:
        await job_channel.put.aio(True, timeout=JOB_CHANNEL_PUT_TIMEOUT_S,
                                  partition=cancel_partition(job_key),
                                  partition_ttl=JOB_CHANNEL_TTL_S)

    async def cancel_requested(self, job_key: str, wait_s: float) -> bool:
        try:
            return await job_channel.get.aio(block=wait_s > 0, timeout=wait_s if wait_s > 0 else None,
                                             partition=cancel_partition(job_key)) is not None
        except queue.Empty:
            return False

    def forget(self, job_key: str) -> None:
        """Nothing to do: the partitions expire JOB_CHANNEL_TTL_S after their last write."""


class ModalPendingCall:
    def __init__(self, call: modal.FunctionCall) -> None:
        self.call = call
        self.call_id = call.object_id

    async def get(self, timeout_s: float) -> Any:
        from backend.errors import DeadlineExceeded

        try:
            return await self.call.get.aio(timeout=timeout_s)  # TimeoutError: not done yet
        except modal.exception.FunctionTimeoutError as exc:
            # Modal stopped the container: whatever ComfyUI did, nobody heard it end
            raise DeadlineExceeded(f"the GPU function ran past its {REQUEST_TIMEOUT_S} s "
                                   f"limit ({exc}); how ComfyUI ended the job is not known",
                                   confirmed=False) from exc

    async def cancel(self) -> None:
        await self.call.cancel.aio()


class ModalGpuFunction:
    async def spawn(self, wire_job: dict[str, Any]) -> "PendingCall":
        return ModalPendingCall(await ComfyUIWorker().run_graph.spawn.aio(wire_job))

    async def start_container(self) -> None:
        # not waited for: the container's start is what /warm asks for
        await ComfyUIWorker().warm.spawn.aio()


class ModalHeartbeats:
    async def read(self) -> dict[str, Any]:
        return {key: value async for key, value in gpu_heartbeats.items.aio()}

    async def mark_starting(self, since: float) -> bool:
        from backend.modal_dispatch import STARTING_KEY

        # put-if-absent: of several web containers asking at once, one starts a GPU
        return bool(await gpu_heartbeats.put.aio(STARTING_KEY, {"since": since}, skip_if_exists=True))

    async def clear_starting(self) -> None:
        from backend.modal_dispatch import STARTING_KEY

        await gpu_heartbeats.pop.aio(STARTING_KEY, None)


def web_runner(settings: "Settings") -> "GraphRunner":
    from backend.modal_dispatch import ModalGraphRunner
    from backend.snapshot_validation import SnapshotValidator

    validator = SnapshotValidator(settings.models_dir, settings.lora_dir, refresh=_reload_models)
    return ModalGraphRunner(ModalGpuFunction(), ModalHeartbeats(), validator,
                            cold_start_s=COLD_START_S, heartbeat_stale_s=HEARTBEAT_STALE_S,
                            channel=ModalJobChannel())


def build_asgi_app(settings: "Settings", runner: "GraphRunner") -> "FastAPI":
    """The same app as `ryla-backend` with `runner` behind it, plus Volume bookkeeping for
    authorised requests: other containers see an uploaded LoRA only after a commit here
    and a reload there, and a download may have changed the models Volume since this
    container started."""
    from backend.deploy.web import SharedVolumes, build_app

    return build_app(settings, runner, SharedVolumes(
        reload_loras=_reload_loras, reload_models=_reload_models,
        publish_loras=lora_volume.commit, publish_data=_commit_data))


def _commit_data() -> None:
    try:
        data_volume.commit()
    except Exception as exc:  # noqa: BLE001 - Modal's control plane; the next commit retries
        print(f"data Volume not committed: {type(exc).__name__}: {exc}")


# `@modal.asgi_app` serves the returned FastAPI app at https://<workspace>--ryla-comfyui.modal.run.
@app.function(
    image=cpu_image,
    volumes=WEB_VOLUMES,
    secrets=[api_secret],
    env=CONTAINER_ENV,
    cpu=WEB_CPU,
    memory=WEB_MEMORY_MB,
    scaledown_window=WEB_SCALEDOWN_S,
    # Modal answers the caller 303 after 150 s (ui/client/ follows it); the request
    # itself goes on up to this limit, above the generation deadline.
    timeout=REQUEST_TIMEOUT_S,
)
@modal.concurrent(max_inputs=WEB_MAX_INPUTS)
@modal.asgi_app(label=APP_NAME)
def web() -> "FastAPI":
    from backend.deploy.web import deployment_settings

    settings = deployment_settings(os.environ, LAYOUT)
    return build_asgi_app(settings, web_runner(settings))
