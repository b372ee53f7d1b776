"""The shipped graphs and the validator, checked against a real ComfyUI.

Needs a real ComfyUI (RYLA_REAL_COMFYUI_URL, started with ../shared/tools/real-comfyui.sh)
and write access to its models folder (RYLA_REAL_COMFYUI_MODELS_DIR, e.g.
/tmp/realcomfy/ComfyUI/models): the test installs empty placeholder files named as in the
manifest, so that ComfyUI lists them as choices, and removes them afterwards. The jobs it
queues fail at once on CPU (the placeholders hold no weights); only validation is checked.
"""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from workflows.manifest import MODEL_MANIFEST
from workflows.object_info import with_installed_files
from workflows.render import PIPELINES, TEMPLATE_LORA_FILE, TEMPLATE_REFERENCE_IMAGE, load_template
from workflows.validate import validate_graph

pytestmark = pytest.mark.real_comfyui
URL_ENV, MODELS_ENV = "RYLA_REAL_COMFYUI_URL", "RYLA_REAL_COMFYUI_MODELS_DIR"


@pytest.fixture(scope="module")
def real_comfyui() -> Iterator[str]:
    url, models = os.environ.get(URL_ENV, "").rstrip("/"), os.environ.get(MODELS_ENV, "")
    if not url or not models:
        pytest.skip(f"needs a real ComfyUI: set {URL_ENV} and {MODELS_ENV} (its models folder) "
                    "for one started with ../shared/tools/real-comfyui.sh")
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
        yield url
    finally:
        requests.post(f"{url}/queue", json={"clear": True}, timeout=30)
        requests.post(f"{url}/interrupt", timeout=30)
        for path in created:
            path.unlink()


def _post(url: str, graph: dict) -> requests.Response:
    return requests.post(f"{url}/prompt", json={"prompt": graph, "client_id": "ryla-tests"}, timeout=60)


def _real_object_info(url: str) -> dict:
    return requests.get(f"{url}/object_info", timeout=60).json()


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_real_comfyui_accepts_every_shipped_graph(real_comfyui: str, pipeline: str) -> None:
    response = _post(real_comfyui, load_template(pipeline))
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["node_errors"] == {}


def _mutations(graph: dict) -> Iterator[tuple[str, dict]]:
    """Graphs broken in one place each, as a user's /workflow might be."""
    sampler = next(i for i, n in graph.items() if n["class_type"] == "KSampler")
    broken = copy.deepcopy(graph)
    broken[sampler]["inputs"]["steps"] = 0
    yield "steps below min", broken
    broken = copy.deepcopy(graph)
    broken[sampler]["inputs"]["sampler_name"] = "no_such_sampler"
    yield "unknown choice", broken
    broken = copy.deepcopy(graph)
    del broken[sampler]["inputs"]["model"]
    yield "missing input", broken
    broken = copy.deepcopy(graph)
    broken[sampler]["inputs"]["latent_image"] = broken[sampler]["inputs"]["positive"]
    yield "link of the wrong type", broken
    broken = copy.deepcopy(graph)
    unet = next(i for i, n in graph.items() if n["class_type"] == "UNETLoader")
    broken[unet]["inputs"]["unet_name"] = "not-in-manifest.safetensors"
    yield "model not installed", broken


def test_validator_agrees_with_real_comfyui(real_comfyui: str) -> None:
    """Our validator finds the same (node, error type) pairs as ComfyUI for broken graphs."""
    object_info = _real_object_info(real_comfyui)
    for name, graph in _mutations(load_template("flux-dev")):
        response = _post(real_comfyui, graph)
        assert response.status_code == 400, name
        theirs = {(node_id, e["type"]) for node_id, entry in response.json()["node_errors"].items()
                  for e in entry["errors"]}
        ours = {(p.node_id, p.kind) for p in validate_graph(graph, object_info)}
        assert ours == theirs, name


def test_shipped_snapshot_with_manifest_files_matches_real_choices(real_comfyui: str) -> None:
    """with_installed_files() gives the model-file choices a real ComfyUI reports for them."""
    real = _real_object_info(real_comfyui)
    installed: dict[str, list[str]] = {}
    for m in MODEL_MANIFEST:
        installed.setdefault(m.folder, []).append(m.local_name)
    installed.setdefault("loras", []).append(TEMPLATE_LORA_FILE)
    ours = with_installed_files(real, installed)
    for class_type, input_name in [("UNETLoader", "unet_name"), ("VAELoader", "vae_name"),
                                   ("DualCLIPLoader", "clip_name1"), ("CLIPLoader", "clip_name"),
                                   ("LoraLoaderModelOnly", "lora_name"),
                                   ("InstantIDModelLoader", "instantid_file"),
                                   ("PulidFluxModelLoader", "pulid_file")]:
        spec = real[class_type]["input"]["required"][input_name]
        assert sorted(spec[0]) == sorted(ours[class_type]["input"]["required"][input_name][0]), class_type
