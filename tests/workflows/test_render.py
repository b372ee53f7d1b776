"""Filling graphs from typed requests: by role, at every edge, never touching templates."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

from tests.workflows.conftest import UPLOADED_IMAGE, USER_LORA
from workflows import render
from workflows.registry import PIPELINES
from workflows.render import (
    REQUEST_TYPES,
    MissingInputError,
    MissingRoleError,
    RenderError,
    UnknownPipelineError,
    load_template,
    nodes_by_role,
    render_workflow,
)
from workflows.request_models import MAX_PROMPT_CHARS, MAX_SEED, ZImageRequest
from workflows.validate import validate_graph

_BASE: dict[str, dict[str, Any]] = {
    "flux-dev": {"prompt": "a lighthouse"},
    "flux-schnell": {"prompt": "a lighthouse"},
    "flux-lora": {"prompt": "a portrait", "lora_id": "alice"},
    "instantid": {"prompt": "a portrait", "reference_image": "data:image/png;base64,AAAA",
                  "method": "instantid"},
    "pulid": {"prompt": "a portrait", "reference_image": "data:image/png;base64,AAAA",
              "method": "pulid"},
    "wan2": {"prompt": "a fox in snow"},
    "z-image": {"prompt": "a lighthouse"},
}


def _request(pipeline: str, **changes: Any) -> BaseModel:
    return REQUEST_TYPES[pipeline](**{**_BASE[pipeline], **changes})


def _extras(pipeline: str) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if pipeline == "flux-lora":
        extras["lora_file"] = USER_LORA
    if pipeline in ("instantid", "pulid"):
        extras["reference_image"] = UPLOADED_IMAGE
    return extras


def _bounds(model: type[BaseModel]) -> Iterator[tuple[str, Any]]:
    """(field, value) at both ends of every numeric range the request model declares."""
    for name, field in model.model_fields.items():
        for meta in field.metadata:
            if isinstance(meta, annotated_types.Ge):
                yield name, meta.ge
            if isinstance(meta, annotated_types.Le):
                yield name, meta.le


def _edge_cases() -> Iterator[Any]:
    for pipeline in PIPELINES:
        for name, value in _bounds(REQUEST_TYPES[pipeline]):
            yield pytest.param(pipeline, {name: value}, id=f"{pipeline}-{name}={value}")
        yield pytest.param(pipeline, {"prompt": "p" * MAX_PROMPT_CHARS,
                                      "negative_prompt": "n" * MAX_PROMPT_CHARS},
                           id=f"{pipeline}-longest-prompts")


def _by_role(graph: dict[str, Any], role: str) -> dict[str, Any]:
    (node_id,) = nodes_by_role(graph)[role]
    return graph[node_id]["inputs"]


def test_every_range_has_edges_to_test() -> None:
    # Guards the generator: if request models lose their metadata, the edge tests vanish.
    for pipeline in PIPELINES:
        names = {name for name, _ in _bounds(REQUEST_TYPES[pipeline])}
        assert {"width", "height", "steps", "seed"} <= names, pipeline


@pytest.mark.parametrize(("pipeline", "changes"), list(_edge_cases()))
def test_rendered_at_each_edge_validates(pipeline: str, changes: dict[str, Any],
                                         installed_object_info: dict[str, Any]) -> None:
    request = _request(pipeline, **changes)
    seed = changes.get("seed") if changes.get("seed") is not None else 7
    graph = render_workflow(pipeline, request, seed=seed, **_extras(pipeline))
    problems = validate_graph(graph, installed_object_info)
    assert problems == [], [p.message for p in problems]


@pytest.mark.parametrize("seed", [0, MAX_SEED])
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_seed_edges_validate(pipeline: str, seed: int, installed_object_info: dict) -> None:
    graph = render_workflow(pipeline, _request(pipeline), seed=seed, **_extras(pipeline))
    assert _by_role(graph, "sampler")["seed"] == seed
    assert validate_graph(graph, installed_object_info) == []


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1])
def test_seed_out_of_range_is_refused(seed: int) -> None:
    with pytest.raises(RenderError, match="seed"):
        render_workflow("flux-dev", _request("flux-dev"), seed=seed)


def test_flux_dev_values_land_on_their_roles() -> None:
    request = _request("flux-dev", prompt="a red kite", negative_prompt="blur", width=768,
                       height=1344, steps=33, guidance=4.5)
    graph = render_workflow("flux-dev", request, seed=1234)
    assert _by_role(graph, "positive")["text"] == "a red kite"
    assert _by_role(graph, "negative")["text"] == "blur"
    assert (_by_role(graph, "latent")["width"], _by_role(graph, "latent")["height"]) == (768, 1344)
    sampler = _by_role(graph, "sampler")
    assert (sampler["seed"], sampler["steps"], sampler["cfg"]) == (1234, 33, 1.0)
    assert _by_role(graph, "guidance")["guidance"] == 4.5


def test_schnell_has_no_guidance_and_keeps_cfg_one() -> None:
    graph = render_workflow("flux-schnell", _request("flux-schnell", guidance=9.0), seed=1)
    assert "guidance" not in nodes_by_role(graph)
    assert not any(node["class_type"] == "FluxGuidance" for node in graph.values())
    assert _by_role(graph, "sampler")["cfg"] == 1.0
    assert _by_role(graph, "sampler")["steps"] == 4  # the request model's default


def test_z_image_values_land_on_their_roles() -> None:
    request = _request("z-image", prompt="a red kite", negative_prompt="blur", width=768,
                       height=1344, steps=12)
    graph = render_workflow("z-image", request, seed=99)
    assert _by_role(graph, "positive")["text"] == "a red kite"
    assert _by_role(graph, "negative")["text"] == "blur"
    assert (_by_role(graph, "latent")["width"], _by_role(graph, "latent")["height"]) == (768, 1344)
    sampler = _by_role(graph, "sampler")
    assert (sampler["seed"], sampler["steps"]) == (99, 12)
    # Distilled without CFG: ComfyUI's Z-Image-Turbo template samples at cfg 1 with
    # res_multistep/simple, the model behind ModelSamplingAuraFlow at shift 3.
    assert (sampler["cfg"], sampler["sampler_name"], sampler["scheduler"]) == (1.0, "res_multistep", "simple")
    roles = nodes_by_role(graph)
    assert sampler["model"] == [roles["model_sampling"][0], 0]
    assert _by_role(graph, "model_sampling") == {"model": [roles["model"][0], 0], "shift": 3.0}
    assert _by_role(graph, "clip")["type"] == "lumina2"  # Qwen3-4B is loaded as Z-Image's encoder
    assert "guidance" not in roles


def test_z_image_defaults_to_eight_steps_and_has_no_guidance_field() -> None:
    graph = render_workflow("z-image", _request("z-image"), seed=1)
    assert _by_role(graph, "sampler")["steps"] == 8
    assert "guidance" not in ZImageRequest.model_fields
    with pytest.raises(ValidationError, match="guidance"):
        ZImageRequest(prompt="a lighthouse", guidance=3.5)
    with pytest.raises(ValidationError, match="less than or equal to 50"):
        ZImageRequest(prompt="a lighthouse", steps=51)


def test_lora_file_strength_and_trigger_word() -> None:
    request = _request("flux-lora", prompt="at the beach", lora_strength=0.35, trigger_word="ALICE")
    graph = render_workflow("flux-lora", request, seed=1, lora_file=USER_LORA)
    assert _by_role(graph, "lora") | {"model": None} == {
        "lora_name": USER_LORA, "strength_model": 0.35, "model": None}
    assert _by_role(graph, "positive")["text"] == "ALICE, at the beach"
    again = render_workflow("flux-lora", _request("flux-lora", prompt="ALICE at home",
                                                  trigger_word="ALICE"), seed=1, lora_file=USER_LORA)
    assert _by_role(again, "positive")["text"] == "ALICE at home"


def test_lora_sits_between_model_and_sampler() -> None:
    graph = render_workflow("flux-lora", _request("flux-lora"), seed=1, lora_file=USER_LORA)
    roles = nodes_by_role(graph)
    assert _by_role(graph, "sampler")["model"] == [roles["lora"][0], 0]
    assert _by_role(graph, "lora")["model"] == [roles["model"][0], 0]


def test_instantid_strengths_and_image() -> None:
    request = _request("instantid", instantid_strength=1.2, controlnet_strength=0.3, guidance=5.0)
    graph = render_workflow("instantid", request, seed=1, reference_image=UPLOADED_IMAGE)
    instantid = _by_role(graph, "instantid")
    assert (instantid["ip_weight"], instantid["cn_strength"]) == (1.2, 0.3)
    assert _by_role(graph, "reference_image")["image"] == UPLOADED_IMAGE
    assert _by_role(graph, "sampler")["cfg"] == 5.0
    assert graph[nodes_by_role(graph)["checkpoint"][0]]["class_type"] == "CheckpointLoaderSimple"


def test_pulid_weight_image_and_flux_guidance() -> None:
    request = _request("pulid", instantid_strength=1.1, guidance=3.0)
    graph = render_workflow("pulid", request, seed=1, reference_image=UPLOADED_IMAGE)
    assert _by_role(graph, "pulid")["weight"] == 1.1
    assert _by_role(graph, "reference_image")["image"] == UPLOADED_IMAGE
    assert _by_role(graph, "guidance")["guidance"] == 3.0
    assert _by_role(graph, "sampler")["model"] == [nodes_by_role(graph)["pulid"][0], 0]


def test_wan_frames_fps_and_cfg() -> None:
    request = _request("wan2", frames=81, fps=24, width=1280, height=720, guidance=5.5)
    graph = render_workflow("wan2", request, seed=3)
    latent = _by_role(graph, "latent")
    assert (latent["length"], latent["width"], latent["height"]) == (81, 1280, 720)
    assert _by_role(graph, "save")["fps"] == 24.0
    assert _by_role(graph, "sampler")["cfg"] == 5.5


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_templates_are_never_changed(pipeline: str) -> None:
    before = load_template(pipeline)
    first = render_workflow(pipeline, _request(pipeline, prompt="one"), seed=1, **_extras(pipeline))
    second = render_workflow(pipeline, _request(pipeline, prompt="two"), seed=2, **_extras(pipeline))
    assert load_template(pipeline) == before
    assert _by_role(first, "positive")["text"].endswith("one")
    assert first is not second and first != second


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_template_node_has_a_unique_role(pipeline: str) -> None:
    graph = load_template(pipeline)
    roles = nodes_by_role(graph)
    assert sum(len(ids) for ids in roles.values()) == len(graph)
    assert all(len(ids) == 1 for ids in roles.values()), roles


def test_missing_role_names_pipeline_and_role(monkeypatch: pytest.MonkeyPatch) -> None:
    template = load_template("flux-dev")
    (guidance_id,) = nodes_by_role(template)["guidance"]
    template[guidance_id]["_meta"]["title"] = "Flux Guidance"
    monkeypatch.setattr(render, "load_template", lambda pipeline: copy.deepcopy(template))
    with pytest.raises(MissingRoleError, match=r"'flux-dev'.*'guidance'.*Flux Guidance"):
        render_workflow("flux-dev", _request("flux-dev"), seed=1)


def test_duplicate_role_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    template = load_template("flux-dev")
    (negative_id,) = nodes_by_role(template)["negative"]
    template[negative_id]["_meta"]["title"] = "positive"
    monkeypatch.setattr(render, "load_template", lambda pipeline: copy.deepcopy(template))
    with pytest.raises(MissingRoleError, match="2 nodes"):
        render_workflow("flux-dev", _request("flux-dev"), seed=1)


def test_missing_input_on_a_role_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    template = load_template("wan2")
    (save_id,) = nodes_by_role(template)["save"]
    del template[save_id]["inputs"]["fps"]
    monkeypatch.setattr(render, "load_template", lambda pipeline: copy.deepcopy(template))
    with pytest.raises(MissingInputError, match=r"'save'.*SaveAnimatedWEBP.*'fps'"):
        render_workflow("wan2", _request("wan2"), seed=1)


def test_unknown_pipeline_and_wrong_request_type() -> None:
    with pytest.raises(UnknownPipelineError, match="flux-pro"):
        render_workflow("flux-pro", _request("flux-dev"), seed=1)
    with pytest.raises(RenderError, match="Wan2Request.*FluxDevRequest"):
        render_workflow("wan2", _request("flux-dev"), seed=1)


def test_per_request_files_are_required() -> None:
    with pytest.raises(RenderError, match="lora_file"):
        render_workflow("flux-lora", _request("flux-lora"), seed=1)
    for pipeline in ("instantid", "pulid"):
        with pytest.raises(RenderError, match="reference_image"):
            render_workflow(pipeline, _request(pipeline), seed=1)
