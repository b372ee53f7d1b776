"""The shipped object_info snapshot and choice lists filled from installed files."""

from __future__ import annotations

import copy

from workflows.object_info import (
    MODEL_FILE_INPUTS,
    choice_options,
    load_object_info,
    with_input_images,
    with_installed_files,
)

_INSTALLED = {
    "diffusion_models": ["flux1-dev.safetensors"],
    "vae": ["ae.safetensors"],
    "clip": ["EVA02_CLIP_L_336_psz14_s6B.pt"],
    "text_encoders": ["t5xxl_fp16.safetensors", "clip_l.safetensors"],
}


def _choices(info: dict, class_type: str, input_name: str) -> list:
    node = info[class_type]["input"]
    spec = {**node.get("optional", {}), **node["required"]}[input_name]
    options = choice_options(spec)
    assert options is not None, (class_type, input_name)
    return options


def test_each_load_is_an_independent_copy() -> None:
    first = load_object_info()
    first["UNETLoader"]["input"]["required"]["unet_name"][0].append("x.safetensors")
    assert _choices(load_object_info(), "UNETLoader", "unet_name") == []


def test_every_model_file_input_is_a_choice_in_the_snapshot() -> None:
    info = load_object_info()
    for class_type, input_name in MODEL_FILE_INPUTS:
        assert class_type in info, class_type
        _choices(info, class_type, input_name)


def test_choices_become_the_installed_files_of_their_folder() -> None:
    filled = with_installed_files(load_object_info(), _INSTALLED)
    assert _choices(filled, "UNETLoader", "unet_name") == ["flux1-dev.safetensors"]
    assert _choices(filled, "CheckpointLoaderSimple", "ckpt_name") == []
    # ComfyUI reads text encoders from models/clip too.
    assert _choices(filled, "DualCLIPLoader", "clip_name2") == [
        "EVA02_CLIP_L_336_psz14_s6B.pt", "clip_l.safetensors", "t5xxl_fp16.safetensors"]


def test_vae_loader_keeps_its_built_in_choice() -> None:
    filled = with_installed_files(load_object_info(), _INSTALLED)
    assert _choices(filled, "VAELoader", "vae_name") == ["pixel_space", "ae.safetensors"]


def test_load_image_lists_the_input_images_only() -> None:
    filled = with_installed_files(load_object_info(), {}, input_images=["b.png", "a.png"])
    assert _choices(filled, "LoadImage", "image") == ["a.png", "b.png"]


def test_uploaded_images_are_added_to_the_listed_ones() -> None:
    source = with_installed_files(load_object_info(), {}, input_images=["a.png"])
    before = copy.deepcopy(source)
    added = with_input_images(source, ["new.png", "a.png"])
    assert _choices(added, "LoadImage", "image") == ["a.png", "new.png"]
    assert source == before


def test_source_object_info_is_never_changed() -> None:
    source = load_object_info()
    before = copy.deepcopy(source)
    with_installed_files(source, _INSTALLED, input_images=["a.png"])
    assert source == before


def test_combo_form_specs_are_filled_too() -> None:
    info = {"PulidFluxModelLoader": {"input": {"required": {
        "pulid_file": ["COMBO", {"options": [], "multiselect": False}]}}}}
    filled = with_installed_files(info, {"pulid": ["pulid_flux_v0.9.1.safetensors"]})
    spec = filled["PulidFluxModelLoader"]["input"]["required"]["pulid_file"]
    assert spec == ["COMBO", {"options": ["pulid_flux_v0.9.1.safetensors"], "multiselect": False}]
    assert info["PulidFluxModelLoader"]["input"]["required"]["pulid_file"][1]["options"] == []
