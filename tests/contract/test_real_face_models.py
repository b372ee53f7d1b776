"""The backend in front of a real upstream ComfyUI sends the character-sheet graphs
(/flux-instantid with InstantID and with PuLID) to it when every manifest file is there,
and answers 503 naming the file when one is not.

Upstream's GET /models/<folder> never lists antelopev2's .onnx files, so the backend
looks for those on the models directory it shares with ComfyUI (as on Modal, where both
mount one Volume at one path). Needs RYLA_REAL_COMFYUI_URL and RYLA_REAL_COMFYUI_MODELS_DIR
(see conftest.py). The placeholders hold no weights, so on CPU the job then fails inside
ComfyUI: 502 with ComfyUI's own error is the honest answer there, never 503.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from backend.api import create_app
from backend.settings import Settings
from tests.contract.conftest import RealComfyUI
from workflows.manifest import files_for

pytestmark = pytest.mark.real_comfyui
DEADLINE_S = 120.0  # a guard: the jobs fail within seconds on empty placeholders
METHODS = ("instantid", "pulid")


@pytest.fixture
def backend(real_comfyui: RealComfyUI, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(comfyui_url=real_comfyui.url, models_dir=real_comfyui.models_dir,
                        lora_dir=tmp_path / "loras", data_dir=tmp_path / "data",
                        deadline_s=DEADLINE_S)
    with TestClient(create_app(settings)) as client:
        yield client


def _reference_png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (180, 140, 120)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _sheet(backend: TestClient, method: str):  # noqa: ANN202 - an httpx.Response
    return backend.post("/flux-instantid", json={
        "prompt": "a portrait", "reference_image": _reference_png(), "method": method,
        "width": 256, "height": 256, "steps": 1, "seed": 7})


def _history_ids(url: str) -> set[str]:
    return set(requests.get(f"{url}/history", timeout=30).json())


@pytest.mark.parametrize("method", METHODS)
def test_every_file_present_sends_the_graph_to_comfyui(real_comfyui: RealComfyUI,
                                                       backend: TestClient, method: str) -> None:
    for entry in files_for(method):
        assert (real_comfyui.models_dir / entry.folder / entry.local_name).is_file()
    before = _history_ids(real_comfyui.url)
    response = _sheet(backend, method)
    error = response.json().get("error") or {}
    assert error.get("code") != "model_not_installed", error
    # empty placeholders cannot load: ComfyUI ran the graph and failed it
    assert (response.status_code, error.get("code")) == (502, "comfyui_job_failed"), response.text
    assert "ComfyUI failed the job" in error["message"]
    (new,) = _history_ids(real_comfyui.url) - before
    entry = requests.get(f"{real_comfyui.url}/history/{new}", timeout=30).json()[new]
    class_types = {node["class_type"] for node in entry["prompt"][2].values()}
    face_node = "InstantIDFaceAnalysis" if method == "instantid" else "PulidFluxInsightFaceLoader"
    assert face_node in class_types
    assert entry["status"]["status_str"] == "error"


@pytest.mark.parametrize("method", METHODS)
def test_missing_antelopev2_file_is_503_naming_it(real_comfyui: RealComfyUI,
                                                 backend: TestClient, method: str) -> None:
    name = "models/antelopev2/1k3d68.onnx"
    path = real_comfyui.models_dir / "insightface" / name
    aside = path.with_name(path.name + ".moved-by-test")
    path.rename(aside)
    try:
        before = _history_ids(real_comfyui.url)
        response = _sheet(backend, method)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "model_not_installed" and error["field"] == "insightface"
        assert repr(name) in error["message"]
        assert "hf download DIAMONIK7777/antelopev2 1k3d68.onnx" in error["message"]
        assert _history_ids(real_comfyui.url) == before  # nothing was queued
    finally:
        aside.rename(path)
