"""The shipped graphs and the validator, checked against a real upstream ComfyUI.

Needs a real ComfyUI (RYLA_REAL_COMFYUI_URL, started with tools/upstream-comfyui.sh)
and write access to its models folder (RYLA_REAL_COMFYUI_MODELS_DIR, e.g.
/tmp/upcomfy/ComfyUI/models): the `real_comfyui` fixture installs empty placeholder files
named as in the manifest, so that ComfyUI lists them as choices, and removes them
afterwards. The jobs queued here fail at once on CPU (the placeholders hold no weights);
only validation is checked.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import requests

from tests.contract.conftest import RealComfyUI
from tests.workflows.graph_files import TEMPLATE_LORA_FILE
from workflows.manifest import MODEL_MANIFEST
from workflows.object_info import with_installed_files
from workflows.render import PIPELINES, load_template, render_workflow
from workflows.request_models import FluxDevRequest
from workflows.validate import validate_graph

pytestmark = pytest.mark.real_comfyui


def _post(url: str, graph: dict) -> requests.Response:
    return requests.post(f"{url}/prompt", json={"prompt": graph, "client_id": "ryla-tests"}, timeout=60)


def _real_object_info(url: str) -> dict:
    return requests.get(f"{url}/object_info", timeout=60).json()


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_real_comfyui_accepts_every_shipped_graph(real_comfyui: RealComfyUI, pipeline: str) -> None:
    response = _post(real_comfyui.url, load_template(pipeline))
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["node_errors"] == {}


def test_real_comfyui_accepts_the_fast_mode_graph(real_comfyui: RealComfyUI) -> None:
    graph = render_workflow("flux-dev", FluxDevRequest(prompt="fast", mode="fast"), seed=1)
    response = _post(real_comfyui.url, graph)
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


def test_validator_agrees_with_real_comfyui(real_comfyui: RealComfyUI) -> None:
    """Our validator finds the same (node, error type) pairs as ComfyUI for broken graphs."""
    object_info = _real_object_info(real_comfyui.url)
    for name, graph in _mutations(load_template("flux-dev")):
        response = _post(real_comfyui.url, graph)
        assert response.status_code == 400, name
        theirs = {(node_id, e["type"]) for node_id, entry in response.json()["node_errors"].items()
                  for e in entry["errors"]}
        ours = {(p.node_id, p.kind) for p in validate_graph(graph, object_info)}
        assert ours == theirs, name


def test_shipped_snapshot_with_manifest_files_matches_real_choices(real_comfyui: RealComfyUI) -> None:
    """with_installed_files() gives the model-file choices a real ComfyUI reports for them."""
    real = _real_object_info(real_comfyui.url)
    installed: dict[str, list[str]] = {}
    for m in MODEL_MANIFEST:
        installed.setdefault(m.folder, []).append(m.local_name)
    installed.setdefault("loras", []).append(TEMPLATE_LORA_FILE)
    ours = with_installed_files(real, installed)
    for class_type, input_name in [("UNETLoader", "unet_name"), ("VAELoader", "vae_name"),
                                   ("DualCLIPLoader", "clip_name1"), ("CLIPLoader", "clip_name"),
                                   ("LoraLoaderModelOnly", "lora_name"),
                                   ("LoraLoaderBypassModelOnly", "lora_name"),
                                   ("InstantIDModelLoader", "instantid_file"),
                                   ("PulidFluxModelLoader", "pulid_file")]:
        spec = real[class_type]["input"]["required"][input_name]
        assert sorted(spec[0]) == sorted(ours[class_type]["input"]["required"][input_name][0]), class_type
