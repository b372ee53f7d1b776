"""One converter from request-model fields to controls (ui/controls.py): what it reads
from a field, and that the studio's components and the CLI's options both come from it."""

from __future__ import annotations

import argparse
from typing import Annotated

import gradio as gr
import pytest
from pydantic import BaseModel, Field as ModelField

from ui.cli.options import add_model_options
from ui.controls import control, controls
from ui.studio.fields import Field, component
from workflows.registry import ROUTES
from workflows.request_models import FluxDevRequest, WorkflowRequest


def test_a_field_is_read_with_its_bounds_step_choices_default_and_help() -> None:
    width = control(FluxDevRequest, "width")
    assert (width.kind, width.low, width.high, width.step, width.default) == ("int", 256, 2048, 16, 1024)
    assert width.help == "width in pixels" and width.allowed == "256-2048, multiple of 16"
    seed = control(FluxDevRequest, "seed")  # Optional[Annotated[int, ...]]
    assert seed.kind == "int" and not seed.required and seed.default is None
    assert not seed.bounded and seed.allowed == ">= 0"
    mode = control(FluxDevRequest, "mode")  # a Literal
    assert (mode.kind, mode.choices, mode.default) == ("choice", ("standard", "fast"), "standard")
    prompt = control(FluxDevRequest, "prompt")
    assert prompt.kind == "text" and prompt.required and prompt.default is None
    assert control(WorkflowRequest, "workflow").kind == "structured"


def test_values_from_a_form_become_the_field_type() -> None:
    steps, guidance = control(FluxDevRequest, "steps"), control(FluxDevRequest, "guidance")
    assert steps.value(7.0) == 7 and isinstance(steps.value("7"), int)
    assert guidance.value("2.5") == 2.5 and steps.value("") is None and steps.value(None) is None


class _WithAFlag(BaseModel):
    """A field type no request model has yet: a bool, taught once in ui/controls.py."""

    prompt: str = ModelField(description="what to generate")
    upscale: bool = ModelField(default=False, description="upscale the result 2x")
    batch: Annotated[int | None, ModelField(ge=1, le=4)] = None


def test_a_new_field_type_taught_once_shows_in_the_cli_and_the_studio() -> None:
    assert control(_WithAFlag, "upscale").kind == "flag"

    parser = argparse.ArgumentParser()
    assert add_model_options(parser, _WithAFlag) == ["prompt", "upscale", "batch"]
    assert parser.parse_args(["--prompt", "x", "--upscale"]).upscale is True
    assert parser.parse_args(["--prompt", "x", "--no-upscale"]).upscale is False
    assert parser.parse_args(["--prompt", "x"]).upscale is None  # pydantic fills the default
    assert "upscale the result 2x; default False" in parser.format_help()

    flag = Field("upscale", model=_WithAFlag)
    assert flag.widget == "checkbox" and flag.default is False and flag.text == "Upscale"
    with gr.Blocks():
        made = component(flag, "tab")
    assert isinstance(made, gr.Checkbox) and made.value is False
    assert made.label == "Upscale" and flag.convert(1) is True


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_studio_and_cli_show_every_route_field_as_the_converter_reads_it(path: str) -> None:
    model = ROUTES[path].request_model
    parser = argparse.ArgumentParser()
    added = add_model_options(parser, model)
    options = {a.dest: a for a in parser._actions}
    for name, spec in controls(model).items():
        if name not in added:
            continue
        option = options[name]
        assert option.required == spec.required, name
        assert tuple(option.choices or ()) == spec.choices, name
        if spec.allowed and not spec.choices:
            assert spec.allowed in (option.help or ""), name
        studio = Field(name, model=model)
        assert (studio.low, studio.high, studio.allowed) == (spec.low, spec.high, list(spec.choices))
        assert studio.default == ("" if spec.default is None and studio.widget == "text" else spec.default)
