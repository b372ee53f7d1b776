"""The contract tests' target: the ComfyUI test double always, and a real upstream ComfyUI
when RYLA_REAL_COMFYUI_URL names one (started with tools/upstream-comfyui.sh,
upstream v0.12.1 with both node packs; RYLA_REAL_COMFYUI_MODELS_DIR is its models folder)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.comfyui_double.server import ComfyUIDouble
from tests.contract.recording import API_EXAMPLES
from workflows.manifest import MODEL_MANIFEST
from tests.workflows.graph_files import TEMPLATE_LORA_FILE, TEMPLATE_REFERENCE_IMAGE

REAL_URL_ENV = "RYLA_REAL_COMFYUI_URL"
REAL_MODELS_ENV = "RYLA_REAL_COMFYUI_MODELS_DIR"
REAL_COMFYUI_SCRIPT = "tools/upstream-comfyui.sh"


@dataclass
class Target:
    name: str
    url: str
    ws_url: str


@pytest.fixture(scope="session")
def recording_path() -> Path:
    if not API_EXAMPLES.is_file():
        pytest.skip(f"the ComfyUI recording {API_EXAMPLES} is missing from the checkout")
    return API_EXAMPLES


@pytest.fixture(params=["double", pytest.param("real", marks=pytest.mark.real_comfyui)])
def target(request: pytest.FixtureRequest, tmp_path: Path,
           recording_path: Path) -> Iterator[Target]:
    if request.param == "real":
        url = os.environ.get(REAL_URL_ENV, "").rstrip("/")
        if not url:
            pytest.skip(f"no real ComfyUI: set {REAL_URL_ENV} to one started with "
                        f"{REAL_COMFYUI_SCRIPT}")
        ws_scheme = "wss" if url.startswith("https") else "ws"
        yield Target("real", url, f"{ws_scheme}://{url.split('://', 1)[1]}/ws")
        return
    double = ComfyUIDouble(tmp_path / "comfyui").start()
    # The recording was made with no model weights installed.
    double.set_installed({})
    try:
        yield Target("double", double.url, double.ws_url)
    finally:
        double.stop()


@dataclass
class RealComfyUI:
    url: str
    models_dir: Path


@pytest.fixture(scope="module")
def real_comfyui() -> Iterator[RealComfyUI]:
    """A real ComfyUI with an empty placeholder for every manifest file (and the graphs'
    template LoRA and reference image), so that it lists them; what was created here is
    removed afterwards, and the queue is cleared."""
    url, models = os.environ.get(REAL_URL_ENV, "").rstrip("/"), os.environ.get(REAL_MODELS_ENV, "")
    if not url or not models:
        pytest.skip(f"needs a real ComfyUI: set {REAL_URL_ENV} and {REAL_MODELS_ENV} (its models "
                    f"folder) for one started with {REAL_COMFYUI_SCRIPT}")
    placeholders = [Path(models) / m.folder / m.local_name for m in MODEL_MANIFEST]
    placeholders.append(Path(models) / "loras" / TEMPLATE_LORA_FILE)
    created = [p for p in placeholders if not p.exists()]
    for path in created:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(png, "PNG")
    requests.post(f"{url}/upload/image", files={"image": (TEMPLATE_REFERENCE_IMAGE, png.getvalue())},
                  data={"overwrite": "true"}, timeout=30).raise_for_status()
    try:
        yield RealComfyUI(url, Path(models))
    finally:
        requests.post(f"{url}/queue", json={"clear": True}, timeout=30)
        requests.post(f"{url}/interrupt", timeout=30)
        for path in created:
            path.unlink(missing_ok=True)
