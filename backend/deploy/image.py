"""What the Modal images hold, pinned: ComfyUI and its node packs at full commits, and
every Python package of both images (backend/modal_app.py builds the images from these;
tests/modal/test_image_packages.py installs the same lists into clean virtualenvs).
"""

from __future__ import annotations

from importlib import resources

# Upstream ComfyUI v0.12.1 (tag commit below): the version the contract recordings, the
# CPU contract tests and the GPU rehearsal ran, with these node-pack commits. PuLID_Flux_ll
# patches Flux internals, so a ComfyUI bump is a deliberate change, made together with the
# node packs and re-tested against a re-recorded upstream.
COMFYUI_REPO = "https://github.com/comfyanonymous/ComfyUI.git"
COMFYUI_VERSION = "v0.12.1"
COMFYUI_COMMIT = "3be017516643d9a8d8ed85904512ed4b240ef8c6"
INSTANTID_REPO = "https://github.com/cubiq/ComfyUI_InstantID.git"
INSTANTID_COMMIT = "1ef34ef573581bd9727c1e0ac05aa956b356a510"
PULID_REPO = "https://github.com/lldacing/ComfyUI_PuLID_Flux_ll.git"
PULID_COMMIT = "ba90657fe6ffa8072ac169a949bfa5e4153bf48a"

# torch 2.11.0 with its matching torchvision and torchaudio (ComfyUI's requirements name
# all three; 2.11 is the newest torch with a torchaudio build on PyPI, and the torch the
# GPU rehearsal machine runs). PyPI's Linux wheels are built for CUDA 13.0: the GPU
# driver must be 580 or newer, which the first-deploy check verifies (docs/deploy.md,
# "Which torch build").
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
    "pydantic-settings>=2.7,<3",
    "python-multipart>=0.0.20,<0.1",
    "requests>=2.32,<3",
    "pillow>=11,<13",
    "websocket-client>=1.8,<2",
    "httpx>=0.28,<1",
    "websockets>=13,<18",
    "sse-starlette>=3.5,<4",
    # LoRA uploads are checked with the safetensors library, whose numpy reader needs numpy
    "safetensors>=0.8,<0.9",
    "numpy>=2,<3",
    "posthog>=6,<8",
)
HUB_PACKAGES = ("huggingface_hub==2.4.0", "hf_xet==1.8.0")
# This project's packages, added to both images as source (data files included).
LOCAL_PACKAGES = ("backend", "workflows")
# The GPU image (ComfyUIWorker) and the CPU image (web tier, downloads, pruning).
IMAGE_PACKAGES = (*TORCH_PACKAGES, *COMFYUI_PACKAGES, *CUSTOM_NODE_PACKAGES,
                  *BACKEND_PACKAGES, *HUB_PACKAGES)
CPU_IMAGE_PACKAGES = (*BACKEND_PACKAGES, *HUB_PACKAGES)
# What a machine without a GPU cannot usefully install (gigabytes of CUDA libraries).
GPU_PACKAGES = (*TORCH_PACKAGES, ONNXRUNTIME_GPU)


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
