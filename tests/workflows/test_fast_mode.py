"""Fast mode in the graphs: fp8 weights with fp8 matrix multiply, and torch.compile."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.render import FAST_WEIGHT_DTYPE, RenderError, apply_fast_mode, render_workflow
from workflows.request_models import FluxDevRequest, FluxSchnellRequest
from workflows.validate import validate_graph


def _of_class(graph: dict, class_type: str) -> list[tuple[str, dict]]:
    return [(k, n) for k, n in graph.items() if n["class_type"] == class_type]


def test_fast_mode_puts_the_model_in_fp8_and_compiles_what_the_sampler_gets(installed_object_info):
    graph = render_workflow("flux-dev", FluxDevRequest(prompt="a lighthouse", mode="fast"), seed=3)
    [(loader_id, loader)] = _of_class(graph, "UNETLoader")
    assert loader["inputs"]["weight_dtype"] == FAST_WEIGHT_DTYPE
    [(compile_id, compiled)] = _of_class(graph, "TorchCompileModel")
    assert compiled["inputs"] == {"model": [loader_id, 0], "backend": "inductor"}
    [(_, sampler)] = _of_class(graph, "KSampler")
    assert sampler["inputs"]["model"] == [compile_id, 0]
    assert sampler["inputs"]["seed"] == 3
    # ComfyUI v0.12.1 (the recorded object_info) accepts the graph as it is
    assert validate_graph(graph, installed_object_info) == []


def test_standard_mode_is_the_template_unchanged():
    graph = render_workflow("flux-dev", FluxDevRequest(prompt="a lighthouse"), seed=3)
    [(_, loader)] = _of_class(graph, "UNETLoader")
    assert loader["inputs"]["weight_dtype"] == "default"
    assert _of_class(graph, "TorchCompileModel") == []


def test_fast_mode_without_compile_is_fp8_only():
    graph = render_workflow("flux-dev", FluxDevRequest(prompt="x", mode="fast"), seed=1,
                            compile_fast_mode=False)
    [(loader_id, loader)] = _of_class(graph, "UNETLoader")
    assert loader["inputs"]["weight_dtype"] == FAST_WEIGHT_DTYPE
    assert _of_class(graph, "TorchCompileModel") == []
    [(_, sampler)] = _of_class(graph, "KSampler")
    assert sampler["inputs"]["model"] == [loader_id, 0]


def test_fast_mode_is_a_flux_dev_choice_only():
    # Schnell (1.1 s warm) gains little, and a second, fp8 copy of it (11 GB) with Dev's
    # two copies and T5 filled the 80 GB card on the rehearsal (T5 reloaded every request)
    with pytest.raises(ValidationError, match="mode"):
        FluxSchnellRequest(prompt="x", mode="fast")
    schnell = render_workflow("flux-schnell", FluxSchnellRequest(prompt="x"), seed=1)
    assert _of_class(schnell, "TorchCompileModel") == []


def test_an_unknown_mode_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValidationError) as info:
        FluxDevRequest(prompt="x", mode="turbo")
    [error] = info.value.errors()
    assert error["loc"] == ("mode",)
    assert "'standard' or 'fast'" in error["msg"]


def test_a_graph_without_a_diffusion_model_loader_has_no_fast_mode():
    graph = render_workflow("flux-dev", FluxDevRequest(prompt="x"), seed=1)
    graph = {k: n for k, n in graph.items() if n["class_type"] != "UNETLoader"}
    with pytest.raises(RenderError, match="UNETLoader"):
        apply_fast_mode(graph, compile_model=True)


def test_the_mode_is_read_in_one_place_and_names_the_warm_up() -> None:
    from backend.warmup import WARM_UP_REQUESTS, compiles, warm_up_name
    from workflows.request_models import (FAST_MODE, STANDARD_MODE, FluxDevRequest,
                                          FluxSchnellRequest, mode_of)

    assert mode_of(FluxSchnellRequest(prompt="x")) == STANDARD_MODE  # no mode field
    fast = FluxDevRequest(prompt="x", mode=FAST_MODE)
    assert mode_of(fast) == FAST_MODE
    assert warm_up_name("flux-dev", fast) == "flux-dev-fast" and "flux-dev-fast" in WARM_UP_REQUESTS
    assert compiles("flux-dev-fast") and not compiles("flux-dev")
