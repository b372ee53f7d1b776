"""workflows.validate checks graphs as ComfyUI's validate_prompt does: each error kind on a
small graph built from the shipped object_info, with ComfyUI's details and a message that
names the node, the input, the received value and what is allowed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from workflows.object_info import choice_options, load_object_info
from workflows.validate import (
    GraphProblem,
    comfy_message,
    failed_outputs,
    types_match,
    validate_graph,
)


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return load_object_info()


def empty_image(width: Any = 64, **extra: Any) -> dict:
    return {"class_type": "EmptyImage",
            "inputs": {"width": width, "height": 64, "batch_size": 1, "color": 0, **extra}}


def save(images: Any = ("1", 0), prefix: str = "x") -> dict:
    inputs: dict[str, Any] = {"filename_prefix": prefix}
    if images is not None:
        inputs["images"] = list(images)
    return {"class_type": "SaveImage", "inputs": inputs}


def only(problems: list[GraphProblem]) -> GraphProblem:
    assert len(problems) == 1, problems
    return problems[0]


def test_valid_graph_has_no_problems(info: dict) -> None:
    assert validate_graph({"1": empty_image(), "2": save()}, info) == []


def test_unknown_class_type_stops_at_the_first(info: dict) -> None:
    graph = {"1": empty_image(), "2": save(),
             "7": {"class_type": "NoSuchSampler", "inputs": {}},
             "8": {"class_type": "AlsoMissing", "inputs": {}}}
    problem = only(validate_graph(graph, info))
    assert (problem.kind, problem.node_id, problem.class_type) == \
        ("missing_node_type", "7", "NoSuchSampler")
    assert problem.details == "Node ID '#7'"
    assert problem.extra_info == {"node_id": "7", "class_type": "NoSuchSampler",
                                  "node_title": "NoSuchSampler"}
    assert comfy_message(problem) == \
        "Node 'NoSuchSampler' not found. The custom node may not be installed."
    assert "7" in problem.message and "NoSuchSampler" in problem.message


@pytest.mark.parametrize("graph", [[], "graph", {"1": {"inputs": {}}}, {"1": "SaveImage"}])
def test_malformed_graph_is_invalid_prompt(info: dict, graph: Any) -> None:
    assert only(validate_graph(graph, info)).kind == "invalid_prompt"


def test_graph_without_output_node(info: dict) -> None:
    problem = only(validate_graph({"1": empty_image()}, info))
    assert (problem.kind, problem.details, problem.extra_info) == ("prompt_no_outputs", "", {})
    assert "output node" in problem.message


def test_required_input_missing(info: dict) -> None:
    problem = only(validate_graph({"1": empty_image(), "2": save(images=None)}, info))
    assert (problem.kind, problem.node_id, problem.class_type, problem.input_name) == \
        ("required_input_missing", "2", "SaveImage", "images")
    assert (problem.details, problem.extra_info) == ("images", {"input_name": "images"})
    assert problem.dependent_outputs == ("2",)
    assert "Node 2 (SaveImage)" in problem.message and "'images'" in problem.message


def test_only_nodes_an_output_needs_are_checked(info: dict) -> None:
    graph = {"1": empty_image(), "2": save(), "3": empty_image(width=0)}
    assert validate_graph(graph, info) == []


def test_value_below_min(info: dict) -> None:
    problem = only(validate_graph({"1": empty_image(width=0), "2": save()}, info))
    assert (problem.kind, problem.node_id, problem.input_name, problem.details) == \
        ("value_smaller_than_min", "1", "width", "width")
    assert comfy_message(problem) == "Value 0 smaller than min of 1"
    assert problem.extra_info["received_value"] == 0
    assert problem.extra_info["input_config"] == \
        ["INT", {"default": 512, "max": 16384, "min": 1, "step": 1}]
    assert problem.dependent_outputs == ("2",)
    for part in ("Node 1 (EmptyImage)", "'width'", "0", "1..16384"):
        assert part in problem.message


def test_value_above_max_after_conversion(info: dict) -> None:
    problem = only(validate_graph({"1": empty_image(width="20000"), "2": save()}, info))
    assert problem.kind == "value_bigger_than_max"
    assert problem.extra_info["received_value"] == 20000  # converted, as ComfyUI reports it
    assert comfy_message(problem) == "Value 20000 bigger than max of 16384"
    assert "20000" in problem.message and "1..16384" in problem.message


def test_number_that_does_not_convert(info: dict) -> None:
    problem = only(validate_graph({"1": empty_image(width="wide"), "2": save()}, info))
    assert problem.kind == "invalid_input_type"
    assert problem.details == "width, wide, invalid literal for int() with base 10: 'wide'"
    assert comfy_message(problem) == "Failed to convert an input value to a INT value"
    assert problem.extra_info["received_value"] == "wide"
    assert "'wide'" in problem.message and "INT" in problem.message


def test_float_input_accepts_a_numeric_string_and_rejects_junk(info: dict) -> None:
    graph = {"1": empty_image(), "2": {"class_type": "ImageBlur", "inputs": {
        "image": ["1", 0], "blur_radius": 3, "sigma": "2.5"}}, "3": save(("2", 0))}
    assert validate_graph(graph, info) == []
    graph["2"]["inputs"]["sigma"] = None
    problem = only(validate_graph(graph, info))
    assert (problem.kind, problem.input_name) == ("invalid_input_type", "sigma")
    assert "FLOAT" in comfy_message(problem)


def test_boolean_and_string_convert_like_python(info: dict) -> None:
    # ComfyUI applies bool() and str(): neither fails, so neither is an error.
    graph = {"1": empty_image(), "2": {"class_type": "SaveAnimatedWEBP", "inputs": {
        "images": ["1", 0], "filename_prefix": 12345, "fps": 6.0, "lossless": "no",
        "quality": 80, "method": "default"}}}
    assert validate_graph(graph, info) == []
    graph["2"]["inputs"]["quality"] = "80.5"  # but an INT must still parse
    assert only(validate_graph(graph, info)).kind == "invalid_input_type"


def test_choice_not_in_legacy_list(info: dict) -> None:
    graph = {"1": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
             "2": {"class_type": "VAEDecode", "inputs": {"vae": ["1", 0], "samples": ["3", 0]}},
             "3": {"class_type": "EmptySD3LatentImage",
                   "inputs": {"width": 64, "height": 64, "batch_size": 1}},
             "4": save(("2", 0))}
    problem = only(validate_graph(graph, info))
    assert (problem.kind, problem.node_id, problem.class_type, problem.input_name) == \
        ("value_not_in_list", "1", "VAELoader", "vae_name")
    assert problem.details == "vae_name: 'ae.safetensors' not in ['pixel_space']"
    assert problem.extra_info == {"input_name": "vae_name", "input_config": [["pixel_space"], {}],
                                  "received_value": "ae.safetensors"}
    assert problem.dependent_outputs == ("4",)
    assert "'ae.safetensors'" in problem.message and "'pixel_space'" in problem.message


def test_choice_not_in_v3_combo_options(info: dict) -> None:
    graph = {"1": empty_image(), "2": {"class_type": "SaveAnimatedWEBP", "inputs": {
        "images": ["1", 0], "filename_prefix": "v", "fps": 6.0, "lossless": False,
        "quality": 80, "method": "quickest"}}}
    problem = only(validate_graph(graph, info))
    assert problem.kind == "value_not_in_list"
    assert problem.details == "method: 'quickest' not in ['default', 'fastest', 'slowest']"
    assert "'fastest'" in problem.message


def _with_sink(info: dict) -> dict:
    """`info` plus an output node that takes any one link, to end a graph anywhere."""
    patched = copy.deepcopy(info)
    patched["SinkAny"] = {"input": {"required": {"value": ["*", {}]}}, "output": [],
                          "output_node": True}
    return patched


def test_long_choice_list_is_summarised_as_comfyui_does(info: dict) -> None:
    names = choice_options(info["KSamplerSelect"]["input"]["required"]["sampler_name"])
    assert len(names) > 20  # ComfyUI prints a list of more than 20 by its length only
    graph = {"1": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "NOPE"}},
             "2": {"class_type": "SinkAny", "inputs": {"value": ["1", 0]}}}
    problem = only(validate_graph(graph, _with_sink(info)))
    assert problem.input_name == "sampler_name"
    assert problem.details == f"sampler_name: 'NOPE' not in (list of length {len(names)})"
    assert problem.extra_info["input_config"] is None
    assert "'euler'" in problem.message and f"{len(names) - 20} more" in problem.message


def test_link_to_a_missing_node(info: dict) -> None:
    problem = only(validate_graph({"2": save(("99", 0))}, info))
    assert (problem.kind, problem.node_id, problem.input_name, problem.details) == \
        ("exception_during_validation", "2", "images", "'99'")
    assert problem.extra_info["exception_type"] == "KeyError"
    assert comfy_message(problem) == "Exception when validating node"
    assert "'99'" in problem.message and "images" in problem.message


def test_missing_link_in_an_inner_node_is_reported_on_that_node(info: dict) -> None:
    graph = {"1": {"class_type": "ImageInvert", "inputs": {"image": ["42", 0]}},
             "2": save()}
    problem = only(validate_graph(graph, info))
    assert (problem.kind, problem.node_id, problem.details) == \
        ("exception_during_validation", "1", "'42'")
    assert comfy_message(problem) == "Exception when validating inner node"
    assert problem.extra_info["linked_node"] == ["1", 0]
    assert problem.dependent_outputs == ("2",)


def test_output_index_out_of_range(info: dict) -> None:
    problem = only(validate_graph({"1": empty_image(), "2": save(("1", 3))}, info))
    assert (problem.kind, problem.details) == \
        ("exception_during_validation", "tuple index out of range")
    assert "output 3" in problem.message and "IMAGE" in problem.message


def test_link_of_the_wrong_type(info: dict) -> None:
    graph = {"1": {"class_type": "EmptySD3LatentImage",
                   "inputs": {"width": 64, "height": 64, "batch_size": 1}},
             "2": save()}
    problem = only(validate_graph(graph, info))
    assert (problem.kind, problem.details) == (
        "return_type_mismatch", "images, received_type(LATENT) mismatch input_type(IMAGE)")
    assert problem.extra_info["received_type"] == "LATENT"
    assert problem.extra_info["linked_node"] == ["1", 0]
    assert "LATENT" in problem.message and "IMAGE" in problem.message


def test_wildcard_input_takes_any_link(info: dict) -> None:
    graph = {"1": {"class_type": "EmptySD3LatentImage",
                   "inputs": {"width": 64, "height": 64, "batch_size": 1}},
             "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    assert validate_graph(graph, info) == []


def test_combo_output_into_a_choice_input(info: dict) -> None:
    patched = copy.deepcopy(info)
    patched["ComboSource"] = {"input": {"required": {}}, "output": ["COMBO"],
                              "output_node": False}
    graph = {"1": empty_image(),
             "2": {"class_type": "ComboSource", "inputs": {}},
             "3": {"class_type": "ImageScaleBy", "inputs": {
                 "image": ["1", 0], "scale_by": 1.0, "upscale_method": ["2", 0]}},
             "4": save(("3", 0))}
    assert validate_graph(graph, patched) == []


@pytest.mark.parametrize(("received", "wanted", "matches"), [
    ("IMAGE", "IMAGE", True), ("LATENT", "IMAGE", False), ("*", "MODEL", True),
    ("MODEL", "*", True), ("MODEL,VAE", "VAE", True), ("VAE", "MODEL, VAE", True),
    ("CLIP", "MODEL,VAE", False), ("COMBO", ["a", "b"], True), (["a"], "COMBO", True),
    ("STRING", ["a", "b"], False),
])
def test_types_match(received: Any, wanted: Any, matches: bool) -> None:
    assert types_match(received, wanted) is matches


def test_optional_input_is_checked_when_present(info: dict) -> None:
    assert "count" in info["RegexReplace"]["input"]["optional"]
    graph = {"1": {"class_type": "RegexReplace",
                   "inputs": {"regex_pattern": "a", "replace": "b", "string": "abc"}},
             "2": {"class_type": "SinkAny", "inputs": {"value": ["1", 0]}}}
    assert validate_graph(graph, _with_sink(info)) == []
    graph["1"]["inputs"]["count"] = -1
    problem = only(validate_graph(graph, _with_sink(info)))
    assert (problem.kind, problem.input_name) == ("value_smaller_than_min", "count")


def test_hidden_inputs_are_not_required(info: dict) -> None:
    assert "hidden" in info["SaveImage"]["input"]
    assert validate_graph({"1": empty_image(), "2": save()}, info) == []


def test_dependent_outputs_name_only_outputs_that_depend_on_the_node(info: dict) -> None:
    graph = {"1": empty_image(width=0), "2": save(), "3": save(prefix="y"),
             "4": empty_image(width=70000), "5": save(("4", 0))}
    problems = {p.node_id: p for p in validate_graph(graph, info)}
    assert set(problems) == {"1", "4"}
    assert problems["1"].dependent_outputs == ("2", "3")
    assert problems["4"].dependent_outputs == ("5",)
    assert failed_outputs(list(problems.values())) == {"2", "3", "5"}


def test_downstream_of_a_failure_is_not_reported_twice(info: dict) -> None:
    graph = {"1": empty_image(width=0),
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": save(("2", 0))}
    problem = only(validate_graph(graph, info))
    assert problem.node_id == "1" and problem.dependent_outputs == ("3",)


def test_cycle_is_an_error_not_a_crash(info: dict) -> None:
    graph = {"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": save(("2", 0))}
    problems = validate_graph(graph, info)
    assert problems and all(p.kind == "exception_during_validation" for p in problems)
    assert "cycle" in problems[0].message
