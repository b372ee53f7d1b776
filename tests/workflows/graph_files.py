"""Which model files a graph names, and the file names the shipped templates hold where a
per-request file goes: what the graph, manifest and contract tests check templates with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.object_info import IMPLICIT_MODEL_FILES, MODEL_FILE_INPUTS, choice_options

# The tests install these names so that a template validates as shipped.
TEMPLATE_LORA_FILE = "character_lora.safetensors"
TEMPLATE_REFERENCE_IMAGE = "reference.png"


def graph_model_files(graph: Mapping[str, Any],
                      object_info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(models folder, file name) for every model file the graph names or its nodes
    load implicitly, in node order, without repeats.

    An input counts when MODEL_FILE_INPUTS lists it and, for a node type this
    object_info knows, the input is a choice list there.
    """
    found: list[tuple[str, str]] = []
    for node in graph.values():
        if not isinstance(node, dict):
            continue
        class_type = node.get("class_type")
        inputs = node.get("inputs") or {}
        known = object_info.get(class_type) if isinstance(class_type, str) else None
        for (model_class, input_name), folder in MODEL_FILE_INPUTS.items():
            if model_class != class_type or not isinstance(inputs.get(input_name), str):
                continue
            if known is not None and not _is_choice(known, input_name):
                continue
            found.append((folder, inputs[input_name]))
        if isinstance(class_type, str):
            found += IMPLICIT_MODEL_FILES.get(class_type, ())
    return list(dict.fromkeys(found))


def _is_choice(node_info: Mapping[str, Any], input_name: str) -> bool:
    for section in ("required", "optional"):
        spec = ((node_info.get("input") or {}).get(section) or {}).get(input_name)
        if isinstance(spec, list):
            return choice_options(spec) is not None
    return False
