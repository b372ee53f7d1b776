"""Shipped graphs validate as a real ComfyUI would; broken ones fail naming the problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from workflows.manifest import USER_FOLDERS, files_for, find
from workflows.object_info import load_object_info
from tests.shared_files import API_EXAMPLES
from tests.workflows.graph_files import graph_model_files
from workflows.registry import PIPELINES
from workflows.render import load_template, nodes_by_role
from workflows.validate import GraphProblem, validate_graph


def _role(graph: dict[str, Any], role: str) -> str:
    (node_id,) = nodes_by_role(graph)[role]
    return node_id


def _loader_role(graph: dict[str, Any]) -> str:
    roles = nodes_by_role(graph)
    return "checkpoint" if "checkpoint" in roles else "model"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_shipped_graph_validates(pipeline: str, installed_object_info: dict[str, Any]) -> None:
    problems = validate_graph(load_template(pipeline), installed_object_info)
    assert problems == [], [p.message for p in problems]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_shipped_graph_has_one_output(pipeline: str) -> None:
    info = load_object_info()
    outputs = [n for n in load_template(pipeline).values() if info[n["class_type"]]["output_node"]]
    assert [n["_meta"]["title"] for n in outputs] == ["save"]


def _unknown_node(graph: dict[str, Any]) -> str:
    graph[_role(graph, "sampler")]["class_type"] = "NoSuchSampler"
    return "NoSuchSampler"


def _missing_input(graph: dict[str, Any]) -> str:
    del graph[_role(graph, "save")]["inputs"]["images"]
    return "images"


def _wrong_link_type(graph: dict[str, Any]) -> str:
    # The latent (LATENT) where the decoder wants its VAE.
    graph[_role(graph, "decode")]["inputs"]["vae"] = [_role(graph, "latent"), 0]
    return "LATENT"


def _too_few_steps(graph: dict[str, Any]) -> str:
    graph[_role(graph, "sampler")]["inputs"]["steps"] = 0
    return "steps"


def _cfg_too_high(graph: dict[str, Any]) -> str:
    graph[_role(graph, "sampler")]["inputs"]["cfg"] = 1000.0
    return "cfg"


def _link_to_missing_node(graph: dict[str, Any]) -> str:
    graph[_role(graph, "sampler")]["inputs"]["latent_image"] = ["999", 0]
    return "999"


def _model_not_in_manifest(graph: dict[str, Any]) -> str:
    node = graph[_role(graph, _loader_role(graph))]
    key = "ckpt_name" if "ckpt_name" in node["inputs"] else "unet_name"
    node["inputs"][key] = "flux1-dev-fp8.safetensors"
    return "flux1-dev-fp8.safetensors"


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "unknown node": (_unknown_node, "missing_node_type"),
    "missing input": (_missing_input, "required_input_missing"),
    "wrong link type": (_wrong_link_type, "return_type_mismatch"),
    "value below min": (_too_few_steps, "value_smaller_than_min"),
    "value above max": (_cfg_too_high, "value_bigger_than_max"),
    "link to missing node": (_link_to_missing_node, "exception_during_validation"),
    "model not in manifest": (_model_not_in_manifest, "value_not_in_list"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_mutated_graph_fails_naming_the_problem(pipeline: str, mutation: str,
                                                installed_object_info: dict[str, Any]) -> None:
    mutate, kind = MUTATIONS[mutation]
    graph = load_template(pipeline)
    named = mutate(graph)
    problems = validate_graph(graph, installed_object_info)
    assert [p.kind for p in problems] == [kind], [p.message for p in problems]
    assert named in problems[0].message
    assert named in problems[0].details or kind == "missing_node_type"


def test_model_not_in_manifest_is_found_by_graph_model_files() -> None:
    graph = load_template("flux-dev")
    name = _model_not_in_manifest(graph)
    unknown = [(f, n) for f, n in graph_model_files(graph, load_object_info())
               if f not in USER_FOLDERS and find(f, n) is None]
    assert unknown == [("diffusion_models", name)]


def _problem_names(problems: list[GraphProblem]) -> set[tuple[str, str]]:
    return {(p.input_name or "", p.extra_info.get("received_value", "")) for p in problems}


def test_with_nothing_installed_flux_names_every_missing_file() -> None:
    problems = validate_graph(load_template("flux-dev"), load_object_info())
    assert {p.kind for p in problems} == {"value_not_in_list"}
    names = {value for _, value in _problem_names(problems)}
    assert names == {e.local_name for e in files_for("flux-dev")}
    vae = next(p for p in problems if p.input_name == "vae_name")
    assert "ae.safetensors" in vae.message and "pixel_space" in vae.details


def test_recorded_flux_graph_fails_as_the_real_comfyui_did() -> None:
    text = API_EXAMPLES.read_text(encoding="utf-8")
    section = text.split("### Valid Flux Dev graph", 1)[1].split("\n### ", 1)[0]
    request = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    problems = validate_graph(request["prompt"], load_object_info())
    by_node = {(p.node_id, p.input_name): p for p in problems}
    # The recorded answer names node 3's VAE with ComfyUI's exact details string.
    assert "vae_name: 'ae.safetensors' not in ['pixel_space']" in section
    assert by_node[("3", "vae_name")].details == "vae_name: 'ae.safetensors' not in ['pixel_space']"
    assert by_node[("2", "clip_name1")].details.startswith("clip_name1: 'clip_l.safetensors'")
    assert all(p.kind == "value_not_in_list" and p.dependent_outputs == ("10",) for p in problems)
