"""Fill a shipped ComfyUI graph from a typed request.

Nodes are found by their role, the `_meta.title` every template node carries, never
by node id, so a template can be rebuilt in the ComfyUI editor without breaking this
code. Every call returns a new graph: templates are read fresh and never changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from workflows.registry import LORA_FILE, PIPELINES, PROMPT, REFERENCE_IMAGE, SEED
from workflows.request_models import FAST_MODE, MAX_SEED, mode_of

# The request model each pipeline is filled from. flux-lora's and the character
# pipelines' models extend the Flux Dev fields, so a subclass is accepted.
REQUEST_TYPES: dict[str, type[BaseModel]] = {p.name: p.request_model for p in PIPELINES.values()}


class RenderError(ValueError):
    """A graph cannot be filled from this request."""


class UnknownPipelineError(RenderError):
    def __init__(self, pipeline: str) -> None:
        super().__init__(f"unknown pipeline {pipeline!r}; known: {', '.join(PIPELINES)}")


class MissingRoleError(RenderError):
    """A template has no node, or more than one, with a role that must be filled."""

    def __init__(self, pipeline: str, role: str, found: int, roles: list[str]) -> None:
        what = "no node" if found == 0 else f"{found} nodes"
        super().__init__(
            f"template {pipeline!r} has {what} with _meta.title {role!r} (exactly one needed); "
            f"roles present: {', '.join(sorted(roles)) or 'none'}"
        )
        self.pipeline, self.role = pipeline, role


class MissingInputError(RenderError):
    def __init__(self, pipeline: str, role: str, class_type: str, input_name: str) -> None:
        super().__init__(
            f"template {pipeline!r}: node with role {role!r} ({class_type}) has no input "
            f"{input_name!r} to fill"
        )


@dataclass(frozen=True)
class Fill:
    role: str
    input_name: str
    value: Any


@lru_cache(maxsize=len(PIPELINES))
def _template_text(pipeline: str) -> str:
    return PIPELINES[pipeline].graph_path.read_text(encoding="utf-8")


def load_template(pipeline: str) -> dict[str, Any]:
    """A fresh copy of a shipped graph, as ComfyUI's API format."""
    if pipeline not in PIPELINES:
        raise UnknownPipelineError(pipeline)
    return json.loads(_template_text(pipeline))


def _prompt_text(request: BaseModel) -> str:
    prompt: str = request.prompt  # type: ignore[attr-defined]
    trigger = getattr(request, "trigger_word", None)
    # A LoRA learns its character under the trigger word; without it the LoRA
    # barely shows, so it leads the prompt unless the user already wrote it.
    if trigger and trigger.strip() and trigger not in prompt:
        return f"{trigger.strip()}, {prompt}"
    return prompt


# What a pipeline that needs a per-job value says when it is not given.
_NEEDED = {
    LORA_FILE: ("lora_file", "the LoRA's file name in models/loras"),
    REFERENCE_IMAGE: ("reference_image", "the uploaded image's name in ComfyUI's input folder"),
}


def _fills(pipeline: str, request: BaseModel, seed: int, lora_file: str | None,
           reference_image: str | None) -> list[Fill]:
    """The pipeline's slots (workflows/registry.py) with this request's values."""
    given = {SEED: seed, PROMPT: _prompt_text(request), LORA_FILE: lora_file,
             REFERENCE_IMAGE: reference_image}
    fills = []
    for slot in PIPELINES[pipeline].slots:
        value = given[slot.source] if slot.source in given else getattr(request, slot.source)
        if value is None and slot.source in _NEEDED:
            argument, what = _NEEDED[slot.source]
            raise RenderError(f"{pipeline} needs {argument}: {what}")
        fills.append(Fill(slot.role, slot.input_name, float(value) if slot.as_float else value))
    return fills


def nodes_by_role(graph: Mapping[str, Any]) -> dict[str, list[str]]:
    """Role (`_meta.title`) -> ids of the nodes that carry it."""
    roles: dict[str, list[str]] = {}
    for node_id, node in graph.items():
        title = (node.get("_meta") or {}).get("title") if isinstance(node, dict) else None
        if isinstance(title, str):
            roles.setdefault(title, []).append(node_id)
    return roles


def apply_fills(pipeline: str, graph: dict[str, Any], fills: list[Fill]) -> None:
    roles = nodes_by_role(graph)
    for fill in fills:
        ids = roles.get(fill.role, [])
        if len(ids) != 1:
            raise MissingRoleError(pipeline, fill.role, len(ids), list(roles))
        node = graph[ids[0]]
        if fill.input_name not in node.get("inputs", {}):
            raise MissingInputError(pipeline, fill.role, node.get("class_type", "?"), fill.input_name)
        node["inputs"][fill.input_name] = fill.value


# Fast mode (opt-in): the diffusion model's weights in fp8, multiplied with the H100's fp8
# matrix multiply (ComfyUI's `fp8_e4m3fn_fast` weight dtype), and optionally compiled by
# torch.compile (ComfyUI's TorchCompileModel, inductor). Measured on the GPU rehearsal;
# docs/performance.md has the figures and the quality caveat.
FAST_WEIGHT_DTYPE = "fp8_e4m3fn_fast"
COMPILE_ROLE = "compile"


def apply_fast_mode(graph: dict[str, Any], *, compile_model: bool) -> dict[str, Any]:
    """`graph` with every UNETLoader in fp8 and, when `compile_model`, a TorchCompileModel
    node between the model and the sampler ("sampler" role); changed in place, returned."""
    loaders = [n for n in graph.values() if isinstance(n, dict) and n.get("class_type") == "UNETLoader"]
    if not loaders:
        raise RenderError("fast mode needs a graph with a UNETLoader (a diffusion model to put in fp8)")
    for node in loaders:
        node["inputs"]["weight_dtype"] = FAST_WEIGHT_DTYPE
    if compile_model:
        roles = nodes_by_role(graph)
        sampler_ids = roles.get("sampler", [])
        if len(sampler_ids) != 1:
            raise MissingRoleError("fast mode", "sampler", len(sampler_ids), list(roles))
        sampler = graph[sampler_ids[0]]["inputs"]
        node_id = str(max((int(k) for k in graph if k.isdigit()), default=0) + 1)
        graph[node_id] = {"class_type": "TorchCompileModel",
                          "inputs": {"model": sampler["model"], "backend": "inductor"},
                          "_meta": {"title": COMPILE_ROLE}}
        sampler["model"] = [node_id, 0]
    return graph


def render_workflow(pipeline: str, request: BaseModel, *, seed: int,
                    lora_file: str | None = None,
                    reference_image: str | None = None,
                    compile_fast_mode: bool = True) -> dict[str, Any]:
    """A new API-format graph for `pipeline`, filled from `request`: prompt texts,
    size, steps, seed, guidance, LoRA file and strength, reference image name,
    identity strengths, video frames and fps, as the pipeline has them; in fast mode
    when the request asks for it (`compile_fast_mode`: with torch.compile)."""
    if pipeline not in PIPELINES:
        raise UnknownPipelineError(pipeline)
    expected = REQUEST_TYPES[pipeline]
    if not isinstance(request, expected):
        raise RenderError(
            f"{pipeline} is filled from {expected.__name__}, got {type(request).__name__}"
        )
    if not 0 <= seed <= MAX_SEED:
        raise RenderError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    graph = load_template(pipeline)
    apply_fills(pipeline, graph, _fills(pipeline, request, seed, lora_file, reference_image))
    if mode_of(request) == FAST_MODE:
        apply_fast_mode(graph, compile_model=compile_fast_mode)
    return graph
