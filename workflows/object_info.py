"""The shipped snapshot of a real ComfyUI's GET /object_info, and what a deployment's
installed files do to it.

The snapshot was recorded with no model weights installed (see
tests/data/comfyui/README.md), so its model-file choice lists are empty. A real
ComfyUI fills those lists from its models folders; `with_installed_files` does the
same to a copy, so that a graph can be validated as that deployment would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

SNAPSHOT_PATH = Path(__file__).with_name("comfyui_object_info.json")

# (class_type, input name) -> ComfyUI models folder whose files are the choices.
MODEL_FILE_INPUTS: dict[tuple[str, str], str] = {
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name1"): "text_encoders",
    ("TripleCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name3"): "text_encoders",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("VAELoader", "vae_name"): "vae",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("LoraLoaderBypassModelOnly", "lora_name"): "loras",
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("DiffControlNetLoader", "control_net_name"): "controlnet",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("InstantIDModelLoader", "instantid_file"): "instantid",
    ("PulidFluxModelLoader", "pulid_file"): "pulid",
}

# Nodes that load fixed files without naming them in an input: ComfyUI cannot
# validate these, so the manifest must cover them and the backend must check them
# (backend/comfyui_client.py: through GET /models/<folder> where ComfyUI lists the file,
# on the shared models directory where it cannot, see COMFYUI_LISTED_EXTENSIONS).
IMPLICIT_MODEL_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "InstantIDFaceAnalysis": tuple(
        ("insightface", f"models/antelopev2/{name}")
        for name in ("1k3d68.onnx", "2d106det.onnx", "genderage.onnx",
                     "glintr100.onnx", "scrfd_10g_bnkps.onnx")
    ),
    "PulidFluxInsightFaceLoader": tuple(
        ("insightface", f"models/antelopev2/{name}")
        for name in ("1k3d68.onnx", "2d106det.onnx", "genderage.onnx",
                     "glintr100.onnx", "scrfd_10g_bnkps.onnx")
    ),
    # found through folder_paths.get_full_path("text_encoders", ...), which reads
    # models/text_encoders and the legacy models/clip
    "PulidFluxEvaClipLoader": (("text_encoders", "EVA02_CLIP_L_336_psz14_s6B.pt"),),
    "ApplyPulidFlux": (
        ("facexlib", "detection_Resnet50_Final.pth"),
        ("facexlib", "parsing_bisenet.pth"),
    ),
}

# ComfyUI reads some folders from a second, legacy directory too.
FOLDER_ALIASES: dict[str, tuple[str, ...]] = {
    "text_encoders": ("clip",),
    "diffusion_models": ("unet",),
}

# ComfyUI's folder_paths.supported_pt_extensions. Upstream's GET /models/<folder> and its
# choice lists hold only files with one of these extensions (compared lower-cased); the
# node packs register instantid, pulid, insightface and facexlib with the same set, so
# insightface's antelopev2 .onnx files are never listed, even when present.
COMFYUI_LISTED_EXTENSIONS: frozenset[str] = frozenset(
    {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"})


def comfyui_lists(name: str) -> bool:
    """Whether ComfyUI lists a model file of this name in its folders at all."""
    return PurePosixPath(name).suffix.lower() in COMFYUI_LISTED_EXTENSIONS

IMAGE_INPUTS: tuple[tuple[str, str], ...] = (("LoadImage", "image"), ("LoadImageMask", "image"))


@lru_cache(maxsize=1)
def _snapshot_text() -> str:
    return SNAPSHOT_PATH.read_text(encoding="utf-8")


def load_object_info() -> dict[str, Any]:
    """The shipped snapshot. Parsed from a cached text each call, so callers may
    change what they get without touching anyone else's copy."""
    return json.loads(_snapshot_text())


def _input_spec(node: Mapping[str, Any], input_name: str) -> tuple[str, list[Any]] | None:
    for section in ("required", "optional"):
        spec = (node.get("input") or {}).get(section) or {}
        if input_name in spec:
            return section, spec[input_name]
    return None


def choice_options(spec: list[Any]) -> list[Any] | None:
    """The choice list of an input spec in either form ComfyUI uses:
    `[[choices], {...}]` or `["COMBO", {"options": [...]}]`; None if not a choice."""
    if spec and isinstance(spec[0], list):
        return list(spec[0])
    if spec and spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return list(spec[1].get("options") or [])
    return None


def _with_choices(spec: list[Any], choices: list[Any]) -> list[Any]:
    if spec and isinstance(spec[0], list):
        return [choices, *copy.deepcopy(spec[1:])]
    options = copy.deepcopy(spec[1])
    options["options"] = choices
    return [spec[0], options, *copy.deepcopy(spec[2:])]


def _replace_spec(result: dict[str, Any], class_type: str, input_name: str,
                  choices_from: Callable[[list[Any]], list[Any]]) -> None:
    """Set one choice list in `result`, copying only that node down to the changed
    spec (the rest stays shared with the source). `choices_from` maps the current
    choices to the new ones."""
    node = result.get(class_type)
    found = _input_spec(node, input_name) if node else None
    if found is None:
        return
    section, spec = found
    current = choice_options(spec)
    if current is None:
        return
    node = dict(node)
    node["input"] = dict(node["input"])
    node["input"][section] = dict(node["input"][section])
    node["input"][section][input_name] = _with_choices(spec, choices_from(current))
    result[class_type] = node


def with_installed_files(object_info: dict[str, Any], installed: Mapping[str, Iterable[str]],
                         input_images: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of `object_info` whose model-file choice lists are the installed files
    of their folder and whose LoadImage list is `input_images`, as a real ComfyUI
    with those files reports. `object_info` itself is never changed."""
    result = dict(object_info)
    folders = {folder: list(files) for folder, files in installed.items()}
    for (class_type, input_name), folder in MODEL_FILE_INPUTS.items():
        files = list(folders.get(folder, []))
        for alias in FOLDER_ALIASES.get(folder, ()):
            files += folders.get(alias, [])
        files = sorted(set(files))
        # Entries the no-models snapshot already lists are built in (VAELoader's
        # 'pixel_space'): a real ComfyUI keeps them beside the files.
        _replace_spec(result, class_type, input_name,
                      lambda current, files=files: current + [f for f in files if f not in current])
    images = sorted(set(input_images))
    for class_type, input_name in IMAGE_INPUTS:
        # Replaced outright: the snapshot's entries are the recorder's own uploads.
        _replace_spec(result, class_type, input_name, lambda _current: list(images))
    return result


def with_input_images(object_info: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """A copy of `object_info` whose LoadImage lists also hold `names` (images just
    uploaded, which a cached /object_info cannot know yet)."""
    names = list(names)
    if not names:
        return object_info
    result = dict(object_info)
    for class_type, input_name in IMAGE_INPUTS:
        _replace_spec(result, class_type, input_name,
                      lambda current: current + [n for n in names if n not in current])
    return result
